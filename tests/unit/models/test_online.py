"""Churn labels maturing in event time, the online churn and satisfaction models, and their metrics.

The models learn synthetic customers whose churn depends on ``days_since_last`` and
``visits_per_week`` only, and whose satisfaction depends on the feedback's text sentiment
and their recent satisfaction; every other feature is noise.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone

import numpy as np
import pytest

from streamproc.features.vector import FEATURES
from streamproc.models.metrics import BINS, ChurnMetrics, Drift, SatisfactionMetrics
from streamproc.models.online import (
    CHURN_FEATURES,
    SATISFACTION_FEATURES,
    TEXT_SENTIMENT,
    ChurnModel,
    SatisfactionModel,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


# ----- synthetic customers --------------------------------------------------------------
def customer(rng: random.Random) -> dict[str, float]:
    """Every feature of ``FEATURES``: plausible ranges, independent of each other."""
    x = {f: rng.random() for f in FEATURES}
    x.update(days_since_last=math.exp(rng.gauss(1.8, 1.0)), visits_per_week=math.exp(rng.gauss(0.0, 0.9)),
             orders_per_month=math.exp(rng.gauss(0.0, 1.0)), T_days=rng.uniform(30, 700),
             avg_order_value=math.exp(rng.gauss(3.5, 0.6)), pages_per_visit=math.exp(rng.gauss(1.5, 0.5)),
             abandoned_carts=float(rng.randrange(4)), satisfaction_trend=rng.gauss(0, 0.1),
             sentiment=rng.uniform(-1, 1), feedbacks=float(rng.randrange(10)))
    x["days_since_purchase"] = x["days_since_last"] + rng.expovariate(1 / 20)
    return x


def churn_probability(x: dict[str, float], flipped: bool = False) -> float:
    z = 1.2 * (math.log1p(x["days_since_last"]) - 2.0) - 1.5 * (math.log1p(x["visits_per_week"]) - 0.8)
    return 1 / (1 + math.exp(z if flipped else -z))


def churn_stream(n: int, seed: int, flip_at: int | None = None) -> Iterator[tuple[dict[str, float], int, float]]:
    """(features, label, true P(churn)); from ``flip_at`` on the relation is reversed."""
    rng = random.Random(seed)
    for i in range(n):
        x = customer(rng)
        p = churn_probability(x, flipped=flip_at is not None and i >= flip_at)
        yield x, int(rng.random() < p), p


def satisfaction_stream(n: int, seed: int, noisy_from: int | None = None) -> Iterator[tuple[dict[str, float], float]]:
    """(features with text_sentiment, satisfaction); from ``noisy_from`` on ratings are less predictable.

    A shift in level, or even a reversed effect of the text, is relearned within about 100
    labels, too briefly for ADWIN to call it drift; noise that stays is not.
    """
    rng = random.Random(seed)
    for i in range(n):
        x = customer(rng)
        x[TEXT_SENTIMENT] = 0.0 if rng.random() < 0.3 else max(-1.0, min(1.0, rng.gauss(0.3, 0.5)))
        noise = 0.25 if noisy_from is not None and i >= noisy_from else 0.1
        y = 0.6 + 0.3 * x[TEXT_SENTIMENT] + 0.3 * (x["satisfaction_recent"] - 0.6) + rng.gauss(0, noise)
        yield x, min(1.0, max(0.0, y))


def recency_score(x: dict[str, float]) -> float:
    return x["days_since_last"] / (x["days_since_last"] + 30)


# ----- the models -----------------------------------------------------------------------
def test_model_inputs_are_documented_features() -> None:
    assert set(CHURN_FEATURES) <= set(FEATURES)
    assert set(SATISFACTION_FEATURES) <= set(FEATURES) | {TEXT_SENTIMENT}


@pytest.mark.parametrize("seed", [0, 1])
def test_churn_model_learns_prequentially_and_beats_recency(seed: int) -> None:
    model, metrics = ChurnModel(), ChurnMetrics(baselines=("recency", "truth"), window=2000)
    for x, y, p in churn_stream(4000, seed):
        metrics.update(y, model.predict(x), {"recency": recency_score(x), "truth": p})
        model.learn(x, y)
    last = metrics.snapshot()["rolling"]
    assert last["auc"] > last["baselines"]["truth"]["auc"] - 0.03
    assert last["auc"] > last["baselines"]["recency"]["auc"] + 0.02
    assert last["ece"] < 0.05 and model.learned == 4000


def test_reasons_name_the_features_that_matter() -> None:
    model = ChurnModel()
    for x, y, _ in churn_stream(3000, 2):
        model.learn(x, y)
    base = customer(random.Random(9))
    lapsed = base | {"days_since_last": 200.0, "visits_per_week": 0.05}
    active = base | {"days_since_last": 0.5, "visits_per_week": 6.0}
    assert {(r.feature, r.direction) for r in model.reasons(lapsed, k=2)} == {
        ("days_since_last", "raises risk"), ("visits_per_week", "raises risk")}
    assert {(r.feature, r.direction) for r in model.reasons(active, k=2)} == {
        ("days_since_last", "lowers risk"), ("visits_per_week", "lowers risk")}
    top = model.reasons(lapsed, k=3)
    assert [abs(r.contribution) for r in top] == sorted((abs(r.contribution) for r in top), reverse=True)
    assert top[0].value == lapsed[top[0].feature]


def test_contributions_add_up_to_the_log_odds() -> None:
    """The intercept is the same for everyone, so contributions explain every difference in log-odds."""
    model = ChurnModel()
    for x, y, _ in churn_stream(1000, 3):
        model.learn(x, y)
    a, b = (customer(random.Random(s)) for s in (10, 11))
    logit = [math.log(p / (1 - p)) for p in (model.predict(a), model.predict(b))]
    parts = [sum(r.contribution for r in model.reasons(x, k=len(CHURN_FEATURES))) for x in (a, b)]
    assert logit[0] - logit[1] == pytest.approx(parts[0] - parts[1], abs=1e-9)


def test_cold_models() -> None:
    """Before its first label the churn model ranks by recency alone, at modest odds; the
    satisfaction model answers 0.5."""
    rng = random.Random(0)
    people = [customer(rng) | {TEXT_SENTIMENT: 0.0} for _ in range(50)]
    cold = ChurnModel(horizon_days=30)
    assert sorted(people, key=cold.predict) == sorted(people, key=recency_score)
    lapsed = people[0] | {"days_since_last": 59.5}
    assert cold.predict(lapsed) == pytest.approx(2 / (2 + math.e))  # odds 2:e at two horizons, weight 1 before any label
    assert [(r.feature, r.direction) for r in cold.reasons(lapsed)] == [("days_since_last", "raises risk")]
    assert SatisfactionModel().predict(people[0]) == 0.5


def test_non_finite_features_are_refused() -> None:
    x = customer(random.Random(0)) | {"days_since_last": math.nan}
    with pytest.raises(ValueError):
        ChurnModel().predict(x)


@pytest.mark.parametrize("seed", [0, 1])
def test_satisfaction_model_beats_the_mean_baseline(seed: int) -> None:
    model, metrics = SatisfactionModel(), SatisfactionMetrics(window=2000)
    for x, y in satisfaction_stream(4000, seed):
        metrics.update(y, model.predict(x))
        model.learn(x, y)
    last = metrics.snapshot()["rolling"]
    assert last["mae"] < 0.75 * last["mean_baseline_mae"] and last["r2"] > 0.5
    extreme = customer(random.Random(5)) | {TEXT_SENTIMENT: 1.0, "satisfaction_recent": 1.0, "satisfaction": 1.0}
    assert 0.0 <= model.predict(extreme) <= 1.0
    assert model.predict(extreme) > model.predict(extreme | {TEXT_SENTIMENT: -1.0})


def test_models_round_trip_and_publish_versions() -> None:
    churn, satisfaction = ChurnModel(), SatisfactionModel()
    for (x, y, _), (xs, ys) in zip(churn_stream(500, 4), satisfaction_stream(500, 4)):
        churn.learn(x, y)
        satisfaction.learn(xs, ys)
    probe = [x for x, _ in satisfaction_stream(50, 5)]
    for model in (churn, satisfaction):
        copy = type(model).loads(model.publish())
        assert [copy.predict(x) for x in probe] == [model.predict(x) for x in probe]
        assert (copy.version, copy.learned) == (model.version, model.learned) == (1, 500)
    assert ChurnModel.loads(churn.dumps()).reasons(probe[0]) == churn.reasons(probe[0])


# ----- metrics --------------------------------------------------------------------------
def pairwise_auc(y: Sequence[int], s: Sequence[float]) -> float:
    pos = [v for v, t in zip(s, y) if t]
    neg = [v for v, t in zip(s, y) if not t]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auc_is_exact_up_to_the_bin_width(seed: int) -> None:
    rng = random.Random(seed)
    y = [int(rng.random() < 0.3) for _ in range(600)]
    s = [min(1.0, max(0.0, rng.gauss(0.4 + 0.2 * t, 0.2))) for t in y]
    metrics = ChurnMetrics(baselines=("same",))
    for t, v in zip(y, s):
        metrics.update(t, v, {"same": v})
    figures = metrics.snapshot()
    binned = [min(int(v * BINS), BINS - 1) for v in s]
    same_bin = sum(a == b for a, ta in zip(binned, y) if ta for b, tb in zip(binned, y) if not tb)
    assert figures["auc"] == pytest.approx(pairwise_auc(y, binned), abs=1e-12)  # exact on binned scores
    assert abs(figures["auc"] - pairwise_auc(y, s)) <= 0.5 * same_bin / (sum(y) * (len(y) - sum(y))) + 1e-12
    assert figures["baselines"]["same"]["auc"] == figures["auc"] == figures["rolling"]["auc"]


def test_calibration_deciles_add_up() -> None:
    rng = random.Random(1)
    rows = [(rng.random(), rng.random()) for _ in range(2000)]
    metrics = ChurnMetrics()
    for p, u in rows:
        metrics.update(int(u < p), p)
    figures = metrics.snapshot()
    deciles = figures["calibration"]
    assert len(deciles) == 10
    assert sum(d["count"] for d in deciles) == figures["labels"] == 2000
    assert sum(d["count"] * d["mean_predicted"] for d in deciles) == pytest.approx(sum(p for p, _ in rows))
    assert sum(d["count"] * d["observed"] for d in deciles) == pytest.approx(figures["positives"])
    assert [d["mean_predicted"] for d in deciles] == sorted(d["mean_predicted"] for d in deciles)
    assert all(190 <= d["count"] <= 210 for d in deciles)
    gap = sum(d["count"] * abs(d["mean_predicted"] - d["observed"]) for d in deciles) / 2000
    assert figures["ece"] == pytest.approx(gap) and figures["ece"] < 0.05  # scores are calibrated here
    log_loss = -sum(math.log(p if u < p else 1 - p) for p, u in rows) / 2000
    assert figures["log_loss"] == pytest.approx(log_loss)


def without_drift(figures: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in figures.items() if k not in ("drift", "rolling")}


def rounded(figures: object) -> object:
    """``figures`` with every float rounded to 9 places (sums in another order differ in the last bits)."""
    if isinstance(figures, dict):
        return {k: rounded(v) for k, v in figures.items()}
    if isinstance(figures, list):
        return [rounded(v) for v in figures]
    return round(figures, 9) if isinstance(figures, float) else figures


def test_rolling_figures_are_the_last_window() -> None:
    rng = random.Random(2)
    churn = [(int(rng.random() < 0.4), rng.random(), rng.random()) for _ in range(250)]
    satisfaction = [(rng.random(), rng.random()) for _ in range(250)]
    metrics, last = ChurnMetrics(("b",), window=100), ChurnMetrics(("b",), window=100)
    smetrics = SatisfactionMetrics(window=100)
    for i, (y, p, b) in enumerate(churn):
        metrics.update(y, p, {"b": b})
        if i >= 150:
            last.update(y, p, {"b": b})
    for actual, predicted in satisfaction:
        smetrics.update(actual, predicted)
    rolling = metrics.snapshot()["rolling"]
    assert rounded(rolling) == rounded(without_drift(last.snapshot()))
    assert rolling["labels"] == 100 and metrics.snapshot()["labels"] == 250
    actual, predicted = np.array(satisfaction[150:]).T
    srolling = smetrics.snapshot()["rolling"]
    error = actual - predicted
    assert srolling["mae"] == pytest.approx(np.abs(error).mean())
    assert srolling["rmse"] == pytest.approx(math.sqrt((error**2).mean()))
    assert srolling["r2"] == pytest.approx(1 - (error**2).sum() / ((actual - actual.mean()) ** 2).sum())


def test_mean_baseline_predicts_the_mean_before_each_label() -> None:
    metrics = SatisfactionMetrics()
    for y in (1.0, 0.0, 0.5):
        metrics.update(y, 0.5)
    # predicted 0.5 (no labels yet), then 1.0, then 0.5
    assert metrics.snapshot()["mean_baseline_mae"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)


def test_metrics_refuse_bad_scores_without_counting_them() -> None:
    metrics = ChurnMetrics(("recency",))
    with pytest.raises(ValueError):
        metrics.update(1, 0.5)  # the baseline is missing
    with pytest.raises(ValueError):
        metrics.update(1, 0.5, {"recency": 3.0})
    with pytest.raises(ValueError):
        SatisfactionMetrics().update(1.2, 0.5)
    assert metrics.snapshot()["labels"] == 0 and metrics.snapshot()["auc"] is None


def drifts_of_churn(seed: int, flip_at: int | None) -> list[Drift]:
    model, metrics, found = ChurnModel(), ChurnMetrics(), []
    for x, y, _ in churn_stream(4000, seed, flip_at):
        drift = metrics.update(y, model.predict(x))
        model.learn(x, y)
        found += [drift] if drift else []
    return found


def drifts_of_satisfaction(seed: int, noisy_from: int | None) -> list[Drift]:
    model, metrics, found = SatisfactionModel(), SatisfactionMetrics(), []
    for x, y in satisfaction_stream(4000, seed, noisy_from):
        drift = metrics.update(y, model.predict(x))
        model.learn(x, y)
        found += [drift] if drift else []
    return found


@pytest.mark.parametrize("seed", [0, 1])
def test_adwin_fires_after_a_concept_shift_only(seed: int) -> None:
    """Prequential learning on 4,000 labels; the learning curve's falling error raises no alarm.

    Churn's relation to its features reverses at label 2,000; satisfaction turns noisier there.
    """
    assert drifts_of_churn(seed, None) == [] and drifts_of_satisfaction(seed, None) == []
    churn, satisfaction = drifts_of_churn(seed, 2000), drifts_of_satisfaction(seed, 2000)
    for found, model in ((churn, "churn"), (satisfaction, "satisfaction")):
        first = found[0]
        assert first.model == model and 2000 < first.at_count < 2400 and first.mean_after > first.mean_before
    assert ChurnMetrics().snapshot()["drift"] == {"detections": 0, "last": None}


def test_metrics_round_trip() -> None:
    rng = random.Random(3)
    churn, satisfaction = ChurnMetrics(("recency",), window=50), SatisfactionMetrics(window=50)
    rows = [(int(rng.random() < 0.3), rng.random(), rng.random(), rng.random()) for _ in range(300)]
    for y, p, b, s in rows[:200]:
        churn.update(y, p, {"recency": b})
        satisfaction.update(s, p)
    churn_copy, satisfaction_copy = ChurnMetrics.loads(churn.dumps()), SatisfactionMetrics.loads(satisfaction.dumps())
    assert churn_copy.snapshot() == churn.snapshot() and satisfaction_copy.snapshot() == satisfaction.snapshot()
    for y, p, b, s in rows[200:]:
        assert churn_copy.update(y, p, {"recency": b}) == churn.update(y, p, {"recency": b})
        assert satisfaction_copy.update(s, p) == satisfaction.update(s, p)
    assert churn_copy.snapshot() == churn.snapshot() and satisfaction_copy.snapshot() == satisfaction.snapshot()
    assert json.loads(json.dumps(churn.snapshot())) == churn.snapshot()  # JSON-ready
    with pytest.raises(TypeError):
        ChurnMetrics.loads(satisfaction.dumps())
