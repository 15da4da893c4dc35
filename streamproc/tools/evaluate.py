"""``streamproc evaluate``: the online models learning from a replayed stream, scored as they go.

In: a generated history (``GeneratorConfig``) or a history file read through the replay
mapping (``streamproc.tools.replay``). Out: ``Evaluation`` - the metrics over event time (one row
per ``step_days``), the final figures of the models and of the baselines on the same matured
labels, and the next-best offers' figures (``tools.recoeval``); as text (``render``), a table
of the metrics over event time, one of the final figures and those of the offers; on request
(``plot``), a PNG plot of AUC and MAE over event time.

The events go through the worker's decoder and pure pipeline, one event-time step at a time;
the examples whose labels mature are learned by the same ``LearnerState`` the runtime learner
uses (served prediction scored first, then learned), and the scorers get a copy of the
models after every step, as workers get each published version. Lifetime-value parameters
(for the P(alive) baseline) are refitted every ``refit_days`` as in the worker.

The churn figures are those of the scores served at the snapshots, by the model as it was
then: the first horizon's are the cold model's (the recency prior, ``models.online``), and
a history only a few horizons long is mostly cold. ``streamproc evaluate`` generates a year.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table

from streamproc.contracts import load_contracts
from streamproc.decisions.rules import Population, Rules
from streamproc.errors import ExtraMissing
from streamproc.ingest.decode import Decoded, Source
from streamproc.models import ltv
from streamproc.models.training import LearnerState
from streamproc.ops.models import metric_text
from streamproc.pipeline import Output, apply_batch, sweep
from streamproc.records import Example, InputEvent
from streamproc.settings import Settings
from streamproc.sim.generator import GeneratorConfig
from streamproc.state import purchases
from streamproc.state.profile import Profile
from streamproc.tools import recoeval
from streamproc.tools.recoeval import Recommendations

Progress = Callable[[int, int], None]


@dataclass
class Evaluation:
    """Metrics over event time and at the end."""

    timeline: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    events: int = 0
    recommendations: Recommendations | None = None

    def final(self) -> dict[str, Any]:
        """The headline figures (the keys of ``--json``)."""
        churn, sat = self.figures["churn"], self.figures["satisfaction"]
        return {
            "churn_auc": churn["auc"], "served_auc": churn["served"]["auc"], "served": churn["served"]["candidate"],
            "recency_auc": churn["baselines"]["recency"]["auc"],
            "palive_auc": churn["baselines"]["palive"]["auc"], "churn_log_loss": churn["log_loss"],
            "churn_ece": churn["ece"], "satisfaction_mae": sat["mae"], "satisfaction_rmse": sat["rmse"],
            "satisfaction_r2": sat["r2"], "mean_baseline_mae": sat["mean_baseline_mae"],
            "labels_matured": churn["labels"], "churn_positives": churn["positives"],
            "satisfaction_labels": sat["labels"], "events": self.events,
            **({"recommendations": self.recommendations.to_dict()} if self.recommendations else {}),
        }


def generated_events(config: GeneratorConfig, settings: Settings) -> list[InputEvent]:
    from streamproc.tools.earlywarning import decoded_events

    return decoded_events(config, settings)


def file_events(path: Path, mapping: Path | None, settings: Settings) -> list[InputEvent]:
    """The events of a history file, read and ordered as ``streamproc replay`` would publish them."""
    from streamproc.tools.replay import Display, ReplayOptions, Summary, detect_format, read_events

    contracts = load_contracts(settings.topics_dir)
    fmt = detect_format(path, None)
    records = read_events(ReplayOptions(path, mapping=mapping), fmt, contracts,
                          Summary(str(path), fmt, str(mapping) if mapping else None, True), Display())
    types = {t.name: t.event_type for t in contracts.inputs}
    decoder = settings.decoder(contracts, history=True)
    now = datetime.now().astimezone()
    out = []
    for _, topic, _, raw in records:
        d = decoder.decode(raw, Source(topic, 0, -1), types[topic], now)
        if isinstance(d, Decoded):
            out.append(d.event)
    return out


def _steps(events: list[InputEvent], step: timedelta) -> Iterable[tuple[datetime, list[InputEvent]]]:
    """Consecutive event-time windows of ``step`` and the events in each (events sorted by time)."""
    if not events:
        return
    end, chunk = events[0].ts + step, []
    for e in events:
        while e.ts >= end:
            yield end, chunk
            end, chunk = end + step, []
        chunk.append(e)
    yield end, chunk


def refit(profiles: dict[str, Profile], at: datetime, version: int) -> ltv.LtvParams | None:
    summaries = [s for p in profiles.values() if (s := purchases.summary(p.days, max(at, p.last_seen))) is not None]
    try:
        return ltv.fit(summaries, version, at)
    except ltv.FitError:
        return None


@dataclass
class Replayed:
    """What a replay ends with: the metrics, and the profiles, population and learner as of its end."""

    evaluation: Evaluation
    profiles: dict[str, Profile]
    population: Population
    state: LearnerState
    until: datetime | None


def evaluate(events: list[InputEvent], settings: Settings, step_days: float = 1.0, refit_days: float = 7.0,
             progress: Progress | None = None) -> Evaluation:
    """Run ``events`` (in event-time order) through the pipeline and the learner, and the item model
    (``tools.recoeval``); see the module docstring."""
    out = replay(events, settings, step_days, refit_days, progress).evaluation
    out.recommendations = recoeval.evaluate(events)
    return out


def replay(events: list[InputEvent], settings: Settings, step_days: float = 1.0, refit_days: float = 7.0,
           progress: Progress | None = None, *, rules: Rules | None = None,
           ranked: Callable[[dict[str, Profile], Population], Population] | None = None,
           observe: Callable[[list[Output]], None] | None = None) -> Replayed:
    """``evaluate``, keeping the final profiles, population and learner state (for ``holdout``).
    ``rules`` replaces the settings' thresholds and trigger rules; ``ranked`` gives the population
    with its rankings (top spend, RFM and CLV bounds) before each step; ``observe`` sees the outputs
    of each step (``rules backtest`` uses all three)."""
    rules = rules or settings.rules()
    state, pop, profiles = LearnerState(horizon_days=settings.churn_label_days), Population(), {}
    out = Evaluation(events=len(events))
    next_refit, version, done, until = None, 0, 0, None
    for until, chunk in _steps(events, timedelta(days=step_days)):
        if ranked is not None:
            pop = ranked(profiles, pop)
        result = apply_batch(chunk, profiles, pop, rules)
        profiles.update(result.profiles)
        swept = sweep(profiles, dict.fromkeys(profiles, until), pop, rules)
        profiles.update(swept.profiles)
        if observe is not None:
            observe(result.outputs + swept.outputs)
        for o in result.outputs + swept.outputs:
            if isinstance(o, Example):
                state.learn(o)
        next_refit = next_refit or until + timedelta(days=refit_days)
        if until >= next_refit:
            version += 1
            pop = replace(pop, ltv=refit(profiles, until, version) or pop.ltv)
            next_refit = until + timedelta(days=refit_days)
        pop = replace(pop, churn=copy.deepcopy(state.churn), satisfaction=copy.deepcopy(state.satisfaction))
        out.timeline.append(_row(until, state))
        done += len(chunk)
        if progress:
            progress(done, len(events))
    out.figures = state.figures()
    return Replayed(out, profiles, pop, state, until)


def _row(at: datetime, state: LearnerState) -> dict[str, Any]:
    f = state.figures()
    churn, sat = f["churn"], f["satisfaction"]
    return {
        "at": at.isoformat(), "labels": churn["labels"], "churn_auc": churn["auc"],
        "churn_auc_rolling": churn["rolling"]["auc"], "recency_auc": churn["baselines"]["recency"]["auc"],
        "palive_auc": churn["baselines"]["palive"]["auc"], "satisfaction_labels": sat["labels"],
        "satisfaction_mae": sat["mae"], "satisfaction_mae_rolling": sat["rolling"]["mae"],
        "mean_baseline_mae": sat["mean_baseline_mae"],
    }


def render(ev: Evaluation) -> Group:
    """The metrics over event time (about twelve rows) and the final figures, as two tables, and
    the next-best offers' figures over event time and overall."""
    tables = [_timeline_table(ev.timeline), _final_table(ev.final())]
    return Group(*tables, *([recoeval.render(ev.recommendations)] if ev.recommendations else []))


