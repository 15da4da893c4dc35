"""streamproc: real-time customer intelligence over Kafka, with live profiles in Redis.

The event path, one package per step::

    topics/ contracts -> ingest (decode, validate, type) -> state (profile)
                      -> decisions (lifecycle, alerts) -> runtime (Kafka outputs, Redis)

``pipeline`` composes the pure steps; ``runtime`` is the only package that touches Faust,
Kafka or Redis.
"""

__version__ = "0.1.0"
