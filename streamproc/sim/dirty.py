"""Dirty input for demos and fault tests: what real producers send besides clean events.

In: clean event dicts (from ``generate``) and a seed. Out: ``(event, raw bytes)`` pairs where
some records are resent duplicates, malformed JSON, contract violations, or dirty-but-safe
values the cleaner corrects. Deterministic for a seed; ``DirtyCounts`` says what was injected.

========================= ======= =================================================================
kind                      default what the record is
========================= ======= =================================================================
``duplicate``             5%      a valid event's exact bytes sent again (a producer retry)
``malformed``             1%      the event's JSON cut short, or bytes that are not UTF-8
``invalid``               1%      out-of-range rating, missing field, unknown currency, no zone,
                                  wrong type
``correctable``           2%      string amounts, epoch-millisecond time, lower-case currency,
                                  padded customer id, tracking parameters in the page URL
========================= ======= =================================================================
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson


@dataclass(frozen=True)
class DirtyRates:
    duplicate: float = 0.05
    malformed: float = 0.01
    invalid: float = 0.01
    correctable: float = 0.02


DirtyCounts = Counter  # kind -> records injected (``clean`` for untouched events)


def _malformed(raw: bytes, rng: random.Random) -> bytes:
    if rng.random() < 0.2:
        return b"\xff\xfe" + raw[: rng.randint(1, 20)]
    return raw[: rng.randint(1, max(1, len(raw) - 2))]


def _invalid(e: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    e = dict(e)
    kind = e["type"]
    choice = rng.randrange(4)
    if choice == 0:
        e.pop("event_id")
    elif choice == 1:
        e["ts"] = e["ts"][:19]
    elif choice == 2:
        e["type"] = "refund"
    elif kind == "feedback":
        e["rating"] = 9
    elif kind == "purchase":
        e["currency"] = "XTS"
    else:
        e["action"] = "teleport"
    return e


def _correctable(e: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    e = dict(e)
    choice = rng.randrange(4)
    if choice == 0:
        e["ts"] = int(datetime.fromisoformat(e["ts"]).timestamp() * 1000)
    elif choice == 1:
        e["customer_id"] = f"  {e['customer_id'].lower()} "
    elif choice == 2 and e["type"] == "purchase":
        e["total"], e["currency"] = f"{e['total']:.2f}", e["currency"].lower()
    elif e["type"] == "clickstream":
        e["page"] = e["page"] + "?utm_source=newsletter&utm_medium=email&gclid=abc123"
    else:
        e["event_id"] = f" {e['event_id']} "
    return e


def dirty(events: Iterable[dict[str, Any]], seed: int, rates: DirtyRates = DirtyRates(),
          counts: DirtyCounts | None = None) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Each event once (possibly dirtied), plus injected duplicates; ``counts`` is filled in."""
    rng = random.Random(seed)
    counts = counts if counts is not None else Counter()
    for e in events:
        raw, r = orjson.dumps(e), rng.random()
        if r < rates.malformed:
            kind, raw = "malformed", _malformed(raw, rng)
        elif r < rates.malformed + rates.invalid:
            kind, raw = "invalid", orjson.dumps(_invalid(e, rng))
        elif r < rates.malformed + rates.invalid + rates.correctable:
            kind, raw = "correctable", orjson.dumps(_correctable(e, rng))
        else:
            kind = "clean"
        counts[kind] += 1
        yield e, raw
        if kind in ("clean", "correctable") and rng.random() < rates.duplicate:
            counts["duplicate"] += 1
            yield e, raw
