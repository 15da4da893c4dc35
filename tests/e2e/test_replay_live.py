"""Replay equals live: the same history streamed live in chunks and replayed from a file in one
go, each into a fresh broker and Redis, ends with the same profiles and the same lifecycle
changes and abandoned-cart alerts, ids included.

Live: the generator's events are published in chunks of a few hundred as they happen, each
applied (and the topics gone idle) before the next, so watermarks advance in steps. Replay:
``streamproc replay`` publishes the whole file at once, so topics are consumed in whatever
interleaving the consumer picks. Everything per customer must match; the population-relative
fields (RFM scores, value, cluster) and the online models' scores depend on when population
bounds, fits and model versions were read, and are left out (see the README, "Event time and
replay"); so are the offers an alert carries, read from item counters that every partition adds
to at its own pace. The item popularity at the end, summed in other batches, matches to rounding.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import redis

from streamproc.contracts import Contracts
from streamproc.ops.produce import event_records, publish
from streamproc.runtime.admin import create_topics
from streamproc.sim.generator import GeneratorConfig, generate
from streamproc.tools.replay import write_native_csv
from streamproc.tools.stack import start_broker, stop_process
from tests.live import consume, processed, wait_for

CONFIG = GeneratorConfig(customers=40, days=40, seed=13)
CHUNK = 600
EVENT_TIME_RULES = ("cart_abandoned",)
"""The default rule whose condition reads only the customer's own events; the others read the top
spenders' threshold or the churn score."""
POPULATION_RELATIVE = ("rfm", "value", "cluster", "cluster_name", "churn", "predicted_satisfaction", "unrated_feedback")


def per_customer(doc: dict[str, Any]) -> dict[str, Any]:
    """The profile without what depends on the population or the model versions: the memberships
    and scores above, in each pending churn snapshot the model's score, the candidate served
    (chosen by the learner, so by the version a worker had loaded) and the P(alive) baseline; of
    the trigger rules' memory and the history, only what the rules that read no population or
    model decided (``EVENT_TIME_RULES``; the others fire by where the population stood when the
    batch ran, as the RFM segment is placed), without the offers of alerts held for quiet hours."""
    out = {k: v for k, v in doc.items() if k not in POPULATION_RELATIVE}
    t = doc["triggers"]
    out["triggers"] = {"inside": [r for r in t["inside"] if r in EVENT_TIME_RULES],
                       "last": {r: at for r, at in t["last"].items() if r in EVENT_TIME_RULES},
                       "held": [{k: v for k, v in a.items() if k != "offers"} for a in t["held"]
                                if a["rule"] in EVENT_TIME_RULES]}
    out["history"] = [m for m in doc["history"] if m["kind"] == "stage" or m["what"] in EVENT_TIME_RULES]
    out["pending"] = [{k: v for k, v in s.items() if k not in ("score", "served")}
                      | {"baselines": {"recency": s["baselines"]["recency"]}} for s in doc["pending"]]
    return out


def profiles(redis_url: str) -> dict[str, dict[str, Any]]:
    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(match="sp:profile:*", count=1000))
    docs = [orjson.loads(d) for d in r.mget(keys)]
    return {d["customer_id"]: per_customer(d) for d in docs}


def outputs(kafka_url: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    lifecycle = {s["event_id"]: s for s in consume(kafka_url, "segments") if s["dimension"] == "lifecycle"}
    carts = {a["event_id"]: {k: v for k, v in a.items() if k != "offers"}
             for a in consume(kafka_url, "alerts") if a["rule"] == "cart_abandoned"}
    return lifecycle, carts


def popularity(redis_url: str) -> dict[str, float]:
    return {m.decode(): s for m, s in redis.Redis.from_url(redis_url).zrange("sp:items:pop", 0, -1, withscores=True)}


def run_live(events: list[dict[str, Any]], kafka_url: str, redis_url: str, contracts: Contracts) -> None:
    for i in range(0, len(events), CHUNK):
        chunk = events[i:i + CHUNK]
        asyncio.run(publish(kafka_url, event_records(contracts, chunk)))
        wait_for(lambda n=i + len(chunk): processed(redis_url) == n, 60, f"live chunk ending at {i + len(chunk)}")


def run_replay(events: list[dict[str, Any]], kafka_url: str, contracts: Contracts, tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    with history.open("wb") as f:
        write_native_csv(events, f, contracts)
    env = {**os.environ, "STREAMPROC_KAFKA_URL": kafka_url}
    done = subprocess.run([sys.executable, "-m", "streamproc", "replay", str(history), "--json"], env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert orjson.loads(done.stdout.splitlines()[-1])["published"] == len(events)


def test_replay_of_a_history_file_equals_living_through_it(tmp_path: Path, contracts: Contracts, redis_url: str,
                                                           worker_env: dict[str, str], spawn_worker: Any) -> None:
    events = list(generate(CONFIG))
    live_kafka = worker_env["STREAMPROC_KAFKA_URL"]
    worker = spawn_worker(worker_env, "live")
    run_live(events, live_kafka, redis_url, contracts)
    live_profiles, (live_lifecycle, live_carts) = profiles(redis_url), outputs(live_kafka)
    live_items = popularity(redis_url)
    stop_process(worker)

    redis.Redis.from_url(redis_url).flushall()
    proc, replay_kafka = start_broker(tmp_path / "replay-broker")
    try:
        asyncio.run(create_topics(replay_kafka, contracts))
        spawn_worker({**worker_env, "STREAMPROC_KAFKA_URL": replay_kafka}, "replay")
        run_replay(events, replay_kafka, contracts, tmp_path)
        wait_for(lambda: processed(redis_url) == len(events), 120, "the replayed history")
        replay_profiles, (replay_lifecycle, replay_carts) = profiles(redis_url), outputs(replay_kafka)
        replay_items = popularity(redis_url)
    finally:
        stop_process(proc)

    assert len(live_profiles) == len({e["customer_id"] for e in events})
    differing = [c for c in live_profiles if live_profiles[c] != replay_profiles.get(c)]
    assert differing == [], [(k, v, replay_profiles[differing[0]].get(k))
                             for k, v in live_profiles[differing[0]].items() if replay_profiles[differing[0]].get(k) != v]
    assert replay_profiles.keys() == live_profiles.keys()
    assert replay_lifecycle == live_lifecycle and len(live_lifecycle) > len(live_profiles)
    assert replay_carts == live_carts and live_carts
    assert live_items.keys() == replay_items.keys() and live_items
    assert all(math.isclose(live_items[i], replay_items[i], rel_tol=1e-9) for i in live_items)
