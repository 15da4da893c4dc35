"""The mapping file: which column of a shop's export feeds which event field (``docs/replay.md``).

In: a TOML (or ``.json``) mapping file and the input contracts it is checked against. Out: a
``ColumnMapping`` - the event type, the time column and its format (``TimeSpec``), where each event
and line-item field comes from (``FieldSpec``), which rows to skip (``SkipRule``) - or a
``MappingError`` that names the wrong key or column. The specs then read one row each:
``FieldSpec.read`` raises ``BadRow`` for a cell that cannot become its field.
"""

from __future__ import annotations

import codecs
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from streamproc.contracts import Contracts
from streamproc.tools.replay.exceptions import MappingError


class BadRow(Exception):
    """A row that cannot become (part of) an event: the kind of problem and its detail."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


def _whole(value: Any) -> int:
    number = float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


KINDS: dict[str, Callable[[Any], Any]] = {"integer": _whole, "number": float, "string": str}


@dataclass(frozen=True)
class FieldSpec:
    """Where one event (or line item) field comes from: a ``column``, cut by ``extract``,
    converted to the contract's type and prefixed by ``prefix``; or a constant ``value``."""

    name: str
    column: str | None = None
    value: Any = None
    prefix: str = ""
    extract: re.Pattern[str] | None = None
    convert: Callable[[Any], Any] | None = None

    def read(self, row: dict[str, Any]) -> Any:
        """The field's value in ``row``; None when the cell is empty or absent."""
        if self.column is None:
            return self.value
        value = row.get(self.column)
        value = value.strip() if isinstance(value, str) else value
        if value is None or value == "":
            return None
        if self.extract is not None:
            m = self.extract.search(str(value))
            if m is None:
                raise BadRow("no match for extract", f"{self.column} {value!r} ({self.name})")
            value = m.group(1) if m.groups() else m.group(0)
        if self.convert is not None:
            try:
                value = self.convert(value)
            except (ValueError, TypeError):
                raise BadRow("not a number", f"{self.column} {value!r} ({self.name})") from None
        return f"{self.prefix}{value}" if self.prefix else value


@dataclass(frozen=True)
class SkipRule:
    """Rows whose ``column`` matches are skipped and counted under ``reason``."""

    column: str
    reason: str
    starts_with: str | None = None
    equals: frozenset[str] = frozenset()
    empty: bool = False
    below: float | None = None
    above: float | None = None

    def matches(self, row: dict[str, Any]) -> bool:
        raw = row.get(self.column)
        text = "" if raw is None else str(raw).strip()
        if (self.empty and not text) or text in self.equals:
            return True
        if self.starts_with is not None and text.startswith(self.starts_with):
            return True
        if self.below is None and self.above is None:
            return False
        try:
            number = float(text)
        except ValueError:
            return False
        return (self.below is not None and number < self.below) or (self.above is not None and number > self.above)


@dataclass(frozen=True)
class TimeSpec:
    """The event time column: ``format`` for ``strptime``, ``epoch`` for epoch seconds (or
    milliseconds), None for ISO-8601; ``zone`` for times that carry none."""

    column: str
    format: str | None
    zone: tzinfo | None
    cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def iso(self, text: str) -> str:
        """ISO-8601 UTC of ``text``; ``text`` unchanged when it is not a time in this format."""
        done = self.cache.get(text)
        if done is None:
            done = self.cache[text] = self._parse(text)
        return done

    def _parse(self, text: str) -> str:
        try:
            if self.format == "epoch":
                number = float(text)
                when = datetime.fromtimestamp(number / 1000 if abs(number) >= 1e11 else number, timezone.utc)
            else:
                when = datetime.strptime(text, self.format) if self.format else datetime.fromisoformat(text)
        except (ValueError, OverflowError, OSError):
            return text
        if when.tzinfo is None:
            if self.zone is None:
                return text
            when = when.replace(tzinfo=self.zone)
        return when.astimezone(timezone.utc).isoformat()


@dataclass(frozen=True)
class ColumnMapping:
    """How the rows of a shop's export become events of one type (see docs/replay.md)."""

    event: str
    time: TimeSpec
    fields: tuple[FieldSpec, ...]
    items: tuple[FieldSpec, ...] = ()
    skip: tuple[SkipRule, ...] = ()
    encoding: str = "utf-8-sig"
    delimiter: str = ","

    def columns(self) -> set[str]:
        specs = (*self.fields, *self.items)
        return {self.time.column} | {s.column for s in specs if s.column} | {r.column for r in self.skip}


TOP_KEYS = {"event", "encoding", "delimiter", "time", "fields", "items", "skip"}
SKIP_TESTS = {"starts_with", "equals", "empty", "below", "above"}
BUILT = {"type", "ts", "items", "total"}  # fields replay fills in itself


def load_mapping(path: Path, contracts: Contracts) -> ColumnMapping:
    """Read a TOML (or ``.json``) mapping file and check it against the input contracts."""
    if not path.is_file():
        raise MappingError(f"no mapping file at {path}")
    try:
        text = path.read_text("utf-8")
        doc = orjson.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path} is not a valid mapping file: {exc}") from exc
    try:
        return _mapping(doc, contracts)
    except MappingError as exc:
        raise MappingError(f"mapping {path}: {exc}") from None


