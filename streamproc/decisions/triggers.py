"""Trigger rules: which things that happen to a customer a CRM should act on, as data.

In: the profile after a trigger (an event, a stage, segment or score change, an abandoned cart,
the periodic rescoring), the population, the thresholds and the ``RuleSet`` (from the rules file,
``decisions.rulefile``). Out: the profile with its trigger memory updated, and ``Alert`` records
(or ``Suppressed`` counts) for every rule whose condition holds.

A rule fires on entering its condition (default; again only once the condition stopped holding)
or every time it holds; no sooner than its ``cooldown`` after its previous alert for the same
customer; at most ``frequency_cap.max`` alerts per customer and ``frequency_cap.per`` across rules
(rules with ``capped: false`` neither count nor are stopped); inside the quiet hours, held until
they end or dropped, per rule. Everything is measured in event time. A customer in the global
control group, or in a rule's holdout, gets the alert recorded with ``held_out`` so that
``streamproc uplift`` can compare, and no delivery.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from streamproc.decisions.catalogue import CATALOGUE, Scene, Trigger
from streamproc.decisions.rules import Population, Rules
from streamproc.frozen import replace
from streamproc.records import Alert, Fact, Suppressed
from streamproc.state.profile import Profile
from streamproc.state.triggers import TriggerMemory

OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not_in", "exists")
ORDERED = ("<", "<=", ">", ">=")


# ----- conditions ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Leaf:
    attr: str
    op: str
    value: Any = None

    def test(self, s: Scene, out: list[Fact]) -> bool:
        saw = CATALOGUE[self.attr].get(s)
        ok = compare(saw, self.op, self.value)
        out.append(Fact(self.attr, self.op, self.value, saw))
        return ok

    def leaves(self) -> Iterable[Leaf]:
        yield self


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Condition, ...]

    def test(self, s: Scene, out: list[Fact]) -> bool:
        return all(c.test(s, out) for c in self.items)

    def leaves(self) -> Iterable[Leaf]:
        for c in self.items:
            yield from c.leaves()


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Condition, ...]

    def test(self, s: Scene, out: list[Fact]) -> bool:
        """True at the first item that holds; the facts are that item's."""
        for c in self.items:
            mine: list[Fact] = []
            if c.test(s, mine):
                out += mine
                return True
        return False

    def leaves(self) -> Iterable[Leaf]:
        for c in self.items:
            yield from c.leaves()


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition

    def test(self, s: Scene, out: list[Fact]) -> bool:
        mine: list[Fact] = []
        held = self.item.test(s, mine)
        out += [replace(f, op=f"not {f.op}") for f in mine]
        return not held

    def leaves(self) -> Iterable[Leaf]:
        yield from self.item.leaves()


Condition = Leaf | AllOf | AnyOf | Not


def compare(saw: Any, op: str, value: Any) -> bool:
    """``saw op value``; a missing value (None) satisfies only ``exists: false`` and ``!=``.

    >>> compare(3, "<=", 4), compare(None, "<=", 4), compare("vip", "in", ["vip", "gold"])
    (True, False, True)
    """
    if op == "exists":
        return (saw is not None) == bool(value)
    if saw is None:
        return op == "!=" and value is not None
    if op == "==":
        return saw == value
    if op == "!=":
        return saw != value
    if op == "in":
        return saw in value
    if op == "not_in":
        return saw not in value
    if op == "<":
        return saw < value
    if op == "<=":
        return saw <= value
    if op == ">":
        return saw > value
    return saw >= value


# ----- rules -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local times (in ``zone``) from ``start`` to ``end`` in which alerts are held or dropped."""

    start: time
    end: time
    zone: str

    def contains(self, ts: datetime) -> bool:
        local = ts.astimezone(ZoneInfo(self.zone)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def end_after(self, ts: datetime) -> datetime:
        """The first end of the quiet hours after ``ts`` (UTC)."""
        tz = ZoneInfo(self.zone)
        local = ts.astimezone(tz)
        end = datetime.combine(local.date(), self.end, tzinfo=tz)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=tz)
        return end.astimezone(ts.tzinfo)


@dataclass(frozen=True, slots=True)
class Cap:
    max: int
    per: timedelta


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    version: int
    severity: str
    on: tuple[str, ...]
    when: Condition | None = None
    description: str = ""
    fire: str = "enter"
    cooldown: timedelta = timedelta(0)
    capped: bool = True
    quiet_hours: str = "hold"
    action: str | None = None
    message: str = ""
    destinations: tuple[str, ...] = ()
    holdout: float = 0.0

    def models(self) -> set[str]:
        """The models whose scores the condition reads."""
        if self.when is None:
            return set()
        return {m for leaf in self.when.leaves() if (m := CATALOGUE[leaf.attr].model) is not None}


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules of one rules file, indexed by trigger, with the file-wide settings. ``version`` is
    the published version (0: the file a worker started with), ``digest`` a hash of its text."""

    rules: tuple[Rule, ...] = ()
    quiet: QuietHours | None = None
    cap: Cap | None = None
    control_share: float = 0.0
    control_seed: str = "streamproc"
    version: int = 0
    digest: str = ""
    by_trigger: dict[str, tuple[Rule, ...]] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, list[Rule]] = {}
        for r in self.rules:
            for kind in r.on:
                index.setdefault(kind, []).append(r)
        object.__setattr__(self, "by_trigger", {k: tuple(v) for k, v in index.items()})


# ----- control groups ------------------------------------------------------------------------
def _bucket(seed: str, salt: str, customer_id: str) -> float:
    """A uniform number in [0, 1) from a keyed hash of the customer key: sticky, and independent per salt."""
    h = hashlib.blake2b(f"{salt}|{customer_id}".encode(), key=seed.encode()[:64], digest_size=8)
    return int.from_bytes(h.digest(), "big") / 2**64


def control_of(customer_id: str, rule: Rule, rs: RuleSet) -> str | None:
    """``"global"`` if the customer is in the global control group, ``"rule"`` if in the rule
    version's holdout, else None."""
    if rs.control_share > 0 and _bucket(rs.control_seed, "global", customer_id) < rs.control_share:
        return "global"
    if rule.holdout > 0 and _bucket(rs.control_seed, f"{rule.id}|v{rule.version}", customer_id) < rule.holdout:
        return "rule"
    return None


