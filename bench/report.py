"""Rows of the benchmark table: repeated measurements, targets, the ratio against a reference, and the table; rows
saved as JSON (``--save``) and compared with a saved run (``--baseline``)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Stat:
    """One quantity measured in several runs (one value per run); shown as ``median (min-max) unit``."""

    values: tuple[float, ...]
    unit: str = ""

    @classmethod
    def of(cls, values: Sequence[float], unit: str = "") -> Stat:
        if not values:
            raise ValueError("a Stat needs at least one run")
        return cls(tuple(float(v) for v in values), unit)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if len(self.values) == 1:
            return f"{number(self.median)}{unit}"
        return f"{number(self.median)}{unit} ({number(self.low)}-{number(self.high)}, n={len(self.values)})"


@dataclass(frozen=True)
class Target:
    """A goal from spec/performance.md on the row's ``value`` or on its ``ratio`` to the reference."""

    op: str  # "<=" or ">="
    limit: float
    on: str = "ratio"  # "ratio" or "value"
    unit: str = ""

    def met_by(self, measured: float) -> bool:
        return measured <= self.limit if self.op == "<=" else measured >= self.limit

    def __str__(self) -> str:
        symbol = self.op
        suffix = " x" if self.on == "ratio" else (f" {self.unit}" if self.unit else "")
        return f"{symbol} {number(self.limit)}{suffix}"


@dataclass(frozen=True)
class Row:
    """One line of the table. ``value`` is ours, ``reference`` the comparison point measured in the same session.

    Runs of ``value`` and ``reference`` are interleaved by the benchmarks, so the ratio's range is taken over
    the pairs (run i of ours / run i of the reference); its centre is median / median. ``flask`` is the do-nothing
    Flask handler doing the same requests in the same run (shown in the notes unless it is the reference).
    """

    metric: str
    value: Stat | None
    target: Target | None = None
    reference: Stat | None = None
    reference_label: str = ""
    notes: str = ""
    extra_notes: tuple[str, ...] = field(default=())
    flask: Stat | None = None

    @property
    def ratio(self) -> Stat | None:
        if self.value is None or self.reference is None or self.reference.median == 0:
            return None
        if len(self.value.values) == len(self.reference.values) and len(self.value.values) > 1:
            pairs = [v / r for v, r in zip(self.value.values, self.reference.values, strict=True) if r]
            return Stat((self.value.median / self.reference.median, min(pairs), max(pairs)))
        return Stat((self.value.median / self.reference.median,))

    @property
    def status(self) -> str:
        if self.target is None:
            return "info" if self.value is not None else "n/a"
        measured = self.ratio if self.target.on == "ratio" else self.value
        if measured is None:
            return "n/a"
        centre = measured.values[0] if self.target.on == "ratio" else measured.median
        return "PASS" if self.target.met_by(centre) else "FAIL"

    def cells(self) -> list[str]:
        ratio = self.ratio
        if ratio is None:
            ratio_text = ""
        elif len(ratio.values) == 3:
            ratio_text = f"{ratio.values[0]:.2f} ({ratio.values[1]:.2f}-{ratio.values[2]:.2f})"
        else:
            ratio_text = f"{ratio.values[0]:.2f}"
        reference = ""
        if self.reference is not None:
            reference = f"{self.reference_label}: {self.reference}" if self.reference_label else str(self.reference)
        elif self.reference_label:
            reference = self.reference_label
        return [
            self.metric,
            str(self.value) if self.value is not None else "not measured",
            str(self.target) if self.target else "—",
            reference,
            ratio_text,
            self.status,
            self.all_notes,
        ]

    @property
    def all_notes(self) -> str:
        flask = f"do-nothing Flask: {self.flask}" if self.flask is not None and self.flask != self.reference else ""
        return "; ".join(n for n in (flask, self.notes, *self.extra_notes) if n)


def cpu_note(cpu: dict[str, list[float]], per: str) -> str:
    """``server CPU/<per>: ours 5.50 ms, do-nothing Flask 0.45 ms``: the median over the runs of each side."""
    return f"server CPU/{per}: " + ", ".join(f"{name} {statistics.median(v):.2f} ms" for name, v in cpu.items() if v)


def number(x: float) -> str:
    """A short human form: 3 significant figures for small numbers, thousands separators for large ones."""
    if x != x:  # NaN
        return "nan"
    magnitude = abs(x)
    if magnitude >= 1000:
        return f"{x:,.0f}"
    if magnitude >= 100:
        return f"{x:.0f}"
    if magnitude >= 10:
        return f"{x:.1f}"
    if magnitude >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


HEADERS = ["metric", "value (median (min-max))", "target", "reference", "ratio", "pass/fail", "notes"]
BASELINE_HEADERS = [*HEADERS[:2], "before", "change", *HEADERS[2:]]


def render_table(rows: Sequence[Row], baseline: Sequence[dict[str, Any]] | None = None) -> str:
    """A Markdown table (readable in a terminal, pasteable into an issue).

    With ``baseline`` (saved rows, see ``record``) each row gains "before" and "change" cells, matched by metric
    name; baseline rows that this run did not produce follow at the end as "not in this run".
    """
    if baseline is None:
        table = [HEADERS, *(row.cells() for row in rows)]
    else:
        table = [BASELINE_HEADERS, *comparison_cells(rows, baseline)]
    headers = table[0]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers) - 1)]

    def line(cells: list[str]) -> str:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        return "| " + " | ".join([*padded, cells[-1]]) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|---|"
    return "\n".join([line(headers), separator, *(line(cells) for cells in table[1:])])


