"""Detection quality of driftline's default drift policy, as the daemon runs it.

Run ``python benchmarks/detection.py [--seeds N] [--stationary-events N] [--quick]``.

Method
------
Every run builds a :class:`monitor.drift.DriftMonitor` exactly as the daemon does
(``monitor.model.ModelMonitor._drift_monitor``): no reference file, so the reference
is learned from the stream's first ``ModelDefaults().reference_size`` rows; windows of
``ModelDefaults().window_size`` rows; ``max_features`` from ``LimitSettings()``; the
reference mode of ``ModelDefaults().reference_mode`` (pinned by default); and a
policy ``DriftPolicy(**ModelDefaults().policy.model_dump())``, the daemon's default
policy unless ``--policy-*`` overrides are given. Rows are fed one at a time through
``DriftMonitor.add(timestamp, features, prediction)`` as Python values, missing
values as ``None`` (what a decoded JSON event holds).

A row has 20 features, drawn independently:

* 15 numeric: normal (three scales), lognormal (two), uniform (two), integer-valued
  (Poisson, binomial, uniform digits), exponential, gamma, Student t with 3 degrees
  of freedom, a bimodal normal mixture and a beta; four of them 1% missing;
* 5 categorical with 2 to 8 labels, one of them 1% missing;

and the prediction is a logistic score of three features (its separate decision is
tracked as ``ModelMonitor._on_report`` does, and reported for the stationary stream).

Stationary stream: after the reference, ``--stationary-events`` more events from the
same distribution, per seed. A *false decision* is a window in which the model-level
decision was newly raised or a feature newly joined the drifted set; *feature-window
decisions* counts (window, feature) pairs decided drifted.

Change scenarios, ``--seeds`` runs each: the change starts at a random row between 2
and 6 windows after the reference, never on a window boundary, and the run goes on
for ``--horizon`` events after it. The *delay* is the number of events from the
change start to the end of the first window whose decision includes the changed
feature (a window's decision can only come when it closes). Misses count as never
detected; median and p95 are order statistics (the ``ceil(q n)``-th smallest
delay), so a p95 over misses reads as "not detected". A feature *wrongly flagged* is
any other feature decided drifted in the run, or the changed one before its change.

* ``shift 0.5σ``: ``num_00`` (normal) gets ``+0.5σ`` from the change on;
* ``variance ×2``: ``num_01`` (normal) becomes ``μ + (x − μ)·√2``, so its
  variance doubles (its standard deviation grows by √2);
* ``new category 10%``: ``cat_00`` takes a label never seen in the reference on 10%
  of its non-missing rows (the other labels shrink proportionally);
* ``gradual 0→1σ``: ``num_00``'s mean grows linearly from 0 to ``1σ`` over 10,000
  events, then stays.

Naive baseline, on the very same rows and windows: each feature of each window
against the same reference rows (non-missing values) with ``scipy.stats.ks_2samp``
(default method) for numeric features and ``scipy.stats.chi2_contingency`` on the
2 × labels table for categorical ones; a feature is flagged when p < 0.05, with no
multiple-testing correction and no persistence: each window decides afresh.

Targets: no false decision on the stationary stream, and the 0.5σ shift decided
within 2,000 events.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
from scipy import stats

from detectors.policy import DriftPolicy, FeatureEvidence
from monitor.config import LimitSettings, ModelDefaults, PolicySettings
from monitor.drift import DriftMonitor, WindowReport

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
Draw = Callable[[np.random.Generator, int], FloatArray]
Block = dict[str, np.ndarray[Any, Any]]

BASELINE_ALPHA: Final = 0.05
NEW_LABEL: Final = "new_label"


@dataclass(frozen=True)
class NumericSpec:
    """A numeric feature: how to draw it, its mean and standard deviation."""

    name: str
    draw: Draw
    mean: float
    sd: float
    integer: bool = False
    missing: float = 0.0


@dataclass(frozen=True)
class CategoricalSpec:
    name: str
    labels: tuple[str, ...]
    weights: tuple[float, ...]
    missing: float = 0.0


NUMERIC: Final[tuple[NumericSpec, ...]] = (
    NumericSpec("num_00", lambda g, n: g.normal(0.0, 1.0, n), 0.0, 1.0),
    NumericSpec("num_01", lambda g, n: g.normal(50.0, 10.0, n), 50.0, 10.0, missing=0.01),
    NumericSpec("num_02", lambda g, n: g.normal(-3.0, 0.2, n), -3.0, 0.2),
    NumericSpec("num_03", lambda g, n: g.lognormal(0.0, 0.5, n), 1.13, 0.60),
    NumericSpec("num_04", lambda g, n: g.lognormal(2.0, 1.0, n), 12.2, 16.0, missing=0.01),
    NumericSpec("num_05", lambda g, n: g.uniform(0.0, 1.0, n), 0.5, 0.29),
    NumericSpec("num_06", lambda g, n: g.uniform(-100.0, 100.0, n), 0.0, 57.7),
    NumericSpec("num_07", lambda g, n: g.poisson(3.0, n).astype(np.float64), 3.0, 1.73, True),
    NumericSpec(
        "num_08",
        lambda g, n: g.binomial(5, 0.3, n).astype(np.float64),
        1.5,
        1.02,
        integer=True,
        missing=0.01,
    ),
    NumericSpec("num_09", lambda g, n: g.integers(0, 10, n).astype(np.float64), 4.5, 2.87, True),
    NumericSpec("num_10", lambda g, n: g.exponential(2.0, n), 2.0, 2.0),
    NumericSpec("num_11", lambda g, n: g.gamma(2.0, 1.5, n), 3.0, 2.12),
    NumericSpec("num_12", lambda g, n: g.standard_t(3.0, n), 0.0, 1.73),
    NumericSpec(
        "num_13",
        lambda g, n: g.normal(0.0, 1.0, n) + np.where(g.random(n) < 0.3, 5.0, 0.0),
        1.5,
        2.5,
    ),
    NumericSpec("num_14", lambda g, n: g.beta(2.0, 5.0, n), 0.286, 0.16, missing=0.01),
)
CATEGORICAL: Final[tuple[CategoricalSpec, ...]] = (
    CategoricalSpec("cat_00", ("free", "pro", "team", "enterprise"), (0.4, 0.3, 0.2, 0.1), 0.01),
    CategoricalSpec("cat_01", ("web", "ios", "android"), (0.6, 0.3, 0.1)),
    CategoricalSpec(
        "cat_02", ("fr", "de", "es", "it", "nl", "pl"), (0.3, 0.25, 0.15, 0.12, 0.1, 0.08)
    ),
    CategoricalSpec("cat_03", ("no", "yes"), (0.9, 0.1)),
    CategoricalSpec(
        "cat_04",
        ("a", "b", "c", "d", "e", "f", "g", "h"),
        (0.3, 0.2, 0.15, 0.12, 0.1, 0.07, 0.055, 0.005),
    ),
)
FEATURES: Final = tuple(s.name for s in NUMERIC) + tuple(s.name for s in CATEGORICAL)
_SPECS: Final[Mapping[str, NumericSpec]] = {s.name: s for s in NUMERIC}

ChangeKind = Literal["shift", "scale", "new_category", "gradual"]


@dataclass(frozen=True)
class Scenario:
    """One change: ``magnitude`` is in σ (shift, gradual), a σ factor (scale) or a share."""

    label: str
    kind: ChangeKind
    feature: str
    magnitude: float
    ramp: int = 0  # gradual: events over which the mean reaches its full shift


SCENARIOS: Final[tuple[Scenario, ...]] = (
    Scenario("shift 0.5σ (num_00)", "shift", "num_00", 0.5),
    Scenario("variance ×2 (num_01)", "scale", "num_01", math.sqrt(2.0)),
    Scenario("new category 10% (cat_00)", "new_category", "cat_00", 0.10),
    Scenario("gradual 0→1σ over 10,000 (num_00)", "gradual", "num_00", 1.0, ramp=10_000),
)


# -- the stream --------------------------------------------------------------------------


def draw_block(rng: np.random.Generator, n: int) -> Block:
    """``n`` stationary rows as columns: floats with NaN, or object arrays with ``None``."""
    block: Block = {}
    for spec in NUMERIC:
        column = spec.draw(rng, n)
        if spec.missing:
            column[rng.random(n) < spec.missing] = np.nan
        block[spec.name] = column
    for cat in CATEGORICAL:
        labels = np.array(cat.labels, dtype=object)[
            rng.choice(len(cat.labels), n, p=np.array(cat.weights) / sum(cat.weights))
        ]
        if cat.missing:
            labels[rng.random(n) < cat.missing] = None
        block[cat.name] = labels
    return block


def apply_change(
    block: Block,
    scenario: Scenario,
    since: np.ndarray[Any, np.dtype[np.int64]],
    rng: np.random.Generator,
) -> None:
    """Change ``block`` in place where ``since`` (rows since the change start) is >= 0."""
    active = since >= 0
    if not active.any():
        return
    column = block[scenario.feature]
    if scenario.kind == "new_category":
        hit = active & (rng.random(since.size) < scenario.magnitude) & (column != None)  # noqa: E711
        column[hit] = NEW_LABEL
        return
    spec = _SPECS[scenario.feature]
    if scenario.kind == "shift":
        column[active] += scenario.magnitude * spec.sd
    elif scenario.kind == "scale":
        column[active] = spec.mean + (column[active] - spec.mean) * scenario.magnitude
    else:
        progress = np.minimum(since[active] / scenario.ramp, 1.0)
        column[active] += scenario.magnitude * spec.sd * progress


def prediction_of(block: Block) -> FloatArray:
    """A model's score: a logistic function of three features (0.5 where one is missing)."""
    z = 0.8 * block["num_00"] + 0.05 * (block["num_01"] - 50.0) - 0.3 * (block["num_07"] - 3.0)
    score: FloatArray = 1.0 / (1.0 + np.exp(-np.nan_to_num(z)))
    return score


