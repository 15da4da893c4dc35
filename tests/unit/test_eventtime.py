"""Which inputs are idle, and so where the watermark stands, at the start of a burst of records.

Issue 10: a replay published its history while the worker had been waiting for a while. The
consumer's first fetch of partition 1 brought clickstream records covering several days;
purchases of the same partition came a fetch later. Purchases had been silent "for longer than
``idle_after_s``" (since the worker started) and the consumer's high watermark of it still
showed nothing to read, so it counted as idle, the clicks moved the watermark days ahead, and
the first purchase (offset 0) was applied after timers it should have preceded. These tests
replay that sequence with explicit wall-clock times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from streamproc.eventtime import Arrivals, observe, watermarks

INPUTS = ["clickstream", "purchases", "feedback"]


def at(day: int, hour: int = 0) -> float:
    return datetime(2026, 1, day, hour, tzinfo=timezone.utc).timestamp()


def idle(arrivals: Arrivals, now: float) -> Callable[[str], bool]:
    """Idle as the processor judges it when the consumer's high watermarks show nothing pending
    (as in the failure: the topic not fetched since the pause)."""
    return lambda tp: arrivals.quiet(tp, now)


def test_a_topic_silent_since_before_a_burst_holds_its_partition_back_until_it_had_time_to_deliver() -> None:
    arrivals, high = Arrivals(idle_after_s=0.5, started=0.0), {}
    arrivals.arrived(["clickstream:1"], 20.0)  # the replay begins 20 s after the worker started
    observe(high, "clickstream", 1, at(10))  # the first fetch: clicks up to day 10

    assert watermarks(high, INPUTS, [1], idle(arrivals, 20.01)) == {1: float("-inf")}  # nothing released yet

    arrivals.arrived(["purchases:1"], 20.05)  # the purchases of the same days, one fetch later
    observe(high, "purchases", 1, at(5, 1))
    assert watermarks(high, INPUTS, [1], idle(arrivals, 20.06)) == {1: float("-inf")}  # feedback may still come

    # feedback has nothing before day 10: half a second into the burst it stops holding back
    assert watermarks(high, INPUTS, [1], idle(arrivals, 20.5)) == {1: at(5, 1)}


def test_a_pause_between_chunks_of_live_traffic_wakes_the_partition_again() -> None:
    arrivals, high = Arrivals(idle_after_s=0.5, started=0.0), {}
    arrivals.arrived(["clickstream:0", "purchases:0", "feedback:0"], 1.0)
    for topic in INPUTS:
        observe(high, topic, 0, at(3))
    arrivals.arrived(["clickstream:0"], 5.0)  # the next chunk: clicks come first
    observe(high, "clickstream", 0, at(4))

    assert watermarks(high, INPUTS, [0], idle(arrivals, 5.1)) == {0: at(3)}  # not past what purchases may bring
    assert watermarks(high, INPUTS, [0], idle(arrivals, 5.5)) == {0: at(4)}


def test_steady_traffic_does_not_wake_a_partition_so_a_quiet_topic_stops_holding_it_back_as_before() -> None:
    arrivals, high = Arrivals(idle_after_s=0.5, started=0.0), {}
    for i in range(10):  # clicks every 0.2 s; purchases once, feedback never
        arrivals.arrived(["clickstream:2"] + (["purchases:2"] if i == 0 else []), 1.0 + 0.2 * i)
    observe(high, "clickstream", 2, at(8))
    observe(high, "purchases", 2, at(7))

    assert arrivals.woke == {2: 1.0}
    assert watermarks(high, INPUTS, [2], idle(arrivals, 2.9)) == {2: at(8)}


def test_other_partitions_and_the_first_arrival_ever() -> None:
    arrivals = Arrivals(idle_after_s=0.5, started=0.0)
    assert arrivals.quiet("purchases:3", 0.5) and not arrivals.quiet("purchases:3", 0.4)
    arrivals.arrived(["clickstream:3"], 9.0)
    assert not arrivals.quiet("purchases:3", 9.2) and arrivals.quiet("purchases:0", 9.2)