def _mapping(doc: Any, contracts: Contracts) -> ColumnMapping:
    if not isinstance(doc, dict):
        raise MappingError("the file must hold a table of keys (see docs/replay.md)")
    unknown = doc.keys() - TOP_KEYS
    if unknown:
        raise MappingError(f"unknown key(s) {sorted(unknown)}; the keys are {sorted(TOP_KEYS)}")
    types = {t.event_type: t for t in contracts.inputs}
    event = doc.get("event")
    if event not in types:
        raise MappingError(f"'event' must be one of {sorted(types)}, got {event!r}")
    schema = orjson.loads(types[event].schema_path.read_bytes())
    fields = _fields(doc.get("fields"), schema, f"{event} event", "fields")
    if event == "purchase":
        items = _fields(doc.get("items"), schema["properties"]["items"]["items"], "line item", "items")
    elif "items" in doc:
        raise MappingError("[items] is only for purchase events")
    else:
        items = ()
    return ColumnMapping(event, _time(doc.get("time")), fields, items, _skips(doc.get("skip", [])),
                   _encoding(doc.get("encoding", "utf-8-sig")), _delimiter(doc.get("delimiter", ",")))


def _encoding(value: Any) -> str:
    try:
        if isinstance(value, str):
            return codecs.lookup(value).name
    except LookupError:
        pass
    raise MappingError(f"encoding: {value!r} is not a text encoding (e.g. 'utf-8', 'latin-1', 'cp1252')")


def _delimiter(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1:
        raise MappingError(f"delimiter: give one character, e.g. ',' or ';', not {value!r}")
    return value


def _time(doc: Any) -> TimeSpec:
    if not isinstance(doc, dict) or not isinstance(doc.get("column"), str):
        raise MappingError("needs a [time] table with 'column' = the event time column")
    unknown = doc.keys() - {"column", "format", "timezone"}
    if unknown:
        raise MappingError(f"[time]: unknown key(s) {sorted(unknown)}; the keys are column, format, timezone")
    zone, name = None, doc.get("timezone")
    if name is not None:
        try:
            zone = timezone.utc if str(name).upper() == "UTC" else ZoneInfo(str(name))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise MappingError(f"[time] timezone: unknown time zone {name!r} "
                               "(an IANA name such as 'Europe/London', or 'UTC')") from exc
    fmt = doc.get("format")
    if fmt not in (None, "epoch") and "%z" not in str(fmt) and zone is None:
        raise MappingError("[time]: 'format' has no %z, so give 'timezone' (e.g. 'Europe/London')")
    return TimeSpec(doc["column"], fmt, zone)


def _spec(name: str, raw: Any, prop: dict[str, Any], where: str) -> FieldSpec:
    raw = {"column": raw} if isinstance(raw, str) else raw
    if not isinstance(raw, dict) or ("column" in raw) == ("value" in raw):
        raise MappingError(f"[{where}] {name}: give a column name, or a table with 'column' or 'value'")
    unknown = raw.keys() - {"column", "value", "prefix", "extract"}
    if unknown:
        raise MappingError(f"[{where}] {name}: unknown key(s) {sorted(unknown)}; "
                           "the keys are column, value, prefix, extract")
    try:
        extract = re.compile(raw["extract"]) if "extract" in raw else None
    except (re.error, TypeError) as exc:
        raise MappingError(f"[{where}] {name}: extract {raw['extract']!r} is not a regex: {exc}") from exc
    kind = prop.get("type", "string")
    return FieldSpec(name, raw.get("column"), raw.get("value"), str(raw.get("prefix", "")), extract,
                     KINDS.get(kind) if isinstance(kind, str) else None)


def _fields(doc: Any, schema: dict[str, Any], what: str, where: str) -> tuple[FieldSpec, ...]:
    if not isinstance(doc, dict):
        raise MappingError(f"needs a [{where}] table: {what} field = column")
    props = schema["properties"]
    for name in doc:
        if name not in props or name in BUILT:
            raise MappingError(f"[{where}] {name}: a {what} has no such field to take from a column; "
                               f"the fields are {sorted(props.keys() - BUILT)}")
    needed = set(schema["required"]) - BUILT - {"event_id"} - doc.keys()
    if needed:
        raise MappingError(f"[{where}] lacks {sorted(needed)}, which a {what} requires")
    choices = [alt["required"] for alt in schema.get("anyOf", []) if "required" in alt]
    if choices and not any(set(c) <= doc.keys() for c in choices):
        raise MappingError(f"[{where}] needs one of {[c[0] if len(c) == 1 else c for c in choices]}")
    return tuple(_spec(name, raw, props[name], where) for name, raw in doc.items())


def _skips(doc: Any) -> tuple[SkipRule, ...]:
    if not isinstance(doc, list):
        raise MappingError("'skip' must be a list of [[skip]] tables")
    return tuple(_skip(i, rule) for i, rule in enumerate(doc, 1))


def _skip(i: int, rule: Any) -> SkipRule:
    if not isinstance(rule, dict) or not isinstance(rule.get("column"), str):
        raise MappingError(f"[[skip]] rule {i}: needs 'column'")
    keys = {"column", "reason"} | SKIP_TESTS
    if rule.keys() - keys or not rule.keys() & SKIP_TESTS:
        raise MappingError(f"[[skip]] rule {i}: keys are column, reason and at least one of {sorted(SKIP_TESTS)}; "
                           f"got {sorted(rule)}")
    equals = rule.get("equals", [])
    equals = frozenset([equals] if isinstance(equals, str) else map(str, equals))
    return SkipRule(rule["column"], str(rule.get("reason") or f"skip rule {i} ({rule['column']})"),
                    rule.get("starts_with"), equals, bool(rule.get("empty", False)), rule.get("below"),
                    rule.get("above"))
