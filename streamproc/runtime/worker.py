"""Start a Faust worker for the ingest agent (``streamproc worker``)."""

from __future__ import annotations

import sys

from streamproc.contracts import load_contracts
from streamproc.errors import ConfigError
from streamproc.runtime import agents
from streamproc.runtime.app import create_app
from streamproc.settings import DEV_SECRET, Settings


def run_worker(settings: Settings, faust_args: list[str]) -> None:
    """Run the worker until it is stopped; ``faust_args`` go to Faust's ``worker`` command."""
    if not settings.kafka_url or not settings.redis_url:
        raise ConfigError(
            "the worker needs STREAMPROC_KAFKA_URL and STREAMPROC_REDIS_URL; "
            "or run 'streamproc dev' to start a broker and a Redis of its own"
        )
    if settings.environment == "production" and settings.pii_secret.get_secret_value() == DEV_SECRET:
        raise ConfigError(
            "STREAMPROC_PII_SECRET is the development secret, which keys every customer id the same way on every "
            "installation: set a secret of your own (python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
            "or STREAMPROC_ENVIRONMENT=dev for a development worker")
    settings.rules()  # an invalid rules file stops the worker here, with every mistake (RulesInvalid)
    contracts = load_contracts(settings.topics_dir)
    app = create_app(settings)
    agents.attach(app, settings, contracts)
    sys.argv = ["streamproc", "worker", "--loglevel", settings.log_level, *faust_args]
    app.main()
