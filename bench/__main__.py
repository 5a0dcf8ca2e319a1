"""``python -m bench [module ...] [--save FILE] [--baseline FILE]``: run the benchmarks and print one table.

Every benchmark module runs, or the named ones. A benchmark module is any ``bench/<name>.py`` with
``run() -> list[Row]``. Modules run in ``ORDER`` (the order of spec/performance.md), then any others alphabetically.
A module that raises becomes a "not measured" row with the error, and the remaining modules still run.

``--save FILE`` writes the rows as JSON: per row its module, metric, median, min, max, n, values, unit, target,
status, reference (with its label), ratio, the do-nothing Flask measurement where there is one, and the notes.
``--baseline FILE`` reads such a file and adds "before" and "change" columns, matched by metric name: a row the
baseline lacks says "not in baseline", and a baseline row of a module run now that this run lacks is listed as
"not in this run" (rows of modules not run now are left out). Both combine with each other and with module names,
e.g. ``make bench BENCH="state_transfer --baseline before.json --save after.json"``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import bench
from bench.report import Row, record, render_table, summary

ORDER = (
    "client_overhead",
    "terraform_apply",
    "state_transfer",
    "locks",
    "tfc_api",
    "cloud_block",
    "memory",
    "storage_drivers",
    "runs",
)
SAVE_FORMAT = "statesman-bench/1"


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


def read_baseline(path: Path) -> list[dict[str, Any]]:
    """The rows of a file written by ``--save``; raises ``ValueError`` for anything else."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != SAVE_FORMAT:
        raise ValueError(f"{path} is not a file written by python -m bench --save ({SAVE_FORMAT})")
    rows: list[dict[str, Any]] = document["rows"]
    return rows


def saved_document(rows: dict[str, list[Row]], started: datetime, seconds: float) -> dict[str, Any]:
    """What ``--save`` writes: the rows of each module and where and when they were measured."""
    return {
        "format": SAVE_FORMAT,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "commit": _commit(),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "modules": list(rows),
        "rows": [record(row, module) for module, module_rows in rows.items() for row in module_rows],
    }


def _commit() -> str | None:
    """The checkout's commit, with "+changes" when its files differ from it (None outside git)."""
    root = Path(bench.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def parse_args(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmark modules and exit")
    parser.add_argument("--save", type=Path, metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument("--baseline", type=Path, metavar="FILE", help="compare with results saved by --save")
    return parser, parser.parse_args(argv)


def check_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace, modules: dict[str, ModuleType]
) -> list[dict[str, Any]] | None:
    """The baseline's rows (None without ``--baseline``); refuses unknown modules, an unwritable ``--save`` and an
    unreadable baseline before anything runs."""
    unknown = [m for m in args.modules if m not in modules]
    if unknown:
        parser.error(f"unknown benchmark module(s): {', '.join(unknown)}; available: {', '.join(modules)}")
    if args.save and not args.save.resolve().parent.is_dir():
        parser.error(f"--save: no directory {args.save.resolve().parent}")
    if not args.baseline:
        return None
    try:
        return read_baseline(args.baseline)
    except ValueError as exc:
        parser.error(f"--baseline: {exc}")


def print_results(
    results: dict[str, list[Row]], baseline: list[dict[str, Any]] | None, baseline_path: Path | None, seconds: float
) -> None:
    """The table (with the baseline's columns when there is one) and the summary lines."""
    rows = [row for module_rows in results.values() for row in module_rows]
    compared = [entry for entry in baseline or [] if entry.get("module") in results]
    print()
    print(render_table(rows, compared if baseline is not None else None))
    print()
    print(f"{summary(rows)}. Total {seconds:.0f}s.")
    if baseline is not None:
        left_out = len(baseline) - len(compared)
        print(
            f"Baseline: {baseline_path}"
            + (f"; {left_out} of its rows are of modules not run now." if left_out else ".")
        )


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(argv)
    modules = discover()
    if args.list:
        for name, module in modules.items():
            print(f"{name:18} {(module.__doc__ or '').strip().splitlines()[0] if module.__doc__ else ''}")
        return 0
    baseline = check_args(parser, args, modules)
    selected = {name: modules[name] for name in (args.modules or modules)}
    started, start = datetime.now(UTC), time.monotonic()
    results = {name: run_module(name, module) for name, module in selected.items()}
    seconds = time.monotonic() - start
    print_results(results, baseline, args.baseline, seconds)
    if args.save:
        args.save.write_text(json.dumps(saved_document(results, started, seconds), indent=2) + "\n")
        print(f"Saved to {args.save}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
