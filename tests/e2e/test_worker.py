"""End to end on the real broker, Redis and a worker process: exact profiles and outputs.

The scenario is published in phases, each applied before the next, so that the population
ranks an alert reads are known. Phase 3 moves every partition's watermark to 1 April with
"clock" customers, so every inactivity transition up to then is decided. Only lifecycle
changes are compared exactly here; RFM, value and cluster changes are covered by
``test_lifecycle`` and ``test_replay_live``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import orjson
import redis
from aiokafka.partitioner import murmur2

from streamproc.contracts import Contracts
from streamproc.ops.produce import event_records, publish
from streamproc.records import output_id
from streamproc.settings import Settings
from tests.builders import click_record as click
from tests.builders import feedback_record as feedback
from tests.builders import purchase_record as purchase
from tests.live import consume, processed, wait_for

KEYS = Settings().pseudonymiser()


def cust(raw: str) -> str:
    return KEYS.customer(raw)


def ev(raw: str) -> str:
    return KEYS.key("event", raw)





def clock_customers(partitions: int) -> list[str]:
    """One customer id per partition (Kafka's default murmur2 partitioner)."""
    found: dict[int, str] = {}
    for i in range(1000):
        cid = f"K{i}"
        found.setdefault((murmur2(cid.encode()) & 0x7FFFFFFF) % partitions, cid)
        if len(found) == partitions:
            return [found[p] for p in range(partitions)]
    raise AssertionError("no key found for some partition")


PHASE0 = [
    click("a1", "A", "2026-01-01T10:00:00+00:00"),
    click("a2", "A", "2026-01-01T10:01:00+00:00", "add_to_cart"),
]
PHASE1 = [
    purchase("a3", "A", "2026-01-01T11:05:00+01:00", 50.0, 2, "EUR"),
    purchase("a4", "A", "2026-01-03T09:00:00Z", 200.0, 1, "USD"),
    purchase("b1", "B", "2026-01-02T08:00:00+00:00", 10.0, 1, "GBP", sku="SKU-2"),
    click("c1", "C", "2026-01-01T12:00:00+00:00"),
]
PHASE2 = [
    feedback("b3", "B", "2026-01-03T00:00:00+00:00", 5),
    feedback("b4", "B", "2026-01-04T00:00:00+00:00", 5),
    feedback("a5", "A", "2026-01-05T00:00:00+00:00", 1),
    feedback("b2", "B", "2026-01-06T00:00:00+00:00", 1),
    click("c2", "C", "2026-03-01T12:00:00+00:00", session="s2"),
]


def phase3(contracts: Contracts) -> list[dict[str, Any]]:
    ts = "2026-04-01T00:00:00+00:00"
    out = []
    for k in clock_customers(contracts.inputs[0].partitions):
        out += [click(f"{k}-c", k, ts), purchase(f"{k}-p", k, ts, 0.0, 1, "EUR"), feedback(f"{k}-f", k, ts, 5)]
    return out


def send(kafka_url: str, contracts: Contracts, events: list[dict[str, Any]]) -> None:
    asyncio.run(publish(kafka_url, event_records(contracts, events)))


def seg(cid: str, ts: str, old: str | None, new: str, reason: str, cause: str | None) -> tuple:
    return (cust(cid), datetime.fromisoformat(ts).isoformat(), "lifecycle", old, new, reason, cause and ev(cause))


def expected_segments(clocks: list[str]) -> set[tuple]:
    return {
        seg("A", "2026-01-01T10:00:00+00:00", None, "new", "first activity", "a1"),
        seg("A", "2026-01-03T09:00:00+00:00", "new", "active", "second purchase", "a4"),
        seg("A", "2026-01-05T00:00:00+00:00", "active", "at_risk", "satisfaction falling: latest score is 0.00", "a5"),
        seg("A", "2026-02-19T00:00:00+00:00", "at_risk", "churned", "no activity for 45 days", None),
        seg("B", "2026-01-02T08:00:00+00:00", None, "new", "first activity", "b1"),
        seg("B", "2026-01-06T00:00:00+00:00", "new", "at_risk", "satisfaction falling: latest score is 0.00", "b2"),
        seg("B", "2026-02-20T00:00:00+00:00", "at_risk", "churned", "no activity for 45 days", None),
        seg("C", "2026-01-01T12:00:00+00:00", None, "new", "first activity", "c1"),
        seg("C", "2026-01-22T12:00:00+00:00", "new", "at_risk", "no activity for 21 days", None),
        seg("C", "2026-02-15T12:00:00+00:00", "at_risk", "churned", "no activity for 45 days", None),
        seg("C", "2026-03-01T12:00:00+00:00", "churned", "reactivated", "active again after churned", "c2"),
        seg("C", "2026-03-22T12:00:00+00:00", "reactivated", "at_risk", "no activity for 21 days", None),
    } | {seg(k, "2026-04-01T00:00:00+00:00", None, "new", "first activity", None) for k in clocks}


EXPECTED_A = {
    "customer_id": cust("A"), "first_seen": "2026-01-01T10:00:00+00:00", "last_seen": "2026-01-05T00:00:00+00:00",
    "events": 5, "page_views": 1, "searches": 0, "cart_adds": 1, "checkouts": 0, "purchases": 2, "items_bought": 3,
    "spend": 284.0, "last_purchase": "2026-01-03T09:00:00+00:00", "feedbacks": 1, "ratings": 1, "rating_sum": 1,
    "last_rating": 1, "last_nps": None, "satisfaction_sum": 0.0, "satisfaction_count": 1, "last_satisfaction": 0.0,
    "stage": "churned", "stage_since": "2026-02-19T00:00:00+00:00", "stage_reason": "no activity for 45 days",
}


def test_profiles_segments_alerts_and_dead_letters(kafka_url, redis_url, worker_env, spawn_worker, contracts):
    env = {**worker_env, "STREAMPROC_MIN_POPULATION": "2", "STREAMPROC_TOP_SPEND_FRACTION": "0.5"}
    spawn_worker(env)
    send(kafka_url, contracts, PHASE0)
    wait_for(lambda: processed(redis_url) == len(PHASE0), 60, "phase 0")
    send(kafka_url, contracts, PHASE1)
    asyncio.run(publish(kafka_url, [("clickstream", b"X", b"{broken json")]))
    done = len(PHASE0) + len(PHASE1) + 1
    wait_for(lambda: processed(redis_url) == done, 30, "phase 1")
    send(kafka_url, contracts, PHASE2)
    wait_for(lambda: processed(redis_url) == done + len(PHASE2), 30, "phase 2")
    clocks = phase3(contracts)
    send(kafka_url, contracts, clocks)
    total = done + len(PHASE2) + len(clocks)
    wait_for(lambda: processed(redis_url) == total, 30, "phase 3")

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    profile_a = orjson.loads(r.get(f"sp:profile:{{{cust('A')}}}"))
    assert sorted(profile_a["seen"]) == sorted(ev(e) for e in ("a1", "a2", "a3", "a4", "a5"))
    assert {k: profile_a[k] for k in EXPECTED_A} == EXPECTED_A
    assert orjson.loads(r.get(f"sp:profile:{{{cust('B')}}}"))["spend"] == 11.7
    assert orjson.loads(r.get(f"sp:profile:{{{cust('C')}}}"))["stage"] == "at_risk"

    segments = [s for s in consume(kafka_url, "segments") if s["dimension"] == "lifecycle"]
    got = {(s["customer_id"], s["ts"], s["dimension"], s["old"], s["new"], s["reason"], s["cause_event_id"])
           for s in segments}
    clock_raw = sorted({e["customer_id"] for e in clocks})
    clock_ids = {cust(k) for k in clock_raw}
    exp = expected_segments(clock_raw)
    got_clock_causes = {s["cause_event_id"] for s in segments if s["customer_id"] in clock_ids}
    got = {g if g[0] not in clock_ids else g[:6] + (None,) for g in got}
    assert got == exp
    assert len(segments) == len(exp)
    assert got_clock_causes <= {ev(e["event_id"]) for e in clocks}
    for s in segments:
        assert s["event_id"] == output_id("segment", s["customer_id"], "lifecycle", s["new"], s["ts"])

    alerts = {a["rule"]: a for a in consume(kafka_url, "alerts")}
    assert sorted((a["customer_id"], a["rule"], a["ts"], a["severity"], a["cause_event_id"]) for a in alerts.values()) == sorted([
        (cust("A"), "top_customer_at_risk", "2026-01-05T00:00:00+00:00", "warning", ev("a5")),
        (cust("A"), "unhappy_top_customer", "2026-01-05T00:00:00+00:00", "critical", ev("a5")),
        (cust("A"), "valuable_customer_churn_risk", "2026-02-09T00:00:00+00:00", "warning", None),
        (cust("B"), "falling_satisfaction", "2026-01-06T00:00:00+00:00", "warning", ev("b2")),
    ])
    for a in alerts.values():
        assert (a["schema_version"], a["rule_version"], a["ruleset_version"]) == (2, 1, 0) and a["ruleset_digest"]
        assert a["event_id"] == output_id("alert", a["customer_id"], a["rule"], a["ts"])
    facts = {r: [(f["attr"], f["op"], f["value"], f["saw"]) for f in a["facts"]] for r, a in alerts.items()}
    assert facts["unhappy_top_customer"] == [("event.rating", "<=", 2, 1), ("top_spender", "==", True, True)]
    churn = alerts["valuable_customer_churn_risk"]
    assert facts["valuable_customer_churn_risk"] == [("top_spender", "==", True, True), ("churn_risk", ">=", 0.5, 0.5385),
                                                     ("stage", "!=", "churned", "at_risk")]
    assert churn["reasons"] == [{"feature": "days_since_last", "contribution": 35.0, "direction": "raises risk"}]
    assert churn["models"] == {"churn": 0, "churn_source": "recency"}  # no model version yet: the recency rule
    assert churn["deliver_at"] == "2026-02-09T08:00:00+00:00"  # held through the quiet hours (21:00-08:00 UTC)
    # the recommended action: A bought SKU-1, which no basket pairs with anything, so the most popular
    # item A has not bought (B's SKU-2) is offered
    assert churn["offers"] == [{"item": "SKU-2", "score": 0.0, "reason": "popular now", "source": "popularity"}]
    assert facts["falling_satisfaction"] == [("feedbacks", ">=", 3, 3), ("satisfaction_trend", "<=", -0.25, -1.0)]
    assert alerts["falling_satisfaction"]["deliver_at"] == "2026-01-06T08:00:00+00:00"

    dead = consume(kafka_url, "dead-letter")
    assert [(d["reason"], d["source_topic"], d["original"], d["original_encoding"]) for d in dead] == [
        ("malformed_json", "clickstream", "{broken json", "utf-8")]
    assert r.hget("sp:stats", "dlq:clickstream:malformed_json") == "1"
    assert r.hgetall("sp:segments:lifecycle") == {"new": str(len(clock_ids)), "active": "0", "at_risk": "1",
                                                  "churned": "2", "reactivated": "0"}
