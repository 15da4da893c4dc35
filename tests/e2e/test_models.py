"""Online models end to end on a real broker, Redis and worker processes.

* A worker SIGKILLed twice while it learns: at the end every distinct training example on
  the topic has been learned exactly once (the learner's count equals the distinct ids).
* Two workers: one owns the training partition and learns; both score with the versions it
  publishes, reloading each new one (their logs show several versions loaded).
"""

from __future__ import annotations

import asyncio
import re
import signal
import statistics
from pathlib import Path
from typing import Any

import orjson
import redis

from streamproc.contracts import Contracts
from streamproc.decisions.learning import churn_as_of
from streamproc.ops.produce import event_records, publish
from streamproc.ops.stats import StatsReader
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.sim.generator import GeneratorConfig, generate
from tests.builders import SETTINGS
from tests.live import consume, processed, report, wait_for

CONFIG = GeneratorConfig(customers=60, days=75, seed=29)
FAST_MODELS = {"STREAMPROC_MODEL_PUBLISH_EXAMPLES": "40", "STREAMPROC_MODEL_PUBLISH_S": "1"}


def learned(redis_url: str) -> tuple[int, int]:
    """(examples learned, offset of the last one) from the learner's published figures and state."""
    r = redis.Redis.from_url(redis_url)
    figures = r.hget(RedisKeys().online_models, "figures")
    offset = r.hget(RedisKeys().learner, "offset")
    if not figures:
        return 0, int(offset or -1)
    f = orjson.loads(figures)
    return f["churn"]["learned"] + f["satisfaction"]["learned"], int(offset or -1)


def published(redis_url: str) -> int:
    """The newest online-models version the learner published."""
    return int(redis.Redis.from_url(redis_url).hget(RedisKeys().online_models, "version") or 0)


def training(kafka_url: str) -> list[dict[str, Any]]:
    return consume(kafka_url, "training-examples")


def test_no_example_is_learned_twice_across_worker_sigkills(kafka_url: str, redis_url: str, contracts: Contracts,
                                                             worker_env: dict[str, str], spawn_worker: Any) -> None:
    events = list(generate(CONFIG))
    env = {**worker_env, **FAST_MODELS}
    asyncio.run(publish(kafka_url, event_records(contracts, events)))
    worker = spawn_worker(env)
    for share in (0.3, 0.6):
        wait_for(lambda s=share: processed(redis_url) >= len(events) * s, 240, f"{share:.0%} of the events")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        worker = spawn_worker(env, f"worker-after-kill-{share}")
    wait_for(lambda: processed(redis_url) == len(events), 240, "every event")
    records = training(kafka_url)
    distinct = {r["event_id"] for r in records}
    assert len(distinct) > 500
    wait_for(lambda: learned(redis_url)[1] == len(records) - 1, 60, "the learner to reach the end of the topic")
    wait_for(lambda: learned(redis_url)[0] == len(distinct), 30,
             f"learned == {len(distinct)} distinct examples ({len(records)} records), got {learned(redis_url)}")
    r = redis.Redis.from_url(redis_url)
    figures = orjson.loads(r.hget(RedisKeys().online_models, "figures"))
    assert figures["churn"]["labels"] == sum(1 for e in {x["event_id"]: x for x in records}.values()
                                             if e["model"] == "churn")


def test_two_workers_score_with_each_published_version(kafka_url: str, redis_url: str, contracts: Contracts,
                                                       worker_env: dict[str, str], spawn_worker: Any,
                                                       tmp_path: Path) -> None:
    events = list(generate(CONFIG))
    env = {**worker_env, **FAST_MODELS}
    spawn_worker(env, "w1")
    spawn_worker(env, "w2")
    half = len(events) // 2  # the second half arrives once versions were published, so both workers score with them
    asyncio.run(publish(kafka_url, event_records(contracts, events[:half])))
    wait_for(lambda: processed(redis_url) == half, 300, "the first half")
    wait_for(lambda: published(redis_url) >= 2, 120, "two published versions")
    asyncio.run(publish(kafka_url, event_records(contracts, events[half:])))
    wait_for(lambda: processed(redis_url) == len(events), 300, "every event")
    version = published(redis_url)
    assert version >= 3
    loaded = {}
    for name in ("w1", "w2"):
        log = (tmp_path / f"{name}.log").read_text()
        loaded[name] = {int(v) for v in re.findall(r"online models version (\d+) loaded", log)}
    assert all(len(v) >= 2 for v in loaded.values()), loaded  # each worker reloaded as versions came
    learners = [n for n in ("w1", "w2") if "online models version 1 published" in (tmp_path / f"{n}.log").read_text()]
    assert len(learners) == 1  # one learner
    # the scores served over the stream came from several published versions: the training examples
    # carry the version that scored their snapshot (the stored profiles only their last rescoring's,
    # which can all be the last version when the final batches rescore everyone)
    versions = {r["model_version"] for r in training(kafka_url) if r.get("model_version")}
    assert len(versions) >= 2 and max(versions) <= version
    stored_ages, read_ages = scores_at_the_end(redis_url)
    assert read_ages and set(read_ages) == {0.0}  # every customer's score as read is as of the newest event time
    report(f"churn score ages at the end ({len(read_ages)} customers): stored at the last rescoring "
           f"median {statistics.median(stored_ages):.1f} days, max {max(stored_ages):.1f}; read: all 0 days")


def scores_at_the_end(redis_url: str) -> tuple[list[float], list[float]]:
    """Days between the newest event time and each customer's churn score: as stored at its last
    rescoring, and as a read now serves it (``churn_as_of``), with the current model version."""
    reader = StatsReader(redis_url)
    now, models = reader.event_time(), reader.models()
    assert now is not None and models.churn is not None
    stored, read = [], []
    for p in reader.all_profiles().values():
        current = churn_as_of(p, now, models, SETTINGS.rules())
        assert current is not None and current.version == models.churn.version
        read.append((now - current.at).total_seconds() / 86400)
        if p.churn is not None:
            stored.append((now - p.churn.at).total_seconds() / 86400)
    return stored, read