def to_rows(block: Block) -> list[dict[str, Any]]:
    """The block as decoded events would hold it: Python numbers, ``str`` and ``None``."""
    columns: list[list[Any]] = []
    for spec in NUMERIC:
        values = block[spec.name]
        missing = np.isnan(values)
        if spec.integer:
            column: list[Any] = np.where(missing, 0, values).astype(np.int64).tolist()
        else:
            column = values.tolist()
        for i in np.flatnonzero(missing).tolist():
            column[i] = None
        columns.append(column)
    columns.extend(block[cat.name].tolist() for cat in CATEGORICAL)
    return [dict(zip(FEATURES, values, strict=True)) for values in zip(*columns, strict=True)]


# -- the two detectors ---------------------------------------------------------------------


def policy_settings(overrides: Mapping[str, Any] | None = None) -> PolicySettings:
    """The daemon's default policy settings, with ``overrides`` (validated as config is)."""
    return PolicySettings(**{**ModelDefaults().policy.model_dump(), **(overrides or {})})


class Daemon:
    """A :class:`DriftMonitor` built as ``ModelMonitor`` builds it, and its decisions."""

    def __init__(self, settings: PolicySettings) -> None:
        defaults = ModelDefaults()
        self._settings = settings
        self.monitor = DriftMonitor(
            "benchmark",
            None,
            reference_size=defaults.reference_size,
            window_size=defaults.window_size,
            window_seconds=defaults.window_seconds,
            max_features=LimitSettings().max_features,
            policy=self._policy,
            rolling=defaults.reference_mode == "rolling",
        )
        self._prediction_policy = self._policy()
        self.prediction_drifted = False
        self.new_prediction_decisions = 0

    def _policy(self) -> DriftPolicy:
        return DriftPolicy(**self._settings.model_dump())

    def feed(
        self, first_row: int, rows: Sequence[Mapping[str, Any]], predictions: list[float]
    ) -> WindowReport | None:
        """Add rows one at a time; the report of the window closed by the last row, if any."""
        add = self.monitor.add
        report = None
        for i, (row, prediction) in enumerate(zip(rows, predictions, strict=True)):
            report = add(float(first_row + i), row, prediction)
            if report is not None and i != len(rows) - 1:
                raise RuntimeError(f"window closed at row {first_row + i}, not on a block end")
        if report is not None:
            self._on_report(report)
        return report

    def _on_report(self, report: WindowReport) -> None:
        # As ModelMonitor._on_report: the prediction's own decision.
        check = report.prediction
        if check is not None and check.count > 0:
            pvalue = None if math.isnan(check.pvalue) else check.pvalue
            self._prediction_policy.update({"prediction": FeatureEvidence(pvalue, check.psi)})
            drifted = self._prediction_policy.drifted
            self.new_prediction_decisions += drifted and not self.prediction_drifted
            self.prediction_drifted = drifted


