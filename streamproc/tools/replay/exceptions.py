"""The errors of a replay, both under ``StreamprocError``.

In: nothing. Out: the two exceptions replay raises on purpose, each message saying what to fix::

    ReplayError        the file, its format or the broker is not usable
    └── MappingError   the mapping file is wrong: an unknown key or field, a column the file lacks
"""

from __future__ import annotations

from streamproc.errors import StreamprocError


class ReplayError(StreamprocError):
    """The file, its format or the broker is not usable; the message says how to fix it."""


class MappingError(ReplayError):
    """The mapping file is wrong; the message names the key or column."""
