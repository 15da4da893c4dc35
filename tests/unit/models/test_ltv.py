"""Tests of BTYD purchase-day features and the lifetime-value models.

The reference is the lifetimes library: summaries from ``summary_data_from_transaction_data``
and fits from ``BetaGeoFitter`` / ``GammaGammaFitter``, on purchases from the generator.
"""

from __future__ import annotations

import json
import random
import warnings
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd
import pytest

from streamproc.models.ltv import (
    MIN_CUSTOMERS,
    MIN_REPEAT_BUYERS,
    FitError,
    LtvParams,
    clv,
    expected_purchases,
    expected_spend,
    fit,
    p_alive,
)
from streamproc.sim.generator import GeneratorConfig, generate
from streamproc.state.purchases import PurchaseDays, RfmSummary, add_purchase, summarise, summary, utc_day


@contextmanager
def lifetimes_quiet() -> Iterator[None]:
    """Keep lifetimes' own warnings (a pandas 3 deprecation on import) and its global
    ``simplefilter`` calls inside this block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"lifetimes(\.|$)")
        yield


with lifetimes_quiet():
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

CONFIG = GeneratorConfig(customers=600, days=90, seed=5)
END = CONFIG.start + timedelta(days=70, hours=13)  # mid-day: later purchases that day still count
HORIZON = 30.0
Log = list[tuple[str, datetime, float]]


# ----- the generated log and both sides' summaries and fits ---------------------------
@pytest.fixture(scope="module")
def log() -> Log:
    return [(e["customer_id"], datetime.fromisoformat(e["ts"]), e["total"])
            for e in generate(CONFIG) if e["type"] == "purchase"]


@pytest.fixture(scope="module")
def streamed(log: Log) -> dict[str, PurchaseDays]:
    """State per customer after replaying the log, in event order, up to END's day."""
    states: dict[str, PurchaseDays] = defaultdict(PurchaseDays)
    for cid, ts, total in log:
        if utc_day(ts) <= utc_day(END):
            states[cid] = add_purchase(states[cid], ts, total)
    return dict(states)


@pytest.fixture(scope="module")
def ours(log: Log) -> dict[str, RfmSummary]:
    by_customer: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for cid, ts, total in log:
        by_customer[cid].append((ts, total))
    return {cid: s for cid, tx in by_customer.items() if (s := summarise(tx, END)) is not None}


@pytest.fixture(scope="module")
def reference(log: Log) -> pd.DataFrame:
    df = pd.DataFrame([(cid, ts.replace(tzinfo=None), total) for cid, ts, total in log],
                      columns=["customer_id", "ts", "total"])
    with lifetimes_quiet():
        return summary_data_from_transaction_data(df, "customer_id", "ts", monetary_value_col="total",
                                                  observation_period_end=END.replace(tzinfo=None), freq="D")


@pytest.fixture(scope="module")
def params(ours: dict[str, RfmSummary]) -> LtvParams:
    return fit(list(ours.values()), version=3, fitted_at=END)


@pytest.fixture(scope="module")
def fitted(reference: pd.DataFrame) -> tuple[BetaGeoFitter, GammaGammaFitter]:
    """lifetimes' own fits; its BG/NBD stops on precision loss at the default tol=1e-7 on this log."""
    repeat = reference[reference["frequency"] > 0]
    with lifetimes_quiet():
        bgf = BetaGeoFitter().fit(reference["frequency"], reference["recency"], reference["T"], tol=1e-6)
        ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    return bgf, ggf


