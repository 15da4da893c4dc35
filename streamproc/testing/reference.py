"""A single-pass reference computation, and its comparison with what the worker stored.

In: the input records exactly as published (topic, key, bytes, in publish order) and the
settings the worker ran with. Out: per customer, the profile fields that do not depend on
how records were batched or interleaved across topics (counts, sums, first and last times),
and the counters (applied, duplicates, dead-lettered by reason, late). The fault-injection
tests compare a worker's final Redis state against this after crashes and outages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiokafka.partitioner import murmur2

from streamproc.contracts import Contracts
from streamproc.decisions.rules import Population
from streamproc.eventtime import is_late, observe
from streamproc.ingest.decode import Decoded, Source
from streamproc.ops.produce import ProducerRecord
from streamproc.pipeline import apply_batch
from streamproc.records import InputEvent
from streamproc.settings import Settings
from streamproc.state.profile import Profile

ORDER_FREE = ("events", "sessions", "page_views", "searches", "cart_adds", "checkouts", "purchases", "items_bought",
              "spend", "feedbacks", "ratings", "rating_sum", "satisfaction_count", "satisfaction_sum",
              "first_seen", "last_seen", "last_purchase")


def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for keyed records."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def aggregates(p: Profile) -> dict[str, Any]:
    return {f: getattr(p, f) for f in ORDER_FREE}


@dataclass
class Expected:
    """What a correct worker ends with."""

    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)


def _intake(records: Iterable[ProducerRecord], contracts: Contracts, settings: Settings,
            counters: Counter[str]) -> list[InputEvent]:
    types = {t.name: t.event_type for t in contracts.inputs}
    n = contracts.inputs[0].partitions
    decoder = settings.decoder(contracts)
    now, high, events = datetime.now(timezone.utc), {}, []
    for topic, key, raw in records:
        p = partition_of(key or b"", n)
        d = decoder.decode(raw, Source(topic, p, -1), types[topic], now)
        counters["in"] += 1
        if not isinstance(d, Decoded):
            counters[f"dlq:{d.reason}"] += 1
            continue
        ts = d.event.ts.timestamp()
        if is_late(high, topic, p, ts, settings.allowed_lateness_s):
            counters["dlq:late_event"] += 1
            continue
        observe(high, topic, p, ts)
        events.append(d.event)
    return events


def reference(records: Iterable[ProducerRecord], contracts: Contracts, settings: Settings) -> Expected:
    """The expected profiles and counters, computed in one pass."""
    out = Expected()
    events = _intake(records, contracts, settings, out.counters)
    result = apply_batch(events, {}, Population(None), settings.rules())
    out.profiles = {cid: aggregates(p) for cid, p in result.profiles.items()}
    out.counters["applied"] = result.applied
    out.counters["duplicates"] = len(result.duplicates)
    out.counters["dead_lettered"] = sum(n for k, n in out.counters.items() if k.startswith("dlq:"))
    return out


def compare(expected: Expected, stored: Mapping[str, Profile], counters: Mapping[str, int]) -> list[str]:
    """Every difference between the reference and the worker's state, as readable lines."""
    problems = [f"customer {c}: missing" for c in expected.profiles.keys() - stored.keys()]
    problems += [f"customer {c}: unexpected" for c in stored.keys() - expected.profiles.keys()]
    for cid in expected.profiles.keys() & stored.keys():
        got = aggregates(stored[cid])
        problems += [f"customer {cid}: {f} = {got[f]!r}, expected {v!r}"
                     for f, v in expected.profiles[cid].items() if got[f] != v]
    for name in ("applied", "duplicates", "dead_lettered"):
        if counters.get(name, 0) != expected.counters[name]:
            problems.append(f"counter {name} = {counters.get(name, 0)}, expected {expected.counters[name]}")
    return problems
