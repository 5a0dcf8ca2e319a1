"""Processes a benchmark measures or compares against: Statesman under gunicorn, nginx, a do-nothing Flask app,
moto's S3 server and scratch PostgreSQL databases. Each is a context manager that cleans up after itself."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tests.live_server import REPO_ROOT, LiveServer, free_port, server_environment

POSTGRES_ADMIN_URL = os.environ.get(
    "STATESMAN_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("STATESMAN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
ORG = "acme"
T = TypeVar("T")


def default_workers() -> int:
    """gunicorn workers when ``WEB_CONCURRENCY`` is not set (the server's own default: 2 x cores + 1)."""
    return 2 * (os.cpu_count() or 1) + 1


def scratch_dir(name: str) -> Path:
    """A fresh directory for one benchmark's files (removed by the caller)."""
    return Path(tempfile.mkdtemp(prefix=f"statesman-bench-{name}-"))


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 20.0) -> None:
    """Wait until ``process`` listens on 127.0.0.1:``port``; raise with its log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}: {_tail(log)}")
        if reachable("127.0.0.1", port, timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{process.args!r} did not listen on {port} within {timeout}s: {_tail(log)}")


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"


def stop_process_group(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    """Stop a child started with ``start_new_session=True`` and everything it forked."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def child_pids(parent: int) -> list[int]:
    """Processes whose parent is ``parent`` (gunicorn's workers when ``parent`` is the master)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(entry))
    return sorted(found)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by ``pids`` (processes that exited count as 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def cpu_while(pids: list[int], work: Callable[[], T]) -> tuple[T, float]:
    """``work()``'s result and the CPU seconds ``pids`` used while it ran."""
    before = cpu_seconds(pids)
    result = work()
    return result, cpu_seconds(pids) - before


def p50_and_cpu(pids: list[int], calls: Sequence[Callable[[], object]]) -> tuple[float, float]:
    """The p50 in ms of ``calls`` made one after the other, and the CPU ms per call that ``pids`` used meanwhile."""

    def timed(call: Callable[[], object]) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    samples, used = cpu_while(pids, lambda: [timed(call) for call in calls])
    return statistics.median(samples) * 1000, used * 1000 / len(calls)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (a gunicorn or nginx master and its workers)."""
    return [pid, *child_pids(pid)]


# --- Statesman ------------------------------------------------------------------------------------------------


@dataclass
class BenchServer:
    """A running Statesman: base URL, an API token for ``acme`` and the Basic header Terraform would send."""

    live: LiveServer
    token: str
    workers: int
    token_kind: str = "user"

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def port(self) -> int:
        return self.live.port

    @property
    def authorization(self) -> str:
        return "Basic " + base64.b64encode(f"bench:{self.token}".encode()).decode()

    def state_path(self, workspace: str) -> str:
        return f"/state/{ORG}/{workspace}"

    def worker_pids(self) -> list[int]:
        assert self.live.process is not None
        return child_pids(self.live.process.pid)

    def pids(self) -> list[int]:
        """The gunicorn master and its workers."""
        assert self.live.process is not None
        return process_tree(self.live.process.pid)

    @property
    def log_path(self) -> Path:
        return self.live.log_path


@contextmanager
def statesman(name: str, workers: int | None = None, env: dict[str, str] | None = None) -> Iterator[BenchServer]:
    """A migrated Statesman on a free port (fs storage, local locks, local KMS, SQLite metadata unless ``env``
    says otherwise) with the production gunicorn settings of ``config/gunicorn.conf.py`` and the production log
    level (info: a line per request into ``log_path``)."""
    directory = scratch_dir(name)
    count = workers or default_workers()
    live = None
    try:
        data_dir = directory / "server"
        data_dir.mkdir()
        port = free_port()
        environment = server_environment(data_dir, port, count, _settings(data_dir, env))
        live = LiveServer(data_dir, port, environment, data_dir / "server.log")
        live.flask("db", "upgrade")
        token_job = _start_token_creation(live, user="bench")  # overlaps the workers' start-up
        live.start(timeout=120)
        server = BenchServer(live, _token_created(token_job), count)
        denied = _write_denied(server)
        if denied:
            print(
                f"bench: a user token may not write here ({denied}); using an organization token",
                file=sys.stderr,
                flush=True,
            )
            server = BenchServer(live, _token_created(_start_token_creation(live, user=None)), count, "organization")
            denied = _write_denied(server)
            if denied:
                log = _tail(live.log_path, 800)
                raise RuntimeError(f"no token can write on the bench server: {denied}; server log: {log}")
        yield server
    finally:
        if live is not None:
            live.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _settings(data_dir: Path, env: dict[str, str] | None) -> dict[str, str]:
    """The benchmark's server settings over the ones every bench server shares."""
    # The admin commands (``flask db upgrade``, the token) run before the server, in their own processes; with
    # memory storage and no metadata database named, the launcher would serve from a throwaway database of its own
    # and know none of them. Naming the default SQLite file keeps every process on the same database.
    # The tests' environment logs warnings only; production's default, info, writes a line per request (to the
    # server's log file, as the do-nothing app's gunicorn writes its access log), and that costs time too.
    shared = {"OPENTACO_SQLITE_DB_PATH": str(data_dir / "taco.db"), "LOG_LEVEL": "info"}
    return {**shared, **(env or {})}


_CREATE_TOKEN = """
import sys
from app import create_app
runner = create_app().test_cli_runner()
org, user = sys.argv[1], sys.argv[2] or None
commands = [["orgs", "create", org]]
if user:
    commands.append(["users", "create", user, "--org", org])
commands.append(["tokens", "create", "--org", org] + (["--user", user] if user else []))
for number, args in enumerate(commands):
    result = runner.invoke(args=args)
    if result.exit_code and number:  # the organization may exist already
        sys.exit(f"flask {' '.join(args)}: {result.output}")
print(result.stdout.strip().splitlines()[-1])
"""


