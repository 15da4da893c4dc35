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

Which topic-partitions are idle is judged by wall-clock arrivals (``Arrivals``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


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


@dataclass
class Arrivals:
    """Wall-clock arrival of records, which says when an input topic-partition is quiet.

    A topic-partition is quiet once ``idle_after_s`` has passed since the later of its own last
    record and the moment its partition woke up; a partition wakes up when a record arrives
    after none of its inputs delivered one for ``idle_after_s`` (or ever). Times are seconds of
    any monotonic clock; ``started`` stands for arrivals before the first one.

    Why the wake-up: after a pause (a replay starting, the next chunk of live traffic) the
    consumer receives a partition's topics a few milliseconds apart, one fetch at a time, and
    its high watermark of a topic not fetched since the pause still says "nothing to read".
    Judged by its own last record alone, such a topic counts as idle from the first batch
    of the burst on, the other topics move the watermark past its first records (days past,
    in a replay), and those are then applied out of event-time order, after the session ends,
    abandoned carts and other timers they should have preceded. With the wake-up every input
    has ``idle_after_s`` from the start of a burst to deliver its part; steady traffic never
    wakes a partition again, so a quiet topic there stops holding it back as before.

    >>> a = Arrivals(idle_after_s=0.5, started=0.0)
    >>> a.arrived(["clicks:1"], 20.0)  # a replay starts long after the worker did
    >>> a.quiet("buys:1", 20.1), a.quiet("buys:1", 20.5), a.quiet("buys:0", 20.1)
    (False, True, True)
    >>> a.arrived(["clicks:1"], 20.3)  # steady traffic does not wake the partition again
    >>> a.quiet("buys:1", 20.6), a.quiet("clicks:1", 20.6)
    (True, False)
    """

    idle_after_s: float
    started: float
    last: dict[str, float] = field(default_factory=dict, init=False)
    woke: dict[int, float] = field(default_factory=dict, init=False)
    partition_last: dict[int, float] = field(default_factory=dict, init=False)

    def arrived(self, tps: Iterable[str], now: float) -> None:
        """Records of ``tps`` (``"topic:partition"`` keys) arrived at ``now``."""
        for tp in tps:
            p = partition_of(tp)
            if now - self.partition_last.get(p, float("-inf")) >= self.idle_after_s:
                self.woke[p] = now
            self.partition_last[p] = self.last[tp] = now

    def quiet(self, tp: str, now: float) -> bool:
        """No record of ``tp`` for ``idle_after_s``, nor since its partition last woke up."""
        since = max(self.last.get(tp, self.started), self.woke.get(partition_of(tp), self.started))
        return now - since >= self.idle_after_s
