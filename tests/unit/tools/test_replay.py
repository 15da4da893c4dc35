"""``streamproc replay``: native files round-trip into the records ``generate --publish`` sends,
shop exports are mapped, grouped and checked row by row, events are ordered by event time, and
on a real broker every event arrives once, on its customer's partition, in time order."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from streamproc.cli import cli
from streamproc.contracts import Contracts
from streamproc.ingest.clean import Reject, clean_ts
from streamproc.ingest.decode import parse_ts
from streamproc.ops.produce import event_records
from streamproc.settings import get_settings
from streamproc.sim.generator import generate
from streamproc.tools.replay import (
    Display,
    MappingError,
    ReplayError,
    ReplayOptions,
    detect_format,
    event_time,
    run_replay,
)
from streamproc.tools.stack import free_port
from tests.builders import RETAIL_CSV, RETAIL_TOML, SMALL, history_click, jsonl, read, write

# --------------------------------------------------------------------------- pure: times, formats


@pytest.mark.parametrize("value", [
    "2026-01-05T10:00:00+01:00", "2026-01-05T09:00:00.250000+00:00", "2026-01-05 09:00:00+0000",
    "2026-01-05t09:00:00z", " 2026-01-05T09:00:00Z ", 1767603600123, 1767603600,
    "2026-01-05T09:00:00", "12/1/2010 8:26", "2026-02-30T00:00:00+00:00", "", None, ["x"],
])
def test_event_time_reads_ts_as_the_worker_does(value: object) -> None:
    try:
        text = clean_ts(value, [])
        expected = parse_ts(text).timestamp() if isinstance(text, str) else None
    except Reject:
        expected = None
    assert event_time(value) == expected


def test_format_comes_from_the_name_or_the_option() -> None:
    assert detect_format(Path("h.csv"), None) == "csv"
    assert detect_format(Path("H.JSONL.gz"), None) == "jsonl"
    assert detect_format(Path("h.ndjson"), None) == "jsonl"
    assert detect_format(Path("export.txt"), "csv") == "csv"
    with pytest.raises(ReplayError, match="give --format csv or --format jsonl"):
        detect_format(Path("export.txt"), None)


# --------------------------------------------------------------------------- pure: native files


def test_generated_csv_round_trips_into_the_records_generate_publish_sends(tmp_path: Path,
                                                                          contracts: Contracts) -> None:
    out = tmp_path / "h.csv"
    run = CliRunner().invoke(cli, ["generate", "--customers", "30", "--days", "10", "--seed", "5", "--out", str(out)])
    assert run.exit_code == 0, run.output
    expected = [(t, k, orjson.loads(v)) for t, k, v in event_records(contracts, generate(SMALL))]
    gz = tmp_path / "h.csv.gz"
    gz.write_bytes(gzip.compress(out.read_bytes()))
    for path in (out, gz):
        summary, records = read(contracts, path)
        assert [(t, k, orjson.loads(v)) for _, t, k, v in records] == expected
        assert summary.rows == len(expected) and not summary.skipped.counts and not summary.warnings.counts


def test_dirty_events_cannot_be_written_as_csv(tmp_path: Path) -> None:
    run = CliRunner().invoke(cli, ["generate", "--customers", "3", "--days", "2", "--dirty", "--out",
                                   str(tmp_path / "d.csv")])
    assert run.exit_code == 2 and "write JSON Lines" in run.output


def test_jsonl_lines_are_published_as_written_and_bad_lines_reported(tmp_path: Path, contracts: Contracts) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(b'{"event_id": "e1", "type": "clickstream", "customer_id": " c1 ", "ts": 1767607200000,'
                     b' "session_id": "s", "page": "/", "action": "page_view"}\n'
                     b'\n{"type": "purchase", "customer_id": "C1"\n'
                     b'[1, 2]\n'
                     b'{"event_id": "e2", "type": "refund", "customer_id": "C1", "ts": "2026-01-05T09:00:00Z"}\n'
                     b'{"event_id": "e3", "type": "Feedback", "ts": "2026-01-05T09:00:00Z", "rating": 4}\n')
    summary, records = read(contracts, path)
    assert [(t, k) for _, t, k, _ in records] == [("feedback", None), ("clickstream", b"C1")]
    assert records[1][3] == path.read_bytes().splitlines()[0]
    assert {kind: [line for line, _ in first] for kind, first in summary.skipped.first.items()} == {
        "not JSON": [3], "not a JSON object": [4], "unknown type": [5]}
    assert summary.skipped.first["unknown type"] == [(5, "'refund'")]
    assert summary.warnings.counts == {"no customer_id": 1}
    assert summary.rows == 6


def test_events_are_ordered_by_time_and_unreadable_ones_follow_their_predecessor(tmp_path: Path,
                                                                                contracts: Contracts) -> None:
    docs = [history_click("bad-first", "yesterday"), history_click("c", "2026-01-05T12:00:00Z"),
            history_click("a", "2026-01-05T10:00:00+00:00"), history_click("bad", "2026-01-05 10:30"),
            history_click("b1", "2026-01-05T11:00:00+01:00"), history_click("b2", "2026-01-05T10:00:00Z")]
    summary, records = read(contracts, jsonl(tmp_path / "o.jsonl", docs))
    assert [orjson.loads(r[3])["event_id"] for r in records] == ["bad-first", "a", "bad", "b1", "b2", "c"]
    assert summary.warnings.counts == {"unreadable time": 2}
    assert [line for line, _ in summary.warnings.first["unreadable time"]] == [1, 4]


# --------------------------------------------------------------------------- pure: mapped exports


def test_retail_export_becomes_one_purchase_per_invoice(tmp_path: Path, contracts: Contracts) -> None:
    export = write(tmp_path / "retail.csv", RETAIL_CSV)
    mapping = write(tmp_path / "retail.toml", RETAIL_TOML)
    summary, records = read(contracts, export, mapping)
    events = [orjson.loads(r[3]) for r in records]
    assert [e["order_id"] for e in events] == ["536370", "536365", "536366", "536367", "536368", "581587"]
    first = events[1]
    assert first == {"event_id": "purchase:536365", "type": "purchase", "customer_id": "17850",
                     "ts": "2010-12-01T08:26:00+00:00", "order_id": "536365", "currency": "GBP", "channel": "web",
                     "items": [{"sku": "85123A", "quantity": 6, "price": 2.55},
                               {"sku": "71053", "quantity": 6, "price": 3.39}],
                     "total": 35.64}
    assert events[-1]["ts"] == "2011-06-09T11:50:00+00:00"  # 12:50 British Summer Time
    assert events[4]["ts"] == "13/45/2010 8:34"  # published as read, right after its file predecessor
    assert {r[1] for r in records} == {"purchases"} and records[1][2] == b"17850"
    assert summary.rows == 10 and summary.events == 6
    assert summary.skipped.counts == {"cancelled invoice": 1, "missing value": 1, "not a number": 1}
    assert summary.skipped.first["missing value"] == [(7, "CustomerID is empty (customer_id)")]
    assert summary.skipped.first["not a number"] == [(9, "Quantity 'x' (quantity)")]
    assert summary.warnings.first == {"unreadable time": [(8, "'13/45/2010 8:34'")]}
    assert read(contracts, export, mapping)[1] == records  # same file, same ids and bytes


def test_rows_without_an_id_column_get_ids_from_their_content(tmp_path: Path, contracts: Contracts) -> None:
    mapping = write(tmp_path / "ratings.toml", """
