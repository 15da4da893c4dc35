"""``streamproc uplift``: did acting on a rule's alerts change what customers did?

In: the alert records of one rule (from the alerts topic) and the purchases (from the purchases
topic, keyed as the worker keys them). Each customer counts once per rule version, at their first
alert of it, in the treated arm (alert delivered) or the held-out arm (global control group or the
rule's holdout: recorded, never delivered). A customer converted if they bought within the window
after that alert, in event time. Only alerts whose window ended by the newest purchase seen are
counted, so an alert too recent to judge is left out, not counted as a failure.

Out: per rule version, each arm's size and conversion, the difference (treated minus held out)
with its 95 % interval by Newcombe's hybrid score method (``statsmodels``), and a verdict:
"not enough data" below ``min_size`` customers in an arm.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from streamproc.contracts import Contracts
from streamproc.ingest.decode import Decoded, Source
from streamproc.ops.dlq import read_all_raw
from streamproc.settings import Settings


@dataclass(frozen=True)
class Arm:
    n: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.n if self.n else None


@dataclass(frozen=True)
class Comparison:
    treated: Arm
    held_out: Arm
    difference: float | None
    low: float | None
    high: float | None
    verdict: str


def compare(treated: Arm, held_out: Arm, min_size: int = 30) -> Comparison:
    """The difference of the arms' conversion rates with its 95 % Newcombe interval, and what it says.

    >>> c = compare(Arm(70, 56), Arm(80, 48))  # Newcombe (1998), example (b)
    >>> round(c.difference, 4), round(c.low, 4), round(c.high, 4)
    (0.2, 0.0524, 0.3339)
    """
    if min(treated.n, held_out.n) < min_size:
        return Comparison(treated, held_out, None, None, None,
                          f"not enough data (fewer than {min_size} customers in an arm)")
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(treated.converted, treated.n, held_out.converted, held_out.n,
                                           method="newcomb", compare="diff", alpha=0.05)
    diff = treated.rate - held_out.rate  # type: ignore[operator]
    if low > 0 or high < 0:
        verdict = "effect: the interval excludes zero"
    else:
        verdict = "no effect shown: the interval covers zero"
    return Comparison(treated, held_out, diff, float(low), float(high), verdict)


@dataclass
class Exposures:
    """First alert of each customer, per rule version: ``{version: {customer: (ts, held_out)}}``."""

    by_version: dict[int, dict[str, tuple[datetime, bool]]] = field(default_factory=dict)

    @classmethod
    def of(cls, alerts: Iterable[Mapping[str, Any]], rule: str) -> Exposures:
        out = cls()
        for a in sorted((a for a in alerts if a.get("rule") == rule), key=lambda a: a["ts"]):
            seen = out.by_version.setdefault(int(a.get("rule_version", 1)), {})
            seen.setdefault(a["customer_id"], (datetime.fromisoformat(a["ts"]), bool(a.get("held_out"))))
        return out


def arms(exposed: Mapping[str, tuple[datetime, bool]], purchases: Mapping[str, list[datetime]], window: timedelta,
         until: datetime) -> tuple[Arm, Arm, int]:
    """Treated and held-out arms of one rule version; the third value counts alerts too recent to judge."""
    counts = {True: [0, 0], False: [0, 0]}
    recent = 0
    for cid, (ts, held) in exposed.items():
        if ts + window > until:
            recent += 1
            continue
        times = purchases.get(cid, [])
        i = bisect.bisect_right(times, ts)
        bought = i < len(times) and times[i] <= ts + window
        counts[held][0] += 1
        counts[held][1] += bought
    return Arm(*counts[False]), Arm(*counts[True]), recent


def report(alerts: list[Mapping[str, Any]], purchases: Mapping[str, list[datetime]], rule: str, window: timedelta,
           min_size: int = 30) -> dict[str, Any]:
    """The uplift report of ``rule`` (see the module docstring), as a plain dict."""
    until = max((t[-1] for t in purchases.values() if t), default=None)
    out: dict[str, Any] = {"rule": rule, "window_days": window.total_seconds() / 86400,
                           "until": until.isoformat() if until else None, "versions": []}
    for version, exposed in sorted(Exposures.of(alerts, rule).by_version.items()):
        if until is None:
            break
        treated, held, recent = arms(exposed, purchases, window, until)
        c = compare(treated, held, min_size)
        out["versions"].append({
            "version": version, "treated": {"customers": treated.n, "converted": treated.converted, "rate": treated.rate},
            "held_out": {"customers": held.n, "converted": held.converted, "rate": held.rate},
            "difference": c.difference, "ci95": None if c.low is None else [c.low, c.high], "verdict": c.verdict,
            "too_recent": recent,
        })
    return out


def lines(r: dict[str, Any]) -> list[str]:
    """The report as text."""
    out = [f"uplift of rule {r['rule']}: a purchase within {r['window_days']:g} days of the customer's first alert "
           f"(event time, purchases up to {r['until']})"]
    if not r["versions"]:
        out.append("  no alerts of this rule, or no purchases, to compare")
    for v in r["versions"]:
        t, h = v["treated"], v["held_out"]
        rate = lambda a: "n/a" if a["rate"] is None else f"{a['rate']:.1%}"  # noqa: E731
        out.append(f"  version {v['version']}: treated {t['converted']}/{t['customers']} ({rate(t)}), "
                   f"held out {h['converted']}/{h['customers']} ({rate(h)})"
                   + (f", {v['too_recent']} too recent to judge" if v["too_recent"] else ""))
        if v["difference"] is not None:
            out.append(f"    difference {v['difference']:+.1%}, 95% CI [{v['ci95'][0]:+.1%}, {v['ci95'][1]:+.1%}] "
                       "(Newcombe)")
        out.append(f"    {v['verdict']}")
    return out


def purchases_by_customer(raw: Iterable[bytes], settings: Settings, contracts: Contracts) -> dict[str, list[datetime]]:
    """Event times of the purchases of each customer (keyed as the worker keys them), sorted; records
    that fail their contract are left out, as the worker dead-letters them."""
    decoder = settings.decoder(contracts, history=True)
    topic = next(t for t in contracts.inputs if t.event_type == "purchase")
    out: dict[str, list[datetime]] = {}
    now = datetime.now(timezone.utc)
    for value in raw:
        d = decoder.decode(value, Source(topic.name, 0, -1), "purchase", now)
        if isinstance(d, Decoded):
            out.setdefault(d.event.customer_id, []).append(d.event.ts)
    for times in out.values():
        times.sort()
    return out


async def read(settings: Settings, contracts: Contracts) -> tuple[list[dict[str, Any]], dict[str, list[datetime]]]:
    """The alerts and the purchases on the broker."""
    alerts = [orjson.loads(v) for v in await read_all_raw(settings.kafka_url, contracts.one("alerts").name)]
    topic = next(t for t in contracts.inputs if t.event_type == "purchase").name
    return alerts, purchases_by_customer(await read_all_raw(settings.kafka_url, topic), settings, contracts)
