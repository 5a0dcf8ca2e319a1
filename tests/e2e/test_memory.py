"""A 50 MB state written and read back costs a gunicorn worker far less memory than a few copies of it."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.live_server import LiveServer, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STATE_SIZE = 50 * 1024 * 1024
MIB = 1024 * 1024
PATH = "/state/acme/memory"


def big_state(serial: int, size: int) -> bytes:
    """A valid Terraform state of about ``size`` bytes: many managed resources with bulky attributes."""
    item = {
        "mode": "managed",
        "type": "null_resource",
        "name": "r",
        "provider": 'provider["registry.terraform.io/hashicorp/null"]',
        "instances": [{"schema_version": 0, "attributes": {"id": "", "triggers": {"blob": "y" * 900}}}],
    }
    resources = []
    total = 0
    while total < size:
        item["name"] = f"r{len(resources)}"
        item["instances"][0]["attributes"]["id"] = str(len(resources))
        text = json.dumps(item, indent=2)
        resources.append(text)
        total += len(text) + 2
    head = json.dumps({"version": 4, "terraform_version": "1.0.3", "serial": serial, "lineage": "memory"}, indent=2)
    return (head[:-2] + ',\n  "resources": [\n' + ",\n".join(resources) + "\n  ]\n}\n").encode()


def worker_pids(server: LiveServer) -> list[int]:
    """The gunicorn workers: processes whose parent is the master (the launcher ``exec``s gunicorn in place)."""
    assert server.process is not None
    master = server.process.pid
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[1]) == master:
            found.append(int(stat.parent.name))
    return sorted(found)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``clear_refs`` 5, Linux 4.0+); False when the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Peaks:
    """Largest peak-RSS growth over a step, across all workers (the request may land on any of them)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.resets = all(reset_peak(pid) for pid in pids)
        self.before = {pid: memory_kib(pid)["VmRSS"] for pid in pids}

    def growth_bytes(self) -> int:
        return max(memory_kib(pid)["VmHWM"] - self.before[pid] for pid in self.pids) * 1024


def _chunks(data: bytes, size: int = MIB) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture
def memory_server(tmp_path: Path) -> Iterator[LiveServer]:
    """One worker, so the worker measured is the one that served the request."""
    server = start_server(tmp_path / "server", workers=1)
    yield server
    server.stop()


def test_a_50_mb_state_costs_a_worker_less_than_three_times_its_size(memory_server: LiveServer) -> None:
    server = memory_server
    token = server.create_token("acme", None)  # an organization token: memory, not RBAC, is under test
    data = big_state(2, STATE_SIZE)
    headers = {
        "Content-Type": "application/json",
        "Content-MD5": base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode(),
    }
    [worker] = worker_pids(server)
    with requests.Session() as session:
        session.auth = ("memory", token)
        # Warm the worker up (imports, connection pools, key material) with a small state first.
        small = big_state(1, 64 * 1024)
        assert session.post(server.url + PATH, data=small, timeout=60).status_code == 200
        assert session.get(server.url + PATH, timeout=60).content == small
        idle = memory_kib(worker)["VmRSS"] * 1024

        write = Peaks([worker])
        reply = session.post(server.url + PATH, data=data, headers=headers, timeout=300)
        assert reply.status_code == 200, reply.text
        write_growth = write.growth_bytes()

        read = Peaks([worker])
        received = hashlib.sha256()
        with session.get(server.url + PATH, stream=True, timeout=300) as reply:
            assert reply.status_code == 200
            for chunk in reply.iter_content(MIB):
                received.update(chunk)
        assert received.hexdigest() == hashlib.sha256(data).hexdigest()
        read_growth = read.growth_bytes()

        streamed = Peaks([worker])
        assert session.post(server.url + PATH, data=_chunks(big_state(3, STATE_SIZE)), timeout=300).status_code == 200
        streamed_growth = streamed.growth_bytes()

    after = memory_kib(worker)
    # Without clear_refs the peaks are measured from the idle RSS, so each step's number includes the earlier ones.
    exact = write.resets and read.resets and streamed.resets
    print(
        f"\nmemory: {len(data) / MIB:.0f} MB state, idle worker RSS {idle / MIB:.0f} MB; peak growth "
        f"write {write_growth / MIB:.0f} MB ({write_growth / len(data):.2f}x), "
        f"read {read_growth / MIB:.0f} MB ({read_growth / len(data):.2f}x), "
        f"chunked write {streamed_growth / MIB:.0f} MB ({streamed_growth / len(data):.2f}x); "
        f"RSS after {after['VmRSS'] / 1024:.0f} MB, peak {after['VmHWM'] / 1024:.0f} MB"
        + ("" if exact else " (peaks not resettable: cumulative)")
    )
    for step, growth in (("write", write_growth), ("read", read_growth), ("chunked write", streamed_growth)):
        assert growth < 3 * len(data), f"{step} grew the worker by {growth / MIB:.0f} MB for a {len(data)}-byte state"
