"""Lifetime-value models over BTYD summaries: BG/NBD for purchase days, Gamma-Gamma for spend.

In:  the ``RfmSummary`` of many customers (``streamproc.state.purchases``) to ``fit``; one
     customer's summary (and a horizon in days) to the prediction helpers.
Out: ``LtvParams``, both models' parameters (JSON-ready through ``to_dict``), and plain
     floats per customer: ``p_alive``, ``expected_purchases``, ``expected_spend``, ``clv``.

The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way") has
parameters ``r, alpha`` (purchase rate) and ``a, b`` (drop-out); the Gamma-Gamma model
(Fader, Hardie & Lee 2005, "RFM and CLV") has ``p, q, v`` (mean spend per purchase day).
Both are fitted by maximum likelihood with the objective of lifetimes' ``BetaGeoFitter``
and ``GammaGammaFitter`` without penalizer: the mean negative log-likelihood, minimised by
BFGS over log-parameters starting at 0.1, until the largest gradient component is below
``TOLERANCE``; for BG/NBD time is scaled so that the oldest customer has T = 1, and
customers with the same (frequency, recency, T) are one weighted row. Gradients are
analytic. Near the optimum the mean log-likelihood can run out of float precision before
``TOLERANCE`` is met (BFGS then reports "precision loss", where lifetimes gives up); such a
fit is accepted when its largest gradient component is below ``ACCEPTED_GRADIENT``.

Counts are of purchase days and spend is per purchase day (the summaries' monetary), so
``clv`` is simply expected purchases times expected spend.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1

from streamproc.errors import StreamprocError
from streamproc.state.purchases import RfmSummary

MIN_CUSTOMERS = 50
"""Fewer summaries than this are not enough to fit the four BG/NBD parameters."""
MIN_REPEAT_BUYERS = 20
"""Fewer repeat buyers (frequency > 0, monetary > 0) are too few for the three Gamma-Gamma parameters."""
TOLERANCE = 1e-7
"""Gradient tolerance (largest component) of both fits, lifetimes' default."""
ACCEPTED_GRADIENT = 1e-5
"""A fit that stops on float precision loss before ``TOLERANCE`` still counts below this."""

Array = NDArray[np.float64]
_START = 0.1
_PRECISION_LOSS = 2  # scipy's BFGS status when the line search cannot improve in floating point


class FitError(StreamprocError, ValueError):
    """The models cannot be fitted: too little data, no convergence, or an unusable fit."""


@dataclass(frozen=True, slots=True)
class LtvParams:
    """Fitted BG/NBD (``r, alpha, a, b``; alpha in days) and Gamma-Gamma (``p, q, v``) parameters.

    ``fitted_at`` is the event time of the fit (ISO-8601), ``customers`` the number of
    summaries behind BG/NBD and ``repeat_buyers`` the number behind Gamma-Gamma.
    """

    r: float
    alpha: float
    a: float
    b: float
    p: float
    q: float
    v: float
    version: int
    fitted_at: str
    customers: int
    repeat_buyers: int

    def to_dict(self) -> dict[str, float | int | str]:
        """Plain JSON-ready fields.

        >>> import json
        >>> params = LtvParams(0.25, 4.0, 0.8, 2.5, 6.0, 4.0, 15.0, 1, "2026-01-05T00:00:00+00:00", 100, 50)
        >>> LtvParams.from_dict(json.loads(json.dumps(params.to_dict()))) == params
        True
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LtvParams:
        """The parameters ``to_dict`` gave (values may be strings, as in a Redis hash)."""
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise ValueError(f"LtvParams needs the fields {', '.join(missing)}")
        return cls(**{f.name: _CASTS[str(f.type)](data[f.name]) for f in fields(cls)})


_CASTS: dict[str, Callable[[Any], Any]] = {"float": float, "int": int, "str": str}


# ----- fitting -----------------------------------------------------------------------
def fit(summaries: Sequence[RfmSummary], version: int, fitted_at: datetime) -> LtvParams:
    """Fit BG/NBD on all ``summaries`` and Gamma-Gamma on the repeat buyers among them.

    Raises ``FitError`` (a ``ValueError``) with fewer than ``MIN_CUSTOMERS`` summaries or
    ``MIN_REPEAT_BUYERS`` repeat buyers with a positive monetary value, when a fit does not
    converge, or when Gamma-Gamma's q <= 1 (mean spend without a finite population mean).
    """
    repeat = [s for s in summaries if s.frequency > 0 and s.monetary > 0]
    if len(summaries) < MIN_CUSTOMERS:
        raise FitError(f"fitting needs at least {MIN_CUSTOMERS} customers with a purchase, got {len(summaries)}")
    if len(repeat) < MIN_REPEAT_BUYERS:
        raise FitError(f"fitting needs at least {MIN_REPEAT_BUYERS} repeat buyers "
                       f"(frequency > 0, monetary > 0), got {len(repeat)}")
    r, alpha, a, b = _fit_bgnbd(summaries)
    p, q, v = _fit_gamma_gamma(repeat)
    if q <= 1:
        raise FitError(f"Gamma-Gamma fit has q = {q:.4g} <= 1: the population mean spend is not finite")
    return LtvParams(r=r, alpha=alpha, a=a, b=b, p=p, q=q, v=v, version=version,
                     fitted_at=fitted_at.isoformat(), customers=len(summaries), repeat_buyers=len(repeat))


def _minimise(model: str, objective: Callable[..., tuple[float, Array]], size: int,
              args: tuple[Array, ...]) -> Array:
    """The fitted parameters (not logs) of ``objective`` over log-parameters, or ``FitError``."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = minimize(objective, np.full(size, _START), args=args, jac=True, method="BFGS", tol=TOLERANCE)
    flat = result.status == _PRECISION_LOSS and np.abs(result.jac).max() < ACCEPTED_GRADIENT
    converged = result.success or flat
    if not converged or not np.all(np.isfinite(result.x)):
        raise FitError(f"{model} fit did not converge: {result.message}")
    return np.exp(result.x)


