"""The exception tree of streamproc.

::

    StreamprocError
    ├── ConfigError        settings or topic contracts are wrong; the message says which and how to fix it
    ├── StackError         the embedded broker or Redis could not be started or reached
    └── ContractError      an event or record does not match its topic contract (carries a reason code)

Bad input never escapes an agent as an exception: the decoder returns a ``Rejection`` value,
which goes to the dead-letter topic. ``ContractError`` is for tools that want to raise.
"""

from __future__ import annotations


class StreamprocError(Exception):
    """Root of every error streamproc raises on purpose."""


class ConfigError(StreamprocError):
    """Configuration or topic contracts are invalid."""


class StackError(StreamprocError):
    """A component of the embedded stack failed to start or answer."""


class ContractError(StreamprocError):
    """A record violates its topic contract."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
