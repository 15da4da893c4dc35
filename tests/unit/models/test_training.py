"""The learner's state (``models.training``): each example is learned once."""

from __future__ import annotations

import random

import orjson
import pytest

from streamproc.models.training import IncompatibleState, LearnerState
from streamproc.records import Example
from tests.builders import churn_example


def test_an_example_published_twice_is_learned_once() -> None:
    rng = random.Random(3)
    raws = [churn_example(i, rng) for i in range(50)]
    state = LearnerState(remember=20)
    for raw in raws[:30] + raws[25:30] + raws[30:]:  # five republished right after the originals
        state.learn(Example.from_record(orjson.loads(raw)))
    assert (state.churn.learned, state.duplicates) == (50, 5)




def test_a_state_naming_classes_of_another_version_is_incompatible_not_fatal() -> None:
    data = LearnerState().dumps().replace(b"streamproc.models.training", b"streamproc.models.trainxxx")
    with pytest.raises(IncompatibleState, match="another version"):
        LearnerState.loads(data)
