"""Replaying a history file into the input topics, in event-time order.

In: a CSV or JSON Lines file (gzip-compressed or not) holding either streamproc's native
events (the documents of ``topics/schemas/*.v1.json``, as ``streamproc generate`` writes
them) or a shop's own export plus a mapping file (``docs/replay.md``) that says which column
feeds which event field. Out: one record per event on the input topic that carries its
``type``, keyed by customer id, published in event-time order, and a ``Summary`` that counts
what was published and reports, with file line numbers, what could not be.

Rows that cannot become an event (a skip rule matched, a required value is missing, a line
is not JSON) are counted and reported, never dropped silently. An event whose ``ts`` is not
a time the worker accepts is published anyway, right after the event before it in the file;
the worker dead-letters it as ``bad_timestamp``, where ``streamproc dlq`` shows it.

The modules, in the order the data flows through them: ``files`` (the format, gzip, native
CSV and JSON Lines rows), ``mapping`` (the mapping file) and ``shop`` (a shop export's rows
through it, line items grouped into orders), ``order`` (event time, topic and key; sorted),
``publish`` (onto the broker), ``report`` (the progress bar and the summary) and ``run`` (a
whole replay: ``read_events`` reads and orders a file, ``run_replay`` also publishes it);
``exceptions`` holds ``ReplayError`` and ``MappingError``.
"""

from streamproc.tools.replay.exceptions import MappingError, ReplayError
from streamproc.tools.replay.files import detect_format, native_columns, write_native_csv
from streamproc.tools.replay.mapping import ColumnMapping, load_mapping
from streamproc.tools.replay.order import event_time, order_events
from streamproc.tools.replay.publish import publish_ordered
from streamproc.tools.replay.report import Display, Issues, ProgressDisplay, Summary
from streamproc.tools.replay.run import ReplayOptions, read_events, run_replay

__all__ = ["Display", "Issues", "ColumnMapping", "MappingError", "ProgressDisplay", "ReplayError", "ReplayOptions",
           "Summary", "detect_format", "event_time", "load_mapping", "native_columns", "order_events",
           "publish_ordered", "read_events", "run_replay", "write_native_csv"]
