"""The trigger rules file: YAML (or JSON) text in, a ``RuleSet`` out, or every mistake with its line.

``parse(text, name)`` checks the file against ``rules.schema.json`` and the attribute catalogue
(``decisions.catalogue``) and raises ``RulesInvalid`` with one message per mistake, each of the
form ``rules.yaml:14: rule 'vip_churn': unknown attribute 'churn_risc' (did you mean
'churn_risk'?)``. The default file, ``default_rules.yaml`` beside this module, holds the rules a
worker runs unless ``STREAMPROC_RULES_FILE`` or a published version (``streamproc rules publish``)
says otherwise.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from datetime import time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import jsonschema
import yaml

from streamproc.decisions.catalogue import CATALOGUE
from streamproc.decisions.triggers import (
    OPS,
    ORDERED,
    PLACEHOLDER,
    AllOf,
    AnyOf,
    Cap,
    Condition,
    Leaf,
    Not,
    QuietHours,
    Rule,
    RuleSet,
)
from streamproc.errors import RulesInvalid

HERE = Path(__file__).resolve().parent
DEFAULT_RULES = HERE / "default_rules.yaml"
SCHEMA = HERE / "rules.schema.json"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
Path_ = tuple[str | int, ...]


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))


def duration(value: str | int) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``14d`` or a number of seconds.

    >>> duration("14d"), duration(90)
    (datetime.timedelta(days=14), datetime.timedelta(seconds=90))
    """
    if isinstance(value, int):
        return timedelta(seconds=value)
    return timedelta(seconds=float(value[:-1]) * UNITS[value[-1]])


