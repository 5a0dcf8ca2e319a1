"""Slow clients against a real gunicorn, with and without the shipped nginx configuration in front.

gunicorn's gthread worker gives a connection a thread once its first bytes arrive and keeps it until the request
is read, with no read timeout: a handful of sockets that trickle header lines (slow loris) or promise a longer body
than they send hold every thread, and ``/healthz`` stops answering. Behind nginx configured as ``config/nginx.conf``
(request buffering, header and body timeouts) the same sockets never reach gunicorn. The nginx here runs that file
with only its addresses and certificate paths replaced, and terminates TLS with a throwaway test CA.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.factories import basic
from tests.live_server import LiveServer, start_server
from tests.nginx import Front, run_nginx
from tests.tfc_api.tls import make_certificates

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORKERS = 2  # with config/gunicorn.conf.py's 4 threads each: 8 threads in all
THREADS = 4  # config/gunicorn.conf.py's threads
SLOW_SOCKETS = 8  # of each kind: 16 sockets, twice the number of threads
PROMPT = 1.0  # seconds: what "answers promptly" means here
STATE = b'{"version": 4, "serial": 1, "lineage": "slow", "outputs": {}, "resources": []}'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """gunicorn with ``WORKERS`` workers, acme/prod holding a state, and Basic credentials for it."""
    live = start_server(tmp_path_factory.mktemp("slow-clients"), workers=WORKERS)
    try:
        auth = basic(live.create_token())
        assert requests.post(f"{live.url}/state/acme/prod", data=STATE, headers=auth, timeout=30).status_code == 200
        yield live, auth
    finally:
        live.stop()


@pytest.fixture(scope="module")
def front(server: tuple[LiveServer, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    live, _ = server
    with run_nginx(live.port, tmp_path_factory.mktemp("nginx")) as started:
        yield started


class SlowClients:
    """``SLOW_SOCKETS`` slow-loris sockets (a header line every 2 s), as many promising 10 MB and sending 10 bytes.

    Entering returns once every socket is connected and has sent its first bytes. With ``server`` (the sockets go
    to that gunicorn directly) it also waits until gunicorn has accepted them all, and reconnects them until every
    worker holds at least ``THREADS`` of them: each worker accepts what it can, so on a busy machine one worker may
    take nearly all the sockets while the other stays free, and the attack would not have happened yet.
    """

    def __init__(
        self, port: int, auth: dict[str, str], tls: ssl.SSLContext | None, server: LiveServer | None = None
    ) -> None:
        self.port, self.auth, self.tls, self.server = port, auth, tls, server
        self.stop = threading.Event()
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.started = threading.Semaphore(0)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname="localhost")
        self.sockets.append(sock)
        return sock

    def _loris(self) -> None:
        try:
            sock = self._connect()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        except OSError:
            self.started.release()  # entering does not wait for a socket that could not connect
            return
        self.started.release()
        try:
            line = 0
            while not self.stop.wait(2):
                line += 1
                sock.sendall(f"X-Slow-{line}: {line}\r\n".encode())
        except OSError:
            pass  # dropped by the server (nginx's client_header_timeout): that is what it should do

    def _oversize(self) -> None:
        try:
            sock = self._connect()
            head = (
                "POST /state/acme/prod HTTP/1.1\r\nHost: localhost\r\n"
                f"Authorization: {self.auth['Authorization']}\r\nContent-Length: 10000000\r\n\r\n"
            )
            sock.sendall(head.encode() + b'{"version"')
        except OSError:
            pass
        self.started.release()
        self.stop.wait(60)

    def _open(self) -> None:
        self.stop.clear()
        for target in [self._loris] * SLOW_SOCKETS + [self._oversize] * SLOW_SOCKETS:
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self.threads.append(thread)
        for _ in self.threads:
            assert self.started.acquire(timeout=30), "the slow sockets did not connect within 30 s"

    def __enter__(self) -> SlowClients:
        for _ in range(10):
            self._open()
            if self.server is None or self._every_worker_is_held(self.server):
                break
            self.__exit__()
        time.sleep(1)  # the first bytes reach the threads that read them
        return self

    def _every_worker_is_held(self, server: LiveServer) -> bool:
        """True once gunicorn has accepted every slow socket and each worker holds at least ``THREADS``."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            held = established_connections_by_process(server)
            if sum(held.values()) >= 2 * SLOW_SOCKETS:
                return len(held) == WORKERS and min(held.values()) >= THREADS
            time.sleep(0.05)
        return False

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self.threads:
            thread.join(timeout=5)
        self.sockets, self.threads = [], []
        self.started = threading.Semaphore(0)


def established_connections_by_process(server: LiveServer) -> dict[int, int]:
    """For each process of ``server`` (its session), how many established connections to its port it holds."""
    assert server.process is not None
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
                if local_port == server.port and state == "01":  # 01: ESTABLISHED
                    inodes.add(f"socket:[{inode}]")
    held: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != server.process.pid:
                continue
            count = sum(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir())
        except OSError:
            continue  # gone, or not ours to read
        if count:
            held[int(entry.name)] = count
    return held