class Baseline:
    """Per-feature KS / chi-square at p < 0.05 against the reference rows, every window."""

    def __init__(self, reference: Block) -> None:
        self._numeric = {s.name: reference[s.name][~np.isnan(reference[s.name])] for s in NUMERIC}
        self._categorical = {
            c.name: Counter(v for v in reference[c.name].tolist() if v is not None)
            for c in CATEGORICAL
        }

    def flagged(self, block: Block) -> frozenset[str]:
        out = set()
        for name, reference in self._numeric.items():
            window = block[name][~np.isnan(block[name])]
            if window.size and stats.ks_2samp(window, reference).pvalue < BASELINE_ALPHA:
                out.add(name)
        for name, counts in self._categorical.items():
            if _chi2_pvalue(counts, block[name]) < BASELINE_ALPHA:
                out.add(name)
        return frozenset(out)


def _chi2_pvalue(reference: Counter[str], window: np.ndarray[Any, Any]) -> float:
    observed = Counter(v for v in window.tolist() if v is not None)
    labels = sorted(set(reference) | set(observed))
    if len(labels) < 2 or not observed:
        return 1.0
    table = np.array([[reference[k] for k in labels], [observed[k] for k in labels]])
    return float(stats.chi2_contingency(table).pvalue)


# -- runs ----------------------------------------------------------------------------------


