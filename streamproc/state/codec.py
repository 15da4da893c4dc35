"""Frozen dataclasses <-> JSON documents, for profiles in Redis and events held for ordering.

``dumps`` writes any of streamproc's frozen dataclasses with orjson (datetimes and dates
as ISO-8601 text, so a ``GET`` in redis-cli is readable by people); ``loads(cls, data)``
builds it back. The conversion of each class is compiled once from its type hints, so
decoding costs a dict walk, not reflection per call.

>>> from streamproc.records import Item
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
    if inner is _identity:
        return tuple
    return lambda v: tuple([inner(x) for x in v])


def _dict_of(inner: Convert) -> Convert:
    return lambda v: {k: inner(x) for k, x in v.items()}


def _for_type(tp: Any) -> Convert:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = _for_type(rest[0]) if len(rest) == 1 else _identity
        return _optional(inner)
    if origin is tuple:
        if args and args[-1] is Ellipsis:
            return _tuple_of(_for_type(args[0]))
        if args:  # a fixed-length tuple, such as (sku, time)
            parts = [_for_type(a) for a in args]
            if all(c is _identity for c in parts):
                return tuple
            return lambda v: tuple([c(x) for c, x in zip(parts, v)])
        return _tuple_of(_identity)
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


class _Source:
    """Python source of one expression per field, with the names it refers to."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.temps = 0

    def name(self, value: Any) -> str:
        key = f"_f{len(self.scope)}"
        self.scope[key] = value
        return key

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def expr(self, tp: Any, v: str) -> str:
        """An expression converting the plain value named ``v`` to ``tp``, as ``_for_type`` does."""
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1:
                return v
            inner = self.expr(rest[0], v)
            return v if inner == v else f"(None if {v} is None else {inner})"
        if origin is tuple:
            if not (args and args[-1] is Ellipsis):
                return f"tuple({v})"
            t = self.temp()
            inner = self.expr(args[0], t)
            return f"tuple({v})" if inner == t else f"tuple([{inner} for {t} in {v}])"
        if origin is dict:
            t, k = self.temp(), self.temp()
            return f"{{{k}: {self.expr(args[1], t)} for {k}, {t} in {v}.items()}}"
        if tp is datetime:
            return f"{self.name(datetime.fromisoformat)}({v})"
        if tp is date:
            return f"{self.name(date.fromisoformat)}({v})"
        if dataclasses.is_dataclass(tp):
            return f"{self.name(_converter(tp))}({v})"
        if tp is float:
            return f"float({v})"
        return v


@cache
def _converter(cls: type) -> Convert:
    """The builder of ``cls`` from its plain dict: generated code calling ``cls`` with every field
    converted; a dict that lacks fields (written before they existed) takes the general path,
    which leaves them to their defaults."""
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    fields = dataclasses.fields(cls)
    plans = [(f.name, _for_type(hints[f.name])) for f in fields]

    def general(plain: dict[str, Any]) -> Any:
        return cls(**{name: conv(plain[name]) for name, conv in plans if name in plain})

    src = _Source()
    cls_name, general_name = src.name(cls), src.name(general)
    lines = []
    for i, f in enumerate(fields):
        lines.append(f"        _v{i} = plain[{f.name!r}]")
    args = ", ".join(f"{f.name}={src.expr(hints[f.name], f'_v{i}')}" for i, f in enumerate(fields))
    code = ("def build(plain):\n    try:\n" + "\n".join(lines) + "\n    except KeyError:\n"
            f"        return {general_name}(plain)\n    return {cls_name}({args})\n")
    exec(code, src.scope)  # noqa: S102 - code built from the class's own type hints
    return src.scope["build"]
