"""``streamproc demo --crm``: a closed loop from alerts to a CRM and back to the customers.

A local CRM receiver (``tools.crm``) takes the worker's webhooks and verifies their signatures.
For ``effect`` of the alerts of the measured rule it receives, it makes that simulated customer
come back: it publishes a purchase by them some hours to two days (event time) after the alert.
Customers held out by the control groups get no webhook, so they cannot be brought back: at the
end, ``streamproc uplift`` on that rule finds the effect; with ``effect`` 0 its interval covers zero.

The demo's rules are the default ones with a 50 % holdout on the measured rule, so both arms are
large enough to compare; the worker accepts the comeback purchases however far behind the
partition's newest event they are (``STREAMPROC_ALLOWED_LATENESS_S`` of a year), since they are
published while the demo's history streams far ahead of them in event time.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from streamproc.contracts import Contracts
from streamproc.decisions import rulefile
from streamproc.delivery.signing import new_secret
from streamproc.ops.produce import ProducerRecord, event_records, publish
from streamproc.settings import Settings
from streamproc.tools.crm import CrmReceiver

RULE = "cart_abandoned"
HOLDOUT = 0.5
YEAR_S = 365 * 86400


def rules_text() -> str:
    """The default rules with a 50 % holdout on the measured rule."""
    text = rulefile.DEFAULT_RULES.read_text()
    marker = "    action: cart reminder\n"
    assert marker in text, "the default rules changed: update tools/crmloop.py"
    text = text.replace(marker, marker + f"    holdout: {HOLDOUT}\n", 1)
    rulefile.parse(text, "demo-rules.yaml")
    return text


def _unit(*parts: str) -> float:
    h = hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


@dataclass
class Loop:
    """The CRM side of the demo: receiver, comeback purchases, their publisher."""

    kafka_url: str
    contracts: Contracts
    raw_ids: dict[str, str]
    effect: float
    secret: str = field(default_factory=new_secret)
    comebacks: int = 0
    published: int = 0

    def __post_init__(self) -> None:
        self.receiver = CrmReceiver(self.secret, on_alert=self._on_alert)
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish_loop, name="crm-comebacks", daemon=True)

    def env(self, workdir: Path) -> dict[str, str]:
        path = workdir / "demo-rules.yaml"
        path.write_text(rules_text())
        endpoint = {"name": "crm", "url": self.receiver.url, "secret": self.secret, "timeout_s": 5, "concurrency": 8}
        return {"STREAMPROC_WEBHOOKS": orjson.dumps([endpoint]).decode(), "STREAMPROC_RULES_FILE": str(path),
                "STREAMPROC_ALLOWED_LATENESS_S": str(YEAR_S), "STREAMPROC_WEBHOOK_RETRY_S": "[0, 1, 2, 5, 10, 30]"}

    def start(self) -> Loop:
        self.receiver.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.receiver.stop()

    def _on_alert(self, alert: dict[str, Any]) -> None:
        """A delivered alert: for ``effect`` of them (by a hash of the alert id), the customer comes back."""
        aid = alert["event_id"]
        if alert.get("rule") != RULE or aid in self._seen or _unit("effect", aid) >= self.effect:
            return
        self._seen.add(aid)
        raw = self.raw_ids.get(alert["customer_id"])
        if raw is None:
            return
        ts = datetime.fromisoformat(alert["ts"]) + timedelta(hours=2 + 46 * _unit("delay", aid))
        self.comebacks += 1
        self._queue.put({"event_id": f"crm-{aid}", "type": "purchase", "customer_id": raw, "ts": ts.isoformat(),
                         "order_id": f"crm-{aid[:12]}", "items": [{"sku": "WINBACK-1", "quantity": 1, "price": 25.0}],
                         "total": 25.0, "currency": "EUR"})

    def _publish_loop(self) -> None:
        while not self._stop.is_set() or not self._queue.empty():
            batch = []
            try:
                batch.append(self._queue.get(timeout=0.3))
                while True:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            if batch:
                records: list[ProducerRecord] = list(event_records(self.contracts, batch))
                asyncio.run(publish(self.kafka_url, records))
                self.published += len(records)

    def wait_quiet(self, quiet_s: float = 3.0, timeout_s: float = 120.0) -> None:
        """Wait until no webhook has arrived for ``quiet_s`` and every comeback is published."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            got = self.receiver.received
            last = got[-1].at if got else 0.0
            if time.time() - last > quiet_s and self._queue.empty() and self.published == self.comebacks:
                return
            time.sleep(0.5)

    def figures(self) -> dict[str, Any]:
        got = self.receiver.received
        return {"webhooks_received": len(got), "verified": sum(r.verified for r in got),
                "alerts_delivered": len(self.receiver.delivered_ids()), "comeback_purchases": self.published,
                "effect": self.effect}


def key_map(records: list[ProducerRecord], settings: Settings) -> dict[str, str]:
    """The key of every customer of the demo's records -> their raw id (the CRM knows its customers)."""
    p = settings.pseudonymiser()
    return {p.customer(raw): raw for raw in {k.decode() for _, k, _ in records if k}}
