"""``python -m bench [module ...]``: run every benchmark module (or the named ones) and print one table.

A benchmark module is any ``bench/<name>.py`` with ``run() -> list[Row]``. Modules run in ``ORDER`` (the order of
spec/performance.md), then any others alphabetically. A module that raises becomes a "not measured" row with the
error, and the remaining modules still run.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from types import ModuleType

import bench
from bench.report import Row, render_table, summary

ORDER = (
    "client_overhead",
    "terraform_apply",
    "state_transfer",
    "locks",
    "tfc_api",
    "memory",
    "storage_drivers",
    "runs",
)


def discover() -> dict[str, ModuleType]:
    """Benchmark modules by name, in run order."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "run", None)):
            found[info.name] = module
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda item: (rank.get(item[0], len(ORDER)), item[0])))


def run_module(name: str, module: ModuleType) -> list[Row]:
    """The rows of one module; an exception is reported on stderr and as a row."""
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    start = time.monotonic()
    try:
        rows = list(module.run())
    except Exception as exc:  # one broken benchmark must not hide the others' results
        traceback.print_exc()
        rows = [Row(f"{name}: benchmark failed", None, notes=f"{type(exc).__name__}: {str(exc)[:300]}")]
    print(f"bench: {name} done in {time.monotonic() - start:.0f}s", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmark modules and exit")
    args = parser.parse_args(argv)
    modules = discover()
    if args.list:
        for name, module in modules.items():
            print(f"{name:18} {(module.__doc__ or '').strip().splitlines()[0] if module.__doc__ else ''}")
        return 0
    unknown = [m for m in args.modules if m not in modules]
    if unknown:
        parser.error(f"unknown benchmark module(s): {', '.join(unknown)}; available: {', '.join(modules)}")
    selected = {name: modules[name] for name in (args.modules or modules)}
    start = time.monotonic()
    rows: list[Row] = []
    for name, module in selected.items():
        rows += run_module(name, module)
    print()
    print(render_table(rows))
    print()
    print(f"{summary(rows)}. Total {time.monotonic() - start:.0f}s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