def _start_token_creation(live: LiveServer, org: str = ORG, user: str | None = "bench") -> subprocess.Popen[str]:
    """Organization, user and an API token through the admin commands (``flask orgs/users/tokens create``), run
    in one process instead of three (each start-up costs seconds on a busy machine)."""
    return subprocess.Popen(
        [sys.executable, "-c", _CREATE_TOKEN, org, user or ""],
        env=live.env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _token_created(job: subprocess.Popen[str]) -> str:
    stdout, stderr = job.communicate(timeout=120)
    if job.returncode != 0 or not stdout.strip():
        raise RuntimeError(f"creating a token failed: {(stdout + stderr)[-2000:]}")
    return stdout.strip().splitlines()[-1]


def _write_denied(server: BenchServer) -> str:
    """Why a minimal state write with the server's token fails, or "" when it succeeds."""
    import http.client

    body = b'{"version": 4, "serial": 1, "lineage": "bench-probe", "outputs": {}, "resources": []}'
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(
            "POST",
            server.state_path("bench-probe"),
            body=body,
            headers={"Authorization": server.authorization, "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        return "" if response.status == 200 else f"HTTP {response.status}: {response.read()[:200]!r}"
    finally:
        connection.close()


# --- nginx ----------------------------------------------------------------------------------------------------


def nginx_binary() -> str | None:
    """The nginx executable, or None when it is not installed."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


@dataclass
class Nginx:
    """A private nginx: static files under ``root`` at ``/``, WebDAV ``PUT`` into ``dav`` at ``/dav/``."""

    port: int
    root: Path
    dav: Path
    process: subprocess.Popen[bytes]

    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


_NGINX_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    default_type application/json;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
        location /dav/ {{
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 256m;
        }}
    }}
}}
"""


@contextmanager
def nginx(files: dict[str, bytes]) -> Iterator[Nginx]:
    """nginx as a non-daemon child with a temporary config (as many workers as cores, access log on, like gunicorn),
    serving ``files`` from its root. Raises ``FileNotFoundError`` when nginx is not installed."""
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx not installed")
    directory = scratch_dir("nginx")
    www = directory / "www"
    (www / "dav").mkdir(parents=True)
    for name, data in files.items():
        (www / name).write_bytes(data)
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""  # workers must write DAV uploads into our temp directory
    (directory / "nginx.conf").write_text(
        _NGINX_CONF.format(workers=os.cpu_count() or 1, user=user, dir=directory, port=port)
    )
    log = directory / "stderr.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [binary, "-p", str(directory), "-c", str(directory / "nginx.conf")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, log)
        yield Nginx(port, www, www / "dav", process)
    finally:
        stop_process_group(process, signal.SIGQUIT)
        shutil.rmtree(directory, ignore_errors=True)


# --- a do-nothing Flask app on the same gunicorn settings -----------------------------------------------------


@dataclass
class ReferenceApp:
    """``bench.reference_app`` on gunicorn: ``GET /static/<name>`` returns the bytes of ``files[name]``."""

    port: int
    process: subprocess.Popen[bytes]

    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def reference_app(files: dict[str, bytes], workers: int | None = None) -> Iterator[ReferenceApp]:
    """A do-nothing Flask handler under gunicorn with Statesman's worker class, threads, keep-alive and access log."""
    directory = scratch_dir("flask")
    (directory / "files").mkdir()
    for name, data in files.items():
        (directory / "files" / name).write_bytes(data)
    port = free_port()
    log = directory / "gunicorn.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers or default_workers()),
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--keep-alive",
        "5",
        "--access-logfile",
        "-",
        "--access-logformat",
        '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms',
        "bench.reference_app:create_app()",
    ]
    env = {**os.environ, "BENCH_STATIC_DIR": str(directory / "files")}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_port(port, process, log)
        yield ReferenceApp(port, process)
    finally:
        stop_process_group(process)
        shutil.rmtree(directory, ignore_errors=True)


# --- services for the production drivers ----------------------------------------------------------------------


@dataclass
class S3Endpoint:
    endpoint: str
    bucket: str
    env: dict[str, str]


@contextmanager
def moto_s3() -> Iterator[S3Endpoint]:
    """moto's S3 server (``ThreadedMotoServer``, a thread of this process) with one bucket, and the server settings."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"statesman-bench-{uuid.uuid4().hex[:8]}"
    admin = boto3.session.Session().client(
        "s3", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench"
    )
    admin.create_bucket(Bucket=bucket)
    env = {
        "OPENTACO_STORAGE": "s3",
        "OPENTACO_S3_BUCKET": bucket,
        "OPENTACO_S3_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "OPENTACO_S3_PATH_STYLE": "true",
        "STORAGE_S3_USE_SSL": "false",
        "STORAGE_S3_ACCESS_KEY": "bench",
        "STORAGE_S3_SECRET_KEY": "bench",
    }
    try:
        yield S3Endpoint(endpoint, bucket, env)
    finally:
        admin.close()
        server.stop()
        if server._server is not None:
            server._server.server_close()  # stop() leaves the listening socket open


@contextmanager
def postgres_database() -> Iterator[str]:
    """A scratch PostgreSQL database (dropped afterwards); yields its SQLAlchemy URL."""
    import sqlalchemy as sa

    name = f"statesman_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def postgres_reachable() -> bool:
    from sqlalchemy import make_url

    url = make_url(POSTGRES_ADMIN_URL)
    return reachable(url.host or "127.0.0.1", url.port or 5432)


def redis_reachable() -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(REDIS_URL)
    return reachable(parts.hostname or "127.0.0.1", parts.port or 6379)
