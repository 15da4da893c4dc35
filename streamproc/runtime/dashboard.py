"""The live dashboard: a page and a server-sent event stream on the worker's own web server.

``/dashboard/`` serves the page (HTML, CSS, JavaScript and the uPlot chart library, all from the
package: no CDN, nothing fetched from elsewhere); the page holds no data, so it is open.
``/dashboard/events`` is the stream (scope ``aggregates:read``; ``EventSource`` cannot send headers,
so the token may come as ``?access_token=``, and the page takes it from its own URL's ``?token=``
for a wall screen). The customer lookup goes through ``GET /v1/customers/{id}`` and needs
``profiles:read``.

One ``Aggregator`` per worker reads Redis once a second while at least one page listens (one
pipeline, whatever the number of pages), and sends each page what changed:

* ``ops``: records in per second by input topic (the deployment's, from the shared counters), dead
  letters by topic and reason, this worker's lag, held and late events; one point a second, and
  the last five minutes of them to a page that connects;
* ``history``: customers per lifecycle stage at the end of each event-time bucket (running sums of
  the lifecycle changes counted per event-time hour, ``plan.hourly``) and alerts per rule per
  bucket; hours while the history spans at most ``HOURLY_SPAN`` hours, days beyond that;
* ``flows``: lifecycle changes of the last 24 event-time hours, by ``old>new``;
* ``segments``: sizes per dimension; ``clusters``: each behaviour cluster's size and description;
* ``alerts``: the latest alerts with their reasons; ``webhooks``: deliveries by endpoint and status;
* ``models``: the served models' metrics per published version (rolling AUC of the served churn
  score and of its baselines on the same labels, calibration error, satisfaction MAE against the
  running-mean baseline, drift detections; ``runtime.learner.history_point``) and the latest
  calibration table.

Every message has an id; a page that reconnects (``EventSource`` does so by itself, sending
``Last-Event-ID``) gets the messages it missed from a ring of the last ``RING`` if its id is
there, or a fresh snapshot. A comment line every ``HEARTBEAT_S`` keeps proxies from closing a
quiet stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web

from streamproc.runtime.metrics import DIMENSIONS, Lag
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.runtime.web import scoped
from streamproc.runtime.webhooks import Keys as WebhookKeys

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor"
RING = 120
OPS_POINTS = 300
HEARTBEAT_S = 10.0
HOURLY_SPAN = 24 * 21
"""History buckets are hours up to three weeks of event time, days beyond."""
RECENT = 15
MODEL_POINTS = 500
REFRESH_ALL_S = 60.0
"""How often every hour's counts are read again (late events change old hours); in between, each
second reads the hours from ``RECENT_HOURS`` before the slowest topic-partition's newest event on
(partitions apply their events at different paces: a fast one's watermark is ahead of the hours
a slow one still writes)."""
RECENT_HOURS = 48
STAGES = ("new", "active", "loyal", "reactivated", "at_risk", "churned")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def history(hours: dict[int, Counter[str]], span: int = HOURLY_SPAN) -> dict[str, Any]:
    """Customers per stage at the end of each bucket, and alerts per rule in it.

    >>> h = {0: Counter({"flow:>new": 3, "alert:r": 1}), 7200: Counter({"flow:new>active": 2})}
    >>> doc = history(h)
    >>> doc["bucket_s"], doc["t"], doc["stages"]["new"], doc["stages"]["active"], doc["alerts"]["r"]
    (3600, [0, 3600, 7200], [3, 3, 1], [0, 0, 2], [1, 0, 0])
    """
    if not hours:
        return {"bucket_s": 3600, "t": [], "stages": {}, "alerts": {}}
    first, last = min(hours), max(hours)
    size = 3600 if (last - first) // 3600 < span else 86400
    start = first // size * size
    n = (last - start) // size + 1
    net: dict[str, list[int]] = {}
    alerts: dict[str, list[int]] = {}
    for hour, counts in hours.items():
        i = (hour - start) // size
        for name, c in counts.items():
            kind, _, what = name.partition(":")
            if kind == "flow":
                old, _, new = what.partition(">")
                net.setdefault(new, [0] * n)[i] += c
                if old:
                    net.setdefault(old, [0] * n)[i] -= c
            elif kind == "alert":
                alerts.setdefault(what, [0] * n)[i] += c
    stages = {s: _running(v) for s, v in sorted(net.items(), key=lambda kv: _stage_order(kv[0]))}
    return {"bucket_s": size, "t": [start + i * size for i in range(n)], "stages": stages,
            "alerts": dict(sorted(alerts.items()))}


def _stage_order(stage: str) -> tuple[int, str]:
    return (STAGES.index(stage) if stage in STAGES else len(STAGES), stage)


def _running(values: list[int]) -> list[int]:
    out, total = [], 0
    for v in values:
        total += v
        out.append(total)
    return out


def flows(hours: dict[int, Counter[str]], now: float) -> dict[str, int]:
    """Lifecycle changes ``old>new`` in the 24 event-time hours up to ``now`` (``>new``: new customers).

    >>> flows({0: Counter({"flow:a>b": 2}), 90000: Counter({"flow:b>c": 1, "alert:r": 4})}, 90000)
    {'b>c': 1}
    """
    since = now - 86400
    out: Counter[str] = Counter()
    for hour, counts in hours.items():
        if hour + 3600 > since and hour <= now:
            out.update({k[5:]: c for k, c in counts.items() if k.startswith("flow:")})
    return dict(out.most_common())


@dataclass
class Message:
    id: str
    event: str
    data: bytes

    def encode(self) -> bytes:
        return b"id: " + self.id.encode() + b"\nevent: " + self.event.encode() + b"\ndata: " + self.data + b"\n\n"


@dataclass
class State:
    """What the pages have been sent: each section's JSON, the ops points, the model points."""

    sections: dict[str, bytes] = field(default_factory=dict)
    ops: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=OPS_POINTS))
    models: list[dict[str, Any]] = field(default_factory=list)


