"""Profile <-> Redis hash. Times are ISO-8601 UTC strings, so ``HGETALL`` is readable by people."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

import orjson

from streamproc.state.profile import Profile


def _time(v: bytes) -> datetime:
    return datetime.fromisoformat(v.decode())


_DECODERS: dict[str, Callable[[bytes], Any]] = {
    "str": bytes.decode, "int": int, "float": float, "datetime": _time,
    "int | None": int, "float | None": float, "datetime | None": _time, "tuple[str, ...]": lambda v: tuple(orjson.loads(v)),
}
_FIELDS = [(f.name, _DECODERS[str(f.type)]) for f in fields(Profile)]


def _encode_value(v: Any) -> str | bytes:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, tuple):
        return orjson.dumps(v)
    return str(v)


def encode(p: Profile) -> dict[str, str | bytes]:
    """The hash fields of a profile; ``None`` fields are left out."""
    return {f.name: _encode_value(v) for f in fields(p) if (v := getattr(p, f.name)) is not None}


def decode(h: Mapping[bytes, bytes]) -> Profile | None:
    """A profile from ``HGETALL`` output, or ``None`` for an empty hash (no such customer)."""
    if not h:
        return None
    return Profile(**{name: conv(h[name.encode()]) for name, conv in _FIELDS if name.encode() in h})
