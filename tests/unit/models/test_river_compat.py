"""The River internals ``models.river_compat`` relies on are still there and behave as it assumes.

A failure here after an upgrade names the River version installed and what changed: adapt
``streamproc/models/river_compat.py`` (and nothing else) before raising the pin in pyproject.toml.
"""

from __future__ import annotations

import math
import pickle

import pytest
import river
from river import linear_model

from streamproc.models.river_compat import LinearModel, set_weight


def broke(what: str) -> str:
    return f"river {river.__version__}: {what}; streamproc/models/river_compat.py relies on it"


MODELS = [linear_model.LinearRegression, linear_model.LogisticRegression]


@pytest.mark.parametrize("kind", MODELS)
def test_the_weights_live_in_an_assignable_private_store(kind: type[LinearModel]) -> None:
    model = kind()
    assert hasattr(model, "_weights"), broke(f"{kind.__name__} keeps no _weights")
    set_weight(model, "prior", 1.0)
    assert model.weights == {"prior": 1.0}, broke(f"{kind.__name__}.weights does not report a weight set in _weights")


def test_a_set_weight_is_what_a_logistic_model_predicts_with() -> None:
    model = linear_model.LogisticRegression(intercept_init=-1.0)
    set_weight(model, "prior", 1.0)
    p = model.predict_proba_one({"prior": 2.0})[True]
    assert p == pytest.approx(1 / (1 + math.exp(-1.0))), broke("predict_proba_one ignores the weight set in _weights")


def test_a_set_weight_is_what_a_linear_model_learns_from() -> None:
    model = linear_model.LinearRegression(intercept_init=0.0, intercept_lr=0.0)
    set_weight(model, "x", 1.0)
    assert model.predict_one({"x": 3.0}) == pytest.approx(3.0), broke("predict_one ignores the weight set in _weights")
    model.learn_one({"x": 1.0}, 3.0)
    assert model.weights["x"] > 1.0, broke("learn_one does not start from the weight set in _weights")


@pytest.mark.parametrize("kind", MODELS)
def test_a_set_weight_survives_a_snapshot(kind: type[LinearModel]) -> None:
    model = kind()
    set_weight(model, "prior", 1.0)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.weights == {"prior": 1.0}, broke(f"a pickled {kind.__name__} loses the weight set in _weights")