def loaded(params: LtvParams) -> tuple[BetaGeoFitter, GammaGammaFitter]:
    """lifetimes fitters carrying ``params``, to compare prediction formulas alone."""
    bgf, ggf = BetaGeoFitter(), GammaGammaFitter()
    bgf.params_ = pd.Series({"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b})
    ggf.params_ = pd.Series({"p": params.p, "q": params.q, "v": params.v})
    return bgf, ggf


# ----- summaries ----------------------------------------------------------------------
def test_log_exercises_the_conventions(log: Log, ours: dict[str, RfmSummary]) -> None:
    repeat = sum(s.frequency > 0 for s in ours.values())
    assert 300 <= repeat < len(ours)
    assert any(utc_day(ts) == utc_day(END) and ts > END for _, ts, _ in log), "a purchase later on END's day"
    assert any(utc_day(ts) > utc_day(END) for _, ts, _ in log), "a purchase after END's day"


def test_summaries_match_lifetimes(ours: dict[str, RfmSummary], reference: pd.DataFrame) -> None:
    assert set(ours) == set(reference.index)
    for cid, row in reference.iterrows():
        s = ours[str(cid)]
        assert (s.frequency, s.recency, s.T) == (row["frequency"], row["recency"], row["T"]), cid
        assert s.monetary == pytest.approx(row["monetary_value"], abs=1e-6), cid


def test_streaming_fold_equals_batch(streamed: dict[str, PurchaseDays], ours: dict[str, RfmSummary]) -> None:
    assert {cid: summary(state, END) for cid, state in streamed.items()} == ours
    assert all(state.unresolved_days == 0 for state in streamed.values())


# ----- fits and predictions -----------------------------------------------------------
def test_parameters_match_lifetimes(params: LtvParams, ours: dict[str, RfmSummary],
                                    fitted: tuple[BetaGeoFitter, GammaGammaFitter]) -> None:
    bgf, ggf = fitted
    expected = {**bgf.params_.to_dict(), **ggf.params_.to_dict()}
    assert {k: getattr(params, k) for k in expected} == pytest.approx(expected, rel=1e-2)
    assert (params.version, params.fitted_at) == (3, "2026-03-16T13:00:00+00:00")
    assert (params.customers, params.repeat_buyers) == (len(ours), sum(s.frequency > 0 for s in ours.values()))


def predictions(params: LtvParams, ours: dict[str, RfmSummary]) -> dict[str, list[float]]:
    rows = list(ours.values())
    return {"alive": [p_alive(params, s) for s in rows],
            "purchases": [expected_purchases(params, s, HORIZON) for s in rows],
            "spend": [expected_spend(params, s) for s in rows]}


def lifetimes_predictions(bgf: BetaGeoFitter, ggf: GammaGammaFitter,
                          ours: dict[str, RfmSummary]) -> dict[str, list[float]]:
    df = pd.DataFrame(list(ours.values()))
    x, t, age, m = df["frequency"], df["recency"], df["T"], df["monetary"]
    with lifetimes_quiet():
        return {"alive": list(bgf.conditional_probability_alive(x, t, age)),
                "purchases": list(bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON, x, t, age)),
                "spend": list(ggf.conditional_expected_average_profit(x, m))}


def test_prediction_formulas_match_lifetimes(params: LtvParams, ours: dict[str, RfmSummary]) -> None:
    expected = lifetimes_predictions(*loaded(params), ours)
    for name, values in predictions(params, ours).items():
        assert values == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name


def test_predictions_match_lifetimes_fits(params: LtvParams, ours: dict[str, RfmSummary],
                                          fitted: tuple[BetaGeoFitter, GammaGammaFitter]) -> None:
    expected = lifetimes_predictions(*fitted, ours)
    for name, values in predictions(params, ours).items():
        assert values == pytest.approx(expected[name], rel=1e-4), name


@pytest.mark.parametrize(("x", "t", "age", "horizon"), [(200, 299.0, 300.0, 3650.0), (300, 350.0, 360.0, 10000.0)])
def test_expected_purchases_past_hyp2f1_overflow(params: LtvParams, x: int, t: float, age: float,
                                                 horizon: float) -> None:
    bgf, _ = loaded(params)
    with lifetimes_quiet():
        expected = float(bgf.conditional_expected_number_of_purchases_up_to_time(horizon, x, t, age))
    assert expected_purchases(params, RfmSummary(x, t, age, 10.0), horizon) == pytest.approx(expected, rel=1e-9)


def test_clv_is_purchases_times_spend(params: LtvParams) -> None:
    s = RfmSummary(4, 40.0, 60.0, 55.0)
    assert clv(params, s, HORIZON) == expected_purchases(params, s, HORIZON) * expected_spend(params, s)
    assert clv(params, s, 0.0) == 0.0
    with pytest.raises(ValueError, match="horizon_days must be >= 0"):
        expected_purchases(params, s, -1.0)


def test_new_customer_gets_population_mean_spend(params: LtvParams) -> None:
    once = RfmSummary(0, 0.0, 12.0, 0.0)
    assert p_alive(params, once) == 1.0
    assert expected_spend(params, once) == params.v * params.p / (params.q - 1)


# ----- fit errors and parameter storage -------------------------------------------------
def repeat_buyer(i: int) -> RfmSummary:
    return RfmSummary(1 + i % 5, 10.0 + i % 20, 40.0 + i % 30, 20.0 + i)


def test_too_few_customers(ours: dict[str, RfmSummary]) -> None:
    with pytest.raises(FitError, match=f"at least {MIN_CUSTOMERS} customers with a purchase, got 49"):
        fit([repeat_buyer(i) for i in range(MIN_CUSTOMERS - 1)], version=1, fitted_at=END)
    one_timers = [RfmSummary(0, 0.0, 30.0, 0.0)] * MIN_CUSTOMERS + [repeat_buyer(i) for i in range(19)]
    with pytest.raises(ValueError, match=f"at least {MIN_REPEAT_BUYERS} repeat buyers .* got 19"):
        fit(one_timers, version=1, fitted_at=END)


def test_no_convergence_is_a_fit_error() -> None:
    daily = [RfmSummary(n, float(n), float(n), 10.0) for n in range(1, 61)]  # bought every day: never drop out
    with pytest.raises(FitError, match="BG/NBD fit did not converge"):
        fit(daily, version=1, fitted_at=END)


def test_heavy_tailed_spend_is_a_fit_error(ours: dict[str, RfmSummary]) -> None:
    rng = random.Random(1)
    wild = [replace(s, monetary=10 ** rng.uniform(0, 6)) if s.frequency else s for s in ours.values()]
    with pytest.raises(FitError, match="Gamma-Gamma"):  # q <= 1, or no convergence: the optimiser decides which
        fit(wild, version=1, fitted_at=END)


def test_params_round_trip(params: LtvParams) -> None:
    data = params.to_dict()
    assert LtvParams.from_dict(json.loads(json.dumps(data))) == params
    assert LtvParams.from_dict({k: str(v) for k, v in data.items()}) == params  # a Redis hash gives strings
    with pytest.raises(ValueError, match="needs the fields alpha, version"):
        LtvParams.from_dict({k: v for k, v in data.items() if k not in ("alpha", "version")})
