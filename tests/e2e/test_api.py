"""The customer API, metrics and health on a running worker: real broker, Redis and worker process,
requests over HTTP, schemathesis against the served OpenAPI document."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import redis

from streamproc.contracts import Contracts
from streamproc.ops.produce import event_records, publish
from streamproc.runtime.web import OPENAPI
from streamproc.sim.generator import GeneratorConfig, generate
from tests.live import api_tokens, processed, report, serving_worker, wait_for

READER, ANALYST, DPO = "reader-token-0123456789", "analyst-token-0123456789", "dpo-token-0123456789"


def tokens() -> str:
    return api_tokens(("crm-agent", READER, ("profiles:read", "aggregates:read")), ("analyst", ANALYST, ("aggregates:read",)),
                      ("dpo", DPO, ("customers:erase",)))


def get(url: str, token: str | None = None, method: str = "GET") -> tuple[int, Any, dict[str, str]]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body, status, headers = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        body, status, headers = exc.read(), exc.code, dict(exc.headers)
    text = body.decode()
    return status, (json.loads(text) if text.startswith(("{", "[")) else text), headers


def test_api_auth_pages_metrics_health_and_schemathesis(kafka_url, redis_url, broker_proc, contracts: Contracts,
                                                        tmp_path: Path) -> None:
    with serving_worker(kafka_url, redis_url, tmp_path, tokens()) as (port, log):
        events = list(generate(GeneratorConfig(customers=80, days=40, seed=5)))
        import asyncio
        asyncio.run(publish(kafka_url, event_records(contracts, events)))
        wait_for(lambda: processed(redis_url) == len(events), 120, "the events")
        base = f"http://127.0.0.1:{port}"
        raw = events[0]["customer_id"]

        status, by_raw, _ = get(f"{base}/v1/customers/{raw}", READER)
        assert status == 200 and by_raw["customer"].startswith("k1_")
        status, by_key, _ = get(f"{base}/v1/customers/{by_raw['customer']}", READER)
        assert status == 200 and by_key["profile"] == by_raw["profile"]
        assert by_raw["scores"]["churn"]["reasons"] and by_raw["segments"]["lifecycle"]

        status, body, headers = get(f"{base}/v1/customers/{raw}")
        assert (status, body["error"]["code"], headers["WWW-Authenticate"]) == (401, "unauthorized", 'Bearer realm="streamproc"')
        status, body, _ = get(f"{base}/v1/customers/{raw}", ANALYST)
        assert (status, body["error"]["message"]) == (403, "token 'analyst' lacks the scope 'profiles:read'")
        status, body, _ = get(f"{base}/v1/customers/nobody-at-all", READER)
        assert (status, body["error"]["code"]) == (404, "not_found")

        status, sizes, _ = get(f"{base}/v1/segments", ANALYST)
        active = sizes["dimensions"]["lifecycle"]["active"]
        seen, cursor, pages = [], 0, 0
        while True:
            status, page, _ = get(f"{base}/v1/segments/lifecycle/active/customers?limit=10&cursor={cursor}", ANALYST)
            assert status == 200
            seen += page["customers"]
            pages += 1
            if page["next_cursor"] is None:
                break
            cursor = page["next_cursor"]
        assert len(set(seen)) == active and pages > 1

        status, metrics, _ = get(f"{base}/metrics")
        lines = [ln for ln in metrics.splitlines() if not ln.startswith("#")]
        assert f"streamproc_events_applied_total {float(len(events))}" in lines
        assert any(ln.startswith('streamproc_consumergroup_lag{consumergroup="streamproc",partition="0",topic="clickstream"}')
                   for ln in lines)
        assert not any(k in metrics for k in (raw, by_raw["customer"]))  # no per-customer label

        assert get(f"{base}/readyz")[0] == 200
        broker_proc().send_signal(signal.SIGSTOP)
        try:
            status, ready, _ = get(f"{base}/readyz")
            assert (status, ready["checks"]["broker"]) == (503, False)
        finally:
            broker_proc().send_signal(signal.SIGCONT)
        wait_for(lambda: get(f"{base}/readyz")[0] == 200, 30, "ready again")

        other = next(e["customer_id"] for e in events if e["customer_id"] != raw)
        assert get(f"{base}/v1/customers/{other}", READER, "DELETE")[0] == 403
        status, queued, _ = get(f"{base}/v1/customers/{other}", DPO, "DELETE")
        assert status == 202 and queued["status"] == "queued"
        wait_for(lambda: get(f"{base}/v1/customers/{other}", READER)[0] == 404, 30, "the erasure")
        audit = redis.Redis.from_url(redis_url).hget("sp:audit:erasures", queued["request_id"])
        assert orjson.loads(audit)["requested_by"] == "dpo" and orjson.loads(audit)["removed"]["profile"] == 1

        st = subprocess.run([Path(sys.executable).parent / "schemathesis", "run", f"{base}/v1/openapi.json",
                             "-H", f"Authorization: Bearer {READER}", "--max-examples", "25", "--seed", "1"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
        tail = [ln.strip() for ln in st.stdout.splitlines() if ln.strip()][-8:]
        report("schemathesis: " + " | ".join(tail))
        assert st.returncode == 0, st.stdout[-4000:]
        assert json.loads(OPENAPI.read_text())["info"]["title"] == "streamproc customer API"
    text = log.read_text()
    assert raw not in text and "api GET /v1/customers/{id} 200 crm-agent" in text