def _fit_bgnbd(summaries: Sequence[RfmSummary]) -> tuple[float, float, float, float]:
    rows = Counter((s.frequency, s.recency, s.T) for s in summaries)
    x, t, age, w = (np.array(c, dtype=float) for c in zip(*((*k, n) for k, n in rows.items())))
    if age.max() <= 0:
        raise FitError("fitting needs customers whose first purchase is at least a day old")
    scale = 1.0 / age.max()
    r, alpha, a, b = _minimise("BG/NBD", _bgnbd_objective, 4, (x, t * scale, age * scale, w))
    return float(r), float(alpha / scale), float(a), float(b)


def _bgnbd_objective(log_params: Array, x: Array, t: Array, age: Array, w: Array) -> tuple[float, Array]:
    """Mean negative BG/NBD log-likelihood and its gradient in log-parameters."""
    r, alpha, a, b = np.exp(log_params)
    buyer = x > 0
    a3 = -(r + x) * np.log(alpha + age)
    a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t)
    tail = np.where(buyer, np.logaddexp(a3, a4), a3)  # log(e^a3 + [x > 0] e^a4)
    w3, w4 = np.exp(a3 - tail), np.where(buyer, np.exp(a4 - tail), 0.0)
    ll = (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + gammaln(a + b) + gammaln(b + x)
          - gammaln(b) - gammaln(a + b + x) + tail)
    d_ab = digamma(a + b) - digamma(a + b + x)
    grad = np.stack([
        r * (digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + age) - w4 * np.log(alpha + t)),
        r - alpha * (r + x) * (w3 / (alpha + age) + w4 / (alpha + t)),
        a * d_ab + w4,
        b * (d_ab + digamma(b + x) - digamma(b)) - b * w4 / (b + np.maximum(x, 1) - 1),
    ])
    n = w.sum()
    return -float(w @ ll) / n, -(grad @ w) / n


def _fit_gamma_gamma(repeat: Sequence[RfmSummary]) -> tuple[float, float, float]:
    x = np.array([s.frequency for s in repeat], dtype=float)
    m = np.array([s.monetary for s in repeat], dtype=float)
    p, q, v = _minimise("Gamma-Gamma", _gamma_gamma_objective, 3, (x, m))
    return float(p), float(q), float(v)


