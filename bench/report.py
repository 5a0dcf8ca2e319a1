"""Rows of the benchmark table: repeated measurements, targets, the ratio against a reference, and the table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


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
    the pairs (run i of ours / run i of the reference); its centre is median / median.
    """

    metric: str
    value: Stat | None
    target: Target | None = None
    reference: Stat | None = None
    reference_label: str = ""
    notes: str = ""
    extra_notes: tuple[str, ...] = field(default=())

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
        notes = "; ".join(n for n in (self.notes, *self.extra_notes) if n)
        return [
            self.metric,
            str(self.value) if self.value is not None else "not measured",
            str(self.target) if self.target else "—",
            reference,
            ratio_text,
            self.status,
            notes,
        ]


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


def render_table(rows: Sequence[Row]) -> str:
    """A Markdown table (readable in a terminal, pasteable into an issue)."""
    table = [HEADERS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS) - 1)]

    def line(cells: list[str]) -> str:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        return "| " + " | ".join([*padded, cells[-1]]) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|---|"
    return "\n".join([line(table[0]), separator, *(line(cells) for cells in table[1:])])


def summary(rows: Sequence[Row]) -> str:
    """One line: how many targets were met."""
    judged = [r for r in rows if r.status in ("PASS", "FAIL")]
    failed = [r.metric for r in judged if r.status == "FAIL"]
    missing = [r.metric for r in rows if r.target is not None and r.status == "n/a"]
    text = f"{len(judged) - len(failed)}/{len(judged)} targets met"
    if failed:
        text += "; missed: " + ", ".join(failed)
    if missing:
        text += "; not measured: " + ", ".join(missing)
    return text
