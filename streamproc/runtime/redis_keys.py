"""Redis key layout. Per-customer keys carry the customer in a hash tag (``{...}``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Names of every Redis key streamproc uses, under one prefix.

    ============================== ======= ===============================================
    key                            type    holds
    ============================== ======= ===============================================
    ``P:profile:{customer}``       string  the customer profile as JSON (see ``state.profile``)
    ``P:due:{pN}``                 zset    customers of partition N by next inactivity time
    ``P:buffer:{pN}``              zset    events of partition N waiting for the watermark, by event time
    ``P:offsets:{pN}``             hash    ``topic:N`` -> last applied offset of that partition
    ``P:watermarks``               hash    ``topic:partition`` -> highest event time (epoch s)
    ``P:progress``                 hash    partition -> event time up to which its state is applied
                                           (``inf``: idle, all applied); a fit at T waits for the
                                           slowest to pass T
    ``P:first-event``              zset    one member, ``first``: the earliest event time applied
                                           (schedules the first fit)
    ``P:fit-rows:<T>``             hash    customer -> the customer as of fit time T (epoch s),
                                           left by a batch that moved it past T before the fit
                                           (``features.population``)
    ``P:spend``                    zset    customer -> total spend (population ranks, RFM M)
    ``P:pop:<dim>``                zset    customer -> last purchase time (recency), orders
                                           (frequency) or CLV: population quantiles
    ``P:models``                   hash    version, lifetime-value parameters, cluster model,
                                           the last and next fit times, the population's values
                                           as of the fit (``pop:<dim>``; see ``runtime.refit``)
    ``P:learner``                  hash    the learner's state (models and metrics) and the offset of
                                           the last training example it learned
    ``P:models:online``            hash    version, churn and satisfaction models for the scorers,
                                           metrics as JSON (see ``runtime.learner``)
    ``P:segments:<dimension>``     hash    segment -> number of customers (lifecycle, rfm, value,
                                           cluster)
    ``P:stats``                    hash    counters (``in:<topic>``, applied, duplicates, ...)
    ``P:recent:alerts``            list    the latest alerts as JSON, newest first
    ``P:hourly:<H>``               hash    counts of event-time hour H (epoch s): ``flow:<old>><new>``
                                           lifecycle changes, ``alert:<rule>`` alerts (``plan.hourly``)
    ``P:hourly``                   zset    the hours that have counts, by hour
    ``P:items:pop``                zset    item -> decayed number of baskets holding it (``models.items``)
    ``P:items:co:<item>``          zset    neighbour -> decayed baskets holding both (the heaviest
                                           ``trim``; ``runtime.items``)
    ``P:models:history``           list    one JSON point per published online model version
                                           (metrics, baselines, drifts; the dashboard's model charts)
    ============================== ======= ===============================================
    """

    prefix: str = "sp"

    def profile(self, customer_id: str) -> str:
        return f"{self.prefix}:profile:{{{customer_id}}}"

    def due(self, partition: int) -> str:
        return f"{self.prefix}:due:{{p{partition}}}"

    def buffer(self, partition: int) -> str:
        return f"{self.prefix}:buffer:{{p{partition}}}"

    def outbox(self, partition: int) -> str:
        """Records of the last batch of partition N, written with its state, until published."""
        return f"{self.prefix}:outbox:{{p{partition}}}"

    def offsets(self, partition: int) -> str:
        """Applied offsets of partition number N of every input topic; a worker WATCHes it."""
        return f"{self.prefix}:offsets:{{p{partition}}}"

    @property
    def watermarks(self) -> str:
        return f"{self.prefix}:watermarks"

    @property
    def first_event(self) -> str:
        return f"{self.prefix}:first-event"

    def fit_rows(self, fit_time: float | str) -> str:
        """Rows of customers as of fit time ``fit_time`` (epoch seconds; ``*`` in a SCAN pattern)."""
        return f"{self.prefix}:fit-rows:{fit_time if isinstance(fit_time, str) else f'{fit_time:.0f}'}"

    @property
    def progress(self) -> str:
        return f"{self.prefix}:progress"

    @property
    def spend(self) -> str:
        return f"{self.prefix}:spend"

    def pop(self, dim: str) -> str:
        return f"{self.prefix}:pop:{dim}"

    @property
    def models(self) -> str:
        return f"{self.prefix}:models"

    @property
    def learner(self) -> str:
        return f"{self.prefix}:learner"

    @property
    def online_models(self) -> str:
        return f"{self.prefix}:models:online"

    def segments(self, dimension: str) -> str:
        return f"{self.prefix}:segments:{dimension}"

    @property
    def lifecycle_counts(self) -> str:
        return self.segments("lifecycle")

    @property
    def stats(self) -> str:
        return f"{self.prefix}:stats"

    @property
    def recent_alerts(self) -> str:
        return f"{self.prefix}:recent:alerts"

    def hourly(self, hour: int | None = None) -> str:
        """The counts of one event-time hour, or (``None``) the index of hours (``plan.hourly``)."""
        return f"{self.prefix}:hourly" if hour is None else f"{self.prefix}:hourly:{hour}"

    @property
    def items_popularity(self) -> str:
        return f"{self.prefix}:items:pop"

    def items_co(self, item: str) -> str:
        return f"{self.prefix}:items:co:{item}"

    @property
    def models_history(self) -> str:
        return f"{self.prefix}:models:history"

    def members(self, dimension: str, value: str) -> str:
        """Set of the customers in one segment (``GET /v1/segments/{dimension}/{value}/customers``)."""
        return f"{self.prefix}:members:{dimension}:{value}"

    @property
    def rules(self) -> str:
        """Hash of the published trigger rules: ``version``, ``text``, ``digest``, ``name``, ``published_at``."""
        return f"{self.prefix}:rules"

    def rules_version(self, version: int) -> str:
        """Every published version's text, kept so that an alert's version can be looked up."""
        return f"{self.prefix}:rules:v{version}"

    def customer_of(self, profile_key: str) -> str:
        return profile_key[len(self.prefix) + len(":profile:{"):-1]
