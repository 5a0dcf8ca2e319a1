"""``python -m bench.in_process [--profile REQUEST]``: the CPU one request costs inside the app, without gunicorn.

Builds the app in this process on a scratch SQLite database with the bench servers' settings (fs storage, local
locks, local KMS, request log at INFO, to nowhere) and freezes the start-up objects as a gunicorn worker does. Each
request then runs in a loop through Flask's test client, beside the same kind of request to the do-nothing Flask app
of ``bench.reference_app``, and the table gives the process CPU time per request of both.

No network, no gunicorn and no second process share the cores, so the figure moves with our request path and little
else: the number to compare before and after a change to it. The load benchmarks (``make bench``) stay the measure
of the server; this one leaves out gunicorn's parsing and sockets and the client's share of the machine.
``--profile REQUEST`` prints where one request's time goes (cProfile, whose overhead inflates small functions).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import logging
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient

from bench.clients import SERIAL_BASE, lock_info, state_headers, terraform_state
from bench.reference_app import create_app as create_reference_app
from tests.live_server import server_environment

ORG = "bench"
KIB = 1024
Request = Callable[[], None]


def _statesman(directory: Path) -> tuple[FlaskClient, str]:
    """A test client of a migrated app on ``directory`` and an API token of a member with the admin role."""
    import flask_migrate

    from app import create_app
    from config import load_config

    directory.mkdir()
    app = create_app(load_config(server_environment(directory, 0, 1, {"LOG_LEVEL": "info"})))
    with app.app_context():
        flask_migrate.upgrade()
    runner = app.test_cli_runner()
    for args in (["orgs", "create", ORG], ["users", "create", "bench", "--org", ORG]):
        runner.invoke(args=args)
    token = runner.invoke(args=["tokens", "create", "--org", ORG, "--user", "bench"]).output.strip().splitlines()[-1]
    return app.test_client(), token


def _checked(client: FlaskClient, method: str, path: str, expected: int = 200, **kwargs: object) -> None:
    response = client.open(path, method=method, **kwargs)  # type: ignore[arg-type]
    if response.status_code != expected:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.get_data()[:300]!r}")


def _reference(static: Path, ours: FlaskClient, token: str) -> FlaskClient:
    """The do-nothing app, serving our workspace document as its JSON file (it reads its files when created)."""
    document = ours.get(f"/api/v2/organizations/{ORG}/workspaces/small", headers={"Authorization": f"Bearer {token}"})
    (static / "workspace").write_bytes(document.get_data())
    return create_reference_app().test_client()


def request_table(ours: FlaskClient, token: str, reference: FlaskClient) -> dict[str, tuple[Request, Request]]:
    """Each request of the table: ours and the do-nothing Flask app's, as callables."""
    basic = {"Authorization": "Basic " + base64.b64encode(f"token:{token}".encode()).decode()}
    bearer = {"Authorization": f"Bearer {token}"}
    small, big = terraform_state(10 * KIB).body(SERIAL_BASE), terraform_state(1024 * KIB).body(SERIAL_BASE)
    for name, body in (("small", small), ("big", big)):
        _checked(ours, "POST", f"/state/{ORG}/{name}", data=body, headers={**basic, **state_headers(body)})
    serial = [SERIAL_BASE]
    template = terraform_state(1024 * KIB)
    lock = lock_info()
    workspace_path = f"/api/v2/organizations/{ORG}/workspaces/small"

    def write() -> None:
        serial[0] += 1
        body = template.body(serial[0])
        _checked(ours, "POST", f"/state/{ORG}/writes", data=body, headers={**basic, **state_headers(body)})

    def lock_cycle() -> None:
        _checked(ours, "LOCK", f"/state/{ORG}/locks", data=lock, headers=basic)
        _checked(ours, "UNLOCK", f"/state/{ORG}/locks", data=lock, headers=basic)

    def reference_lock_cycle() -> None:
        _checked(reference, "LOCK", "/lock/w", data=lock)
        _checked(reference, "UNLOCK", "/lock/w", data=lock)

    return {
        "10 KB state GET": (
            lambda: _checked(ours, "GET", f"/state/{ORG}/small", headers=basic),
            lambda: _checked(reference, "GET", "/static/small"),
        ),
        "1 MB state GET": (
            lambda: _checked(ours, "GET", f"/state/{ORG}/big", headers=basic),
            lambda: _checked(reference, "GET", "/static/big"),
        ),
        "lock + unlock (two requests)": (lock_cycle, reference_lock_cycle),
        "GET workspace (TFC API)": (
            lambda: _checked(ours, "GET", workspace_path, headers=bearer),
            lambda: _checked(reference, "GET", "/json/workspace"),
        ),
        "1 MB state write": (write, lambda: _checked(reference, "POST", "/sink/w", data=big)),
    }


def cpu_per_call(request: Request, calls: int) -> float:
    """Process CPU milliseconds per call, after a warm-up."""
    for _ in range(max(calls // 10, 5)):
        request()
    started = time.process_time()
    for _ in range(calls):
        request()
    return (time.process_time() - started) * 1000 / calls


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.in_process", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per small request (default 1000)")
    parser.add_argument("--profile", metavar="REQUEST", help="profile one request of the table (a prefix of its name)")
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="statesman-bench-in-process-"))
    try:
        static = directory / "static"
        static.mkdir()
        (static / "small").write_bytes(terraform_state(10 * KIB).body(SERIAL_BASE))
        (static / "big").write_bytes(terraform_state(1024 * KIB).body(SERIAL_BASE))
        os.environ["BENCH_STATIC_DIR"] = str(static)
        ours, token = _statesman(directory / "server")
        table = request_table(ours, token, _reference(static, ours, token))
        logging.getLogger().handlers[:] = [logging.NullHandler()]  # the request log is formatted, then dropped
        gc.collect()
        gc.freeze()  # as gunicorn's workers do after start-up (config/gunicorn.conf.py)
        if args.profile:
            return _profile(table, args.profile, args.calls)
        print("| request | ours, CPU ms | do-nothing Flask, CPU ms | ratio |")
        print("|---|---|---|---|")
        for name, (request, same_on_reference) in table.items():
            calls = args.calls if "1 MB" not in name else max(args.calls // 10, 20)
            mine, floor = cpu_per_call(request, calls), cpu_per_call(same_on_reference, calls)
            print(f"| {name} | {mine:.3f} | {floor:.3f} | {mine / floor:.1f} |", flush=True)
        return 0
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _profile(table: dict[str, tuple[Request, Request]], prefix: str, calls: int) -> int:
    chosen = [name for name in table if name.lower().startswith(prefix.lower())]
    if not chosen:
        print(f"no request starts with {prefix!r}: {', '.join(table)}", file=sys.stderr)
        return 2
    request = table[chosen[0]][0]
    cpu_per_call(request, max(calls // 10, 5))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        request()
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(r"app/", 40)
    stats.sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
