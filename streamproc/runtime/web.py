"""The worker's HTTP surface on Faust's own web server: the customer API, health, and the OpenAPI document.

``/v1/...`` (bearer tokens with scopes, ``STREAMPROC_API_TOKENS``; errors as
``{"error": {"status", "code", "message"}}``):

* ``GET /v1/customers/{id}`` (``profiles:read``): a raw id (keyed with the secret on the spot,
  never stored or logged) or a key; the profile, the scores a read serves now with their reasons
  and versions (as ``streamproc profile`` does), the segments, the rules that fired lately;
* ``GET /v1/segments`` and ``GET /v1/segments/{dimension}/{value}/customers?cursor=&limit=``
  (``aggregates:read``): sizes per dimension, and one segment's customer keys a page at a time;
* ``GET /v1/models``, ``GET /v1/rules`` (``aggregates:read``); ``GET /v1/openapi.json`` (open).

``/livez`` says the event loop answers; ``/readyz`` that this worker can do its work: partitions
assigned and no rebalance in progress, Redis and the broker answering (a metadata request, so a
broker that accepts connections but does not answer is not ready), the processing process alive.

Any worker answers for any customer: everything is read from Redis. One log line per request
names the route's pattern (never the path, which may hold a raw id), the status, the token's
name and the time taken.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaClient, AIOKafkaProducer

from streamproc.decisions import segments
from streamproc.decisions.learning import churn_as_of
from streamproc.decisions.rules import Population
from streamproc.models.items import offers_for
from streamproc.runtime import erasure
from streamproc.runtime.admin import bootstrap
from streamproc.runtime.items import RedisItems
from streamproc.runtime.learner import OnlineModels
from streamproc.runtime.population import PopulationView
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.runtime.rulebook import published
from streamproc.settings import Settings
from streamproc.state import codec
from streamproc.state.profile import Profile

log = logging.getLogger(__name__)
OPENAPI = Path(__file__).resolve().parent / "openapi.json"
KEY = re.compile(r"^k[0-9]+_[0-9a-f]{32}$")
DIMENSIONS = ("lifecycle", "rfm", "value", "cluster")
HIDDEN = ("seen", "pending", "triggers", "visits", "days")
"""Profile fields the API leaves out: event ids, snapshots waiting for their label, the rules' memory,
and the raw session and purchase-day state (their summaries are in the profile's counts)."""
MAX_PAGE = 1000
MAX_CURSOR = 2**64 - 1
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"status": status, "code": code, "message": message}}, status=status,
                             headers=headers, dumps=lambda o: orjson.dumps(o).decode())


def ok(doc: Any) -> web.Response:
    return web.json_response(doc, dumps=lambda o: orjson.dumps(o).decode())


