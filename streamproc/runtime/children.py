"""Child processes of the worker (the processing process, population fits) end with it."""

from __future__ import annotations

import ctypes
import signal


def die_with_parent() -> None:
    """Ask the kernel to send this process SIGTERM when its parent ends (Linux)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