def timed_get(url: str, verify: str | bool, headers: dict[str, str] | None = None) -> tuple[float, int | None]:
    """Seconds a GET took and its status (None when it did not answer within 5 s)."""
    started = time.monotonic()
    try:
        status: int | None = requests.get(url, headers=headers, verify=verify, timeout=5).status_code
    except requests.RequestException:
        status = None
    return time.monotonic() - started, status


def test_behind_the_shipped_nginx_slow_clients_do_not_stall_other_clients(server, front):
    live, auth = server
    tls = ssl.create_default_context(cafile=str(front.ca))
    with SlowClients(front.port, auth, tls):
        healthz = timed_get(f"{front.url}/healthz", str(front.ca))
        state = timed_get(f"{front.url}/state/acme/prod", str(front.ca), auth)
        direct = timed_get(f"{live.url}/healthz", True)
    print(f"behind nginx, {2 * SLOW_SOCKETS} slow sockets: healthz {healthz}, state GET {state}, gunicorn {direct}")
    assert healthz[1] == 200 and healthz[0] < PROMPT, healthz
    assert state[1] == 200 and state[0] < PROMPT, state
    assert direct[1] == 200 and direct[0] < PROMPT, direct  # gunicorn itself never saw the slow sockets


def test_without_nginx_the_same_slow_clients_stall_gunicorn(server):
    """The premise of the nginx test: the attack is real against gunicorn alone (see the README's warning)."""
    live, auth = server
    with SlowClients(live.port, auth, None, server=live):
        healthz = timed_get(f"{live.url}/healthz", True)
    print(f"gunicorn alone, {2 * SLOW_SOCKETS} slow sockets: healthz {healthz}")
    assert healthz[1] is None or healthz[0] > PROMPT, healthz
    # Once the slow sockets are gone, gunicorn answers again.
    deadline = time.monotonic() + 30
    while timed_get(f"{live.url}/healthz", True)[1] != 200:
        assert time.monotonic() < deadline, "gunicorn did not recover after the slow sockets closed"


def raw_request(port: int, data: bytes, tls: ssl.SSLContext | None = None, close: bool = False) -> bytes:
    """Send ``data`` on a fresh connection (``close``: then end the sending side) and return the status line."""
    plain = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock = tls.wrap_socket(plain, server_hostname="localhost") if tls else plain
    with sock:
        sock.sendall(data)
        if close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer.split(b"\r\n", 1)[0]


BAD_CHUNKS = {
    "bad-size": b"zz\r\n{}\r\n0\r\n\r\n",
    "missing-terminator": b"2\r\n{}XX0\r\n\r\n",
    "ends-inside-a-chunk": b"ffff\r\n{}",  # then the client closes its side: the server sees EOF mid-body
}


@pytest.mark.parametrize("chunks", list(BAD_CHUNKS.values()), ids=list(BAD_CHUNKS))
def test_a_malformed_chunked_body_is_400(server, front, chunks):
    live, auth = server
    head = (
        "POST /state/acme/prod HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        f"Authorization: {auth['Authorization']}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    ends_early = chunks.startswith(b"ffff")
    assert raw_request(live.port, head + chunks, close=ends_early).startswith(b"HTTP/1.1 400")
    if not ends_early:  # nginx answers a truncated body by closing the connection, with nothing to read
        tls = ssl.create_default_context(cafile=str(front.ca))
        assert raw_request(front.port, head + chunks, tls).startswith(b"HTTP/1.1 400")
    assert requests.get(f"{live.url}/state/acme/prod", headers=auth, timeout=10).content == STATE


def test_direct_https_warns_at_start_up_and_bounds_request_headers(server, tmp_path):
    plain, _ = server
    assert "WARNING" not in plain.log_path.read_text()
    certs = make_certificates(tmp_path / "tls")
    env = {"TLS_CERT": str(certs.cert), "TLS_KEY": str(certs.key), "SSL_CERT_FILE": str(certs.ca)}
    live = start_server(tmp_path / "direct", workers=1, extra_env=env, scheme="https")
    try:
        log = live.log_path.read_text()
        assert "WARNING: gunicorn serves HTTPS directly" in log and "config/nginx.conf" in log, log
        many = {f"X-Field-{i}": "x" for i in range(60)}
        refused = requests.get(f"{live.url}/healthz", headers=many, verify=str(certs.ca), timeout=10)
        assert refused.status_code == 431  # limit_request_fields = 50: gunicorn refuses it before the app runs
        fine = {f"X-Field-{i}": "x" for i in range(30)}
        assert requests.get(f"{live.url}/healthz", headers=fine, verify=str(certs.ca), timeout=10).status_code == 200
    finally:
        live.stop()
