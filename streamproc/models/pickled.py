"""Snapshots of learned state as bytes: the whole object pickled, checked on the way back.

A pickle can run code when it is loaded: ``loads`` is only for bytes that ``dumps`` wrote
(streamproc's own keys in Redis), never for anything a client sent.
"""

from __future__ import annotations

import pickle
from typing import Self


class Pickled:
    """``dumps`` / ``loads`` of the whole object; ``loads`` refuses an object of another class."""

    def dumps(self) -> bytes:
        """The whole object as bytes, for Redis."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(cls, data: bytes) -> Self:
        """The object ``dumps`` wrote; a ``TypeError`` if ``data`` holds anything else, or a snapshot
        that names classes this streamproc does not have (written by another version)."""
        try:
            state = pickle.loads(data)
        except (ImportError, AttributeError, pickle.UnpicklingError) as exc:
            raise TypeError(f"a {cls.__name__} snapshot this streamproc cannot read, written by another "
                            f"version? ({type(exc).__name__}: {exc})") from exc
        if not isinstance(state, cls):
            raise TypeError(f"expected a {cls.__name__} snapshot, got {type(state).__name__}")
        return state
