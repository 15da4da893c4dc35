"""A small local CRM receiver: verifies each webhook's signature and records it, with faults on demand.

``streamproc demo --crm`` runs one to close the loop (the alerts a customer's CRM receives can
bring the customer back); the webhook tests run one as the endpoint that fails. It is a real
HTTP server (aiohttp) on 127.0.0.1 and a free port, in a thread of its own. For each request it
answers 429 with ``Retry-After`` to ``throttle_share`` of them, 500 to ``fail_share``, else 204;
``set_down(True)`` closes the listening socket and the open connections (new connections are
refused) until ``set_down(False)``;
with ``gone`` set it answers 410 Gone (the endpoint asks to be disabled).
``verify(headers, body)`` decides ``Received.verified`` (default: ``delivery.signing.verify``).
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from streamproc.delivery import signing

Verify = Callable[[Mapping[str, str], bytes], bool]


@dataclass(frozen=True)
class Received:
    msg_id: str
    timestamp: str
    signature: str
    body: bytes
    status: int
    verified: bool
    at: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CrmReceiver:
    def __init__(self, secret: str, *, fail_share: float = 0.0, throttle_share: float = 0.0, retry_after_s: int = 1,
                 seed: int = 1, verify: Verify | None = None,
                 on_alert: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.secret, self.fail_share, self.throttle_share = secret, fail_share, throttle_share
        self.retry_after_s, self.rng = retry_after_s, random.Random(seed)
        self.verify = verify or self._own_verify
        self.on_alert = on_alert
        self.gone = False
        self.port = free_port()
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="crm-receiver", daemon=True)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"

    def _own_verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        try:
            signing.verify(self.secret, headers, body, time.time())
        except signing.SignatureError:
            return False
        return True

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        verified = self.verify(dict(request.headers), body)
        draw = self.rng.random()
        if not verified:
            status = 401
        elif self.gone:
            status = 410
        elif draw < self.throttle_share:
            status = 429
        elif draw < self.throttle_share + self.fail_share:
            status = 500
        else:
            status = 204
        h = request.headers
        with self._lock:
            self._received.append(Received(h.get("webhook-id", ""), h.get("webhook-timestamp", ""),
                                           h.get("webhook-signature", ""), body, status, verified, time.time()))
        if status == 204 and self.on_alert is not None:
            self.on_alert(orjson.loads(body))
        headers = {"Retry-After": str(self.retry_after_s)} if status == 429 else None
        return web.Response(status=status, headers=headers)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhooks", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def _close_socket(self) -> None:
        """Stop listening, then close the open keep-alive connections (once their request is
        answered): a client that kept one open must not get through while the receiver is down."""
        if self._site is None:
            return
        await self._site.stop()
        self._site = None
        await asyncio.sleep(0)
        assert self._runner is not None and self._runner.server is not None
        self._runner.server.pre_shutdown()
        await self._runner.server.shutdown(5.0)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start(self) -> CrmReceiver:
        self._thread.start()
        self._call(self._start())
        return self

    def set_down(self, down: bool) -> None:
        """Refuse connections (``True``) or accept them again, on the same port."""
        self._call(self._close_socket() if down else self._listen())

    def stop(self) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> CrmReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def delivered_ids(self) -> set[str]:
        return {r.msg_id for r in self.received if 200 <= r.status < 300}

    def wait_for(self, ids: set[str], timeout_s: float) -> set[str]:
        """Wait until every id in ``ids`` was answered 2xx (or the time is up); returns those still missing."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            missing = ids - self.delivered_ids()
            if not missing:
                return set()
            time.sleep(0.2)
        return ids - self.delivered_ids()