@dataclass
class StationaryResult:
    """False decisions on one stationary stream (after the reference)."""

    events: int = 0
    windows: int = 0
    new_decisions: int = 0  # windows where the model or a feature was newly decided drifted
    feature_windows: int = 0  # (window, feature) pairs decided drifted
    prediction_decisions: int = 0
    flagged: Counter[str] = field(default_factory=Counter)
    # How close the two gates came: windows with an adjusted p-value below alpha, and
    # (window, feature) pairs with a PSI at or above min_effect, each gate on its own.
    pvalue_windows: int = 0
    effect_feature_windows: int = 0
    max_psi: float = 0.0
    baseline_windows: int = 0  # windows where the baseline flagged any feature
    baseline_feature_windows: int = 0


@dataclass
class ChangeRun:
    """One run of one scenario: delays (``None``: not detected) and wrong flags."""

    change_start: int
    delay: int | None = None
    wrong: set[str] = field(default_factory=set)
    baseline_delay: int | None = None
    baseline_wrong: set[str] = field(default_factory=set)


def _learn_reference(daemon: Daemon, rng: np.random.Generator) -> Block:
    rows = ModelDefaults().reference_size
    reference = draw_block(rng, rows)
    if daemon.feed(0, to_rows(reference), prediction_of(reference).tolist()) is not None:
        raise RuntimeError("a window closed while the reference was being learned")
    if daemon.monitor.learning:
        raise RuntimeError("the monitor is still learning after the reference rows")
    return reference


