"""Replaying a history file into the input topics, in event-time order.

In: a CSV or JSON Lines file (gzip-compressed or not) holding either streamproc's native
events (the documents of ``topics/schemas/*.v1.json``, as ``streamproc generate`` writes
them) or a shop's own export plus a mapping file (``docs/replay.md``) that says which column
feeds which event field. Out: one record per event on the input topic that carries its
``type``, keyed by customer id, published in event-time order, and a ``Summary`` that counts
what was published and reports, with file line numbers, what could not be.

Rows that cannot become an event (a skip rule matched, a required value is missing, a line
is not JSON) are counted and reported, never dropped silently. An event whose ``ts`` is not
a time the worker accepts is published anyway, right after the event before it in the file;
the worker dead-letters it as ``bad_timestamp``, where ``streamproc dlq`` shows it.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import gzip
import hashlib
import io
import re
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone, tzinfo
from operator import itemgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.partitioner import DefaultPartitioner
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeRemainingColumn

from streamproc.contracts import Contracts
from streamproc.errors import StreamprocError
from streamproc.ingest.clean import Reject, clean_ts, normalise_customer_id
from streamproc.ingest.decode import parse_ts
from streamproc.runtime.produce import producer

if TYPE_CHECKING:
    from aiokafka.producer.message_accumulator import BatchBuilder

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
SHOWN = 5  # problem lines kept per kind
WARNINGS = {"unreadable time": "the worker dead-letters them as bad_timestamp",
            "no customer_id": "the worker dead-letters them as schema_violation"}
Out = tuple[float, str, bytes | None, bytes]  # (event time, topic, key, value)
Row = tuple[int, dict[str, Any], bytes | None]  # (file line, event, its original bytes if kept)
Tick = Callable[[int, int, int], None]  # (rows read, bytes of the file read, file size)


class ReplayError(StreamprocError):
    """The file, its format or the broker is not usable; the message says how to fix it."""


class MappingError(ReplayError):
    """The mapping file is wrong; the message names the key or column."""


# --------------------------------------------------------------------------- reports


@dataclass
class Issues:
    """Problems by kind: every occurrence counted, the first few kept as ``(line, detail)``."""

    counts: Counter[str] = field(default_factory=Counter)
    first: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def add(self, kind: str, line: int, detail: str = "") -> None:
        self.counts[kind] += 1
        shown = self.first.setdefault(kind, [])
        if len(shown) < SHOWN:
            shown.append((line, detail))

    def as_dict(self) -> dict[str, Any]:
        return {k: {"count": n, "first": [{"line": ln, "detail": d} for ln, d in self.first[k]]}
                for k, n in self.counts.most_common()}

    def lines(self, verb: str, noun: str, notes: dict[str, str]) -> list[str]:
        """One line per kind: its count, then where its first occurrences are."""
        out = []
        for kind, n in self.counts.most_common():
            first = self.first[kind]
            if any(d for _, d in first):
                where = "; ".join(f"line {ln}: {d}" if d else f"line {ln}" for ln, d in first)
            else:
                where = ("line " if len(first) == 1 else "lines ") + ", ".join(str(ln) for ln, _ in first)
            more = f" and {n - len(first):,} more" if n > len(first) else ""
            note = f" ({notes[kind]})" if kind in notes else ""
            out.append(f"  {verb} {_plural(n, noun)}: {kind}{note}: {where}{more}")
        return out


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


@dataclass
class Summary:
    """What one replay read, published and could not use."""

    file: str
    format: str
    mapping: str | None
    dry_run: bool
    rows: int = 0
    events: int = 0
    published: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: Issues = field(default_factory=Issues)
    warnings: Issues = field(default_factory=Issues)

    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self) | {"skipped": self.skipped.as_dict(), "warnings": self.warnings.as_dict()}
        return doc | {"rows_skipped": self.skipped.counts.total(), "events_per_s": round(self.rate())}

    def lines(self) -> list[str]:
        """The human report: counts and throughput, then one line per kind of problem."""
        topics = ", ".join(f"{t} {n:,}" for t, n in self.by_topic.items())
        rows = f" from {_plural(self.rows, 'row')}" if self.mapping else ""
        head = (f"{'parsed' if self.dry_run else 'replayed'} {self.events:,} events ({topics}){rows} in "
                f"{self.seconds:.1f} s: {self.rate():,.0f} events/s; {_plural(self.skipped.counts.total(), 'row')} "
                f"skipped{'; dry run, nothing published' if self.dry_run else ''}")
        verb = "would publish" if self.dry_run else "published"
        return [head, *self.skipped.lines("skipped", "row", {}), *self.warnings.lines(verb, "event", WARNINGS)]


# --------------------------------------------------------------------------- event time


def event_time(value: Any) -> float | None:
    """Epoch seconds of ``ts`` exactly as the worker reads it, or None where the worker
    dead-letters it as ``bad_timestamp``.

    >>> event_time("2026-01-05T10:00:00+01:00"), event_time("2026-01-05 09:00:00+0000")
    (1767603600.0, 1767603600.0)
    >>> event_time("12/1/2010 8:26") is None
    True
    """
    if isinstance(value, str) and len(value) > 19 and value[-3] == ":" and value[-6] in "+-":
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    try:
        text = clean_ts(value, [])
        return parse_ts(text).timestamp() if isinstance(text, str) else None
    except Reject:
        return None


# --------------------------------------------------------------------------- files


def detect_format(path: Path, given: str | None) -> str:
    """``csv`` or ``jsonl``: as given, else from the name (a ``.gz`` ending is looked through)."""
    if given:
        return given
    found = FORMATS.get(Path(path.name.lower().removesuffix(".gz")).suffix)
    if found is None:
        raise ReplayError(f"cannot tell the format of {path} from its name: give --format csv or --format jsonl")
    return found


@dataclass
class Source:
    """A history file opened for reading: its bytes (gunzipped if needed) and how far it is read."""

    path: Path
    raw: IO[bytes]
    data: IO[bytes]
    size: int
    tick: Tick
    rows: int = 0

    def read(self, n: int) -> None:
        """Note that ``n`` rows are read, telling the display now and then."""
        self.rows = n
        if n % 8192 == 0:
            self.tick(n, self.raw.tell(), self.size)

    def csv(self, encoding: str, delimiter: str) -> tuple[list[str], Any]:
        """The header and a reader of the remaining rows."""
        reader = csv.reader(io.TextIOWrapper(self.data, encoding=encoding, newline=""), delimiter=delimiter)
        header = next(reader, None)
        if not header:
            raise ReplayError(f"{self.path} is empty: a CSV history needs a header row")
        return [h.strip() for h in header], reader


@contextmanager
def open_source(path: Path, tick: Tick) -> Iterator[Source]:
    """Open ``path``, gunzipping it when it starts with the gzip magic bytes."""
    if not path.is_file():
        raise ReplayError(f"no file at {path}: give the path of a CSV or JSON Lines history file")
    with open(path, "rb") as raw:
        zipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        src = Source(path, raw, gzip.GzipFile(fileobj=raw) if zipped else raw, path.stat().st_size, tick)
        yield src
        tick(src.rows, src.size, src.size)


# --------------------------------------------------------------------------- native events

CONVERTERS: dict[str, Callable[[str], Any]] = {"integer": int, "number": float, "array": orjson.loads,
                                               "object": orjson.loads}


def native_columns(contracts: Contracts) -> dict[str, str]:
    """Column -> JSON type of every top-level field of the input contracts, in schema order:
    the columns of the native CSV form."""
    out: dict[str, str] = {}
    for t in contracts.inputs:
        for name, prop in orjson.loads(t.schema_path.read_bytes())["properties"].items():
            kind = prop.get("type", "string")
            out.setdefault(name, kind if isinstance(kind, str) else "string")
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def write_native_csv(events: Iterable[dict[str, Any]], out: IO[bytes], contracts: Contracts) -> int:
    """Write events to ``out`` as native CSV (UTF-8): one row per event, one column per field of
    the input contracts, ``items`` as a JSON cell. Returns the rows written."""
    columns = list(native_columns(contracts))
    known = set(columns)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(columns)
    n = 0
    try:
        for n, e in enumerate(events, 1):
            if not known.issuperset(e):
                raise ReplayError(f"event {e.get('event_id')!r} has fields outside the contracts: "
                                  f"{sorted(e.keys() - known)}")
            writer.writerow([_cell(e.get(c)) for c in columns])
    finally:
        text.flush()
        text.detach()
    return n


def _typed(value: str, convert: Callable[[str], Any]) -> Any:
    try:
        return convert(value)
    except ValueError:
        return value  # left as sent: the worker corrects it or dead-letters it with the reason


def native_csv(src: Source, contracts: Contracts) -> Iterator[Row]:
    """One event per row of a native CSV; an empty cell is an absent field, numbers and
    ``items`` get the types the contracts give them."""
    header, reader = src.csv("utf-8-sig", ",")
    if "type" not in header:
        raise ReplayError(f"{src.path} has no 'type' column, so it is not streamproc's native CSV: "
                          "give --mapping FILE to say which columns feed which event fields")
    kinds = native_columns(contracts)
    typed = [(c, CONVERTERS[kinds[c]]) for c in header if kinds.get(c) in CONVERTERS]
    filled = itemgetter(1)
    for n, row in enumerate(reader, 1):
        doc = dict(filter(filled, zip(header, row)))
        for name, convert in typed:
            if name in doc:
                doc[name] = _typed(doc[name], convert)
        src.read(n)
        yield reader.line_num, doc, None


def jsonl_objects(src: Source, skipped: Issues) -> Iterator[Row]:
    """One object per non-blank line, with the line's bytes; other lines are skipped."""
    for n, line in enumerate(src.data, 1):
        raw = line.strip()
        src.read(n)
        if not raw:
            continue
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            skipped.add("not JSON", n, str(exc)[:80])
            continue
        if not isinstance(doc, dict):
            skipped.add("not a JSON object", n, type(doc).__name__)
            continue
        yield n, doc, raw