class Reader:
    """What the API reads from Redis, with the models a read scores with (reloaded when they change)."""

    def __init__(self, settings: Settings, client: aioredis.Redis, erasure_topic: tuple[str, int] = ("erasures", 4)) -> None:
        self.s, self.r = settings, client
        self.keys = RedisKeys(settings.key_prefix)
        self.pseudonyms = settings.pseudonymiser()
        self.rules = settings.rules()
        self.online = OnlineModels(client, self.keys)
        self.items = RedisItems(client, self.keys, self.rules.items) if self.rules.items is not None else None
        self.view = PopulationView(self.keys, settings.top_spend_fraction, settings.min_population,
                                   settings.segment_margin)
        self._models_version: int | None = None
        self._population: Population | None = None
        self._checked = 0.0
        self._producer: AIOKafkaProducer | None = None
        self.erasure_topic, self.erasure_partitions = erasure_topic

    async def erase(self, key: str, parts: list[int], requested_by: str) -> dict[str, Any]:
        """Publish an erase command (``runtime.erasure``) for ``key``."""
        if self._producer is None:
            self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap(self.s.kafka_url), acks="all",
                                              **self.s.kafka_security())
            await self._producer.start()
        return await erasure.request(self._producer, self.erasure_topic, key, parts, requested_by)

    def key_of(self, id_or_key: str) -> str:
        return id_or_key if KEY.match(id_or_key) else self.pseudonyms.customer(id_or_key)

    async def population(self) -> Population:
        """The population reads score against, checked for new model versions at most once a second."""
        now = time.monotonic()
        if self._population is not None and now - self._checked < 1.0:
            return self._population
        self._checked = now
        version = int(await self.r.hget(self.keys.models, "version") or 0)
        if version != self._models_version:
            self.view.load(await self.r.hgetall(self.keys.models))
            self._models_version = version
        await self.online.refresh()
        fitted = self.view.as_fitted() if self.view.fitted else Population(ltv=self.view.ltv, clusters=self.view.clusters)
        self._population = self.online.population(fitted)
        return self._population

    async def event_time(self) -> datetime | None:
        marks = [float(v) for v in await self.r.hvals(self.keys.watermarks)]
        return datetime.fromtimestamp(max(marks), timezone.utc) if marks else None

    async def customer(self, key: str) -> dict[str, Any] | None:
        raw = await self.r.get(self.keys.profile(key))
        if raw is None:
            return None
        p = codec.loads(Profile, raw)
        now = await self.event_time() or p.last_seen
        pop = await self.population()
        churn = churn_as_of(p, now, pop, self.rules)
        read = segments.as_of(p, now, pop, self.rules) if pop.recency is not None or pop.ltv is not None else p
        doc = orjson.loads(codec.dumps(p))
        profile = {k: v for k, v in doc.items() if k not in HIDDEN}
        value = orjson.loads(codec.dumps(read.value)) if read.value is not None else None
        return {
            "customer": key, "as_of": now.isoformat(),
            "profile": profile | {"sessions": p.sessions, "abandoned_carts": p.visits.totals.abandoned},
            "scores": {
                "churn": {"risk": churn.p, "source": churn.source, "model_version": churn.version, "at": churn.at.isoformat(),
                          "reasons": [{"feature": f, "value": v, "direction": d} for f, v, d in churn.reasons]},
                "predicted_satisfaction": p.predicted_satisfaction,
                "satisfaction_model_version": pop.satisfaction.version if pop.satisfaction is not None else None,
                "value": value,
                "offers": await self.offers(p),
            },
            "segments": {"lifecycle": p.stage, "lifecycle_since": p.stage_since.isoformat() if p.stage_since else None,
                         "rfm": read.rfm.segment if read.rfm else None, "value": read.value.tier if read.value else None,
                         "cluster": read.cluster, "cluster_name": read.cluster_name or None},
            "alerts": sorted(({"rule": r, "last_fired": t.isoformat()} for r, t in p.triggers.last.items()),
                             key=lambda a: a["last_fired"], reverse=True),
        }

    async def offers(self, p: Profile) -> list[dict[str, Any]] | None:
        """The customer's next-best offers from the item counters now (None when offers are off)."""
        params = self.rules.items
        if self.items is None or params is None:
            return None
        view = await self.items.view(p.items.skus, self.rules.offers + params.bought)
        return [{"item": o.item, "score": round(o.score, 4), "reason": o.reason, "source": o.source}
                for o in offers_for(p.items, view, self.rules.offers, self.rules.repurchase)]

    async def segments(self) -> dict[str, Any]:
        out = {}
        for dim in DIMENSIONS:
            sizes = {k.decode(): int(v) for k, v in (await self.r.hgetall(self.keys.segments(dim))).items()}
            out[dim] = {k: v for k, v in sorted(sizes.items()) if v > 0}
        return {"dimensions": out}

    async def members(self, dimension: str, value: str, cursor: int, limit: int) -> tuple[list[str], int]:
        nxt, found = await self.r.sscan(self.keys.members(dimension, value), cursor=cursor, count=limit)
        return sorted(m.decode() for m in found), int(nxt)

    async def models(self) -> dict[str, Any]:
        version, figures, at = await self.r.hmget(self.keys.online_models, "version", "figures", "published_at")
        pop = await self.r.hmget(self.keys.models, "version", "fitted_at", "ltv", "customers")
        return {
            "online": {"version": int(version or 0), "published_at": at.decode() if at else None,
                       "figures": orjson.loads(figures) if figures else None},
            "population": {"version": int(pop[0] or 0), "fitted_at": pop[1].decode() if pop[1] else None,
                           "ltv": orjson.loads(pop[2]) if pop[2] else None,
                           "customers": int(pop[3]) if pop[3] else None},
        }

    async def rules_doc(self) -> dict[str, Any]:
        doc = await published(self.r, self.keys)
        rs = self.rules.triggers
        if doc:
            return {"version": int(doc["version"]), "digest": doc["digest"], "name": doc["name"],
                    "published_at": doc["published_at"], "text": doc["text"]}
        return {"version": 0, "digest": rs.digest, "name": str(self.s.rules_file or "default rules"),
                "published_at": None, "text": None, "rules": [r.id for r in rs.rules]}