class Aggregator:
    """Reads Redis once a second while pages listen, and fans what changed out to them."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, inputs: Iterable[str],
                 lag: Callable[[], Iterable[Lag]], clusters: Callable[[], Awaitable[Any]] | None = None,
                 every_s: float = 1.0) -> None:
        self.r, self.keys, self.inputs, self.lag = client, keys, sorted(inputs), lag
        self.clusters, self.every_s = clusters, every_s
        self.hooks = WebhookKeys(keys.prefix)
        self.instance = secrets.token_hex(4)
        self.seq = 0
        self.state = State()
        self.ring: deque[Message] = deque(maxlen=RING)
        self.pages: set[asyncio.Queue[Message]] = set()
        self._hours: dict[int, Counter[str]] = {}
        self._hours_read_at = float("-inf")
        self._slowest: float | None = None
        self._prev: tuple[float, dict[str, float]] | None = None
        self._task: asyncio.Task[None] | None = None

    # ----- pages --------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[Message]]:
        q: asyncio.Queue[Message] = asyncio.Queue(maxsize=RING)
        self.pages.add(q)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        try:
            yield q
        finally:
            self.pages.discard(q)

    def resume(self, last_id: str | None) -> list[Message] | None:
        """The messages after ``last_id`` if the ring still has it, else None (send a snapshot)."""
        if not last_id:
            return None
        ids = [m.id for m in self.ring]
        if last_id not in ids:
            return None
        return list(self.ring)[ids.index(last_id) + 1:]

    def snapshot(self) -> Message:
        doc = {k: orjson.loads(v) for k, v in self.state.sections.items()}
        doc["ops_points"] = list(self.state.ops)
        doc["model_points"] = self.state.models[-MODEL_POINTS:]
        return Message(self._next_id(), "snapshot", orjson.dumps(doc))

    def _next_id(self) -> str:
        self.seq += 1
        return f"{self.instance}-{self.seq}"

    async def _run(self) -> None:
        """Aggregate every ``every_s`` while a page listens; stops when the last one leaves."""
        while self.pages:
            started = time.monotonic()
            try:
                msg = await self.tick()
            except Exception:  # Redis down, a bad record: the pages keep their last state and retry
                log.exception("dashboard aggregation failed; retrying in %.0fs", self.every_s)
                msg = None
            if msg is not None:
                self.ring.append(msg)
                for q in list(self.pages):
                    if q.full():  # a page that does not read: it reconnects and gets a snapshot
                        self.pages.discard(q)
                    else:
                        q.put_nowait(msg)
            await asyncio.sleep(max(self.every_s - (time.monotonic() - started), 0.05))

    # ----- aggregation ---------------------------------------------------------------------------
    async def tick(self) -> Message:
        """Read, compare with what the pages have, and return the message of what changed."""
        sections, ops, new_models = await self.read()
        changed = {}
        for name, doc in sections.items():
            data = orjson.dumps(doc)
            if self.state.sections.get(name) != data:
                self.state.sections[name] = changed[name] = data
        self.state.ops.append(ops)
        self.state.models += new_models
        del self.state.models[:-MODEL_POINTS]
        body = b"{" + b",".join(b'"' + k.encode() + b'":' + v for k, v in changed.items())
        body += (b"," if changed else b"") + b'"ops_point":' + orjson.dumps(ops)
        body += b',"model_points":' + orjson.dumps(new_models) + b"}"
        return Message(self._next_id(), "tick", body)

    async def read(self) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        now = time.time()
        full = now - self._hours_read_at >= REFRESH_ALL_S
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.stats)
            for dim in DIMENSIONS:
                pipe.hgetall(self.keys.segments(dim))
            pipe.hgetall(self.hooks.stats)
            pipe.lrange(self.keys.recent_alerts, 0, RECENT - 1)
            pipe.hvals(self.keys.watermarks)
            pipe.lrange(self.keys.models_history, len(self.state.models) if self.state.models else -MODEL_POINTS, -1)
            pipe.hmget(self.keys.online_models, "figures")
            since = "-inf" if full or self._slowest is None else self._slowest - RECENT_HOURS * 3600
            pipe.zrangebyscore(self.keys.hourly(), since, "+inf")
            res = await pipe.execute()
        stats_raw, segs, hooks_raw, recent, marks, model_raw, (figures,), hour_ids = (
            res[0], res[1:1 + len(DIMENSIONS)], *res[1 + len(DIMENSIONS):])
        stats = {k.decode(): float(v) for k, v in stats_raw.items()}
        times = [float(v) for v in marks]
        watermark = max(times, default=None)
        self._slowest = min(times, default=None)
        await self._read_hours([int(h) for h in hour_ids])
        if full:
            self._hours_read_at = now
        sizes = {dim: {k.decode(): int(v) for k, v in s.items() if int(v) > 0} for dim, s in zip(DIMENSIONS, segs)}
        sections = {
            "event_time": {"watermark": watermark},
            "totals": _totals(stats, self.inputs),
            "dead_letters": {k[4:]: int(v) for k, v in sorted(stats.items()) if k.startswith("dlq:")},
            "history": history(self._hours),
            "flows": flows(self._hours, watermark) if watermark is not None else {},
            "segments": {d: dict(sorted(v.items(), key=lambda kv: -kv[1])) for d, v in sizes.items()},
            "clusters": await self._clusters(sizes.get("cluster", {})),
            "alerts": [orjson.loads(a) for a in recent],
            "webhooks": _webhooks({k.decode(): int(v) for k, v in hooks_raw.items()}),
            "models": _models(orjson.loads(figures) if figures else {}),
        }
        return sections, self._ops(now, stats), [orjson.loads(m) for m in model_raw if m]

    async def _read_hours(self, wanted: list[int]) -> None:
        if not wanted:
            return
        async with self.r.pipeline(transaction=False) as pipe:
            for h in wanted:
                pipe.hgetall(self.keys.hourly(h))
            got = await pipe.execute()
        for h, counts in zip(wanted, got):
            self._hours[h] = Counter({k.decode(): int(v) for k, v in counts.items()})

    def _ops(self, now: float, stats: dict[str, float]) -> dict[str, Any]:
        """One point: records in per second by topic and applied per second since the last point, lag."""
        counts = {t: stats.get(f"in:{t}", 0.0) for t in self.inputs} | {"applied": stats.get("applied", 0.0)}
        rates = dict.fromkeys(counts, 0.0)
        if self._prev is not None and now > self._prev[0]:
            dt = now - self._prev[0]
            rates = {k: max(v - self._prev[1].get(k, 0.0), 0.0) / dt for k, v in counts.items()}
        self._prev = (now, counts)
        lag = Counter[str]()
        lag_s = 0.0
        for topic, _, behind, seconds in self.lag():
            lag[topic] += behind
            lag_s = max(lag_s, seconds)
        return {"t": round(now, 3), "rates": {k: round(v, 1) for k, v in rates.items()},
                "lag": dict(lag), "lag_s": round(lag_s, 1)}

    async def _clusters(self, sizes: dict[str, int]) -> list[dict[str, Any]]:
        """Each cluster's size and description (the cluster model a read scores with)."""
        model = await self.clusters() if self.clusters is not None else None
        out = []
        for cid, n in sizes.items():
            words = ""
            if model is not None and cid.isdigit():
                with contextlib.suppress(KeyError, ValueError, IndexError):
                    words = model.describe(int(cid))
            out.append({"cluster": cid, "customers": n, "description": words})
        return out


