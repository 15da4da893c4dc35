"""Masking of personal data in free text (``ingest.mask``): what is masked, and what must stay."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.ingest.mask import mask_text


@pytest.mark.parametrize("text, masked", [
    ("write to jane.doe+shop@mail.example.co.uk please", "write to [email] please"),
    ("call +44 7700 900042", "call [phone]"),
    ("call 0044 20 7946 0958", "call [phone]"),
    ("+1 (555) 123-4567", "[phone]"),
    ("(020) 7946 0958", "[phone]"),
    ("555-123-4567 or 555.123.4567", "[phone] or [phone]"),
    ("tel:+441234567890", "tel:[phone]"),
    ("07700 900042", "[number]"),
    ("06 12 34 56 78", "[number]"),
    ("card 4111 1111 1111 1111", "card [number]"),
    ("card 4111-1111-1111-1111", "card [number]"),
    ("account 12345678", "account [number]"),
    ("IBAN DE89 3704 0044 0532 0130 00", "IBAN DE[number]"),
    ("no.12345678", "no.[number]"),
])
def test_personal_data_is_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", [
    "paid 19.99, then 1,299.00 and 1.299.999 for the sofa",
    "delivered 2026-01-15 10:30, ordered 15/01/2026, invoiced 15.01.2026 01-15-2026",
    "a customer since 2019-2026",
    "5/5, 10/10, 4 stars, 3 x 2 items",
    "order 1234567 took 3 days",
    "+12 points",
    "price 0.12345678",
    "no digits or addresses here @ all",
])
def test_what_is_not_personal_data_is_left_alone(text: str) -> None:
    assert mask_text(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789 -+().@abc", max_size=60))
def test_masking_is_idempotent_and_leaves_no_run_of_8_digits(text: str) -> None:
    once = mask_text(text)
    assert mask_text(once) == once
    # a decimal's digits ("0.01000000") start no long number, as the module says: no other run of 8 is left
    assert re.search(r"(?<!\d)(?<!\d[./])\d{8}", once) is None
