"""Event time: per-partition watermarks over several co-partitioned input topics.

In: the highest event time seen on each input topic-partition (``"topic:partition"`` ->
epoch seconds) and which of them have nothing left to read. Out: the watermark of each
partition number, the event time up to which every event of that partition has arrived:
the *lowest* high mark of its busy input topics. Taking the lowest means a fast topic
(say clickstream) cannot push a partition past events still queued on a slower one (say
purchases). Events wait in a buffer until the watermark passes them and are then applied
in event-time order, and timers (inactivity, session ends) fire as it passes them, so the
order of application does not depend on how topics were interleaved when consumed.

An event older than the high mark of its own topic-partition by more than the allowed
lateness is late (``is_late``) and dead-lettered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping


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


def watermarks(high: Mapping[str, float], inputs: Iterable[str], partitions: Iterable[int],
               idle: Callable[[str], bool], hold_s: float = 0.0) -> dict[int, float]:
    """Watermark per partition number: the lowest high mark of its input topics, less ``hold_s``.

    A topic-partition that ``idle`` says has nothing left to read is left out, so a quiet
    topic (say feedback) does not hold the others back; one that is not idle but has never
    carried a record holds the partition at minus infinity (its first records may be the
    oldest). When every input of a partition is idle, nothing can still arrive before what
    is held, and the watermark is the newest high mark.

    >>> busy = lambda tp: False
    >>> watermarks({"clicks:0": 100.0, "buys:0": 40.0, "clicks:1": 70.0, "buys:1": 80.0}, ["clicks", "buys"], [0, 1], busy)
    {0: 40.0, 1: 70.0}
    >>> watermarks({"clicks:0": 100.0, "buys:0": 40.0}, ["clicks", "buys"], [0], lambda tp: tp == "buys:0", 10)
    {0: 90.0}
    >>> watermarks({"clicks:0": 100.0}, ["clicks", "buys"], [0], busy)
    {0: -inf}
    """
    names = list(inputs)
    out: dict[int, float] = {}
    for p in partitions:
        keys = [tp_key(t, p) for t in names]
        active = [k for k in keys if not idle(k)]
        if not active:
            seen = [high[k] for k in keys if k in high]
            out[p] = max(seen) if seen else float("-inf")
        else:
            out[p] = min(high.get(k, float("-inf")) for k in active) - hold_s
    return out


def is_late(high: Mapping[str, float], topic: str, partition: int, ts: float, lateness_s: float) -> bool:
    """True when ``ts`` is older than its topic-partition's high mark by more than the lateness.

    Judged against the records before it on the same topic-partition (in offset order), so
    the verdict does not depend on how records were batched or on other topics.

    >>> is_late({"clicks:0": 1000.0}, "clicks", 0, 600.0, 300), is_late({"clicks:0": 1000.0}, "clicks", 0, 800.0, 300)
    (True, False)
    """
    return ts < high.get(tp_key(topic, partition), float("-inf")) - lateness_s