def _gamma_gamma_objective(log_params: Array, x: Array, m: Array) -> tuple[float, Array]:
    """Mean negative Gamma-Gamma log-likelihood and its gradient in log-parameters."""
    p, q, v = np.exp(log_params)
    px, total = p * x, x * m + v
    ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1) * np.log(m)
          + px * np.log(x) - (px + q) * np.log(total))
    d_pq = digamma(px + q)
    grad = np.stack([
        px * (d_pq - digamma(px) + np.log(m) + np.log(x) - np.log(total)),
        q * (d_pq - digamma(q) + np.log(v) - np.log(total)),
        q - v * (px + q) / total,
    ])
    return -float(ll.mean()), -grad.mean(axis=1)


# ----- predictions (scalar math: cheap enough for every event) -----------------------
def _log_odds_dead(params: LtvParams, s: RfmSummary) -> float:
    """log P(dead) / P(alive) for a repeat buyer (frequency > 0)."""
    r, alpha, x = params.r, params.alpha, s.frequency
    return (r + x) * math.log((alpha + s.T) / (alpha + s.recency)) + math.log(params.a / (params.b + x - 1))


def p_alive(params: LtvParams, s: RfmSummary) -> float:
    """Probability that the customer has not dropped out; 1.0 before any repeat purchase.

    >>> params = LtvParams(0.25, 4.0, 0.8, 2.5, 6.0, 4.0, 15.0, 1, "", 100, 50)
    >>> p_alive(params, RfmSummary(0, 0.0, 30.0, 0.0))
    1.0
    >>> round(p_alive(params, RfmSummary(3, 10.0, 60.0, 40.0)), 4)
    0.0387
    """
    if s.frequency == 0:
        return 1.0
    z = _log_odds_dead(params, s)
    if z >= 0:
        e = math.exp(-z)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(z))


def expected_purchases(params: LtvParams, s: RfmSummary, horizon_days: float) -> float:
    """Expected number of purchase days in the next ``horizon_days`` days, given the history.

    BG/NBD's conditional expectation (equation 10 of the paper), computed as P(alive) times
    the expectation for a customer still alive.

    >>> params = LtvParams(0.25, 4.0, 0.8, 2.5, 6.0, 4.0, 15.0, 1, "", 100, 50)
    >>> round(expected_purchases(params, RfmSummary(3, 55.0, 60.0, 40.0), 30.0), 4)
    1.106
    """
    if horizon_days < 0:
        raise ValueError(f"horizon_days must be >= 0, got {horizon_days}")
    r, alpha, a, b, x = params.r, params.alpha, params.a, params.b, s.frequency
    ha, hb, hc = r + x, b + x, a + b + x - 1
    z = horizon_days / (alpha + s.T + horizon_days)
    log_shrink = (r + x) * math.log((alpha + s.T) / (alpha + s.T + horizon_days))
    h = float(hyp2f1(ha, hb, hc, z))
    if math.isinf(h):  # Euler's transformation of 2F1 stays finite here
        log_h = math.log(float(hyp2f1(hc - ha, hc - hb, hc, z))) + (hc - ha - hb) * math.log1p(-z)
        tail = math.exp(log_h + log_shrink)
    else:
        tail = h * math.exp(log_shrink)
    return (a + b + x - 1) / (a - 1) * (1.0 - tail) * p_alive(params, s)


def expected_spend(params: LtvParams, s: RfmSummary) -> float:
    """Expected spend per purchase day: the customer's mean shrunk towards the population mean.

    A customer with frequency 0 gets the population mean ``v p / (q - 1)``.

    >>> params = LtvParams(0.25, 4.0, 0.8, 2.5, 6.0, 4.0, 15.0, 1, "", 100, 50)
    >>> expected_spend(params, RfmSummary(0, 0.0, 30.0, 0.0))
    30.0
    >>> round(expected_spend(params, RfmSummary(3, 55.0, 60.0, 40.0)), 4)
    38.5714
    """
    p, q, x = params.p, params.q, s.frequency
    mean = params.v * p / (q - 1)
    weight = p * x / (p * x + q - 1)
    return (1 - weight) * mean + weight * s.monetary


def clv(params: LtvParams, s: RfmSummary, horizon_days: float) -> float:
    """Expected spend over the next ``horizon_days`` days: purchases x spend, not discounted.

    >>> params = LtvParams(0.25, 4.0, 0.8, 2.5, 6.0, 4.0, 15.0, 1, "", 100, 50)
    >>> round(clv(params, RfmSummary(3, 55.0, 60.0, 40.0), 30.0), 2)
    42.66
    """
    return expected_purchases(params, s, horizon_days) * expected_spend(params, s)