# ----- messages ---------------------------------------------------------------------------------
PLACEHOLDER = re.compile(r"\{([a-z_.]+)(?::([^{}]*))?\}")


def render(template: str, s: Scene) -> str:
    """The rule's message with each ``{attr}`` or ``{attr:format}`` replaced by the value it reads."""
    def one(m: re.Match[str]) -> str:
        value = CATALOGUE[m.group(1)].get(s)
        if value is None:
            return "n/a"
        try:
            return format(value, m.group(2) or "")
        except (TypeError, ValueError):
            return str(value)
    return PLACEHOLDER.sub(one, template)


# ----- firing ----------------------------------------------------------------------------------
def _models(rule: Rule, s: Scene) -> tuple[dict[str, Any], tuple[tuple[str, float, str], ...]]:
    used, models = rule.models(), {}
    reasons: tuple[tuple[str, float, str], ...] = ()
    if "churn" in used:
        c = s.churn()
        models["churn"], models["churn_source"] = c.version, c.source
        reasons = c.reasons
    if "satisfaction" in used:
        models["satisfaction"] = s.pop.satisfaction.version if s.pop.satisfaction is not None else 0
    if "ltv" in used:
        models["ltv"] = s.p.value.params_version if s.p.value is not None else 0
    return models, reasons


def _alert(rule: Rule, s: Scene, facts: list[Fact], rs: RuleSet) -> Alert:
    models, reasons = _models(rule, s)
    control = control_of(s.p.customer_id, rule, rs)
    return Alert(
        customer_id=s.p.customer_id, ts=s.now, rule=rule.id, severity=rule.severity,
        message=render(rule.message or rule.description or rule.id, s), cause_event_id=s.trigger.cause_event_id,
        rule_version=rule.version, ruleset_version=rs.version, ruleset_digest=rs.digest, trigger=s.trigger.kind,
        action=rule.action, facts=tuple(facts), reasons=reasons, models=models, destinations=rule.destinations,
        held_out=control is not None, control=control,
        offers=tuple({"item": o.item, "score": round(o.score, 4), "reason": o.reason, "source": o.source}
                     for o in s.offers()),
    )


def fire(p: Profile, triggers: Iterable[Trigger], pop: Population, rules: Rules) -> tuple[Profile, list[Alert | Suppressed]]:
    """The alerts ``triggers`` cause for ``p`` under ``rules.triggers``, and the profile with its
    trigger memory after them."""
    rs = rules.triggers
    if not rs.rules:
        return p, []
    mem, out = p.triggers, []
    for trig in triggers:
        for rule in rs.by_trigger.get(trig.kind, ()):
            s = Scene(p, pop, rules, trig)
            facts: list[Fact] = []
            holds = rule.when is None or rule.when.test(s, facts)
            was_inside = rule.id in mem.inside
            if holds != was_inside:
                inside = mem.inside + (rule.id,) if holds else tuple(r for r in mem.inside if r != rule.id)
                mem = replace(mem, inside=inside)
            if not holds or (rule.fire == "enter" and was_inside):
                continue
            mem, result = _admit(mem, rule, s, facts, rs)
            out.append(result)
    return (p if mem is p.triggers else replace(p, triggers=mem)), out


def _admit(mem: TriggerMemory, rule: Rule, s: Scene, facts: list[Fact], rs: RuleSet) -> tuple[TriggerMemory, Alert | Suppressed]:
    """Cooldown, frequency cap and quiet hours of one firing: the alert, held or sent, or why not."""
    at, cid = s.now, s.p.customer_id
    last = mem.last.get(rule.id)
    if last is not None and rule.cooldown and at - last < rule.cooldown:
        return mem, Suppressed(cid, at, rule.id, "cooldown")
    recent = mem.recent if rs.cap is None else tuple(t for t in mem.recent if at - t < rs.cap.per)
    if rule.capped and rs.cap is not None and len(recent) >= rs.cap.max:
        return (mem if recent == mem.recent else replace(mem, recent=recent)), Suppressed(cid, at, rule.id, "cap")
    quiet = rs.quiet is not None and rule.quiet_hours != "ignore" and rs.quiet.contains(at)
    if quiet and rule.quiet_hours == "drop":
        return mem, Suppressed(cid, at, rule.id, "quiet_hours")
    alert = _alert(rule, s, facts, rs)
    mem = replace(mem, last={**mem.last, rule.id: at}, recent=recent + (at,) if rule.capped and rs.cap else recent)
    if quiet:
        held = replace(alert, deliver_at=rs.quiet.end_after(at))
        return replace(mem, held=mem.held + (held,)), Suppressed(cid, at, rule.id, "held")
    return mem, alert


def release(p: Profile, now: datetime) -> tuple[Profile, list[Alert]]:
    """The held alerts whose quiet hours ended by event time ``now``, in order."""
    held = p.triggers.held
    if not held or min(a.deliver_at for a in held) > now:
        return p, []
    due = [a for a in held if a.deliver_at <= now]
    keep = tuple(a for a in held if a.deliver_at > now)
    return replace(p, triggers=replace(p.triggers, held=keep)), sorted(due, key=lambda a: (a.deliver_at, a.ts))
