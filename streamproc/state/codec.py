"""Frozen dataclasses <-> JSON documents, for profiles in Redis and events held for ordering.

``dumps`` writes any of streamproc's frozen dataclasses with orjson (datetimes and dates
as ISO-8601 text, so a ``GET`` in redis-cli is readable by people); ``loads(cls, data)``
builds it back. The conversion of each class is compiled once from its type hints, so
decoding costs a dict walk, not reflection per call.

>>> from streamproc.ingest.events import Item
>>> loads(Item, dumps(Item("SKU-1", 2, 9.5)))
Item(sku='SKU-1', quantity=2, price=9.5, category=None)
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from typing import Any, TypeVar

import orjson

T = TypeVar("T")
Convert = Callable[[Any], Any]


def dumps(obj: Any) -> bytes:
    """JSON bytes of a dataclass (nested dataclasses, tuples, dicts, datetimes included)."""
    return orjson.dumps(obj)


def loads(cls: type[T], data: bytes | str | dict[str, Any]) -> T:
    """The ``cls`` instance ``data`` (JSON text or an already parsed dict) describes."""
    plain = orjson.loads(data) if isinstance(data, (bytes, str)) else data
    return _converter(cls)(plain)


def _identity(v: Any) -> Any:
    return v


def _optional(inner: Convert) -> Convert:
    return lambda v: None if v is None else inner(v)


def _tuple_of(inner: Convert) -> Convert:
    return lambda v: tuple(inner(x) for x in v)


def _dict_of(inner: Convert) -> Convert:
    return lambda v: {k: inner(x) for k, x in v.items()}


def _for_type(tp: Any) -> Convert:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = _for_type(rest[0]) if len(rest) == 1 else _identity
        return _optional(inner)
    if origin is tuple:
        return _tuple_of(_for_type(args[0]) if args and args[-1] is Ellipsis else _identity)
    if origin is dict:
        return _dict_of(_for_type(args[1]))
    if tp is datetime:
        return datetime.fromisoformat
    if tp is date:
        return date.fromisoformat
    if dataclasses.is_dataclass(tp):
        return _converter(tp)
    if tp is float:
        return float
    return _identity


@cache
def _converter(cls: type) -> Convert:
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    plans = [(f.name, _for_type(hints[f.name])) for f in dataclasses.fields(cls)]

    def build(plain: dict[str, Any]) -> Any:
        return cls(**{name: conv(plain[name]) for name, conv in plans if name in plain})

    return build
