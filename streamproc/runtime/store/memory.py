"""The store in process memory: the same contract as ``RedisStore``, for tests and tools.

In: customer ids, topic-partitions and watermarks to read; a batch's ``Changes`` to write.
Out: ``Loaded`` and ``Waiting``, as ``RedisStore`` returns them (see ``base.Store``). The state
has the shape of the Redis keys: profiles, applied offsets and a write count per partition
(what a guard watches), high marks, outboxes, the due and buffer sorted sets of each partition
(ordered by score, then member), the population rankings, segment counts, recent alerts and
counters. A write happens between two awaits, so it is atomic for every coroutine of the loop.

Unlike Redis, the population's ranks are placed with the current sizes (Redis places them
with the sizes of the previous read, one round trip instead of two).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from streamproc.decisions.rules import Population, Rules
from streamproc.eventtime import partition_of
from streamproc.features.population import FitRow
from streamproc.models.items import ItemTable, ItemView
from streamproc.ordering import Held
from streamproc.pipeline import next_due
from streamproc.plan import Changes, Loaded, Waiting
from streamproc.records import Alert, SegmentChange
from streamproc.runtime.population import PopulationView, rankings
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.runtime.store.base import Conflict
from streamproc.state.profile import Profile

RECENT_ALERTS = 50
ZSet = dict[Any, float]


@dataclass(frozen=True)
class Guard:
    """The write count of each guarded partition when the guard was opened."""

    writes: dict[int, int]


@dataclass
class Memory:
    """Everything a ``MemoryStore`` keeps (read it in tests as one would read Redis)."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    offsets: dict[int, dict[str, int]] = field(default_factory=dict)
    writes: Counter[int] = field(default_factory=Counter)
    high_marks: dict[str, float] = field(default_factory=dict)
    outboxes: dict[int, bytes] = field(default_factory=dict)
    due: dict[int, ZSet] = field(default_factory=dict)
    buffer: dict[int, ZSet] = field(default_factory=dict)
    ranked: dict[str, ZSet] = field(default_factory=dict)
    segments: dict[str, Counter[str]] = field(default_factory=dict)
    members: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    recent_alerts: list[dict[str, Any]] = field(default_factory=list)
    hourly: dict[int, Counter[str]] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    fit_rows: dict[float, dict[str, FitRow]] = field(default_factory=dict)
    first_event: float | None = None


def _upto(zset: ZSet, score: float, limit: int) -> list[tuple[Any, float]]:
    """Members with a score at most ``score``, by score then member, at most ``limit``."""
    return sorted(((m, s) for m, s in zset.items() if s <= score), key=lambda ms: (ms[1], ms[0]))[:limit]