def _timeline_table(timeline: list[dict[str, Any]]) -> Table:
    table = Table(title="metrics over event time (whole stream so far)")
    table.add_column("event time", no_wrap=True)
    for col in ("labels", "churn AUC", "recency", "P(alive)", "sat. MAE", "mean MAE"):
        table.add_column(col, justify="right")
    every = max(len(timeline) // 12, 1)
    for row in timeline[every - 1::every]:
        table.add_row(row["at"][:10], f"{row['labels']:,}", *(metric_text(row[k]) for k in (
            "churn_auc", "recency_auc", "palive_auc", "satisfaction_mae", "mean_baseline_mae")))
    return table


def _final_table(final: dict[str, Any]) -> Table:
    f = metric_text
    table = Table(title=f"final: {final['labels_matured']:,} churn labels matured "
                        f"({final['churn_positives']:,} churned), {final['satisfaction_labels']:,} ratings")
    for col in ("", "model", "baseline", "baseline"):
        table.add_column(col, justify="right")
    table.add_row("churn ROC AUC", f(final["churn_auc"]), f"recency {f(final['recency_auc'])}",
                  f"P(alive) {f(final['palive_auc'])}")
    table.add_row("churn log loss / ECE", f"{f(final['churn_log_loss'])} / {f(final['churn_ece'])}", "", "")
    table.add_row("satisfaction MAE", f(final["satisfaction_mae"]), f"running mean {f(final['mean_baseline_mae'])}", "")
    table.add_row("satisfaction RMSE / R2", f"{f(final['satisfaction_rmse'])} / {f(final['satisfaction_r2'])}", "", "")
    return table


def require_plotting() -> None:
    """Raise ``ExtraMissing`` unless matplotlib (the ``tools`` extra) is installed: call it before a long run."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ExtraMissing("plotting needs matplotlib, which the worker's install leaves out: "
                           "pip install 'streamproc[tools]'") from exc


def plot(ev: Evaluation, path: Path) -> Path:
    """AUC (model and baselines) and MAE (model and mean baseline) over event time, as a PNG."""
    require_plotting()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in ev.timeline if r["churn_auc"] is not None or r["satisfaction_mae"] is not None]
    at = [datetime.fromisoformat(r["at"]) for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for key, label in (("churn_auc", "churn model (whole stream)"), ("churn_auc_rolling", "churn model (last 1,000)"),
                       ("recency_auc", "recency rule"), ("palive_auc", "BG/NBD P(alive)")):
        top.plot(at, [r[key] for r in rows], label=label)
    top.set_ylabel("ROC AUC on matured labels")
    top.legend(loc="lower right")
    top.grid(alpha=0.3)
    for key, label in (("satisfaction_mae", "satisfaction model"), ("satisfaction_mae_rolling", "model (last 1,000)"),
                       ("mean_baseline_mae", "running mean")):
        bottom.plot(at, [r[key] for r in rows], label=label)
    bottom.set_ylabel("MAE (satisfaction 0-1)")
    bottom.set_xlabel("event time")
    bottom.legend(loc="upper right")
    bottom.grid(alpha=0.3)
    fig.suptitle("streamproc evaluate: prequential metrics over event time")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