def _totals(stats: dict[str, float], inputs: list[str]) -> dict[str, Any]:
    return {
        "records_in": {t: int(stats.get(f"in:{t}", 0)) for t in inputs},
        **{k: int(stats.get(k, 0)) for k in ("applied", "duplicates", "dead_lettered", "held", "alerts",
                                             "segment_changes", "examples", "redelivered")},
        "late": int(sum(v for k, v in stats.items() if k.startswith("late:"))),
        "suppressed": int(sum(v for k, v in stats.items() if k.startswith("suppressed:"))),
    }


def _webhooks(stats: dict[str, int]) -> dict[str, Any]:
    answers: dict[str, dict[str, int]] = {}
    for k, n in stats.items():
        endpoint, _, status = k.rpartition(":")
        if endpoint:
            answers.setdefault(endpoint, {})[status] = n
    return {"queued": stats.get("queued", 0), "delivered": stats.get("delivered", 0), "dead": stats.get("dead", 0),
            "answers": answers}


def _models(figures: dict[str, Any]) -> dict[str, Any]:
    churn, sat = figures.get("churn", {}), figures.get("satisfaction", {})
    return {
        "churn": {"version": churn.get("version"), "labels": churn.get("labels"), "auc": churn.get("auc"),
                  "served": churn.get("served", {}), "baselines": churn.get("baselines", {}),
                  "ece": churn.get("ece"), "calibration": churn.get("calibration", []),
                  "drift": churn.get("drift", {})},
        "satisfaction": {"labels": sat.get("labels"), "mae": sat.get("mae"),
                         "baseline_mae": sat.get("mean_baseline_mae"), "drift": sat.get("drift", {})},
    }


