"""Real backends for end-to-end tests: scratch PostgreSQL databases, moto S3, private Redis, a switchable TCP proxy.

The proxy is how outages are simulated without stopping a shared service: the server under test talks to the
proxy, and ``cut()`` resets every open connection and every new one until ``restore()``, while the service
behind it (and its data) keeps running.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from moto.server import ThreadedMotoServer

from tests.drivers.storage_services import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, s3_admin_client
from tests.live_server import LiveServer, free_port, server_environment
from tests.services import POSTGRES_URL

S3_PREFIX = "e2e/states"
# Generous: these tests share the machine with others, and a loaded 2-CPU box boots gunicorn workers slowly.
START_TIMEOUT_SECONDS = 120.0


def start_live_server(data_dir: Path, workers: int, extra_env: dict[str, str]) -> LiveServer:
    """``tests.live_server.start_server`` with a start-up timeout suited to a busy machine."""
    [server] = start_live_servers([data_dir], workers, extra_env)
    return server


def start_live_servers(data_dirs: list[Path], workers: int, extra_env: dict[str, str]) -> list[LiveServer]:
    """Servers on one shared configuration: the database is migrated once, then they all start at the same time."""
    servers = []
    for data_dir in data_dirs:
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = server_environment(data_dir, port, workers, extra_env)
        servers.append(LiveServer(data_dir, port, env, data_dir / "server.log"))
    servers[0].flask("db", "upgrade")
    with ThreadPoolExecutor(len(servers)) as pool:
        started = [pool.submit(server.start, START_TIMEOUT_SECONDS) for server in servers]
    failures = [error for future in started if (error := future.exception()) is not None]
    if failures:
        stop_live_servers(servers)
        raise failures[0]
    return servers


def stop_live_servers(servers: list[LiveServer]) -> None:
    """Graceful stop of every server at the same time."""
    with ThreadPoolExecutor(max(len(servers), 1)) as pool:
        for stopped in [pool.submit(server.stop) for server in servers]:
            stopped.result()


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; ``cut()`` simulates an outage, ``restore()`` ends it."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._stopping = threading.Event()
        self._guard = threading.Lock()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}", daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Reset every open connection; new ones are reset as soon as they are accepted."""
        self._up.clear()
        with self._guard:
            doomed, self._open = self._open, set()
        for sock in doomed:
            _reset(sock)

    def restore(self) -> None:
        """Forward new connections again."""
        self._up.set()

    def close(self) -> None:
        """Stop accepting and drop every connection."""
        self._stopping.set()
        self.cut()
        self._thread.join(timeout=5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if not self._up.is_set():
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._guard:
                if not self._up.is_set():
                    _reset(client)
                    _reset(upstream)
                    continue
                self._open.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        with self._guard:
            pair = {source, target} & self._open
            self._open -= pair
        for sock in pair:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with RST (linger 0), as a crashed or unreachable peer would look."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def postgres_url(database: str, host: str = "127.0.0.1", port: int | None = None) -> str:
    """``POSTGRES_URL`` pointed at ``database`` (and optionally at another host/port, e.g. a proxy)."""
    url = sa.make_url(POSTGRES_URL).set(database=database, host=host)
    if port is not None:
        url = url.set(port=port)
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def scratch_postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards; yields its name."""
    name = f"statesman_e2e_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class MotoS3:
    """moto's S3 over real HTTP on 127.0.0.1, with one bucket; data lives as long as the server."""

    def __init__(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.port = int(port)
        self.endpoint = f"http://{host}:{port}"
        self.bucket = f"statesman-e2e-{uuid.uuid4().hex[:12]}"
        self.admin = s3_admin_client(self.endpoint)
        self.admin.create_bucket(Bucket=self.bucket)

    def keys(self) -> list[str]:
        """Every object key in the bucket."""
        pages = self.admin.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def server_env(self, endpoint: str | None = None) -> dict[str, str]:
        """Server settings for this bucket (path-style, a prefix, dummy credentials through the AWS chain)."""
        return {
            "OPENTACO_STORAGE": "s3",
            "OPENTACO_S3_BUCKET": self.bucket,
            "OPENTACO_S3_REGION": S3_REGION,
            "OPENTACO_S3_PREFIX": S3_PREFIX,
            "OPENTACO_S3_PATH_STYLE": "true",
            "AWS_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        }

    def stop(self) -> None:
        """Stop the server and release its port."""
        self.admin.close()
        self.server.stop()
        self.server._server.server_close()  # type: ignore[union-attr]  # stop() leaves the listening socket open


class PrivateRedis:
    """A ``redis-server`` of our own on a free port (no persistence) that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait until it accepts connections."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def stop(self) -> None:
        """SIGTERM and wait, so the port is closed when this returns."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def state_body(serial: int, lineage: str, **outputs: Any) -> bytes:
    """A Terraform 1.0.3-shaped state document."""
    return (
        json.dumps(
            {
                "version": 4,
                "terraform_version": "1.0.3",
                "serial": serial,
                "lineage": lineage,
                "outputs": {name: {"value": value, "type": "string"} for name, value in outputs.items()},
                "resources": [],
            },
            indent=2,
        ).encode()
        + b"\n"
    )


def body_headers(body: bytes) -> dict[str, str]:
    """The headers Terraform sends with a body."""
    return {
        "Content-Type": "application/json",
        "Content-MD5": base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode(),
    }
