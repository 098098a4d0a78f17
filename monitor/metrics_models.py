"""Prometheus families of the per-model pipeline, built from its published snapshots.

Label values are bounded: models by ``limits.max_models``, features by the reference
(and ``limits.max_features``), segment values by ``limits.max_segment_values``,
versions by ``limits.max_versions``, signals by ``limits.max_signals``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from itertools import accumulate

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from monitor.alerts import ALERTS, SEVERITY
from monitor.model import LABEL_DELAY_BUCKETS, ModelSnapshot
from monitor.service import AlertView
from monitor.telemetry import safe_label

__all__ = ["AlertCollector", "ModelCollector"]


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


class ModelCollector(Collector):
    """Builds the per-model ``driftline_*`` families at each scrape."""

    def __init__(self, snapshots: Callable[[], tuple[ModelSnapshot, ...]]) -> None:
        self._snapshots = snapshots

    def collect(self) -> Iterator[Metric]:
        models = self._snapshots()
        yield from self._drift(models)
        yield from self._outcomes(models)
        yield from self._signals(models)
        yield from self._info(models)

    def _drift(self, models: tuple[ModelSnapshot, ...]) -> Iterator[Metric]:
        fm = ["model", "feature"]
        psi = _gauge("driftline_feature_psi", "PSI of the last window against the reference", fm)
        ks = _gauge("driftline_feature_ks_statistic", "KS statistic of the last window", fm)
        ksp = _gauge("driftline_feature_ks_pvalue", "KS p-value of the last window", fm)
        chi = _gauge("driftline_feature_chi2_pvalue", "Chi-square p-value of the last window", fm)
        missing = _gauge("driftline_feature_missing_ratio", "Missing share in the last window", fm)
        outside = _gauge(
            "driftline_feature_outside_ratio",
            "Share of the last window outside the reference: beyond its range (numeric) "
            "or an unseen category (categorical)",
            fm,
        )
        decided = _gauge(
            "driftline_feature_drift", "1 when the policy decides the feature drifted", fm
        )
        prediction = _gauge("driftline_prediction_psi", "PSI of the predictions", ["model"])
        prediction_drift = _gauge(
            "driftline_prediction_drift", "1 when the predictions are decided drifted", ["model"]
        )
        model_drift = _gauge(
            "driftline_model_drift", "1 when the model's inputs are decided drifted", ["model"]
        )
        windows = CounterMetricFamily(
            "driftline_windows_total", "Drift windows closed", labels=["model"]
        )
        drifted_windows = CounterMetricFamily(
            "driftline_drifted_windows_total",
            "Drift windows whose model-level decision was drifted",
            labels=["model"],
        )
        feature_windows = CounterMetricFamily(
            "driftline_feature_drift_windows_total",
            "Drift windows in which the feature was decided drifted",
            labels=fm,
        )
        segment_drift = _gauge(
            "driftline_segment_drift",
            "1 when a segment's inputs are decided drifted against its own reference",
            ["model", "segment", "value"],
        )
        for m in models:
            report = m.report
            if report is None:
                continue
            windows.add_metric([m.name], report.index)
            drifted_windows.add_metric([m.name], m.drifted_windows)
            model_drift.add_metric([m.name], int(report.drifted))
            prediction_drift.add_metric([m.name], int(m.prediction_drifted))
            if report.prediction is not None and _finite(report.prediction.psi):
                prediction.add_metric([m.name], report.prediction.psi)
            for feature, check in report.checks.items():
                labels = [m.name, safe_label(feature)]
                missing.add_metric(labels, check.missing_ratio)
                decided.add_metric(labels, int(feature in report.drifted_features))
                feature_windows.add_metric(labels, m.feature_drift_windows.get(feature, 0))
                if check.count == 0:
                    continue
                psi.add_metric(labels, check.psi)
                outside.add_metric(labels, check.outside_ratio)
                if check.kind == "numeric":
                    ks.add_metric(labels, check.statistic)
                    ksp.add_metric(labels, check.pvalue)
                elif _finite(check.pvalue):
                    chi.add_metric(labels, check.pvalue)
            for (key, value), seg in sorted(m.segment_reports.items()):
                if seg is not None:
                    segment_drift.add_metric([m.name, key, safe_label(value)], int(seg.drifted))
        yield from (psi, ks, ksp, chi, missing, outside, decided, prediction, prediction_drift)
        yield from (model_drift, windows, drifted_windows, feature_windows, segment_drift)

    def _outcomes(self, models: tuple[ModelSnapshot, ...]) -> Iterator[Metric]:
        perf = _gauge(
            "driftline_performance",
            "Performance over the last joined outcomes",
            ["model", "metric"],
        )
        drop = _gauge(
            "driftline_performance_drop",
            "1 when performance is decided to have dropped below the first windows'",
            ["model"],
        )
        by_version = _gauge(
            "driftline_version_performance",
            "Performance per model version",
            ["model", "version", "metric"],
        )
        by_segment = _gauge(
            "driftline_segment_performance",
            "Performance per segment value",
            ["model", "segment", "value", "metric"],
        )
        concept = CounterMetricFamily(
            "driftline_concept_drifts_total",
            "Changes detected in the error stream",
            labels=["model", "detector"],
        )
        joins = CounterMetricFamily(
            "driftline_joins_total",
            "Predictions joined to outcomes, expired without one, and outcomes never matched",
            labels=["model", "result"],
        )
        coverage = _gauge(
            "driftline_label_coverage_ratio",
            "Joined over resolved (joined or expired) predictions",
            ["model"],
        )
        delay = HistogramMetricFamily(
            "driftline_label_delay_seconds",
            "Outcome event time minus prediction event time",
            labels=["model"],
        )
        bounds = [repr(b) for b in LABEL_DELAY_BUCKETS] + ["+Inf"]
        for m in models:
            for metric, number in sorted(m.performance.items()):
                perf.add_metric([m.name, metric], number)
            if m.task is not None:
                drop.add_metric([m.name], int(m.performance_dropped))
            for version, metrics in sorted(m.version_performance.items()):
                for metric, value in sorted(metrics.items()):
                    by_version.add_metric([m.name, safe_label(version), metric], value)
            for (key, segment_value), metrics in sorted(m.segment_performance.items()):
                for metric, number in sorted(metrics.items()):
                    by_segment.add_metric([m.name, key, safe_label(segment_value), metric], number)
            for detector, n in sorted(m.concept_drifts.items()):
                concept.add_metric([m.name, detector], n)
            for result in ("joined", "expired", "unmatched", "unusable"):
                joins.add_metric([m.name, result], m.joins.get(result, 0))
            if m.label_coverage is not None:
                coverage.add_metric([m.name], m.label_coverage)
            cumulative = list(accumulate(m.label_delay_buckets))
            delay.add_metric(
                [m.name], list(zip(bounds, cumulative, strict=True)), m.label_delay_sum
            )
        yield from (perf, drop, by_version, by_segment, concept, joins, coverage, delay)

    def _signals(self, models: tuple[ModelSnapshot, ...]) -> Iterator[Metric]:
        labels = ["model", "signal"]
        rate = _gauge("driftline_signal_rate", "Signals per prediction, last window", labels)
        base = _gauge("driftline_signal_rate_baseline", "Baseline signals per prediction", labels)
        drop = _gauge("driftline_signal_drop", "1 when the rate is decided below baseline", labels)
        for m in models:
            for name, state in sorted(m.signals.items()):
                if state.rate is not None:
                    rate.add_metric([m.name, name], state.rate)
                if state.baseline is not None:
                    base.add_metric([m.name, name], state.baseline)
                drop.add_metric([m.name, name], int(state.dropped))
        yield from (rate, base, drop)

    def _info(self, models: tuple[ModelSnapshot, ...]) -> Iterator[Metric]:
        version = _gauge(
            "driftline_model_version_info",
            "The model version seen last; always 1",
            ["model", "version"],
        )
        reference = _gauge(
            "driftline_reference_info", "The reference in use; always 1", ["model", "profile_id"]
        )
        rows = _gauge(
            "driftline_reference_rows",
            "Rows in the reference (or learned so far while learning)",
            ["model"],
        )
        learning = _gauge(
            "driftline_reference_learning", "1 while the reference is being learned", ["model"]
        )
        untracked = CounterMetricFamily(
            "driftline_untracked_feature_values_total",
            "Feature values of features not in the reference (or beyond the cap)",
            labels=["model"],
        )
        refreshes = CounterMetricFamily(
            "driftline_reference_refreshes_total",
            "References replaced by stable recent rows (reference_mode: rolling)",
            labels=["model"],
        )
        overflow = CounterMetricFamily(
            "driftline_model_label_overflow_total",
            "Values of a model's capped labels (segment values, signal names) beyond the "
            "cap, counted under __other__",
            labels=["model", "label"],
        )
        for m in models:
            for label, n in sorted(m.overflow.items()):
                overflow.add_metric([m.name, label], n)
            if m.version is not None:
                version.add_metric([m.name, safe_label(m.version)], 1)
            if m.profile_id is not None:
                reference.add_metric([m.name, m.profile_id], 1)
            rows.add_metric([m.name], m.reference_rows)
            learning.add_metric([m.name], int(m.learning))
            untracked.add_metric([m.name], m.untracked_values)
            refreshes.add_metric([m.name], m.reference_refreshes)
        yield from (version, reference, rows, learning, untracked, refreshes, overflow)


class AlertCollector(Collector):
    """``driftline_alert_active`` and the alert counters, from the service's alert view."""

    def __init__(
        self,
        view: Callable[[], AlertView],
        snapshots: Callable[[], tuple[ModelSnapshot, ...]],
    ) -> None:
        self._view = view
        self._snapshots = snapshots

    def collect(self) -> Iterator[Metric]:
        view = self._view()
        active = _gauge(
            "driftline_alert_active",
            "1 while the alert fires for the model (any subject); 0 for monitored models",
            ["model", "alert", "severity"],
        )
        values = {
            (m.name, alert, SEVERITY[alert]): 0 for m in self._snapshots() for alert in ALERTS
        }
        values.update(view.active)
        for (model, alert, severity), value in sorted(values.items()):
            active.add_metric([model, alert, severity], value)
        transitions = CounterMetricFamily(
            "driftline_alert_transitions_total",
            "Alert transitions (firing, resolved)",
            labels=["alert", "status"],
        )
        for (alert, status), n in sorted(view.transitions.items()):
            transitions.add_metric([alert, status], n)
        published = CounterMetricFamily(
            "driftline_alerts_published_total",
            "Alert transitions acknowledged by the alerts topic",
        )
        published.add_metric([], view.published)
        dropped = CounterMetricFamily(
            "driftline_alerts_dropped_total",
            "Alert transitions or instances given up on: outbox full, or instances at the cap",
            labels=["reason"],
        )
        dropped.add_metric(["outbox_full"], view.dropped)
        dropped.add_metric(["instance_cap"], view.overflowed)
        yield from (active, transitions, published, dropped)
