"""The decoder: valid records become typed events; every kind of bad record a reasoned rejection."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.contracts import Contracts
from streamproc.ingest import Click, Decoded, Decoder, Feedback, Purchase, Rejection, Source, TimeBounds
from streamproc.ingest.pseudonym import Pseudonymiser

SRC = Source("t", 0, 7)
FX = {"EUR": 1.0, "USD": 0.9, "GBP": 1.2}
KEYS = Pseudonymiser(b"test-secret")
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
BOUNDS = TimeBounds(datetime(2000, 1, 1, tzinfo=timezone.utc), 3600)


@pytest.fixture(scope="module")
def decoder(contracts: Contracts) -> Decoder:
    return Decoder(contracts.validators, FX, "EUR", KEYS, BOUNDS)


def decode(decoder: Decoder, raw: bytes | None, kind: str):  # noqa: ANN201
    out = decoder.decode(raw, SRC, kind, NOW)
    return out.event if isinstance(out, Decoded) else out


def purchase(**over: object) -> bytes:
    doc = {"event_id": "e1", "type": "purchase", "customer_id": " C1 ", "ts": "2026-03-01T12:00:00+02:00",
           "order_id": "o1", "items": [{"sku": "A", "quantity": 2, "price": 5.0}], "total": 10.0, "currency": "USD"}
    return orjson.dumps({**doc, **over})


def test_purchase_is_typed_in_utc_and_base_currency(decoder: Decoder) -> None:
    e = decode(decoder, purchase(), "purchase")
    assert isinstance(e, Purchase)
    assert e.customer_id == KEYS.customer("C1") and e.event_id == KEYS.key("event", "e1")
    assert e.ts == datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert (e.total, e.items[0].price, e.currency) == (9.0, 4.5, "USD")


def test_click_and_feedback(decoder: Decoder) -> None:
    c = decode(decoder, orjson.dumps({"event_id": "c", "type": "clickstream", "customer_id": "C", "ts": "2026-01-01T00:00:00Z",
                                     "session_id": "s", "page": "/p", "action": "add_to_cart", "price": 2.0,
                                     "currency": "GBP", "quantity": 1, "sku": "X"}), "clickstream")
    assert isinstance(c, Click) and c.price == 2.4 and c.action == "add_to_cart"
    f = decode(decoder, orjson.dumps({"event_id": "f", "type": "feedback", "customer_id": "C",
                                     "ts": "2026-01-01T00:00:00+00:00", "nps": 3, "channel": "app"}), "feedback")
    assert isinstance(f, Feedback) and (f.rating, f.nps) == (None, 3)


@pytest.mark.parametrize("raw, reason, fragment", [
    (b"{not json", "malformed_json", "not JSON"),
    (b"[1, 2]", "schema_violation", "JSON object"),
    (purchase(type="feedback"), "unknown_event_type", "unknown type 'feedback': this topic carries 'purchase' events"),
    (purchase(type=None), "unknown_event_type", "missing required field type: this topic carries 'purchase' events"),
    (purchase(total=-1), "out_of_range", "total must be a number of at least 0"),
    (purchase(items=[{"sku": "A", "quantity": 0, "price": 1}]), "out_of_range",
     "items[0].quantity must be an integer from 1 to 10000"),
    (purchase(items=[{"sku": "A", "price": 1}]), "schema_violation", "items[0] is missing required field quantity"),
    (purchase(items=[]), "schema_violation", "items must have at least 1 entry"),
    (purchase(total="ten"), "schema_violation", "total must be a number of at least 0, not a string"),
    (purchase(order_id=""), "schema_violation", "order_id must not be empty"),
    (purchase(currency="EURO"), "schema_violation", "currency must match the pattern ^[A-Z]{3}$"),
    (purchase(ts="yesterday"), "bad_timestamp", "no zone"),
    (purchase(ts="2026-03-01T12:00:00"), "bad_timestamp", "no zone"),
    (purchase(ts="2026-06-03T12:00:00Z"), "future_timestamp", "raise STREAMPROC_MAX_CLOCK_SKEW_S"),
    (purchase(ts="1999-12-31T23:59:59Z"), "too_old",
     "is before 2000-01-01T00:00:00+00:00; lower STREAMPROC_MIN_EVENT_TIME to accept such events"),
    (purchase(ts="2026-06-30T23:59:60Z"), "bad_timestamp", "second must be in 0..59"),
    (purchase(currency="JPY"), "unknown_currency", "add it to STREAMPROC_FX_RATES"),
])
def test_rejections_carry_reason_and_message(decoder: Decoder, raw: bytes, reason: str, fragment: str) -> None:
    r = decoder.decode(raw, SRC, "purchase", NOW)
    assert isinstance(r, Rejection)
    assert (r.reason, r.source, r.raw) == (reason, SRC, raw)
    assert fragment in r.message


def test_lower_case_rfc3339_separators_are_read(decoder: Decoder) -> None:
    e = decode(decoder, purchase(ts="2026-03-01t12:00:00z"), "purchase")
    assert isinstance(e, Purchase) and e.ts == datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def feedback(**over: object) -> bytes:
    doc = {"event_id": "f", "type": "feedback", "customer_id": "C", "ts": "2026-01-01T00:00:00Z", "channel": "web"}
    return orjson.dumps({k: v for k, v in {**doc, **over}.items() if v is not None})


@pytest.mark.parametrize("raw, reason, message", [
    (feedback(), "schema_violation", "feedback needs at least one of rating, nps or text"),
    (feedback(text=" \n "), "schema_violation", "feedback needs at least one of rating, nps or text (text is blank)"),
    (feedback(rating=9), "out_of_range", "rating must be an integer from 1 to 5"),
    (feedback(rating=2.5), "schema_violation", "rating must be an integer from 1 to 5, not a decimal number"),
    (feedback(nps=-1), "out_of_range", "nps must be an integer from 0 to 10"),
    (feedback(rating=3, channel="fax"), "schema_violation", "channel must be one of web, app, email, chat, phone or survey"),
    (feedback(rating=3, channel=None), "schema_violation", "missing required field channel"),
    (feedback(rating=3, channel=None, ts=None), "schema_violation", "missing required fields ts, channel"),
])
def test_feedback_contract_messages_name_the_field(decoder: Decoder, raw: bytes, reason: str, message: str) -> None:
    r = decoder.decode(raw, SRC, "feedback", NOW)
    assert isinstance(r, Rejection) and (r.reason, r.message) == (reason, message)


def test_text_only_feedback_is_accepted_with_its_text_masked(decoder: Decoder) -> None:
    f = decode(decoder, feedback(text="Parcel lost, mail me at jane@example.com or +44 7700 900042"), "feedback")
    assert isinstance(f, Feedback) and (f.rating, f.nps) == (None, None)
    assert f.text == "Parcel lost, mail me at [email] or [phone]"
    assert f.satisfaction is None


def test_a_blank_text_beside_a_rating_counts_as_no_text(decoder: Decoder) -> None:
    f = decode(decoder, feedback(rating=4, text="   "), "feedback")
    assert isinstance(f, Feedback) and (f.rating, f.text) == (4, None)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=300), st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(
    st.sampled_from(["event_id", "type", "customer_id", "ts", "items", "total", "currency", "order_id"]),
    st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
              st.lists(st.dictionaries(st.text(max_size=5), st.integers()), max_size=2)))),
    st.none()))
def test_arbitrary_bytes_never_raise(decoder: Decoder, raw: bytes | None) -> None:
    for kind in ("clickstream", "purchase", "feedback"):
        out = decoder.decode(raw, SRC, kind, NOW)
        assert isinstance(out, (Decoded, Rejection))


def test_dirty_but_safe_values_are_corrected_and_counted(decoder: Decoder) -> None:
    raw = purchase(ts=1772366400000, customer_id=" c1 ", total="10.00", currency="usd",
                   items=[{"sku": "A", "quantity": "2", "price": "5"}])
    out = decoder.decode(raw, SRC, "purchase", NOW)
    assert isinstance(out, Decoded)
    assert out.event.ts == datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    assert (out.event.customer_id, out.event.total, out.event.currency) == (KEYS.customer("C1"), 9.0, "USD")
    assert sorted(out.fixes) == ["currency_case", "id_normalised", "number_string", "number_string",
                                 "number_string", "ts_epoch"]


@pytest.mark.parametrize("customer_id, counted", [("c1", False), ("C1", False), (" C1", True), ("c1 ", True)])
def test_only_a_changed_id_counts_as_a_correction(decoder: Decoder, customer_id: str, counted: bool) -> None:
    out = decoder.decode(purchase(customer_id=customer_id), SRC, "purchase", NOW)
    assert isinstance(out, Decoded) and out.event.customer_id == KEYS.customer("C1")
    assert ("id_normalised" in out.fixes) is counted


def test_rejection_messages_never_quote_personal_data(decoder: Decoder) -> None:
    raw = purchase(email=12, customer_id="jane.doe@example.com")
    r = decoder.decode(raw, SRC, "purchase", NOW)
    assert isinstance(r, Rejection) and "jane" not in r.message


def test_keys_pass_through_so_dead_letters_can_be_replayed(decoder: Decoder) -> None:
    key = KEYS.customer("C1")
    e = decode(decoder, purchase(customer_id=key, event_id=KEYS.key("event", "e1")), "purchase")
    assert (e.customer_id, e.event_id) == (key, KEYS.key("event", "e1"))
