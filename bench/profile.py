"""``python -m bench.profile <scenario>``: where a live server spends its CPU under one benchmark's load.

Starts Statesman under gunicorn as the benchmarks do, drives one scenario's load and samples every gunicorn
process with py-spy meanwhile, then prints the functions with the most samples (inclusive and self) and the
packages the self samples fall in. ``--db postgres`` puts the metadata on a scratch PostgreSQL database; ``--save``
keeps py-spy's collapsed stacks (open them in speedscope or flamegraph.pl).

Not a benchmark module (no ``run()``): a profiler slows the server, so its numbers are shares, not speeds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.clients import SERIAL_BASE, Client, PathClient, lock_info, run_threads, state_headers, terraform_state, wrk
from bench.servers import ORG, BenchServer, postgres_database, statesman

API = "/api/v2"
JSONAPI = {"Content-Type": "application/vnd.api+json"}
KIB = 1024


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


# --- scenarios: each prepares the server, then returns a load that runs for ``seconds`` ---------------------------

Load = Callable[[float], int]


def _write(client: Client, server: BenchServer, workspace: str, size: int, serial: int = SERIAL_BASE) -> bytes:
    body = terraform_state(size).body(serial)
    client.timed("POST", server.state_path(workspace), body, state_headers(body))
    return body


def state_get(size: int) -> Callable[[BenchServer], Load]:
    def prepare(server: BenchServer) -> Load:
        client = Client(server.url, server.authorization)
        _write(client, server, f"get-{size}", size)
        client.close()
        url = f"{server.url}{server.state_path(f'get-{size}')}"

        def load(seconds: float) -> int:
            return wrk(url, int(seconds), headers={"Authorization": server.authorization}).requests

        return load

    return prepare


def state_write(server: BenchServer) -> Load:
    template = terraform_state(1024 * KIB)
    client = Client(server.url, server.authorization)
    bodies = iter([template.body(serial) for serial in range(SERIAL_BASE, SERIAL_BASE + 600)])  # serial + 1 each

    def load(seconds: float) -> int:
        deadline, done = time.monotonic() + seconds, 0
        for body in bodies:
            client.timed("POST", server.state_path("write-1m"), body, state_headers(body))
            done += 1
            if time.monotonic() > deadline:
                break
        return done

    return load


def lock_cycles(server: BenchServer) -> Load:
    run = uuid.uuid4().hex[:6]

    def cycle(state: object) -> None:
        assert isinstance(state, PathClient)
        body = lock_info()
        state.timed("LOCK", state.path, body, {"Content-Type": "application/json"})
        state.timed("UNLOCK", state.path, body, {"Content-Type": "application/json"})

    def setup(i: int) -> PathClient:
        return PathClient(server.url, server.authorization, server.state_path(f"lock-{run}-{i}"))

    run_threads(8, 1.0, setup, cycle)  # creates the workspaces

    def load(seconds: float) -> int:
        return run_threads(8, seconds, setup, cycle).operations

    return load


def tfc_get(server: BenchServer, path: str | None = None, clients: int = 1) -> Load:
    client = Client(server.url, f"Bearer {server.token}")
    if path is None:
        body = json.dumps({"data": {"type": "workspaces", "attributes": {"name": "tfc-get"}}}).encode()
        client.request("POST", f"{API}/organizations/{ORG}/workspaces", body, JSONAPI)
        path = f"{API}/organizations/{ORG}/workspaces/tfc-get"
    client.close()

    def load(seconds: float) -> int:
        return run_threads(
            clients, seconds, lambda _: Client(server.url, f"Bearer {server.token}"), lambda c: c.timed("GET", path)
        ).operations

    return load


def tfc_list(server: BenchServer) -> Load:
    from bench.tfc_api import populate

    populate(server)
    return tfc_get(server, f"{API}/organizations/{ORG}/workspaces?page[size]=20&page[number]=7")


def cloud_write(server: BenchServer) -> Load:
    """Terraform 1.6+ through the cloud block: the cycle of ``bench.cloud_block`` (create, two uploads, re-read)."""
    from bench.cloud_block import CloudWriter

    writer = CloudWriter.start(server, terraform_state(1024 * KIB))

    def load(seconds: float) -> int:
        deadline, done = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            writer.cycle()
            done += 1
        return done

    return load


SCENARIOS: dict[str, Callable[[BenchServer], Load]] = {
    "get-10k": state_get(10 * KIB),
    "get-1m": state_get(1024 * KIB),
    "write-1m": state_write,
    "lock": lock_cycles,
    "tfc-get": tfc_get,
    "tfc-get-8": lambda server: tfc_get(server, clients=8),
    "tfc-list": tfc_list,
    "cloud-write": cloud_write,
}


# --- sampling and the report ------------------------------------------------------------------------------------


def sample(server: BenchServer, load: Load, seconds: float, output: Path, gil_only: bool = True) -> int:
    """Run ``load`` while py-spy samples the master and its workers; the operations the load completed."""
    assert server.live.process is not None
    command = [_py_spy(), "record", "--pid", str(server.live.process.pid), "--subprocesses", "--nolineno"]
    command += ["--format", "raw", "--rate", "250", "--duration", str(int(seconds)), "--output", str(output)]
    if gil_only:
        command.append("--gil")  # threads holding the GIL: where the CPU goes, not where threads wait
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # py-spy attaches to every process before the load starts
    done: list[int] = []
    driver = threading.Thread(target=lambda: done.append(load(seconds - 1.5)))
    driver.start()
    driver.join()
    _, errors = spy.communicate(timeout=120)
    if spy.returncode != 0 or not output.exists():
        raise RuntimeError(f"py-spy failed ({spy.returncode}): {errors[-2000:]}")
    return done[0] if done else 0


def read_stacks(path: Path) -> Counter[tuple[str, ...]]:
    """py-spy's collapsed stacks (``frame;frame;... count``), the process frame removed."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        text, _, count = line.rpartition(" ")
        if not text or not count.isdigit():
            continue
        frames = tuple(_short(frame) for frame in text.split(";") if not frame.startswith("process "))
        stacks[frames] += int(count)
    return stacks