event = "feedback"
time = { column = "timestamp", format = "epoch" }
[fields]
customer_id = { column = "userId", prefix = "ML" }
rating = "rating"
channel = { value = "web" }
""")
    rows = [{"userId": 1, "rating": 4, "timestamp": 964982703}, {"userId": 1, "rating": 4, "timestamp": 964982703},
            {"userId": 2, "rating": "5.0", "timestamp": 964981247000}]
    summary, records = read(contracts, jsonl(tmp_path / "ratings.jsonl", rows), mapping)
    events = [orjson.loads(r[3]) for r in records]
    assert [(e["customer_id"], e["rating"], e["ts"]) for e in events] == [
        ("ML2", 5, "2000-07-30T18:20:47+00:00"), ("ML1", 4, "2000-07-30T18:45:03+00:00"),
        ("ML1", 4, "2000-07-30T18:45:03+00:00")]
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == 3 and ids[2] == ids[1] + ":2" and ids[1].startswith("feedback:")
    assert read(contracts, tmp_path / "ratings.jsonl", mapping)[1] == records


@pytest.mark.parametrize(("text", "message"), [
    ('event = "purchase"\nfoo = 1', "unknown key(s) ['foo']"),
    ('event = "refund"', "'event' must be one of ['clickstream', 'feedback', 'purchase']"),
    (RETAIL_TOML.replace('order_id = "InvoiceNo"', ""), "[fields] lacks ['order_id'], which a purchase event requires"),
    (RETAIL_TOML.replace("order_id =", "order_no ="), "[fields] order_no: a purchase event has no such field"),
    (RETAIL_TOML.replace("Europe/London", "Europe/Londn"), "[time] timezone: unknown time zone 'Europe/Londn'"),
    (RETAIL_TOML.replace('timezone = "Europe/London"', ""), "'format' has no %z, so give 'timezone'"),
    (RETAIL_TOML.replace('price = "UnitPrice"', ""), "[items] lacks ['price']"),
    (RETAIL_TOML.replace('starts_with = "C"', 'startswith = "C"'), "[[skip]] rule 1: keys are column, reason"),
    (RETAIL_TOML.replace(r"'^(\d+)'", "'('"), "[fields] customer_id: extract '(' is not a regex"),
    (RETAIL_TOML.replace('"latin-1"', '"latin-9x"'), "encoding: 'latin-9x' is not a text encoding"),
    ("event = [", "is not a valid mapping file"),
    ('event = "feedback"\ntime = { column = "t", format = "epoch" }\n[fields]\ncustomer_id = "u"\nchannel = "c"',
     "[fields] needs one of ['rating', 'nps', 'text']"),
])
def test_mapping_errors_name_the_bad_key(tmp_path: Path, contracts: Contracts, text: str, message: str) -> None:
    export = write(tmp_path / "retail.csv", RETAIL_CSV)
    with pytest.raises(MappingError) as err:
        read(contracts, export, write(tmp_path / "m.toml", text))
    assert message in str(err.value)


def test_a_column_the_export_lacks_is_named(tmp_path: Path, contracts: Contracts) -> None:
    export = write(tmp_path / "retail.csv", RETAIL_CSV.replace("UnitPrice", "Price"))
    with pytest.raises(MappingError, match=r"names column\(s\) \['UnitPrice'\] that .* lacks"):
        read(contracts, export, write(tmp_path / "m.toml", RETAIL_TOML))


# --------------------------------------------------------------------------- the command


@pytest.fixture
def no_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("STREAMPROC_KAFKA_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_command_reports_and_refuses_clearly(tmp_path: Path, no_broker: None) -> None:
    export, mapping = write(tmp_path / "retail.csv", RETAIL_CSV), write(tmp_path / "m.toml", RETAIL_TOML)
    runner = CliRunner()
    run = runner.invoke(cli, ["replay", str(export), "--mapping", str(mapping), "--dry-run"])
    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    assert lines[0].startswith("parsed 6 events (clickstream 0, purchases 6, feedback 0) from 10 rows in ")
    assert lines[0].endswith("events/s; 3 rows skipped; dry run, nothing published")
    assert "  skipped 1 row: missing value: line 7: CustomerID is empty (customer_id)" in lines
    run = runner.invoke(cli, ["replay", str(export), "--mapping", str(mapping), "--dry-run", "--json"])
    summary = orjson.loads(run.stdout)
    assert summary["events"] == 6 and summary["rows_skipped"] == 3 and summary["published"] == 0
    assert summary["warnings"]["unreadable time"] == {"count": 1, "first": [{"line": 8, "detail": "'13/45/2010 8:34'"}]}
    assert "STREAMPROC_KAFKA_URL" in runner.invoke(cli, ["replay", str(export)]).output
    assert "does not exist" in runner.invoke(cli, ["replay", str(tmp_path / "missing.csv")]).output
    assert "'xml' is not one of" in runner.invoke(cli, ["replay", str(export), "--format", "xml"]).output


def test_an_unreachable_broker_is_named(tmp_path: Path, contracts: Contracts) -> None:
    url = f"kafka://127.0.0.1:{free_port()}"
    path = jsonl(tmp_path / "h.jsonl", [history_click("e1", "2026-01-05T10:00:00Z")])
    with pytest.raises(ReplayError, match=f"cannot reach the broker at {url}.*'streamproc dev'"):
        run_replay(ReplayOptions(path), contracts, url, Display())