def summary(rows: Sequence[Row]) -> str:
    """One line: how many targets were met."""
    judged = [r for r in rows if r.status in ("PASS", "FAIL")]
    failed = [r.metric.strip() for r in judged if r.status == "FAIL"]
    missing = [r.metric.strip() for r in rows if r.target is not None and r.status == "n/a"]
    text = f"{len(judged) - len(failed)}/{len(judged)} targets met"
    if failed:
        text += "; missed: " + ", ".join(failed)
    if missing:
        text += "; not measured: " + ", ".join(missing)
    return text


# --- saved runs and the comparison with one ------------------------------------------------------------------------


def _stat_record(stat: Stat | None) -> dict[str, Any]:
    if stat is None:
        return {"median": None, "min": None, "max": None, "n": 0, "unit": "", "values": []}
    return {
        "median": _rounded(stat.median),
        "min": _rounded(stat.low),
        "max": _rounded(stat.high),
        "n": len(stat.values),
        "unit": stat.unit,
        "values": [_rounded(v) for v in stat.values],
    }


def _rounded(x: float) -> float:
    """``x`` to 6 significant figures: CPU ticks of 10 ms divided by a count leave float noise in the last digits."""
    return float(f"{x:.6g}")


def record(row: Row, module: str) -> dict[str, Any]:
    """One row as ``--save`` writes it: plain JSON values, ``None`` where the row has nothing; the metric without
    the indentation of the table's sub-rows (the name rows are matched by)."""
    target = row.target
    return {
        "module": module,
        "metric": row.metric.strip(),
        **_stat_record(row.value),
        "target": (
            {"op": target.op, "limit": target.limit, "on": target.on, "unit": target.unit, "text": str(target)}
            if target
            else None
        ),
        "status": row.status,
        "reference": {"label": row.reference_label, **_stat_record(row.reference)} if row.reference else None,
        "ratio": _ratio_record(row.ratio),
        "flask": _stat_record(row.flask) if row.flask else None,
        "notes": row.all_notes,
    }


def _ratio_record(ratio: Stat | None) -> dict[str, float] | None:
    """A ratio's centre (median / median) and its range over the pairs of runs."""
    if ratio is None:
        return None
    return {"median": _rounded(ratio.values[0]), "min": _rounded(min(ratio.values)), "max": _rounded(max(ratio.values))}


def higher_is_better(row: Row) -> bool | None:
    """Which way a change of the row's value is an improvement; None when the row does not say."""
    if row.target is not None:  # a ratio has our value on top, so it moves the same way as the value
        return row.target.op == ">="
    unit = row.value.unit if row.value else ""
    if unit.endswith(("/s", "/min")):
        return True
    if unit in ("ms", "µs", "s", "MB", "MiB"):
        return False
    return None


def before_cell(saved: dict[str, Any]) -> str:
    """A saved row in short: value, ratio to its reference and pass/fail."""
    if saved.get("median") is None:
        return "not measured"
    unit = f" {saved['unit']}" if saved.get("unit") else ""
    parts = [f"{number(saved['median'])}{unit}"]
    if saved.get("ratio"):
        parts.append(f"{saved['ratio']['median']:.2f} x")
    if saved.get("status") in ("PASS", "FAIL"):
        parts.append(saved["status"])
    return ", ".join(parts)


def change_cell(row: Row, saved: dict[str, Any]) -> str:
    """How far the median moved since the saved run, whether that is better (by the target or the unit), and the
    ratio to the reference before and now."""
    now = row.value
    before = saved.get("median")
    if now is None or before is None:
        return ""
    if now.unit != saved.get("unit", ""):
        return f"unit changed ({saved.get('unit')!r} -> {now.unit!r})"
    if before == 0:
        return ""
    percent = (now.median / before - 1) * 100
    text = f"{percent:+.1f}%" if abs(percent) < 10 else f"{percent:+.0f}%"
    better = higher_is_better(row)
    if better is not None and percent:
        text += ", better" if (percent > 0) == better else ", worse"
    if now.low <= saved["max"] and saved["min"] <= now.high:
        text += " (ranges overlap)"
    if row.ratio is not None and saved.get("ratio"):  # a busy machine slows the reference too: the ratio says more
        text += f"; ratio {saved['ratio']['median']:.2f} -> {row.ratio.values[0]:.2f}"
    if saved.get("status") in ("PASS", "FAIL") and row.status in ("PASS", "FAIL") and saved["status"] != row.status:
        text += f"; {saved['status']} -> {row.status}"
    return text


def comparison_cells(rows: Sequence[Row], baseline: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Table lines with "before" and "change" cells; the baseline rows this run lacks come last."""
    saved = {entry["metric"]: entry for entry in baseline}
    lines = []
    for row in rows:
        cells = row.cells()
        entry = saved.get(row.metric.strip())
        before, change = (before_cell(entry), change_cell(row, entry)) if entry else ("not in baseline", "")
        lines.append([*cells[:2], before, change, *cells[2:]])
    produced = {row.metric.strip() for row in rows}
    for entry in baseline:
        if entry["metric"] not in produced:
            target = (entry.get("target") or {}).get("text", "—")
            lines.append([entry["metric"], "not in this run", before_cell(entry), "", target, "", "", "", ""])
    return lines
