"""The models the workers use, read back from Redis (behind ``streamproc models``).

In: the two hashes the worker maintains (``RedisKeys.online_models``: version and figures of
the online churn and satisfaction models; ``RedisKeys.models``: the population fit). Out: one
document of versions and figures (``read_models``, the ``--json`` output) and the text lines
that summarise it (``model_lines``).
"""

from __future__ import annotations

from typing import Any

import orjson
import redis

from streamproc.runtime.redis_keys import RedisKeys


def read_models(redis_url: str, prefix: str = "sp") -> dict[str, Any]:
    """``{"online": {version, figures}, "population": {version, fitted_at, ltv, customers}}``;
    versions 0 and ``None`` figures before the first publication or fit."""
    keys = RedisKeys(prefix)
    r = redis.Redis.from_url(redis_url)
    try:
        online = r.hmget(keys.online_models, "version", "figures", "published_at")
        pop = r.hmget(keys.models, "version", "fitted_at", "ltv", "customers", "next_fit")
    finally:
        r.close()
    return {
        "online": {"version": int(online[0] or 0), "figures": orjson.loads(online[1]) if online[1] else None},
        "population": {"version": int(pop[0] or 0), "fitted_at": pop[1] and pop[1].decode(),
                       "ltv": orjson.loads(pop[2]) if pop[2] else None, "customers": int(pop[3] or 0)},
    }


def metric_text(v: float | None) -> str:
    """A metric with three decimals, ``-`` when there is none yet.

    >>> metric_text(0.81234), metric_text(None)
    ('0.812', '-')
    """
    return "-" if v is None else f"{v:.3f}"


def model_lines(doc: dict[str, Any]) -> list[str]:
    """The document of ``read_models`` as text: one line per model family, one per model below it."""
    figs = doc["online"]["figures"]
    lines = [f"online models: version {doc['online']['version']}" + ("" if figs else " (nothing learned yet)")]
    if figs:
        lines += _online_lines(figs["churn"], figs["satisfaction"])
    p = doc["population"]
    lines.append(f"population fit: version {p['version']}" + (
        f", at event time {p['fitted_at']} on {p['customers']:,} customers" if p["version"] else " (not fitted yet)"))
    if p["ltv"]:
        v = p["ltv"]
        lines.append(f"  BG/NBD r={v['r']:.3f} alpha={v['alpha']:.3f} a={v['a']:.3f} b={v['b']:.3f}; "
                     f"Gamma-Gamma p={v['p']:.3f} q={v['q']:.3f} v={v['v']:.3f}")
    return lines


def _online_lines(c: dict[str, Any], m: dict[str, Any]) -> list[str]:
    f, b = metric_text, c["baselines"]
    churn = (f"  churn        learned {c['learned']:,}; labels {c['labels']:,} ({c['positives']:,} churned); "
             f"AUC {f(c['auc'])} (last {c['rolling']['labels']:,}: {f(c['rolling']['auc'])}); "
             f"log loss {f(c['log_loss'])}; ECE {f(c['ece'])}; recency AUC {f(b['recency']['auc'])}; "
             f"P(alive) AUC {f(b['palive']['auc'])}; drifts {c['drift']['detections']}")
    satisfaction = (f"  satisfaction learned {m['learned']:,}; MAE {f(m['mae'])} (last {m['rolling']['labels']:,}: "
                    f"{f(m['rolling']['mae'])}); RMSE {f(m['rmse'])}; R2 {f(m['r2'])}; "
                    f"running-mean MAE {f(m['mean_baseline_mae'])}; drifts {m['drift']['detections']}")
    lines = [churn]
    if (sv := c.get("served")) is not None:
        lines.append(f"  churn served: {sv['candidate']} since label {sv['since']:,} (served score AUC {f(sv['auc'])}); "
                     f"rolling AUCs {', '.join(f'{k} {f(v)}' for k, v in sv['rolling_aucs'].items())}: {sv['reason']}")
    return lines + [satisfaction]