# ----- YAML with line numbers ------------------------------------------------------------------
def _load(text: str) -> tuple[Any, dict[Path_, int]]:
    """The document and the line (1-based) of every path in it. Mapping keys stay text: YAML 1.1
    would read the key ``on`` as ``True``."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}

    def walk(n: yaml.Node, path: Path_) -> Any:
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            out = {}
            for k, v in n.value:
                key = str(k.value)
                lines[path + (key,)] = k.start_mark.line + 1
                out[key] = walk(v, path + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [walk(v, path + (i,)) for i, v in enumerate(n.value)]
        return loader.construct_object(n, deep=True)

    return (walk(node, ()) if node is not None else None), lines


@dataclass
class _Report:
    name: str
    doc: Any
    lines: dict[Path_, int]
    errors: list[tuple[int, str]] = field(default_factory=list)

    def line(self, path: Path_) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def add(self, path: Path_, message: str) -> None:
        where = ""
        if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
            rule = self.doc["rules"][path[1]]
            rid = rule.get("id") if isinstance(rule, dict) else None
            where = f"rule '{rid}': " if isinstance(rid, str) else f"rule #{path[1] + 1}: "
        self.errors.append((self.line(path), f"{where}{message}"))

    def messages(self) -> list[str]:
        return [f"{self.name}:{line}: {msg}" for line, msg in sorted(self.errors, key=lambda e: e[0])]


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _schema_errors(r: _Report) -> None:
    for e in _validator().iter_errors(r.doc):
        path = tuple(e.absolute_path)
        if e.validator == "oneOf":
            continue  # conditions: _condition says precisely what is wrong
        if e.validator == "additionalProperties":
            allowed = list(e.schema.get("properties", {}))
            for key in sorted(set(e.instance) - set(allowed)):
                r.add(path + (key,), f"unknown field '{key}'{_suggest(key, allowed)}; allowed: {', '.join(allowed)}")
        elif e.validator == "required":
            r.add(path, f"missing field {e.message.split(' is a required')[0]}")
        elif e.validator == "enum":
            r.add(path, f"{path[-1] if path else 'value'} {e.instance!r} is not one of {', '.join(map(str, e.validator_value))}"
                        f"{_suggest(str(e.instance), [str(v) for v in e.validator_value])}")
        elif e.validator == "pattern" and path and path[-1] in ("start", "end"):
            r.add(path, f"{path[-1]} {e.instance!r} is not a time of day: write it quoted, as \"HH:MM\"")
        elif e.validator in ("pattern", "type") and "[smhd]" in str(e.schema.get("pattern", "")):
            r.add(path, f"{path[-1]} {e.instance!r} is not a duration: write seconds, or a number with s, m, h or d (14d)")
        elif e.validator == "type" and path and path[-1] in ("start", "end"):
            r.add(path, f"{path[-1]} is not a time of day: quote it, as \"22:00\" (unquoted, YAML reads 22:00 as a number)")
        else:
            r.add(path, e.message)


# ----- the semantic checks: attributes, operators, values ---------------------------------------
def _kind_ok(kind: str, v: Any) -> bool:
    if kind == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "string":
        return isinstance(v, str)
    return isinstance(v, bool)


def _leaf(r: _Report, path: Path_, d: dict[str, Any], on: list[str]) -> Leaf | None:
    attr, op, value = d.get("attr"), d.get("op"), d.get("value")
    if not isinstance(attr, str) or op not in OPS:
        if op not in OPS:
            r.add(path + ("op",), f"unknown operator {op!r}; use one of {', '.join(OPS)}")
        return None
    a = CATALOGUE.get(attr)
    if a is None:
        r.add(path + ("attr",), f"unknown attribute '{attr}'{_suggest(attr, list(CATALOGUE))}; "
                                "'streamproc rules attributes' lists them")
        return None
    if a.triggers and (missing := [t for t in on if t not in a.triggers]):
        r.add(path + ("attr",), f"attribute '{attr}' is not a field of trigger '{missing[0]}' "
                                f"(it comes with: {', '.join(a.triggers)}); split the rule, or read a profile attribute")
        return None
    if op == "exists":
        ok = isinstance(value, bool)
        want = "true or false"
    elif op in ("in", "not_in"):
        ok = isinstance(value, list) and bool(value) and all(_kind_ok(a.kind, v) for v in value)
        want = f"a non-empty list of {a.kind}s"
    elif op in ORDERED and a.kind != "number":
        r.add(path + ("op",), f"'{attr}' is a {a.kind}: '{op}' does not apply; use ==, !=, in or not_in")
        return None
    else:
        ok = _kind_ok(a.kind, value)
        want = f"a {a.kind}"
    if not ok:
        r.add(path + ("value",), f"'{attr} {op}' needs {want}, got {value!r}")
        return None
    return Leaf(attr, op, value)


def _condition(r: _Report, path: Path_, d: Any, on: list[str]) -> Condition | None:
    if not isinstance(d, dict):
        r.add(path, f"a condition is a mapping with 'all', 'any', 'not' or 'attr'/'op'/'value', got {d!r}")
        return None
    keys = set(d)
    if len(keys & {"all", "any", "not"}) == 1 and len(keys) == 1:
        (k,) = keys
        if k == "not":
            inner = _condition(r, path + ("not",), d["not"], on)
            return None if inner is None else Not(inner)
        items = d[k] if isinstance(d[k], list) else []
        if not items:
            r.add(path + (k,), f"'{k}' needs a non-empty list of conditions")
            return None
        parts = [_condition(r, path + (k, i), c, on) for i, c in enumerate(items)]
        if any(p is None for p in parts):
            return None
        return AllOf(tuple(parts)) if k == "all" else AnyOf(tuple(parts))
    unknown = keys - {"attr", "op", "value"}
    if unknown or "attr" not in d or "op" not in d:
        key = sorted(unknown)[0] if unknown else None
        hint = _suggest(key, ["all", "any", "not", "attr", "op", "value"]) if key else ""
        what = f"unknown key '{key}'{hint}" if key else "a leaf needs 'attr' and 'op' (and 'value')"
        r.add(path + ((key,) if key else ()), f"{what}; a condition is 'all', 'any', 'not' or {{attr, op, value}}")
        return None
    return _leaf(r, path, d, on)


def _message(r: _Report, path: Path_, text: str, on: list[str]) -> None:
    for m in PLACEHOLDER.finditer(text):
        a = CATALOGUE.get(m.group(1))
        if a is None:
            r.add(path, f"message: unknown attribute '{{{m.group(1)}}}'{_suggest(m.group(1), list(CATALOGUE))}")
        elif a.triggers and any(t not in a.triggers for t in on):
            r.add(path, f"message: '{{{m.group(1)}}}' is not a field of every trigger of the rule ({', '.join(on)})")


def _rule(r: _Report, i: int, d: dict[str, Any]) -> Rule | None:
    path: Path_ = ("rules", i)
    on = [t for t in d.get("on", []) if isinstance(t, str)]
    when = _condition(r, path + ("when",), d["when"], on) if "when" in d else None
    if "message" in d and isinstance(d["message"], str):
        _message(r, path + ("message",), d["message"], on)
    try:
        return Rule(
            id=d["id"], version=d["version"], severity=d["severity"], on=tuple(on), when=when,
            description=d.get("description", ""), fire=d.get("fire", "enter"),
            cooldown=duration(d.get("cooldown", 0)), capped=d.get("capped", True),
            quiet_hours=d.get("quiet_hours", "hold"), action=d.get("action"), message=d.get("message", ""),
            destinations=tuple(d.get("destinations", ())), holdout=float(d.get("holdout", 0.0)),
        )
    except (KeyError, TypeError, ValueError, IndexError):
        return None  # the schema errors say what is wrong


def _quiet(r: _Report, d: dict[str, Any] | None) -> QuietHours | None:
    if not isinstance(d, dict):
        return None
    try:
        ZoneInfo(str(d.get("timezone")))
    except (ZoneInfoNotFoundError, ValueError):
        hint = _suggest(str(d.get("timezone")), sorted(available_timezones()))
        r.add(("quiet_hours", "timezone"), f"unknown time zone {d.get('timezone')!r}{hint}: use an IANA name such as "
                                           "'Europe/Berlin' or 'UTC'")
        return None
    try:
        return QuietHours(time.fromisoformat(d["start"]), time.fromisoformat(d["end"]), d["timezone"])
    except (KeyError, TypeError, ValueError):
        return None


def parse(text: str, name: str = "rules.yaml", version: int = 0) -> RuleSet:
    """The ``RuleSet`` the file's ``text`` describes (``version``: its published version, 0 for a
    file); raises ``RulesInvalid`` listing every mistake found."""
    try:
        doc, lines = _load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise RulesInvalid([f"{name}:{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]) from None
    r = _Report(name, doc, lines)
    if not isinstance(doc, dict):
        raise RulesInvalid([f"{name}:1: a rules file is a mapping with a 'rules' list"])
    _schema_errors(r)
    rules = [_rule(r, i, d) for i, d in enumerate(doc.get("rules") or []) if isinstance(d, dict)]
    seen: dict[str, int] = {}
    for i, d in enumerate(doc.get("rules") or []):
        rid = d.get("id") if isinstance(d, dict) else None
        if isinstance(rid, str) and rid in seen:
            r.add(("rules", i, "id"), f"duplicate id: rule #{seen[rid] + 1} has it too; give each rule its own id")
        elif isinstance(rid, str):
            seen[rid] = i
    quiet = _quiet(r, doc.get("quiet_hours"))
    if r.errors:
        raise RulesInvalid(r.messages())
    cap, control = doc.get("frequency_cap"), doc.get("control") or {}
    return RuleSet(
        rules=tuple(x for x in rules if x is not None), quiet=quiet,
        cap=Cap(cap["max"], duration(cap["per"])) if cap else None,
        control_share=float(control.get("share", 0.0)), control_seed=control.get("seed", "streamproc"),
        version=version, digest=hashlib.sha256(text.encode()).hexdigest()[:12],
    )


def check(text: str, name: str = "rules.yaml") -> list[str]:
    """Every mistake of the file (empty: it is valid)."""
    try:
        parse(text, name)
    except RulesInvalid as exc:
        return exc.errors
    return []


def load(path: Path | None = None) -> RuleSet:
    """The rules of the file at ``path`` (default: the rules that ship with streamproc)."""
    path = path or DEFAULT_RULES
    return parse(path.read_text(), str(path))
