"""Reading and steering a running system from outside the worker: counters, dead letters,
publishing records, and the Redis reads behind ``streamproc stats``, ``models`` and ``dlq``."""
