"""The exception tree of streamproc.

::

    StreamprocError
    ├── ConfigError        settings or topic contracts are wrong; the message says which and how to fix it
    ├── StackError         the embedded broker or Redis could not be started or reached
    ├── ExtraMissing       a tool needs an optional extra that is not installed; the message says which
    ├── RulesInvalid       (decisions/rulefile.py) a trigger rules file has mistakes; one line-precise message each
    ├── ReplayError        (replay/) a history file cannot be replayed: missing topics, broker down, bad encoding
    │   └── MappingError   a column mapping names an unknown field or a column the file lacks
    └── FitError           (models/btyd.py, also a ValueError) too little data, or no usable fit, for the
                           lifetime-value models; the previous parameters stay in use

Bad input is not an exception here: the decoder returns a ``Rejection`` value (reason code
and message), which goes to the dead-letter topic.
"""

from __future__ import annotations


class StreamprocError(Exception):
    """Root of every error streamproc raises on purpose."""


class ConfigError(StreamprocError):
    """Configuration or topic contracts are invalid."""


class StackError(StreamprocError):
    """A component of the embedded stack failed to start or answer."""


class ExtraMissing(StreamprocError):
    """A tool needs a package of an optional extra (``pip install 'streamproc[tools]'``)."""


class RulesInvalid(ConfigError):
    """A trigger rules file has mistakes: ``errors`` holds one ``file:line: rule 'id': what to do`` each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
