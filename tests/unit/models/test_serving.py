"""Which churn candidate is served (``models.serving``), as the learner decides it from each
candidate's own score, and the class weight that follows the label rate (``models.online``)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace

import pytest

from streamproc.decisions import learning
from streamproc.decisions.rules import Population
from streamproc.features.vector import FEATURES, vector
from streamproc.models.online import WEIGHT_RANGE, ChurnModel, positive_weight
from streamproc.models.serving import MARGIN, MIN_LABELS, Serving, Window, auc_se, choose
from streamproc.models.training import LearnerState
from streamproc.records import Example
from streamproc.state.profile import apply_event, new_profile
from tests.builders import RULES, T0, at, click


def examples(n: int, seed: int, model_knows: bool) -> Iterator[Example]:
    """Churn follows ``visits_per_week`` (a model input) when ``model_knows``, else a hidden cause
    that only the recency baseline's score carries; the model's own score is given as served."""
    rng = random.Random(seed)
    for i in range(n):
        x = dict.fromkeys(FEATURES, 0.0) | {"days_since_last": 10.0, "visits_per_week": rng.uniform(0, 5)}
        hidden = rng.random()
        p = 1 - x["visits_per_week"] / 5 if model_knows else hidden
        y = float(rng.random() < p)
        t = at(i / 24).isoformat()
        yield Example(f"e{i}", "churn", f"c{i % 50}", t, t, x, y, None, None,
                      {"recency": hidden, "palive": 0.5}, served=None)


def learn_all(stream: Iterator[Example]) -> LearnerState:
    state = LearnerState()
    for ex in stream:
        state.learn(ex)
    return state


def test_recency_is_served_where_the_model_is_worse() -> None:
    state = learn_all(examples(1500, 0, model_knows=False))
    served = state.figures()["churn"]["served"]
    assert (state.serving.candidate, state.churn.served, served["candidate"]) == ("recency",) * 3
    aucs = served["rolling_aucs"]
    assert aucs["recency"] >= aucs["model"] + MARGIN
    assert served["since"] == 0 and served["window_labels"] == 1000  # served first, never replaced


def test_the_model_is_served_where_it_is_better() -> None:
    state = learn_all(examples(1500, 1, model_knows=True))
    aucs = state.figures()["churn"]["served"]["rolling_aucs"]
    assert state.churn.served == "model" and aucs["model"] > aucs["recency"] + MARGIN


def test_the_served_score_is_scored_as_served() -> None:
    """Examples that say recency was served count the recency score as the served one."""
    state = LearnerState()
    for ex in examples(600, 2, model_knows=False):
        state.learn(replace(ex, served="recency", score=0.5))
    churn = state.figures()["churn"]
    assert churn["served"]["auc"] == churn["baselines"]["recency"]["auc"] and churn["auc"] == 0.5
    assert "served" not in churn["baselines"] and "served" not in churn["rolling"]["baselines"]


def window(model: float, recency: float, labels: int = 1000, positives: int = 100) -> Window:
    return Window(labels, positives, {"model": model, "recency": recency, "palive": 0.5})


def test_no_flapping_around_equal_aucs() -> None:
    """AUCs that cross back and forth within the margin never move the choice; a clear lead does, once."""
    rng = random.Random(4)
    serving = Serving()
    for i in range(200):
        base = 0.7 + 0.05 * rng.random()
        serving = choose(serving, window(base + rng.uniform(-0.9, 0.9) * MARGIN, base), learned=i)
        assert serving.candidate == "recency"
    margin = auc_se(0.70, 100, 900)
    assert margin > MARGIN  # 100 churners of 1,000: the AUC's standard error is the margin
    serving = choose(serving, window(0.70 + 0.9 * margin, 0.70), learned=450)
    assert serving.candidate == "recency"
    serving = choose(serving, window(0.70 + margin + 0.001, 0.70), learned=500)
    assert (serving.candidate, serving.since) == ("model", 500)
    serving = choose(serving, window(0.70, 0.70 + MARGIN), learned=550)
    assert (serving.candidate, serving.since) == ("model", 500)


@pytest.mark.parametrize("labels, positives", [(MIN_LABELS - 1, 50), (1000, 5), (1000, 995)])
def test_too_few_labels_or_one_class_keep_the_choice(labels: int, positives: int) -> None:
    serving = choose(Serving(), window(0.9, 0.5, labels, positives), learned=labels)
    assert serving.candidate == "recency" and serving.reason.startswith("kept: fewer than")


def test_the_weight_follows_the_label_rate() -> None:
    rare, common, even = ChurnModel(), ChurnModel(), ChurnModel()
    x = dict.fromkeys(FEATURES, 0.0) | {"days_since_last": 5.0}
    for i in range(400):
        rare.learn(x, int(i % 20 == 0))  # 5 % churn
        common.learn(x, int(i % 5 != 0))  # 80 % churn
        even.learn(x, i % 2)
    assert rare.weight == pytest.approx(positive_weight(20, 380)) == pytest.approx(4.0, rel=0.15)
    assert common.weight == pytest.approx(0.5, rel=0.02) and even.weight == pytest.approx(1.0, rel=0.01)
    assert WEIGHT_RANGE[0] <= min(rare.weight, common.weight) <= max(rare.weight, common.weight) <= WEIGHT_RANGE[1]
    # calibrated whatever the weight: the mean prediction is near the observed rate
    assert (rare.predict(x), common.predict(x), even.predict(x)) == pytest.approx((0.05, 0.8, 0.5), abs=0.06)


def test_a_snapshot_keeps_the_models_own_score_when_a_baseline_is_served() -> None:
    p = apply_event(new_profile(click("e1", 0)), click("e1", 0), dedupe_window=10)
    model = ChurnModel()
    model.served, model.version = "recency", 7
    now = at(12)
    v = vector(p, now)
    scored = learning.score(p, v, now, Population(churn=model), RULES)
    base = learning.baselines(v, p, RULES.churn_label_after)
    (snap,) = scored.pending
    assert scored.churn is not None and scored.churn.source == "recency" and scored.churn.version == 7
    assert scored.churn.p == round(base["recency"], 4) != snap.score
    assert scored.churn.reasons == (("days_since_last", 12.0, "raises risk"),) and scored.churn.at == now
    assert snap.score == round(model.predict(v), 4) and snap.served == "recency" and snap.baselines == base
    assert snap.at == now > T0


def test_a_served_model_gives_way_when_recency_ranks_clearly_better() -> None:
    serving = choose(Serving("model"), window(0.70, 0.80), learned=300)
    assert (serving.candidate, serving.since) == ("recency", 300)