# ----- HTTP ------------------------------------------------------------------------------------------
def app(aggregator: Aggregator, middleware: Any) -> web.Application:
    """The ``/dashboard`` application: the page and its files (open), the event stream (``aggregates:read``)."""

    async def page(request: web.Request) -> web.StreamResponse:
        return _file(STATIC / "dashboard.html", request)

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        base = VENDOR if request.match_info.get("vendor") else STATIC
        path = (base / name).resolve()
        if path.parent != base.resolve() or not path.is_file() or path.suffix not in TYPES:
            raise web.HTTPNotFound()
        return _file(path, request)

    @scoped("aggregates:read", query_token=True)
    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        await resp.write(b"retry: 2000\n\n")
        async with aggregator.listen() as q:
            missed = aggregator.resume(request.headers.get("Last-Event-ID"))
            if missed is None:
                if not aggregator.state.sections:
                    await q.get()  # the first aggregation, which the snapshot then holds
                await resp.write(aggregator.snapshot().encode())
            for m in missed or ():
                await resp.write(m.encode())
            while True:
                try:
                    msg = await asyncio.wait_for(q.get(), HEARTBEAT_S)
                except asyncio.TimeoutError:
                    await resp.write(b": heartbeat\n\n")
                    continue
                await resp.write(msg.encode())
        return resp

    sub = web.Application(middlewares=[middleware])
    sub.router.add_get("/", page)
    sub.router.add_get("/events", events)
    sub.router.add_get("/static/{name}", static)
    sub.router.add_get("/static/{vendor:vendor}/{name}", static)
    return sub


def _file(path: Path, request: web.Request) -> web.Response:
    """A static file, gzipped for a browser that accepts it."""
    resp = web.Response(body=path.read_bytes(), headers={"Content-Type": TYPES[path.suffix], "Cache-Control": "no-cache"})
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        resp.enable_compression(web.ContentCoding.gzip)
    return resp


def routes() -> list[web.RouteDef]:
    """``/dashboard`` (no slash) to the page, keeping its query (the token of a wall screen)."""
    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/dashboard/" + (f"?{request.query_string}" if request.query_string else ""))

    return [web.get("/dashboard", redirect)]
