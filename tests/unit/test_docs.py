"""The README documents every setting and every dead-letter reason the code has."""

from __future__ import annotations

import re

from streamproc.settings import Settings
from tests.builders import REPO

README = (REPO / "README.md").read_text()
SOURCES = (REPO / "streamproc").rglob("*.py")


def test_every_setting_is_in_the_configuration_table() -> None:
    missing = [f"STREAMPROC_{name.upper()}" for name in Settings.model_fields
               if f"| `STREAMPROC_{name.upper()}` |" not in README]
    assert missing == []


def test_every_dead_letter_reason_is_explained() -> None:
    reasons = set()
    for path in SOURCES:
        text = path.read_text()
        reasons |= set(re.findall(r'Reject(?:ion)?\((?:[\w.]+, )?"([a-z_]+)"', text))
        reasons |= set(re.findall(r'reason = "([a-z_]+)"', text))
        reasons |= set(re.findall(r'\.reject\("([a-z_]+)"', text))
    assert {"malformed_json", "out_of_range", "late_event", "processing_error"} <= reasons
    assert sorted(r for r in reasons if f"| `{r}` |" not in README) == []
