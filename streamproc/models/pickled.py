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
        """The object ``dumps`` wrote; a ``TypeError`` if ``data`` holds anything else."""
        state = pickle.loads(data)
        if not isinstance(state, cls):
            raise TypeError(f"expected a {cls.__name__} snapshot, got {type(state).__name__}")
        return state
