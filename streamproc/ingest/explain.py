"""Contract violations in words a producer understands.

In: the error fastjsonschema raised for a record (its rule, the path of the failing value, the
failing part of the schema) and the record's event type. Out: a message that names the field
and what it must be, e.g. ``missing required field channel``, ``rating must be an integer
from 1 to 5, not a string``, ``feedback needs at least one of rating, nps or text``.

A message names fields and the contract's own values (bounds, allowed values, patterns) and
the kind of value received, never the value itself: a rejected value may be personal data.

>>> from fastjsonschema import JsonSchemaValueException as Error
>>> explain(Error("", 9, "data.rating", {"type": "integer", "minimum": 1, "maximum": 5}, "maximum"), "feedback")
'rating must be an integer from 1 to 5'
>>> explain(Error("", {"ts": "x"}, "data", {"required": ["ts", "channel"]}, "required"), "feedback")
'missing required field channel'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastjsonschema import JsonSchemaValueException

KINDS: dict[type, str] = {bool: "true/false", int: "an integer", float: "a decimal number", str: "a string",
                          list: "a list", dict: "an object", type(None): "null"}
TYPES = {"integer": "an integer", "number": "a number", "string": "a string", "array": "a list",
         "object": "an object", "boolean": "true or false"}


def words(names: list[str]) -> str:
    """``['a', 'b', 'c']`` -> ``'a, b or c'``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _field(exc: JsonSchemaValueException) -> str:
    """``data.items[0].price`` -> ``items[0].price``; the record itself -> ``''``."""
    name = exc.name or "data"
    return name[5:] if name.startswith("data.") else "" if name == "data" else name


def _bounds(d: dict[str, Any]) -> str:
    lo, hi = d.get("minimum"), d.get("maximum")
    if lo is not None and hi is not None:
        return f" from {lo} to {hi}"
    parts = [f"of at least {lo}"] if lo is not None else []
    parts += [f"greater than {d['exclusiveMinimum']}"] if "exclusiveMinimum" in d else []
    parts += [f"of at most {hi}"] if hi is not None else []
    parts += [f"less than {d['exclusiveMaximum']}"] if "exclusiveMaximum" in d else []
    return " " + " and ".join(parts) if parts else ""


def _what(d: dict[str, Any]) -> str:
    """What a value of schema ``d`` must be: ``an integer from 1 to 5``."""
    kind = d.get("type")
    return f"{TYPES.get(kind, kind) if isinstance(kind, str) else 'a value'}{_bounds(d)}"


def _kind(value: Any) -> str:
    return KINDS.get(type(value), type(value).__name__)


def _required(exc: JsonSchemaValueException, where: str, record: str) -> str:
    have = exc.value if isinstance(exc.value, dict) else {}
    missing = [n for n in exc.rule_definition if n not in have] or list(exc.rule_definition)
    plural = "s" if len(missing) > 1 else ""
    return f"{where + ' is ' if where else ''}missing required field{plural} {', '.join(missing)}"


def _any_of(exc: JsonSchemaValueException, where: str, record: str) -> str:
    names = [n for branch in exc.rule_definition for n in branch.get("required", ())]
    if not names:
        return f"{where or record} matches none of the shapes its contract allows"
    blank = [n for n in names if isinstance(exc.value, dict) and isinstance(exc.value.get(n), str)
             and not exc.value[n].strip()]
    note = f" ({words(blank)} is blank)" if blank else ""
    return f"{where or record} needs at least one of {words(names)}{note}"


def _type(exc: JsonSchemaValueException, where: str, record: str) -> str:
    return f"{where} must be {_what(exc.definition)}, not {_kind(exc.value)}"


def _range(exc: JsonSchemaValueException, where: str, record: str) -> str:
    return f"{where} must be {_what(exc.definition)}"


def _length(exc: JsonSchemaValueException, where: str, record: str) -> str:
    n, unit = exc.rule_definition, "entr" if exc.rule.endswith("Items") else "character"
    plural = ("ies" if n != 1 else "y") if unit == "entr" else ("s" if n != 1 else "")
    if exc.rule == "minLength" and n == 1:
        return f"{where} must not be empty"
    return f"{where} must have {'at least' if exc.rule.startswith('min') else 'at most'} {n} {unit}{plural}"


def _enum(exc: JsonSchemaValueException, where: str, record: str) -> str:
    return f"{where} must be one of {words([str(v) for v in exc.rule_definition])}"


def _const(exc: JsonSchemaValueException, where: str, record: str) -> str:
    return f"{where} must be {exc.rule_definition!r}"


def _format(exc: JsonSchemaValueException, where: str, record: str) -> str:
    if exc.rule_definition == "date-time":
        return f"{where} must be an ISO-8601 date-time with a zone, e.g. 2026-01-01T10:00:00+00:00"
    return f"{where} must be in the {exc.rule_definition} format"


def _pattern(exc: JsonSchemaValueException, where: str, record: str) -> str:
    return f"{where} must match the pattern {exc.rule_definition}"


RULES: dict[str, Callable[[JsonSchemaValueException, str, str], str]] = {
    "required": _required, "anyOf": _any_of, "type": _type, "enum": _enum, "const": _const, "format": _format,
    "pattern": _pattern, "minimum": _range, "maximum": _range, "exclusiveMinimum": _range,
    "exclusiveMaximum": _range, "minLength": _length, "maxLength": _length, "minItems": _length,
    "maxItems": _length,
}


def explain(exc: JsonSchemaValueException, record: str) -> str:
    """The message for ``exc``, raised by the contract of ``record`` (an event type)."""
    where = _field(exc)
    rule = RULES.get(exc.rule or "")
    if rule is None:
        return f"{where or record}: {exc.message.removeprefix('data.').removeprefix('data ')}"
    return rule(exc, where if exc.rule == "required" else where or record, record)