# ----- auth and errors -------------------------------------------------------------------------
def scoped(scope: str | None, query_token: bool = False) -> Callable[[Handler], Handler]:
    """Mark a handler with the scope it needs; with ``query_token`` the token may also come as the
    ``access_token`` query parameter (RFC 6750, section 2.3), for clients that cannot send headers
    (a browser's ``EventSource``)."""
    def mark(fn: Handler) -> Handler:
        fn.scope = scope  # type: ignore[attr-defined]
        fn.query_token = query_token  # type: ignore[attr-defined]
        return fn
    return mark


def auth_middleware(settings: Settings) -> Any:
    tokens = {t.sha256: t for t in settings.api_tokens}

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        who, status = "-", 500
        try:
            scope = getattr(handler, "scope", None)
            if scope is not None:
                header = request.headers.get("Authorization", "")
                given = header[7:] if header[:7].lower() == "bearer " else None
                if given is None and getattr(handler, "query_token", False):
                    given = request.query.get("access_token")
                token = tokens.get(hashlib.sha256(given.encode()).hexdigest()) if given else None
                if token is None:
                    why = "no API tokens are configured (STREAMPROC_API_TOKENS)" if not tokens else \
                          "send 'Authorization: Bearer <token>' with a valid token"
                    resp = error(401, "unauthorized", why, {"WWW-Authenticate": 'Bearer realm="streamproc"'})
                    status = 401
                    return resp
                who = token.name
                request["token_name"] = token.name
                if scope not in token.scopes:
                    status = 403
                    return error(403, "forbidden", f"token '{token.name}' lacks the scope '{scope}'")
            resp = await handler(request)
            status = resp.status
            return resp
        except web.HTTPException as exc:  # 404 of an unknown path, 405 (with its Allow header), ...
            status = exc.status
            kept = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")}
            return error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason, kept or None)
        except Exception:
            log.exception("API request to %s failed", _pattern(request))
            return error(500, "internal_error", "the request failed; the worker log has the details")
        finally:
            log.info("api %s %s %d %s %.1fms", request.method, _pattern(request), status, who,
                     (time.perf_counter() - started) * 1000)

    return check


def _pattern(request: web.Request) -> str:
    route = request.match_info.route
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "(no route)"