def _short(frame: str) -> str:
    """``handle (/venv/lib/.../site-packages/flask/app.py)`` -> ``handle (flask/app.py)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/lib/python3", "/work/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name


def _package(frame: str) -> str:
    where = frame.partition(" (")[2].rstrip(")")
    parts = where.split("/")
    if parts and parts[0].startswith(".") and len(parts) > 1:  # /lib/python3.11/x.py -> stdlib
        return "python stdlib"
    if where.startswith(("main/app/", "app/")):
        return ".".join(parts[1 if where.startswith("main/") else 0 :][:2]).removesuffix(".py")
    return parts[0].removesuffix(".py") if parts else "?"


REQUEST_FRAME = "Flask.wsgi_app (flask/app.py)"


def report(stacks: Counter[tuple[str, ...]], top: int) -> str:
    """Inclusive and self shares of the samples, and the inclusive shares of our own functions within requests."""
    total = sum(stacks.values()) or 1
    in_requests = sum(n for frames, n in stacks.items() if REQUEST_FRAME in frames)
    ours: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for frames, count in stacks.items():
        for frame in set(frames):
            inclusive[frame] += count
            if REQUEST_FRAME in frames and frame.partition(" (")[2].startswith(("app/", "main/app/")):
                ours[frame] += count
        if frames:
            own[frames[-1]] += count
            packages[_package(frames[-1])] += count
    lines = [f"{total} samples, {100 * in_requests / total:.1f}% inside Flask (the rest: gunicorn, sockets, idle)"]
    for title, counter, whole in (
        ("inclusive", inclusive, total),
        ("self", own, total),
        ("self, by package", packages, total),
        ("our functions, inclusive, as a share of the samples inside Flask", ours, in_requests or 1),
    ):
        lines.append(f"\n{title}:")
        lines += [f"  {100 * n / whole:5.1f}%  {frame}" for frame, n in counter.most_common(top)]
    return "\n".join(lines)


@contextlib.contextmanager
def _server(database: str) -> Iterator[BenchServer]:
    if database == "postgres":
        with postgres_database() as url, statesman("profile", env={"DATABASE_URL": url}) as server:
            yield server
    else:
        with statesman("profile") as server:
            yield server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=12.0, help="how long to sample (default 12)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite", help="metadata database")
    parser.add_argument("--top", type=int, default=25, help="functions to print per list (default 25)")
    parser.add_argument("--save", type=Path, help="keep the collapsed stacks in this file")
    parser.add_argument("--wall", action="store_true", help="sample waiting threads too (default: GIL holders)")
    args = parser.parse_args(argv)
    with _server(args.db) as server, tempfile.TemporaryDirectory(prefix="statesman-profile-") as scratch:
        load = SCENARIOS[args.scenario](server)
        load(2.0)  # warm every worker up before sampling
        output = args.save or Path(scratch) / "stacks.txt"
        operations = sample(server, load, args.seconds, output, gil_only=not args.wall)
        print(f"{args.scenario} on {args.db}: {operations} operations while sampling ({server.workers} workers)")
        print(report(read_stacks(output), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
