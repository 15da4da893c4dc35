"""What a store of customer state does for the processor, whatever keeps the state.

In: customer ids, topic-partitions and watermarks to read; a batch's ``Changes`` to write.
Out: ``Loaded`` (profiles, applied offsets, high marks, the population, outboxes left by a
crash) and ``Waiting`` (held events and due timers the watermarks released). The values are
the core's (``streamproc.plan``, ``streamproc.ordering``), re-exported here.

The contract, held by ``tests/integration/test_store_contract.py`` against every store:

* ``write`` makes a batch's changes visible together or not at all, through the ``guard``
  opened before the batch's reads; if another writer applied records of one of the guarded
  partitions since the guard was opened, it raises ``Conflict`` and writes nothing;
* a partition's outbox is the one its last write left (or none), until ``published``
  removes it; ``published`` never removes a newer outbox;
* ``waiting`` returns held events at or below each partition's watermark, oldest first, at
  most ``limit`` per partition, and lowers the watermark of a partition that hit the limit
  to its newest released event; held events stay held until a write releases them;
* profiles, applied offsets and high marks read back as written; the population is
  ranked over the profiles written;
* the item counters (``state.items``) are the sums of the increments written, each touched
  neighbour set trimmed to the heaviest ``trim`` after each write; ``items`` reads them in
  ``ZREVRANGE`` order (weight, then member, both descending), as ``models.items.ItemTable`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from streamproc.decisions.rules import Rules
from streamproc.errors import StreamprocError
from streamproc.models.items import ItemView
from streamproc.ordering import Held
from streamproc.plan import Changes, Loaded, Waiting
from streamproc.state.profile import Profile

__all__ = ["Changes", "Conflict", "Held", "Loaded", "Store", "Waiting"]


class Conflict(StreamprocError):
    """Another writer applied records of a guarded partition since the guard was opened: read again."""


class Store(Protocol):
    """Batched reads and transactional writes of customer state."""

    rules: Rules

    def guard(self, partitions: Iterable[int]) -> AbstractAsyncContextManager[Any]:
        """A guard on the applied offsets of ``partitions``, for one batch's reads and write."""
        ...

    async def load(self, customers: list[str], tps: list[str]) -> Loaded:
        """Profiles of ``customers``; applied offsets of ``tps``; high marks, population, outboxes."""
        ...

    async def waiting(self, watermarks: Mapping[int, float], limit: int) -> Waiting:
        """Held events and due customers released by ``watermarks`` (see the module docstring)."""
        ...

    async def profiles(self, customers: list[str]) -> dict[str, Profile]:
        """The stored profiles of those of ``customers`` that have one."""
        ...

    async def write(self, changes: Changes, guard: Any) -> None:
        """Everything ``changes`` changed, at once, or ``Conflict``."""
        ...

    async def published(self, partitions: Iterable[int], outbox: bytes) -> None:
        """``outbox`` is published: remove it from ``partitions`` (not a newer one written since)."""
        ...

    async def items(self, skus: Iterable[str], top: int) -> ItemView | None:
        """The item counters of ``skus`` and the ``top`` most popular (None without the item model)."""
        ...