class MemoryStore:
    """A ``Store`` that keeps its state in a ``Memory``."""

    def __init__(self, rules: Rules, *, top_fraction: float, min_population: int, margin: float) -> None:
        self.rules, self.state = rules, Memory()
        self.table = ItemTable(rules.items) if rules.items is not None else None
        self.population = PopulationView(RedisKeys(), top_fraction, min_population, margin)

    @asynccontextmanager
    async def guard(self, partitions: Iterable[int]) -> AsyncIterator[Guard]:
        yield Guard({p: self.state.writes[p] for p in sorted(set(partitions))})

    async def load(self, customers: list[str], tps: list[str]) -> Loaded:
        m = self.state
        offsets = {tp: m.offsets[partition_of(tp)][tp] for tp in tps if tp in m.offsets.get(partition_of(tp), {})}
        outboxes = [m.outboxes[p] for p in sorted({partition_of(tp) for tp in tps}) if p in m.outboxes]
        return Loaded(profiles={c: m.profiles.get(c) for c in customers}, offsets=offsets,
                      high_marks=dict(m.high_marks), population=self._population(),
                      outboxes=list(dict.fromkeys(outboxes)))

    def _population(self) -> Population:
        view, ranked = self.population, self.state.ranked
        cards = {dim: len(ranked.get(dim, {})) for dim in view.dims}
        view.sizes.update(cards)
        spend = sorted(ranked.get("monetary", {}).values(), reverse=True)
        top = spend[view.top_rank()] if view.top_rank() < len(spend) else None
        values: dict[str, list[Any]] = {}
        for dim in view.dims:
            scores = sorted(ranked.get(dim, {}).values())
            values[dim] = [scores[r] if r < len(scores) else None for r in view.ranks(dim)]
        return view.build(top, cards, values)

    async def waiting(self, watermarks: Mapping[int, float], limit: int) -> Waiting:
        marks = dict(watermarks)
        held: list[Held] = []
        due: dict[str, int] = {}
        for p in [p for p, wm in marks.items() if wm != float("-inf")]:
            members = _upto(self.state.buffer.get(p, {}), marks[p], limit)
            if len(members) == limit:
                marks[p] = members[-1][1]
            held += [Held.parse(member, p) for member, _ in members]
            due.update((cid, p) for cid, _ in _upto(self.state.due.get(p, {}), watermarks[p], limit))
        return Waiting(held, due, marks)

    async def profiles(self, customers: list[str]) -> dict[str, Profile]:
        return {c: self.state.profiles[c] for c in customers if c in self.state.profiles}

    async def write(self, ch: Changes, guard: Guard) -> None:
        """Everything ``ch`` changed, or ``Conflict`` if a guarded partition was written since."""
        if any(self.state.writes[p] != n for p, n in guard.writes.items()):
            raise Conflict(f"partitions {sorted(guard.writes)} were written since the guard was opened")
        self._write_profiles(ch)
        self._write_outputs(ch.outputs)
        if self.table is not None:
            self.table.apply(ch.items)
        for hour, counts in ch.hourly.items():
            self.state.hourly.setdefault(hour, Counter()).update(counts)
        self._write_buffer(ch.hold, ch.release)
        self._write_partitions(ch)
        self._write_stats(ch)
        self._write_fit_rows(ch)

    async def published(self, partitions: Iterable[int], outbox: bytes) -> None:
        for p in partitions:
            if self.state.outboxes.get(p) == outbox:
                del self.state.outboxes[p]

    def _write_profiles(self, ch: Changes) -> None:
        m = self.state
        for cid, p in ch.profiles.items():
            m.profiles[cid] = p
            timers = m.due.setdefault(ch.partition_of[cid], {})
            at = next_due(p, self.rules)
            if at is None:
                timers.pop(cid, None)
            else:
                timers[cid] = at.timestamp()
            for dim, score in rankings(p, ch.stored.get(cid)):
                m.ranked.setdefault(dim, {})[cid] = score

    async def items(self, skus: Iterable[str], top: int) -> ItemView | None:
        return None if self.table is None else self.table.view(skus, top)

    def _write_outputs(self, outputs: Iterable[object]) -> None:
        m = self.state
        for o in outputs:
            if isinstance(o, SegmentChange):
                counts = m.segments.setdefault(o.dimension, Counter())
                if o.old:
                    counts[o.old] -= 1
                    m.members.setdefault((o.dimension, o.old), set()).discard(o.customer_id)
                counts[o.new] += 1
                m.members.setdefault((o.dimension, o.new), set()).add(o.customer_id)
            elif isinstance(o, Alert):
                m.recent_alerts.insert(0, o.to_dict())
        del m.recent_alerts[RECENT_ALERTS:]

    def _write_buffer(self, hold: Iterable[Held], release: Iterable[Held]) -> None:
        for h in hold:
            self.state.buffer.setdefault(h.partition, {})[h.member] = h.event.ts.timestamp()
        for h in release:
            self.state.buffer.get(h.partition, {}).pop(h.member, None)

    def _write_partitions(self, ch: Changes) -> None:
        m = self.state
        for p in ch.partitions:
            m.writes[p] += 1
            if ch.outbox is not None:
                m.outboxes[p] = ch.outbox
            else:
                m.outboxes.pop(p, None)
        for tp, offset in ch.offsets.items():
            m.offsets.setdefault(partition_of(tp), {})[tp] = offset
            m.writes[partition_of(tp)] += 1
        m.high_marks.update(ch.high_marks)

    def _write_fit_rows(self, ch: Changes) -> None:
        m = self.state
        for at, r in ch.fit_rows:
            m.fit_rows.setdefault(at.timestamp(), {}).setdefault(r.customer_id, r)
        first = [p.first_seen.timestamp() for cid, p in ch.profiles.items() if ch.stored.get(cid) is None]
        if first:
            m.first_event = min(first + ([m.first_event] if m.first_event is not None else []))

    def _write_stats(self, ch: Changes) -> None:
        stats = self.state.stats
        for name, n in ch.stats.items():
            if n:
                stats[name] = stats.get(name, 0) + n
        stats.setdefault("first_at", ch.started_at)
        stats["last_at"] = datetime.now(timezone.utc).timestamp()