class Bucket:
    """A token bucket: ``rate`` takes a second on average, bursts of up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.at = rate, rate, 0.0

    def take(self, now: float) -> bool:
        if self.rate <= 0:
            return True
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate) if self.at else self.tokens
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


# ----- the API -------------------------------------------------------------------------------------
def api(settings: Settings, reader: Reader) -> web.Application:
    """The ``/v1`` application (mounted on the worker's web server, or served alone in tests)."""

    bucket = Bucket(settings.api_reads_per_s)

    @scoped("profiles:read")
    async def customer(request: web.Request) -> web.Response:
        if not bucket.take(time.monotonic()):
            return error(429, "too_many_requests", f"this worker serves at most {settings.api_reads_per_s:g} profile "
                         "reads a second (STREAMPROC_API_READS_PER_S), so that reads never starve ingestion; retry",
                         {"Retry-After": "1"})
        key = reader.key_of(request.match_info["id"])
        doc = await reader.customer(key)
        if doc is None:
            return error(404, "not_found", "no profile for this customer")
        return ok(doc)

    @scoped("aggregates:read")
    async def segment_sizes(request: web.Request) -> web.Response:
        return ok(await reader.segments())

    @scoped("aggregates:read")
    async def segment_members(request: web.Request) -> web.Response:
        dim, value = request.match_info["dimension"], request.match_info["value"]
        if dim not in DIMENSIONS:
            return error(404, "not_found", f"no dimension '{dim}': one of {', '.join(DIMENSIONS)}")
        try:
            cursor = int(request.query.get("cursor", "0"))
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return error(400, "bad_request", "cursor and limit are integers")
        if not 0 <= cursor <= MAX_CURSOR or not 1 <= limit <= MAX_PAGE:
            return error(400, "bad_request", f"0 <= cursor < 2**64 (a next_cursor) and 1 <= limit <= {MAX_PAGE}")
        keys, nxt = await reader.members(dim, value, cursor, limit)
        return ok({"dimension": dim, "value": value, "customers": keys, "next_cursor": nxt or None})

    @scoped("aggregates:read")
    async def models(request: web.Request) -> web.Response:
        return ok(await reader.models())

    @scoped("aggregates:read")
    async def rules(request: web.Request) -> web.Response:
        return ok(await reader.rules_doc())

    @scoped("customers:erase")
    async def erase_customer(request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        is_key = bool(KEY.match(raw))
        cmd = await reader.erase(reader.key_of(raw), erasure.partitions_of(raw, is_key, reader.erasure_partitions),
                                 request.get("token_name", "api"))
        return web.json_response({"request_id": cmd["request_id"], "customer": cmd["customer_key"], "status": "queued"},
                                 status=202)

    @scoped(None)
    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(json.loads(OPENAPI.read_text()))

    app = web.Application(middlewares=[auth_middleware(settings)])
    app.router.add_get("/customers/{id}", customer)
    app.router.add_delete("/customers/{id}", erase_customer)
    app.router.add_get("/segments", segment_sizes)
    app.router.add_get("/segments/{dimension}/{value}/customers", segment_members)
    app.router.add_get("/models", models)
    app.router.add_get("/rules", rules)
    app.router.add_get("/openapi.json", openapi)
    return app


# ----- health --------------------------------------------------------------------------------------
class Health:
    """The checks of ``/readyz``; ``assigned``, ``rebalancing`` and ``processing`` are read from the worker."""

    def __init__(self, settings: Settings, client: aioredis.Redis, assigned: Callable[[], int],
                 rebalancing: Callable[[], bool], processing: Callable[[], bool], timeout_s: float = 2.0) -> None:
        self.s, self.r, self.timeout_s = settings, client, timeout_s
        self.assigned, self.rebalancing, self.processing = assigned, rebalancing, processing
        self._kafka: AIOKafkaClient | None = None

    async def _broker(self) -> None:
        if self._kafka is None:
            self._kafka = AIOKafkaClient(bootstrap_servers=bootstrap(self.s.kafka_url), request_timeout_ms=2000,
                                         **self.s.kafka_security())
            await self._kafka.bootstrap()
        await self._kafka.fetch_all_metadata()

    async def _check(self, name: str, fn: Callable[[], Awaitable[Any]]) -> str:
        try:
            await asyncio.wait_for(fn(), self.timeout_s)
        except asyncio.TimeoutError:
            return f"{name}: no answer within {self.timeout_s:g}s"
        except Exception as exc:  # any failure of a dependency is a reason not to be ready
            return f"{name}: {type(exc).__name__}: {exc}"
        return ""

    async def ready(self) -> dict[str, Any]:
        redis_err, broker_err = await asyncio.gather(self._check("redis", self.r.ping), self._check("broker", self._broker))
        checks = {
            "partitions_assigned": self.assigned() > 0, "not_rebalancing": not self.rebalancing(),
            "redis": not redis_err, "broker": not broker_err, "processing_process": self.processing(),
        }
        problems = [e for e in (redis_err, broker_err) if e]
        problems += [f"{k} is false" for k, v in checks.items() if not v and k not in ("redis", "broker")]
        return {"ready": all(checks.values()), "checks": checks, "problems": problems}


def health_routes(health: Health) -> list[web.RouteDef]:
    async def livez(request: web.Request) -> web.Response:
        return ok({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        doc = await health.ready()
        return web.json_response(doc, status=200 if doc["ready"] else 503)

    return [web.get("/livez", livez), web.get("/readyz", readyz)]


def metrics_routes(metrics: Any) -> list[web.RouteDef]:
    """``/metrics`` in Prometheus' text format (``runtime.metrics``)."""
    async def scrape(request: web.Request) -> web.Response:
        body = await metrics.render()
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    return [web.get("/metrics", scrape)]
