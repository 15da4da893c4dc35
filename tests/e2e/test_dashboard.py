"""The dashboard in a real browser: Debian's Chromium, headless, driven through its chromedriver by
Selenium, against a worker on a real broker and Redis while events are published."""

from __future__ import annotations

import asyncio
import http.client
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.contracts import Contracts
from streamproc.ops.produce import event_records, publish
from streamproc.sim.generator import GeneratorConfig, generate
from tests.live import api_tokens, processed, report, serving_worker, wait_for

WALL, ANALYST = "wall-screen-token-0123456789", "analyst-token-0123456789"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def tokens() -> str:
    return api_tokens(("wall", WALL, ("aggregates:read", "profiles:read")), ("analyst", ANALYST, ("aggregates:read",)))


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium with a fresh profile, no background traffic, and its console and network logged."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("Debian's chromium and chromium-driver are missing: scripts/install-browser installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="streamproc-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1400,2200"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def sse(port: int, token: str, last_id: str | None = None, messages: int = 2) -> list[tuple[str, str, dict[str, Any]]]:
    """The first ``messages`` (id, event, data) of the dashboard's stream, resuming from ``last_id``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/dashboard/events?access_token={token}", headers={"Last-Event-ID": last_id} if last_id else {})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    out: list[tuple[str, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    while len(out) < messages:
        line = resp.fp.readline().decode().rstrip("\n")
        if not line:
            if "data" in fields:
                out.append((fields["id"], fields["event"], orjson.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    conn.close()
    return out


def test_dashboard_grows_live_looks_a_customer_up_and_stays_on_the_machine(
        kafka_url, redis_url, broker_proc, contracts: Contracts, tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    with serving_worker(kafka_url, redis_url, tmp_path, tokens()) as (port, _):
        events = list(generate(GeneratorConfig(customers=150, days=90, seed=11)))
        thirds = [events[i * len(events) // 3:(i + 1) * len(events) // 3] for i in range(3)]
        base = f"http://127.0.0.1:{port}"

        browser.get(f"{base}/dashboard?token={WALL}")
        wait_for(lambda: browser.execute_script("return window.dash && dash.snapshots") == 1, 30, "the first snapshot")
        seen: list[tuple[int, int, int]] = []

        def board() -> tuple[int, int, int]:
            applied = browser.find_element(By.ID, "t-applied").text.replace(",", "")
            points = browser.execute_script(
                "const c = dash.charts; return [c['c-stages'] ? c['c-stages'].points : 0, c['c-rates'] ? c['c-rates'].points : 0]")
            return int(applied) if applied.isdigit() else 0, *points

        for i, part in enumerate(thirds):
            asyncio.run(publish(kafka_url, event_records(contracts, part)))
            done = sum(len(p) for p in thirds[:i + 1])
            wait_for(lambda done=done: processed(redis_url) >= done, 120, f"part {i + 1} of the events")
            wait_for(lambda done=done: board()[0] >= done, 30, f"the page to count part {i + 1}")
            seen.append(board())
        applied, stage_points, rate_points = zip(*seen)
        assert list(applied) == sorted(set(applied)) and applied[-1] == len(events), seen
        assert stage_points[0] > 0 and stage_points[-1] > stage_points[0], seen  # event-time history grew
        assert rate_points[-1] > rate_points[0], seen
        for chart in ("c-rates", "c-stages", "c-alerts", "c-auc", "c-mae"):
            assert browser.execute_script(f"return !!dash.charts['{chart}']"), chart
        assert len(browser.find_elements(By.CSS_SELECTOR, "canvas")) >= 5
        lifecycle = {r.find_elements(By.TAG_NAME, "td")[0].text for r in browser.find_elements(By.CSS_SELECTOR, "#segments .seg:first-child tr")}
        assert lifecycle & {"new", "active", "loyal"}, lifecycle
        assert browser.find_elements(By.CSS_SELECTOR, "#alerts li .sev"), "no alert listed"

        raw = events[0]["customer_id"]
        browser.find_element(By.ID, "lookup-id").send_keys(raw)
        browser.find_element(By.CSS_SELECTOR, "#lookup button").click()
        stage = wait_for(lambda: (el := browser.find_elements(By.ID, "cust-stage")) and el[0].text, 15, "the lookup")
        history = browser.find_elements(By.CSS_SELECTOR, "#cust-history tr")
        offers = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#cust-offers li")]
        assert offers and all(o.startswith("SKU-") for o in offers), offers
        assert stage in {"new", "active", "loyal", "reactivated", "at_risk", "churned"}
        assert len(history) > 1 and any(" stage " in h.text for h in history[1:]), [h.text for h in history]

        network = [orjson.loads(e["message"])["message"] for e in browser.get_log("performance")]
        urls = [m["params"]["request"]["url"] for m in network if m["method"] == "Network.requestWillBeSent"]
        url_of = {m["params"]["requestId"]: m["params"]["request"]["url"] for m in network
                  if m["method"] == "Network.requestWillBeSent"}
        page = {url_of.get(m["params"]["requestId"], "?")[len(base):]: m["params"].get("encodedDataLength", 0)
                for m in network if m["method"] == "Network.loadingFinished"
                and url_of.get(m["params"]["requestId"], "").startswith(f"{base}/dashboard")
                and "/events" not in url_of[m["params"]["requestId"]]}
        leaving = [u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss") and not u.startswith(f"{base}/")]
        assert urls and leaving == [], leaving  # chrome:// and data: URLs are the browser's own, not the network
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [] and browser.execute_script("return dash.errors") == []
        first_chart = browser.execute_script("return dash.firstChartMs")
        ours = sum(u.startswith(f"{base}/") for u in urls)
        report(f"dashboard: {ours} requests, all to {base}; first chart {first_chart} ms after navigation; "
               f"the page weighs {sum(page.values()):,} bytes on the wire ({page}); {len(events)} events counted live "
               f"(after each third: {list(applied)})")

        # the stream by hand: a read-only token without the header, a refusal, and a resumed connection
        (_, kind, snap), (tick_id, tick, _) = sse(port, ANALYST)
        assert kind == "snapshot" and snap["totals"]["applied"] == len(events) and tick == "tick"
        resumed = sse(port, ANALYST, last_id=tick_id, messages=1)
        assert resumed[0][1] == "tick", resumed  # the ring still had it: what came after, no snapshot
        assert sse(port, ANALYST, last_id="gone-1", messages=1)[0][1] == "snapshot"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/dashboard/events?access_token=wrong")
        assert conn.getresponse().status == 401
