"""A shop's own export, read through its ``ColumnMapping``, as events.

In: the rows of a CSV or JSON Lines export (a ``HistoryFile``), its ``ColumnMapping`` and the input
contracts. Out: ``Row`` tuples of the mapping's event type: for purchases one per order, its
line items grouped by order id and totalled; for other types one per row, with an event id
derived from the row's content where none is mapped, so the same file always yields the same
ids. A row that a skip rule matches, or that lacks a required value, is counted in ``Issues``
with its line.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from streamproc.contracts import Contracts
from streamproc.tools.replay.exceptions import MappingError
from streamproc.tools.replay.files import HistoryFile, Row, jsonl_objects
from streamproc.tools.replay.mapping import BUILT, BadRow, ColumnMapping, FieldSpec
from streamproc.tools.replay.report import Issues


def _row_fields(row: dict[str, Any], specs: tuple[FieldSpec, ...], required: set[str]) -> dict[str, Any]:
    out = {}
    for spec in specs:
        value = spec.read(row)
        if value is not None:
            out[spec.name] = value
        elif spec.name in required:
            raise BadRow("missing value", f"{spec.column} is empty ({spec.name})")
    return out


def _mapped_rows(rows: Iterable[tuple[int, dict[str, Any]]], m: ColumnMapping, required: tuple[set[str], set[str]],
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


def mapped_events(rows: Iterable[tuple[int, dict[str, Any]]], m: ColumnMapping, contracts: Contracts,
                  skipped: Issues) -> Iterator[Row]:
    """Events built from a shop export's rows by ``m``; unusable rows are added to ``skipped``."""
    schema = next(orjson.loads(t.schema_path.read_bytes()) for t in contracts.inputs if t.event_type == m.event)
    required = (set(schema["required"]) - BUILT - {"event_id"},
                set(schema["properties"]["items"]["items"]["required"]) if m.items else set())
    built = _mapped_rows(rows, m, required, skipped)
    return _orders(built) if m.event == "purchase" else _singles(built, m.event)


def mapped_rows(src: HistoryFile, fmt: str, m: ColumnMapping, skipped: Issues) -> Iterator[tuple[int, dict[str, Any]]]:
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
