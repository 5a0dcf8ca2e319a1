"""Load generators: a keep-alive ``http.client`` client, fixed-duration thread pools, wrk, generated states."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import shutil
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

# --- a keep-alive client with little overhead ------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection (``http.client``: a fraction of ``requests``' per-request cost).

    The connection is reopened once when the server closed it while idle (gunicorn drops keep-alive connections
    after 5 s).
    """

    def __init__(self, base_url: str, authorization: str | None = None, timeout: float = 120.0) -> None:
        match = re.fullmatch(r"http://([^:/]+):(\d+)/?", base_url)
        if not match:
            raise ValueError(f"expected http://host:port, got {base_url!r}")
        self.host, self.port = match.group(1), int(match.group(2))
        self.timeout = timeout
        self.headers = {"Authorization": authorization} if authorization else {}
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send one request and read the whole response: ``(status, body)``."""
        all_headers = {**self.headers, **(headers or {})}
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=all_headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def timed(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        expect: int = 200,
    ) -> float:
        """Seconds for one request; raises when the status is not ``expect``."""
        start = time.perf_counter()
        status, data = self.request(method, path, body, headers)
        elapsed = time.perf_counter() - start
        if status != expect:
            raise RuntimeError(f"{method} {path}: HTTP {status} (expected {expect}): {data[:300]!r}")
        return elapsed

    def close(self) -> None:
        self.connection.close()


class PathClient(Client):
    """A client bound to one path (a workspace's state URL), for thread pools where each thread has its own."""

    def __init__(self, base_url: str, authorization: str | None, path: str) -> None:
        super().__init__(base_url, authorization)
        self.path = path


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


# --- many threads for a fixed time ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """Operations completed by all threads in ``seconds`` and the failures (first message kept)."""

    operations: int
    failures: int
    seconds: float
    first_failure: str = ""

    @property
    def rate(self) -> float:
        return self.operations / self.seconds


def run_threads(
    count: int, seconds: float, setup: Callable[[int], object], operation: Callable[[object], None]
) -> LoadResult:
    """``count`` threads each call ``operation(setup(i))`` in a loop for ``seconds`` after a common start.

    ``setup`` (connections, workspaces) runs before the clock starts; an exception from ``operation`` counts as
    one failure and the loop goes on.
    """
    states = [setup(i) for i in range(count)]
    barrier = threading.Barrier(count + 1)
    done = [0] * count
    failed = [0] * count
    first: list[str] = []
    stop_at = [0.0]

    def loop(index: int) -> None:
        state = states[index]
        barrier.wait()
        while time.perf_counter() < stop_at[0]:
            try:
                operation(state)
                done[index] += 1
            except Exception as exc:  # counted and reported, the benchmark keeps going
                failed[index] += 1
                if not first:
                    first.append(repr(exc)[:300])

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    start = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for state in states:
        close = getattr(state, "close", None)
        if close:
            close()
    return LoadResult(sum(done), sum(failed), elapsed, first[0] if first else "")


# --- wrk --------------------------------------------------------------------------------------------------------


def wrk_binary() -> str | None:
    return shutil.which("wrk")


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    bytes_per_second: float
    non_2xx: int
    socket_errors: str
    output: str


_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def wrk(
    url: str, seconds: int = 5, connections: int = 8, threads: int = 2, headers: dict[str, str] | None = None
) -> WrkResult:
    """``wrk -c<connections> -t<threads> -d<seconds>s`` against ``url``; raises when wrk fails."""
    binary = wrk_binary()
    if binary is None:
        raise FileNotFoundError("wrk not installed")
    command = [binary, f"-c{connections}", f"-t{threads}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    result = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 30)
    output = result.stdout + result.stderr
    count = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", output)
    if result.returncode != 0 or rate is None or transfer is None or count is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {output[-1000:]}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:([^\n]+)", output)
    return WrkResult(
        int(count.group(1)),
        float(rate.group(1)),
        float(transfer.group(1)) * _UNITS[transfer.group(2)],
        int(non_2xx.group(1)) if non_2xx else 0,
        errors.group(1).strip() if errors else "",
        output,
    )


# --- what Terraform sends -----------------------------------------------------------------------------------------

SERIAL_BASE = 1_000_000  # serials of generated states stay 7 digits, so every body of a template has the same size


@dataclass(frozen=True)
class StateTemplate:
    """A generated Terraform state of about ``size`` bytes; ``body(serial)`` gives the bytes for one serial."""

    text: bytes
    lineage: str

    @property
    def size(self) -> int:
        return len(self.text)

    def body(self, serial: int) -> bytes:
        if not SERIAL_BASE <= serial < 10 * SERIAL_BASE:
            raise ValueError(f"serial {serial} must have 7 digits")
        return self.text.replace(b'"serial": 1000000,', b'"serial": %d,' % serial, 1)


def terraform_state(size: int, outputs: int = 5) -> StateTemplate:
    """A format-4 state shaped like Terraform 1.0.3 writes it (indented, null_resources with triggers)."""
    lineage = str(uuid.uuid4())
    head = json.dumps(
        {
            "version": 4,
            "terraform_version": "1.0.3",
            "serial": SERIAL_BASE,
            "lineage": lineage,
            "outputs": {f"out_{i}": {"value": f"value-{i}", "type": "string"} for i in range(outputs)},
        },
        indent=2,
    )[:-2]
    resource = json.dumps(
        {
            "mode": "managed",
            "type": "null_resource",
            "name": "r_NAME",
            "provider": 'provider["registry.terraform.io/hashicorp/null"]',
            "instances": [
                {
                    "schema_version": 0,
                    "attributes": {"id": "ID", "triggers": {"digest": "DIGEST"}},
                    "sensitive_attributes": [],
                    "private": "bnVsbA==",
                }
            ],
        },
        indent=2,
    ).replace("\n", "\n    ")

    def part(i: int) -> str:
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        return "    " + resource.replace("r_NAME", f"r_{i}").replace('"ID"', f'"{1_000_000_000 + i}"').replace(
            "DIGEST", digest
        )

    per_resource = len(part(100_000)) + 2  # ",\n"; names up to r_999999 have the same length
    count = max(1, (size - len(head) - 40) // per_resource)
    parts = [part(100_000 + i) for i in range(count)]
    text = head + ',\n  "resources": [\n' + ",\n".join(parts) + "\n  ]\n}\n"
    return StateTemplate(text.encode(), lineage)


def content_md5(body: bytes) -> str:
    """The ``Content-MD5`` header Terraform's http backend sends with every state write."""
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def state_headers(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "Content-MD5": content_md5(body)}


def lock_info(lock_id: str | None = None) -> bytes:
    """A LockInfo body like Terraform 1.0.3's."""
    return json.dumps(
        {
            "ID": lock_id or str(uuid.uuid4()),
            "Operation": "OperationTypeApply",
            "Info": "",
            "Who": "bench@localhost",
            "Version": "1.0.3",
            "Created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "Path": "",
        }
    ).encode()


def cloud_block_copies(state: bytes) -> tuple[bytes, bytes]:
    """The JSON state and the JSON outputs that Terraform 1.6+ sends beside a state through the cloud block:
    ``terraform show -json``'s document of the state (compact, as Go's encoder writes it) and its outputs."""
    document = json.loads(state)
    outputs = {
        name: {"sensitive": False, "value": output["value"], "type": output["type"]}
        for name, output in document["outputs"].items()
    }
    resources = [
        {
            "address": f"{resource['type']}.{resource['name']}",
            "mode": resource["mode"],
            "type": resource["type"],
            "name": resource["name"],
            "provider_name": resource["provider"].split('"')[1],  # provider["registry.terraform.io/hashicorp/null"]
            "schema_version": instance["schema_version"],
            "values": instance["attributes"],
            "sensitive_values": {key: {} for key, value in instance["attributes"].items() if isinstance(value, dict)},
        }
        for resource in document["resources"]
        for instance in resource["instances"]
    ]
    shown = {
        "format_version": "1.0",
        "terraform_version": document["terraform_version"],
        "values": {"outputs": outputs, "root_module": {"resources": resources}},
    }
    return _compact(shown), _compact(outputs)


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
