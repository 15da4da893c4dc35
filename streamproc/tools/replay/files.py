"""History files: their format, their bytes, and streamproc's native events in them.

In: a path (``.csv``, ``.jsonl`` or ``.ndjson``, gzip-compressed or not) and the input
contracts. Out: ``Row`` tuples ``(file line, event, the line's bytes if kept)``: one per row of
a native CSV (one column per event field, typed as the contracts say), or one per line of a
JSON Lines file (kept as sent); a line that is not a JSON object is counted in ``Issues``.
``write_native_csv`` goes the other way: events in, native CSV out.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import orjson

from streamproc.contracts import Contracts
from streamproc.tools.replay.exceptions import ReplayError
from streamproc.tools.replay.report import Issues

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
Row = tuple[int, dict[str, Any], bytes | None]  # (file line, event, its original bytes if kept)
Tick = Callable[[int, int, int], None]  # (rows read, bytes of the file read, file size)


def detect_format(path: Path, given: str | None) -> str:
    """``csv`` or ``jsonl``: as given, else from the name (a ``.gz`` ending is looked through)."""
    if given:
        return given
    found = FORMATS.get(Path(path.name.lower().removesuffix(".gz")).suffix)
    if found is None:
        raise ReplayError(f"cannot tell the format of {path} from its name: give --format csv or --format jsonl")
    return found


@dataclass
class HistoryFile:
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
def open_source(path: Path, tick: Tick) -> Iterator[HistoryFile]:
    """Open ``path``, gunzipping it when it starts with the gzip magic bytes."""
    if not path.is_file():
        raise ReplayError(f"no file at {path}: give the path of a CSV or JSON Lines history file")
    with open(path, "rb") as raw:
        zipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        src = HistoryFile(path, raw, gzip.GzipFile(fileobj=raw) if zipped else raw, path.stat().st_size, tick)
        yield src
        tick(src.rows, src.size, src.size)


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


def native_csv(src: HistoryFile, contracts: Contracts) -> Iterator[Row]:
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


def jsonl_objects(src: HistoryFile, skipped: Issues) -> Iterator[Row]:
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
