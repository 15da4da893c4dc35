"""Event time: per-partition watermarks over several co-partitioned input topics.

In: the highest event time seen on each input topic-partition (``"topic:partition"`` ->
epoch seconds). Out: the watermark of each partition number: the *lowest* of its input
topics' highest event times, less the allowed lateness. Taking the lowest means a fast
topic (say clickstream) cannot push a partition past events still queued on a slower one
(say feedback); an input topic that has never carried a record on a partition is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def tp_key(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def partition_of(key: str) -> int:
    """The partition number of a ``"topic:partition"`` key."""
    return int(key.rpartition(":")[2])


def observe(high: dict[str, float], topic: str, partition: int, ts: float) -> None:
    """Raise the high mark of ``topic:partition`` to ``ts`` if it is newer (in place)."""
    key = tp_key(topic, partition)
    if ts > high.get(key, float("-inf")):
        high[key] = ts


def advance(high: Mapping[str, float], seen: Iterable[tuple[str, int, float]]) -> dict[str, float]:
    """High marks after records ``(topic, partition, ts)``; marks only move forward."""
    out = dict(high)
    for topic, partition, ts in seen:
        observe(out, topic, partition, ts)
    return out


def watermarks(high: Mapping[str, float], inputs: Iterable[str], lateness_s: float) -> dict[int, float]:
    """Watermark per partition number: min over input topics of their high mark, minus lateness.

    >>> watermarks({"clicks:0": 100.0, "buys:0": 40.0, "clicks:1": 70.0}, ["clicks", "buys"], 10)
    {0: 30.0, 1: 60.0}
    """
    names = set(inputs)
    lowest: dict[int, float] = {}
    for key, ts in high.items():
        if key.rpartition(":")[0] in names:
            p = partition_of(key)
            lowest[p] = min(lowest.get(p, ts), ts)
    return {p: ts - lateness_s for p, ts in lowest.items()}


def is_late(high: Mapping[str, float], topic: str, partition: int, ts: float, lateness_s: float) -> bool:
    """True when ``ts`` is older than its topic-partition's high mark by more than the lateness.

    Judged against the records before it on the same topic-partition (in offset order), so
    the verdict does not depend on how records were batched or on other topics.

    >>> is_late({"clicks:0": 1000.0}, "clicks", 0, 600.0, 300), is_late({"clicks:0": 1000.0}, "clicks", 0, 800.0, 300)
    (True, False)
    """
    return ts < high.get(tp_key(topic, partition), float("-inf")) - lateness_s
