"""Events in the order they are published: by event time, each with its topic and key.

In: ``Row`` tuples in file order and the input contracts. Out: ``Out`` records
``(event time, topic, key, value)`` sorted by event time, ties in file order. An event of an
unknown ``type`` is skipped; one whose ``ts`` the worker cannot read, or with no customer id,
is kept and counted as a warning in ``Issues``, since the worker dead-letters it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson

from streamproc.contracts import Contracts
from streamproc.ingest.clean import Reject, clean_ts, normalise_customer_id
from streamproc.ingest.decode import parse_ts
from streamproc.tools.replay.files import Row
from streamproc.tools.replay.report import Issues

Out = tuple[float, str, bytes | None, bytes]  # (event time, topic, key, value)


def event_time(value: Any) -> float | None:
    """Epoch seconds of ``ts`` exactly as the worker reads it, or None where the worker
    dead-letters it as ``bad_timestamp``.

    >>> event_time("2026-01-05T10:00:00+01:00"), event_time("2026-01-05 09:00:00+0000")
    (1767603600.0, 1767603600.0)
    >>> event_time("12/1/2010 8:26") is None
    True
    """
    if isinstance(value, str) and len(value) > 19 and value[-3] == ":" and value[-6] in "+-":
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    try:
        text = clean_ts(value, [])
        return parse_ts(text).timestamp() if isinstance(text, str) else None
    except Reject:
        return None


class Router:
    """Topic and key of each event: the input topic carrying its ``type`` (as the worker reads
    it: trimmed, lower case), keyed by the customer id in the worker's canonical form (trimmed,
    upper case), so that differently spelled ids of one customer share a partition."""

    def __init__(self, contracts: Contracts) -> None:
        self.topics: dict[Any, str | None] = {t.event_type: t.name for t in contracts.inputs}
        self.keys: dict[Any, bytes | None] = {}

    def topic(self, kind: Any) -> str | None:
        if not isinstance(kind, str):
            return None
        if kind not in self.topics:
            self.topics[kind] = self.topics.get(kind.strip().lower())
        return self.topics[kind]

    def key(self, customer_id: Any) -> bytes | None:
        if not isinstance(customer_id, str):
            return None
        if customer_id not in self.keys:
            self.keys[customer_id] = normalise_customer_id(customer_id).encode() or None
        return self.keys[customer_id]


def _json(doc: dict[str, Any]) -> bytes:
    """``doc`` as JSON, copied into bytes of its own size: the bytes orjson returns keep its
    whole write buffer (about 4 KB), which for 100k kept records is 400 MB."""
    return bytes(memoryview(orjson.dumps(doc)))


def order_events(events: Iterable[Row], router: Router, skipped: Issues, warnings: Issues) -> list[Out]:
    """Records sorted by event time, ties in file order. An event without a readable time
    takes the time of the event before it in the file, so it is published right after it."""
    out: list[Out] = []
    last = float("-inf")
    for line, doc, raw in events:
        topic = router.topic(doc.get("type"))
        if topic is None:
            skipped.add("unknown type", line, repr(doc.get("type"))[:60])
            continue
        when = event_time(doc.get("ts"))
        if when is None:
            warnings.add("unreadable time", line, repr(doc.get("ts"))[:60])
            when = last
        last = when
        key = router.key(doc.get("customer_id"))
        if key is None:
            warnings.add("no customer_id", line, repr(doc.get("customer_id"))[:60])
        out.append((when, topic, key, raw if raw is not None else _json(doc)))
    out.sort(key=itemgetter(0))
    return out
