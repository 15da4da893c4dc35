"""Customer state behind one protocol: ``Store``, kept in Redis (``RedisStore``) or in
process memory (``MemoryStore``, its twin for tests and tools).

In: a batch's reads (customers, topic-partitions, watermarks) and its ``Changes``. Out:
``Loaded`` and ``Waiting``. ``base`` holds the protocol and its contract; ``redis`` and
``memory`` the two stores.
"""

from streamproc.runtime.store.base import Changes, Conflict, Held, Loaded, Store, Waiting
from streamproc.runtime.store.memory import MemoryStore
from streamproc.runtime.store.redis import RedisStore

__all__ = ["Changes", "Conflict", "Held", "Loaded", "MemoryStore", "RedisStore", "Store", "Waiting"]