def run_stationary(
    seed: int,
    events: int,
    settings: PolicySettings,
    progress: Callable[[str], None] | None = None,
) -> StationaryResult:
    """``events`` (rounded up to whole windows) stationary events after the reference."""
    rng = np.random.default_rng((seed, 0))
    daemon = Daemon(settings)
    baseline = Baseline(_learn_reference(daemon, rng))
    first, size = ModelDefaults().reference_size, ModelDefaults().window_size
    windows = -(-events // size)
    result = StationaryResult()
    drifted: frozenset[str] = frozenset()
    model_drifted = False
    for w in range(windows):
        block = draw_block(rng, size)
        report = daemon.feed(first + w * size, to_rows(block), prediction_of(block).tolist())
        if report is None:
            raise RuntimeError(f"window {w} did not close after {size} rows")
        new = report.drifted_features - drifted
        result.new_decisions += bool(new) or (report.drifted and not model_drifted)
        result.feature_windows += len(report.drifted_features)
        result.flagged.update(new)
        drifted, model_drifted = report.drifted_features, report.drifted
        _gates(report, settings, result)
        flags = baseline.flagged(block)
        result.baseline_windows += bool(flags)
        result.baseline_feature_windows += len(flags)
        if progress is not None and (w + 1) % 100 == 0:
            progress(f"stationary seed {seed}: {w + 1}/{windows} windows")
    result.events, result.windows = windows * size, windows
    result.prediction_decisions = daemon.new_prediction_decisions
    return result


def _gates(report: WindowReport, settings: PolicySettings, result: StationaryResult) -> None:
    adjusted = report.adjusted_pvalues.values()
    result.pvalue_windows += any(p < settings.alpha for p in adjusted)
    psis = [c.psi for c in report.checks.values() if not math.isnan(c.psi)]
    result.effect_feature_windows += sum(v >= settings.min_effect for v in psis)
    result.max_psi = max([result.max_psi, *psis])


def run_change(
    scenario: Scenario, seed: int, settings: PolicySettings, horizon: int, stream: int = 1
) -> ChangeRun:
    """One run: the change starts 2 to 6 windows after the reference, off a boundary.

    ``(seed, stream)`` seeds the rows; give each scenario its own ``stream``.
    """
    rng = np.random.default_rng((seed, stream))
    size = ModelDefaults().window_size
    daemon = Daemon(settings)
    baseline = Baseline(_learn_reference(daemon, rng))
    first = ModelDefaults().reference_size
    offset = size * 2 + int(rng.integers(1, size * 4))
    while offset % size == 0:
        offset = size * 2 + int(rng.integers(1, size * 4))
    run = ChangeRun(change_start=first + offset)
    row = first
    while row < run.change_start + horizon:
        block = draw_block(rng, size)
        since = np.arange(row, row + size, dtype=np.int64) - run.change_start
        apply_change(block, scenario, since, rng)
        report = daemon.feed(row, to_rows(block), prediction_of(block).tolist())
        if report is None:
            raise RuntimeError(f"no window closed at row {row + size}")
        row += size
        changed = row > run.change_start
        run.delay = _score(
            report.drifted_features,
            scenario.feature,
            changed,
            run.delay,
            row - run.change_start,
            run.wrong,
        )
        run.baseline_delay = _score(
            baseline.flagged(block),
            scenario.feature,
            changed,
            run.baseline_delay,
            row - run.change_start,
            run.baseline_wrong,
        )
    return run


def _score(
    flagged: frozenset[str],
    target: str,
    changed: bool,
    delay: int | None,
    since: int,
    wrong: set[str],
) -> int | None:
    for name in flagged:
        if name == target and changed:
            if delay is None:
                delay = since
        else:
            wrong.add(name)
    return delay


# -- the benchmark -------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """What to run; the window, reference and policy are the daemon's unless overridden."""

    seeds: int = 30  # runs per change scenario
    stationary_seeds: int = 3
    stationary_events: int = 1_000_000  # per stationary seed, after the reference
    horizon: int = 20_000  # events watched after each change start
    base_seed: int = 0
    scenarios: tuple[Scenario, ...] = SCENARIOS
    policy: Mapping[str, Any] = field(default_factory=dict)  # PolicySettings overrides


@dataclass(frozen=True)
class Summary:
    """Delays of one scenario for one detector; delays are ``math.inf`` when missed."""

    runs: int
    detected: int
    median: float
    p95: float
    worst: float
    wrong_runs: int
    wrong: Counter[str]

    @classmethod
    def of(cls, delays: Sequence[int | None], wrong: Sequence[set[str]]) -> Summary:
        ordered = sorted(math.inf if d is None else float(d) for d in delays)
        return cls(
            runs=len(ordered),
            detected=sum(d is not None for d in delays),
            median=_order_statistic(ordered, 0.5),
            p95=_order_statistic(ordered, 0.95),
            worst=ordered[-1] if ordered else math.inf,
            wrong_runs=sum(bool(w) for w in wrong),
            wrong=Counter(name for w in wrong for name in w),
        )


def _order_statistic(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return math.inf
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


@dataclass(frozen=True)
class Results:
    config: Config
    settings: PolicySettings
    stationary: tuple[StationaryResult, ...]
    changes: Mapping[str, tuple[ChangeRun, ...]]  # by scenario label

    def policy_summary(self, label: str) -> Summary:
        runs = self.changes[label]
        return Summary.of([r.delay for r in runs], [r.wrong for r in runs])

    def baseline_summary(self, label: str) -> Summary:
        runs = self.changes[label]
        return Summary.of([r.baseline_delay for r in runs], [r.baseline_wrong for r in runs])


def run_benchmark(config: Config, progress: Callable[[str], None] | None = None) -> Results:
    """Every stationary seed, then every scenario over ``config.seeds`` seeds."""
    settings = policy_settings(config.policy)
    say = progress or (lambda _: None)
    stationary = []
    for k in range(config.stationary_seeds):
        seed = config.base_seed + k
        stationary.append(run_stationary(seed, config.stationary_events, settings, say))
        say(f"stationary seed {seed}: done, {stationary[-1].new_decisions} false decisions")
    changes: dict[str, tuple[ChangeRun, ...]] = {}
    for stream, scenario in enumerate(config.scenarios, start=1):
        runs = []
        for k in range(config.seeds):
            runs.append(
                run_change(scenario, config.base_seed + k, settings, config.horizon, stream)
            )
        changes[scenario.label] = tuple(runs)
        say(f"{scenario.label}: {config.seeds} runs done")
    return Results(config, settings, tuple(stationary), changes)


# -- the report ----------------------------------------------------------------------------


def describe(settings: PolicySettings) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.model_dump().items())


def format_tables(results: Results) -> str:
    """Markdown: the stationary stream, then one row per scenario and detector."""
    config, st = results.config, results.stationary
    windows = sum(r.windows for r in st)
    lines = [
        f"Policy: `{describe(results.settings)}`; reference {ModelDefaults().reference_size:,} "
        f"rows learned from the stream, windows of {ModelDefaults().window_size:,} rows, "
        "20 features (15 numeric, 5 categorical).",
        "",
        f"Stationary stream: {len(st)} seed(s) × {config.stationary_events:,} events "
        f"after the reference ({windows:,} windows).",
        "",
        "| Detector | False decisions (windows) | Feature-window decisions "
        "| Prediction decisions |",
        "|---|---:|---:|---:|",
        f"| driftline policy | {sum(r.new_decisions for r in st):,} "
        f"| {sum(r.feature_windows for r in st):,} "
        f"| {sum(r.prediction_decisions for r in st):,} |",
        f"| naive KS/χ² p<{BASELINE_ALPHA} | {sum(r.baseline_windows for r in st):,} "
        f"| {sum(r.baseline_feature_windows for r in st):,} | — |",
        "",
        f"Gates on their own (driftline): windows with an adjusted p-value below alpha: "
        f"{sum(r.pvalue_windows for r in st):,}; feature-windows with PSI ≥ min_effect: "
        f"{sum(r.effect_feature_windows for r in st):,}; largest PSI: "
        f"{max((r.max_psi for r in st), default=0.0):.4f}.",
        "",
        f"Changes: {config.seeds} seeded runs per scenario, change start 2–6 windows after "
        f"the reference at a random row, {config.horizon:,} events watched after it. "
        "Delay: events from the change start to the end of the first window whose decision "
        "includes the feature.",
        "",
        "| Scenario | Detector | Detected | Median delay | p95 delay | Worst delay "
        "| Runs with wrong flags | Wrongly flagged features (runs) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for scenario in config.scenarios:
        for name, summary in (
            ("driftline policy", results.policy_summary(scenario.label)),
            ("naive KS/χ²", results.baseline_summary(scenario.label)),
        ):
            lines.append(
                f"| {scenario.label} | {name} | {summary.detected}/{summary.runs} "
                f"| {_delay(summary.median)} | {_delay(summary.p95)} | {_delay(summary.worst)} "
                f"| {summary.wrong_runs}/{summary.runs} | {_wrong(summary.wrong)} |"
            )
    return "\n".join(lines)


def _delay(value: float) -> str:
    return "missed" if math.isinf(value) else f"{int(value):,}"


def _wrong(counts: Counter[str], shown: int = 4) -> str:
    if not counts:
        return "none"
    items = [f"{name} ({n})" for name, n in counts.most_common(shown)]
    rest = len(counts) - shown
    return ", ".join(items) + (f", … {rest} more" if rest > 0 else "")


def summary_line(results: Results, target_delay: int = 2_000) -> str:
    """One line: false decisions, the 0.5σ shift's delays, and whether targets are met."""
    st = results.stationary
    false = sum(r.new_decisions for r in st)
    text = (
        f"driftline policy ({describe(results.settings)}): {false:,} false decisions in "
        f"{len(st)} × {results.config.stationary_events:,} stationary events "
        f"(naive baseline: {sum(r.baseline_windows for r in st):,} windows)"
    )
    shift = next(
        (s for s in results.config.scenarios if s.kind == "shift" and s.magnitude == 0.5), None
    )
    met = false == 0
    if shift is not None:
        s = results.policy_summary(shift.label)
        met = met and s.worst <= target_delay
        text += (
            f"; 0.5σ shift decided in {s.detected}/{s.runs} runs, median {_delay(s.median)}, "
            f"p95 {_delay(s.p95)}, worst {_delay(s.worst)} events"
        )
    return text + ("; targets met." if met else f"; targets MISSED (0 false, ≤ {target_delay:,}).")


# -- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[Config, str | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, help="runs per change scenario (default 30)")
    parser.add_argument("--stationary-events", type=int, help="per seed (default 1,000,000)")
    parser.add_argument("--stationary-seeds", type=int, help="stationary streams (default 3)")
    parser.add_argument("--horizon", type=int, default=20_000, help="events after a change")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument(
        "--quick", action="store_true", help="5 seeds, one stationary stream of 100,000 events"
    )
    parser.add_argument("--write", metavar="PATH", help="also write the tables to PATH")
    for name, info in PolicySettings.model_fields.items():
        kind = info.annotation if info.annotation in (int, float) else str
        parser.add_argument(
            f"--policy-{name.replace('_', '-')}",
            dest=f"policy_{name}",
            type=kind,
            help=f"override the default {name} ({info.default})",
        )
    args = parser.parse_args(argv)
    quick = Config(seeds=5, stationary_seeds=1, stationary_events=100_000)
    base = quick if args.quick else Config()
    overrides = {
        name: getattr(args, f"policy_{name}")
        for name in PolicySettings.model_fields
        if getattr(args, f"policy_{name}") is not None
    }
    config = Config(
        seeds=base.seeds if args.seeds is None else args.seeds,
        stationary_seeds=(
            base.stationary_seeds if args.stationary_seeds is None else args.stationary_seeds
        ),
        stationary_events=(
            base.stationary_events if args.stationary_events is None else args.stationary_events
        ),
        horizon=args.horizon,
        base_seed=args.seed,
        policy=overrides,
    )
    return config, args.write


def main(argv: Sequence[str] | None = None) -> None:
    config, write = parse_args(argv)
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    results = run_benchmark(config, progress)
    wall = time.perf_counter() - started
    tables, line = format_tables(results), summary_line(results)
    print(tables)
    print()
    print(line)
    if write is not None:
        command = " ".join(["python benchmarks/detection.py", *sys.argv[1:]])
        with open(write, "w", encoding="utf-8") as out:
            out.write(
                "# Detection quality of the default drift policy\n\n"
                f"Command: `{command}` (wall time {wall / 60:.1f} min).\n"
                "Method: see the docstring of `benchmarks/detection.py`.\n\n"
                f"{tables}\n\n{line}\n"
            )
    progress(f"done in {wall:.0f}s")


if __name__ == "__main__":
    main()
