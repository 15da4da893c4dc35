"""What a replay tells people: its progress while it runs, and its summary.

In: problems found on the way (``Issues.add``: their kind, file line and detail), the counts of
rows, events and published records, and progress ticks (rows and bytes of the file read,
records the broker acknowledged). Out: ``Summary.lines()``, the human report (counts and
throughput, then one line per kind of problem with its first few file lines);
``Summary.as_dict()``, the same for ``--json``; and ``ProgressDisplay``, a rich progress bar on
a terminal, where ``Display`` shows nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeRemainingColumn

SHOWN = 5  # problem lines kept per kind
WARNINGS = {"unreadable time": "the worker dead-letters them as bad_timestamp",
            "no customer_id": "the worker dead-letters them as schema_violation"}


@dataclass
class Issues:
    """Problems by kind: every occurrence counted, the first few kept as ``(line, detail)``."""

    counts: Counter[str] = field(default_factory=Counter)
    first: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def add(self, kind: str, line: int, detail: str = "") -> None:
        self.counts[kind] += 1
        shown = self.first.setdefault(kind, [])
        if len(shown) < SHOWN:
            shown.append((line, detail))

    def as_dict(self) -> dict[str, Any]:
        return {k: {"count": n, "first": [{"line": ln, "detail": d} for ln, d in self.first[k]]}
                for k, n in self.counts.most_common()}

    def lines(self, verb: str, noun: str, notes: dict[str, str]) -> list[str]:
        """One line per kind: its count, then where its first occurrences are."""
        out = []
        for kind, n in self.counts.most_common():
            first = self.first[kind]
            if any(d for _, d in first):
                where = "; ".join(f"line {ln}: {d}" if d else f"line {ln}" for ln, d in first)
            else:
                where = ("line " if len(first) == 1 else "lines ") + ", ".join(str(ln) for ln, _ in first)
            more = f" and {n - len(first):,} more" if n > len(first) else ""
            note = f" ({notes[kind]})" if kind in notes else ""
            out.append(f"  {verb} {_plural(n, noun)}: {kind}{note}: {where}{more}")
        return out


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


@dataclass
class Summary:
    """What one replay read, published and could not use."""

    file: str
    format: str
    mapping: str | None
    dry_run: bool
    rows: int = 0
    events: int = 0
    published: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: Issues = field(default_factory=Issues)
    warnings: Issues = field(default_factory=Issues)

    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self) | {"skipped": self.skipped.as_dict(), "warnings": self.warnings.as_dict()}
        return doc | {"rows_skipped": self.skipped.counts.total(), "events_per_s": round(self.rate())}

    def lines(self) -> list[str]:
        """The human report: counts and throughput, then one line per kind of problem."""
        topics = ", ".join(f"{t} {n:,}" for t, n in self.by_topic.items())
        rows = f" from {_plural(self.rows, 'row')}" if self.mapping else ""
        head = (f"{'parsed' if self.dry_run else 'replayed'} {self.events:,} events ({topics}){rows} in "
                f"{self.seconds:.1f} s: {self.rate():,.0f} events/s; {_plural(self.skipped.counts.total(), 'row')} "
                f"skipped{'; dry run, nothing published' if self.dry_run else ''}")
        verb = "would publish" if self.dry_run else "published"
        return [head, *self.skipped.lines("skipped", "row", {}), *self.warnings.lines(verb, "event", WARNINGS)]


class Display:
    """Where a run reports its progress; this one shows nothing (``--json``, tests)."""

    def reading(self, rows: int, done: int, size: int) -> None:
        """``rows`` read so far, ``done`` of the file's ``size`` bytes."""

    def publishing(self, acked: int, total: int) -> None:
        """``acked`` of ``total`` records acknowledged by the broker."""


class ProgressDisplay(Display):
    """A rich progress bar on a terminal: rows read, then events published, with rate and ETA."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(TextColumn("{task.description:<10}"), BarColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[count]}"), TextColumn("{task.fields[rate]}"),
                            TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal)
        self.tasks: dict[str, tuple[TaskID, float]] = {}

    def __enter__(self) -> ProgressDisplay:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def reading(self, rows: int, done: int, size: int) -> None:
        self._show("reading", done, size, rows, "rows")

    def publishing(self, acked: int, total: int) -> None:
        self._show("publishing", acked, total, acked, "events")

    def _show(self, name: str, done: int, total: int, count: int, unit: str) -> None:
        if name not in self.tasks:
            self.tasks[name] = (self.bar.add_task(name, total=total, count="", rate=""), time.perf_counter())
        task, started = self.tasks[name]
        rate = count / max(time.perf_counter() - started, 1e-6)
        self.bar.update(task, completed=done, count=f"{count:,} {unit}", rate=f"{rate:,.0f} {unit}/s")
