"""How early the lifecycle flags customers who drift away, measured on generated data.

In: a ``GeneratorConfig`` and the settings' lifecycle thresholds. Out: for the generator's
drifting customers who stop (ground truth), how many reach ``at_risk`` before their last
event and how long before it (the lead time), and how often customers of the other
personas are flagged while they stay (false alarms).

The events go through the same decoder and pure pipeline as the worker's (no broker, no
Redis), in event-time order, with the watermark at the end of the window.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from streamproc.contracts import load_contracts
from streamproc.decisions.rules import Population
from streamproc.ingest.decode import Decoded, Source
from streamproc.pipeline import apply_batch, sweep
from streamproc.records import SegmentChange
from streamproc.settings import Settings
from streamproc.sim.generator import GeneratorConfig, generate, ground_truth

DAY = 86400.0


@dataclass(frozen=True)
class Report:
    """Early-warning figures; lead times in days (positive: flagged before the last event)."""

    drifting: int
    flagged_before_last: int
    median_lead_days: float | None
    lead_p25_days: float | None
    lead_p75_days: float | None
    flagged_after_last: int
    never_flagged: int
    first_reasons: dict[str, int]
    others: int
    others_flagged_while_active: int
    others_reasons: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The report as text: the drifting customers who stop, then the customers who stay."""
        share = 100 * self.flagged_before_last / max(self.drifting, 1)
        return [
            f"drifting customers who stop: {self.drifting}",
            (f"  at_risk before their last event: {self.flagged_before_last} ({share:.0f}%), median lead "
             f"{self.median_lead_days} days (quartiles {self.lead_p25_days} - {self.lead_p75_days})"),
            f"  at_risk only after it: {self.flagged_after_last}; never: {self.never_flagged}",
            f"  first flag by reason: {self.first_reasons}",
            (f"customers who stay: {self.others}; flagged at_risk while still active: "
             f"{self.others_flagged_while_active} (by reason: {self.others_reasons})"),
        ]


def decoded_events(config: GeneratorConfig, settings: Settings) -> list[Any]:
    """The generated events, decoded and keyed as the worker would, in event-time order."""
    contracts = load_contracts(settings.topics_dir)
    types = {t.event_type: t.name for t in contracts.inputs}
    decoder = settings.decoder(contracts, history=True)
    now = datetime.now().astimezone()
    out = []
    for raw in generate(config):
        topic = types[raw["type"]]
        d = decoder.decode(_bytes(raw), Source(topic, 0, -1), raw["type"], now)
        if isinstance(d, Decoded):
            out.append(d.event)
    return out


def _bytes(raw: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(raw)


def run(config: GeneratorConfig, settings: Settings) -> Report:
    """Replay the generated stream through the pipeline and score the at-risk flags against the truth."""
    rules = settings.rules()
    events = decoded_events(config, settings)
    result = apply_batch(events, {}, Population(), rules)
    end = config.start + timedelta(days=config.days)
    swept = sweep(result.profiles, dict.fromkeys(result.profiles, end), Population(), rules)
    first: dict[str, SegmentChange] = {}
    for o in result.outputs + swept.outputs:
        if isinstance(o, SegmentChange) and o.new == "at_risk" and o.customer_id not in first:
            first[o.customer_id] = o
    pseudonyms = settings.pseudonymiser()
    truth = ground_truth(config)
    leads, after, reasons, never = [], 0, Counter[str](), 0
    others, other_reasons = 0, Counter[str]()
    for raw, t in truth.items():
        flag = first.get(pseudonyms.customer(raw))
        if t.persona != "drifting" or not t.churned:
            others += 1
            if flag is not None and flag.ts <= t.last_active:
                other_reasons[flag.reason.split(":")[0]] += 1
            continue
        if flag is None:
            never += 1
            continue
        reasons[flag.reason.split(":")[0]] += 1
        lead = (t.last_active - flag.ts).total_seconds() / DAY
        if lead >= 0:
            leads.append(lead)
        else:
            after += 1
    q = statistics.quantiles(leads, n=4) if len(leads) >= 2 else [None, None, None]
    return Report(
        drifting=len(leads) + after + never, flagged_before_last=len(leads),
        median_lead_days=round(statistics.median(leads), 1) if leads else None,
        lead_p25_days=round(q[0], 1) if q[0] is not None else None,
        lead_p75_days=round(q[2], 1) if q[2] is not None else None,
        flagged_after_last=after, never_flagged=never, first_reasons=dict(reasons),
        others=others, others_flagged_while_active=sum(other_reasons.values()), others_reasons=dict(other_reasons),
    )
