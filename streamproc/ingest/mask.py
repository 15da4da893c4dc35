"""Masking of personal data inside free text (a feedback's ``text``), before it is used or kept.

In: free text. Out: the same text with e-mail addresses replaced by ``[email]``, phone numbers
by ``[phone]`` and long digit strings (card, account, customer numbers: 8 or more digits, in
groups separated by single spaces or dashes) by ``[number]``. Everything else is left as it
is: prices (``19.99``, ``1,299.00``), dates (``2026-01-15``, ``15/01/2026``, ``15.01.2026``),
year ranges (``2019-2026``), times (``2026-01-15 10:30``), ratings (``5/5``, ``10/10``),
decimals (a digit run right after ``1.`` or ``1/`` starts no long number) and numbers under
8 digits.

A phone number is an international one (``+`` or ``00`` and at least 8 digits), one with an
area code in parentheses, or the North American shape ``555-123-4567``; any other run of 8 or
more digits counts as a long number (a national phone number included: masked all the same).
Digits glued to letters are masked too (``DE89370400440532013000`` -> ``DE[number]``).

>>> mask_text("Mail me at jane.doe@example.com or call +44 7700 900042.")
'Mail me at [email] or call [phone].'
>>> mask_text("Card 4111 1111 1111 1111 charged twice, 19.99 each, on 2026-01-15")
'Card [number] charged twice, 19.99 each, on 2026-01-15'
>>> mask_text("5/5, order 1234567 arrived in 3 days")
'5/5, order 1234567 arrived in 3 days'
"""

from __future__ import annotations

import re

EMAIL = r"(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
_PHONE = (r"(?P<phone>(?:\+|(?<!\d)00)\d(?:[ .-]?\(?\d+\)?){3,}"  # +44 7700 900042, 0044..., +1 (555) 123-4567
          r"|\(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,4}(?!\d)"      # (020) 7946 0958
          r"|(?<!\d)\d{3}[.-]\d{3}[.-]\d{4}(?!\d))")           # 555-123-4567
_NUMBER = r"(?P<number>(?<!\d)(?<!\d[./])\d(?:[ -]?\d){7,}(?!\d))"
_DATE = r"(?P<date>(?<!\d)(?:\d{4}-\d{2}-\d{2}|\d{2}-\d{2}-\d{4}|(?:19|20)\d{2}-(?:19|20)\d{2})(?!\d))"
_PATTERN = re.compile(f"{EMAIL}|{_DATE}|{_PHONE}|{_NUMBER}")
MIN_PHONE_DIGITS = 8


def _replacement(m: re.Match[str]) -> str:
    kind = m.lastgroup or "number"
    found = m[kind]
    if kind == "date" or (kind == "phone" and sum(c.isdigit() for c in found) < MIN_PHONE_DIGITS):
        return found  # kept, and consumed so that no digit of it starts a long number
    return f"[{kind}]"


def mask_text(text: str) -> str:
    """``text`` with e-mail addresses, phone numbers and long digit strings masked (one pass)."""
    return _PATTERN.sub(_replacement, text)
