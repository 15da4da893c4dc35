"""Uplift: arms by first alert per customer and rule version, conversions in event time, Newcombe's interval."""

from __future__ import annotations

from datetime import timedelta

from streamproc.tools.uplift import Arm, arms, compare, report
from tests.builders import at


def alert(cid: str, day: float, held: bool, version: int = 1) -> dict:
    return {"rule": "r", "rule_version": version, "customer_id": cid, "ts": at(day).isoformat(), "held_out": held}


def test_first_alert_per_customer_and_version_and_a_purchase_inside_the_window() -> None:
    alerts = [alert("a", 1, False), alert("a", 5, False), alert("b", 1, True), alert("c", 1, False),
              alert("d", 29, False), alert("a", 2, False, version=2)]
    purchases = {"a": [at(0), at(3)], "b": [at(1.5)], "c": [at(9)], "d": [at(30)]}
    r = report(alerts, purchases, "r", timedelta(days=7), min_size=1)
    v1, v2 = r["versions"]
    assert (v1["treated"]["customers"], v1["treated"]["converted"]) == (2, 1)  # a bought on day 3; c too late
    assert (v1["held_out"]["customers"], v1["held_out"]["converted"]) == (1, 1)
    assert v1["too_recent"] == 1  # d: alert on day 29, purchases seen up to day 30
    assert v2["treated"] == {"customers": 1, "converted": 1, "rate": 1.0}  # version 2 counts a again, at day 2


def test_a_purchase_before_the_alert_does_not_count() -> None:
    treated, held, _ = arms({"a": (at(5), False)}, {"a": [at(4)], "z": [at(60)]}, timedelta(days=7), at(60))
    assert (treated, held) == (Arm(1, 0), Arm(0, 0))


def test_verdicts() -> None:
    assert compare(Arm(29, 10), Arm(100, 10)).verdict.startswith("not enough data")
    assert compare(Arm(200, 120), Arm(200, 60)).verdict.startswith("effect")
    assert compare(Arm(200, 60), Arm(200, 60)).verdict.startswith("no effect shown")
