"""A production worker refuses the development secret, and says what to do."""

from __future__ import annotations

import pytest

from streamproc.errors import ConfigError
from streamproc.runtime.worker import run_worker
from streamproc.settings import Settings

URLS = {"kafka_url": "kafka://127.0.0.1:1", "redis_url": "redis://127.0.0.1:1/0"}


def test_a_production_worker_refuses_the_development_secret() -> None:
    with pytest.raises(ConfigError, match="STREAMPROC_PII_SECRET is the development secret.*STREAMPROC_ENVIRONMENT=dev"):
        run_worker(Settings(**URLS), [])


def test_a_worker_with_a_secret_of_its_own_goes_past_the_check(tmp_path) -> None:  # noqa: ANN001
    bad_rules = tmp_path / "rules.yaml"
    bad_rules.write_text("rules: [{id: x}]\n")  # stops at the next check: the rules file
    with pytest.raises(ConfigError, match="missing field"):
        run_worker(Settings(**URLS, pii_secret="a-secret-of-our-own", rules_file=bad_rules), [])