# --------------------------------------------------------------------------- mapping


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
class Mapping:
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


def load_mapping(path: Path, contracts: Contracts) -> Mapping:
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


def _mapping(doc: Any, contracts: Contracts) -> Mapping:
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
    return Mapping(event, _time(doc.get("time")), fields, items, _skips(doc.get("skip", [])),
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


# --------------------------------------------------------------------------- mapped rows -> events


def _row_fields(row: dict[str, Any], specs: tuple[FieldSpec, ...], required: set[str]) -> dict[str, Any]:
    out = {}
    for spec in specs:
        value = spec.read(row)
        if value is not None:
            out[spec.name] = value
        elif spec.name in required:
            raise BadRow("missing value", f"{spec.column} is empty ({spec.name})")
    return out


def _mapped_rows(rows: Iterable[tuple[int, dict[str, Any]]], m: Mapping, required: tuple[set[str], set[str]],
                 skipped: Issues) -> Iterator[tuple[int, dict[str, Any], dict[str, Any]]]:
    """``(line, event fields with ts, line item)`` per row that is not skipped."""
    for line, row in rows:
        rule = next((r for r in m.skip if r.matches(row)), None)
        if rule is not None:
            skipped.add(rule.reason, line)
            continue
        try:
            when = row.get(m.time.column)
            when = when.strip() if isinstance(when, str) else when
            if when is None or when == "":
                raise BadRow("missing value", f"{m.time.column} is empty (ts)")
            doc = _row_fields(row, m.fields, required[0])
            item = _row_fields(row, m.items, required[1])
        except BadRow as bad:
            skipped.add(bad.kind, line, bad.detail)
            continue
        doc["ts"] = m.time.iso(str(when))
        yield line, doc, item


def _orders(rows: Iterable[tuple[int, dict[str, Any], dict[str, Any]]]) -> Iterator[Row]:
    """Line items grouped by order id into one purchase each, in the order of their first line,
    whose fields (customer, time, currency...) the purchase takes."""
    orders: dict[Any, tuple[int, dict[str, Any], list[dict[str, Any]]]] = {}
    for line, doc, item in rows:
        order = orders.get(doc["order_id"])
        if order is None:
            order = orders[doc["order_id"]] = (line, doc, [])
        order[2].append(item)
    for line, doc, items in orders.values():
        total = round(sum(i["quantity"] * i["price"] for i in items), 6)
        head = {"event_id": doc.pop("event_id", f"purchase:{doc['order_id']}"), "type": "purchase",
                "customer_id": doc.pop("customer_id"), "ts": doc.pop("ts")}
        yield line, head | doc | {"items": items, "total": total}, None


def _singles(rows: Iterable[tuple[int, dict[str, Any], dict[str, Any]]], event: str) -> Iterator[Row]:
    """One event per row. Without a mapped event_id, the id is a hash of the event's content
    (and its occurrence, for identical rows), so the same file always yields the same ids."""
    seen: Counter[str] = Counter()
    for line, doc, _ in rows:
        if "event_id" not in doc:
            digest = hashlib.blake2b(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()
            seen[digest] += 1
            doc["event_id"] = f"{event}:{digest}" + (f":{seen[digest]}" if seen[digest] > 1 else "")
        yield line, {"event_id": doc.pop("event_id"), "type": event} | doc, None


def mapped_events(rows: Iterable[tuple[int, dict[str, Any]]], m: Mapping, contracts: Contracts,
                  skipped: Issues) -> Iterator[Row]:
    """Events built from a shop export's rows by ``m``; unusable rows are added to ``skipped``."""
    schema = next(orjson.loads(t.schema_path.read_bytes()) for t in contracts.inputs if t.event_type == m.event)
    required = (set(schema["required"]) - BUILT - {"event_id"},
                set(schema["properties"]["items"]["items"]["required"]) if m.items else set())
    built = _mapped_rows(rows, m, required, skipped)
    return _orders(built) if m.event == "purchase" else _singles(built, m.event)


def mapped_rows(src: Source, fmt: str, m: Mapping, skipped: Issues) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, column -> cell)`` per row of a shop export."""
    if fmt == "jsonl":
        yield from ((line, doc) for line, doc, _ in jsonl_objects(src, skipped))
        return
    header, reader = src.csv(m.encoding, m.delimiter)
    missing = sorted(m.columns() - set(header))
    if missing:
        raise MappingError(f"mapping names column(s) {missing} that {src.path} lacks; its columns are {header}")
    for n, row in enumerate(reader, 1):
        src.read(n)
        yield reader.line_num, dict(zip(header, row))


# --------------------------------------------------------------------------- ordering


class Router:
    """Topic and key of each event: the input topic carrying its ``type`` (as the worker reads
    it: trimmed, lower case), keyed by the customer id in the worker's canonical form (trimmed,
    upper case), so that differently spelled ids of one customer share a partition."""

    def __init__(self, contracts: Contracts) -> None:
        self.topics: dict[Any, str | None] = {t.event_type: t.name for t in contracts.inputs}
        self.keys: dict[Any, bytes | None] = {}

    def topic(self, kind: Any) -> str | None:
        if not isinstance(kind, str):
            return None
        if kind not in self.topics:
            self.topics[kind] = self.topics.get(kind.strip().lower())
        return self.topics[kind]

    def key(self, customer_id: Any) -> bytes | None:
        if not isinstance(customer_id, str):
            return None
        if customer_id not in self.keys:
            self.keys[customer_id] = normalise_customer_id(customer_id).encode() or None
        return self.keys[customer_id]


def _json(doc: dict[str, Any]) -> bytes:
    """``doc`` as JSON, copied into bytes of its own size: the bytes orjson returns keep its
    whole write buffer (about 4 KB), which for 100k kept records is 400 MB."""
    return bytes(memoryview(orjson.dumps(doc)))


def order_events(events: Iterable[Row], router: Router, skipped: Issues, warnings: Issues) -> list[Out]:
    """Records sorted by event time, ties in file order. An event without a readable time
    takes the time of the event before it in the file, so it is published right after it."""
    out: list[Out] = []
    last = float("-inf")
    for line, doc, raw in events:
        topic = router.topic(doc.get("type"))
        if topic is None:
            skipped.add("unknown type", line, repr(doc.get("type"))[:60])
            continue
        when = event_time(doc.get("ts"))
        if when is None:
            warnings.add("unreadable time", line, repr(doc.get("ts"))[:60])
            when = last
        last = when
        key = router.key(doc.get("customer_id"))
        if key is None:
            warnings.add("no customer_id", line, repr(doc.get("customer_id"))[:60])
        out.append((when, topic, key, raw if raw is not None else _json(doc)))
    out.sort(key=itemgetter(0))
    return out


# --------------------------------------------------------------------------- publishing


async def publish_ordered(kafka_url: str, records: list[Out], on_acked: Callable[[int], None]) -> int:
    """Publish ``records``, each partition's in list order, in batches. A key goes to the partition
    ``AIOKafkaProducer.send(key=...)`` would pick (aiokafka's default partitioner), as with
    ``generate --publish``. Returns the number of records the broker acknowledged."""
    prod = producer(kafka_url)
    try:
        await prod.start()
    except KafkaConnectionError as exc:
        await prod.stop()
        raise ReplayError(f"cannot reach the broker at {kafka_url} ({exc}): start one with 'streamproc dev' "
                          "and export the STREAMPROC_KAFKA_URL it prints, or use --dry-run") from exc
    try:
        parts = await _partitions(prod, kafka_url, {r[1] for r in records})
        return await _Batches(prod, parts, on_acked).send(records)
    except KafkaError as exc:
        raise ReplayError(f"the broker at {kafka_url} did not accept the records: {exc}") from exc
    finally:
        await prod.stop()


async def _partitions(prod: AIOKafkaProducer, kafka_url: str, topics: set[str]) -> dict[str, list[int]]:
    cluster = await prod.client.fetch_all_metadata()
    found = {}
    for topic in sorted(topics):
        parts = cluster.partitions_for_topic(topic)
        if not parts:
            raise ReplayError(f"topic {topic!r} does not exist on {kafka_url}: create the topics with "
                              "'streamproc topics create' (or run 'streamproc dev')")
        found[topic] = sorted(parts)
    return found


class _Batches:
    """One open batch per topic-partition, handed to the producer when full. The producer sends
    one batch per partition at a time, so each partition receives its records in list order."""

    def __init__(self, prod: AIOKafkaProducer, parts: dict[str, list[int]], on_acked: Callable[[int], None]) -> None:
        self.prod, self.parts, self.on_acked = prod, parts, on_acked
        self.chosen: dict[tuple[str, bytes | None], int] = {}
        self.open: dict[tuple[str, int], BatchBuilder] = {}
        self.futures: list[asyncio.Future[Any]] = []
        self.acked = 0

    async def send(self, records: list[Out]) -> int:
        for _, topic, key, value in records:
            tp = (topic, self._partition(topic, key))
            batch = self.open.get(tp)
            if batch is None:
                batch = self.open[tp] = self.prod.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full; an empty one takes any record
                await self._flush(tp)
                self.open[tp] = self.prod.create_batch()
                self.open[tp].append(key=key, value=value, timestamp=None)
        for tp in list(self.open):
            await self._flush(tp)
        await asyncio.gather(*self.futures)
        return self.acked

    def _partition(self, topic: str, key: bytes | None) -> int:
        p = self.chosen.get((topic, key))
        if p is None:
            p = self.chosen[(topic, key)] = DefaultPartitioner()(key, self.parts[topic], self.parts[topic])
        return p

    async def _flush(self, tp: tuple[str, int]) -> None:
        batch = self.open.pop(tp)
        size = batch.record_count()
        future = await self.prod.send_batch(batch, tp[0], partition=tp[1])
        future.add_done_callback(lambda f: self._acked(f, size))
        self.futures.append(future)

    def _acked(self, future: asyncio.Future[Any], size: int) -> None:
        if not future.cancelled() and future.exception() is None:
            self.acked += size
            self.on_acked(self.acked)


# --------------------------------------------------------------------------- the whole run


@dataclass(frozen=True)
class ReplayOptions:
    path: Path
    format: str | None = None
    mapping: Path | None = None
    dry_run: bool = False


class Display:
    """Where a run reports its progress; this one shows nothing (``--json``, tests)."""

    def reading(self, rows: int, done: int, size: int) -> None:
        """``rows`` read so far, ``done`` of the file's ``size`` bytes."""

    def publishing(self, acked: int, total: int) -> None:
        """``acked`` of ``total`` records acknowledged by the broker."""


class ProgressDisplay(Display):
    """A rich progress bar on a terminal: rows read, then events published, with rate and ETA."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(TextColumn("{task.description:<10}"), BarColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[count]}"), TextColumn("{task.fields[rate]}"),
                            TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal)
        self.tasks: dict[str, tuple[TaskID, float]] = {}

    def __enter__(self) -> ProgressDisplay:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def reading(self, rows: int, done: int, size: int) -> None:
        self._show("reading", done, size, rows, "rows")

    def publishing(self, acked: int, total: int) -> None:
        self._show("publishing", acked, total, acked, "events")

    def _show(self, name: str, done: int, total: int, count: int, unit: str) -> None:
        if name not in self.tasks:
            self.tasks[name] = (self.bar.add_task(name, total=total, count="", rate=""), time.perf_counter())
        task, started = self.tasks[name]
        rate = count / max(time.perf_counter() - started, 1e-6)
        self.bar.update(task, completed=done, count=f"{count:,} {unit}", rate=f"{rate:,.0f} {unit}/s")


def read_events(opts: ReplayOptions, fmt: str, contracts: Contracts, summary: Summary, display: Display) -> list[Out]:
    """Parse the file (through the mapping, if any) and return its records in event-time order."""
    mapping = load_mapping(opts.mapping, contracts) if opts.mapping else None
    with open_source(opts.path, display.reading) as src:
        try:
            if mapping is not None:
                events = mapped_events(mapped_rows(src, fmt, mapping, summary.skipped), mapping, contracts,
                                       summary.skipped)
            else:
                events = native_csv(src, contracts) if fmt == "csv" else jsonl_objects(src, summary.skipped)
            records = order_events(events, Router(contracts), summary.skipped, summary.warnings)
        except UnicodeDecodeError as exc:
            raise ReplayError(f"{opts.path} is not {exc.encoding} text: set 'encoding' in a mapping file "
                              "(e.g. encoding = \"latin-1\"), or convert the file to UTF-8") from exc
        except (csv.Error, EOFError, gzip.BadGzipFile) as exc:
            raise ReplayError(f"{opts.path} cannot be read after row {src.rows:,}: {exc}") from exc
    summary.rows, summary.events = src.rows, len(records)
    summary.by_topic = {t.name: 0 for t in contracts.inputs} | dict(Counter(r[1] for r in records))
    return records


def run_replay(opts: ReplayOptions, contracts: Contracts, kafka_url: str, display: Display) -> Summary:
    """Read, order and (unless a dry run) publish the file; the summary of what happened."""
    fmt = detect_format(opts.path, opts.format)
    summary = Summary(str(opts.path), fmt, str(opts.mapping) if opts.mapping else None, opts.dry_run)
    started = time.perf_counter()
    records = read_events(opts, fmt, contracts, summary, display)
    if not opts.dry_run and records:
        display.publishing(0, len(records))
        summary.published = asyncio.run(publish_ordered(
            kafka_url, records, lambda n: display.publishing(n, len(records))))
    summary.seconds = time.perf_counter() - started
    return summary
