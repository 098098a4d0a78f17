"""The drift decision policy: multiple-testing correction, effect gate, persistence."""

from __future__ import annotations

import json
import typing

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from detectors.policy import DriftPolicy, FeatureEvidence, adjust_pvalues

pvalue_maps = st.dictionaries(
    st.text(min_size=1, max_size=5), st.floats(0, 1, allow_nan=False), max_size=30
)


def holm_by_definition(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


@given(pvalue_maps)
def test_holm_equals_its_definition(pvalues: dict[str, float]) -> None:
    adjusted = adjust_pvalues(pvalues, "holm")
    expected = holm_by_definition(list(pvalues.values()))
    assert list(adjusted.values()) == pytest.approx(expected, abs=1e-12)


@given(pvalue_maps.filter(bool))
def test_benjamini_hochberg_equals_scipy(pvalues: dict[str, float]) -> None:
    adjusted = adjust_pvalues(pvalues, "bh")
    expected = stats.false_discovery_control(list(pvalues.values()), method="bh")
    assert list(adjusted.values()) == pytest.approx(expected.tolist(), abs=1e-12)


@given(pvalue_maps)
def test_adjusted_pvalues_are_never_smaller_and_stay_in_range(pvalues: dict[str, float]) -> None:
    methods: tuple[typing.Literal["holm", "bh", "none"], ...] = ("holm", "bh", "none")
    for method in methods:
        adjusted = adjust_pvalues(pvalues, method)
        assert set(adjusted) == set(pvalues)
        assert all(pvalues[k] - 1e-15 <= v <= 1 for k, v in adjusted.items())


def test_a_feature_needs_both_significance_and_effect_to_signal() -> None:
    policy = DriftPolicy()
    policy.update(
        {
            "tiny_but_significant": FeatureEvidence(1e-12, 0.01),
            "large_but_noisy": FeatureEvidence(0.2, 0.5),
            "both": FeatureEvidence(1e-12, 0.3),
            "untested": FeatureEvidence(None, 9.0),
        }
    )
    assert policy.drifted_features == {"both"}
    assert policy.drifted


def test_holm_correction_spreads_alpha_over_the_features() -> None:
    # 0.0004 < alpha=0.001 alone, but not once corrected for 20 features.
    evidence = {f"f{i}": FeatureEvidence(0.5, 0.2) for i in range(19)}
    evidence["borderline"] = FeatureEvidence(0.0004, 0.2)
    corrected = DriftPolicy()
    corrected.update(evidence)
    uncorrected = DriftPolicy(correction="none")
    uncorrected.update(evidence)
    assert not corrected.drifted
    assert uncorrected.drifted_features == {"borderline"}


def test_persistence_delays_the_decision_and_hysteresis_delays_the_clearing() -> None:
    policy = DriftPolicy(persistence=2, clear_after=2)
    drifting = {"x": FeatureEvidence(1e-9, 0.4)}
    quiet = {"x": FeatureEvidence(0.6, 0.01)}
    history = []
    for window in [drifting, quiet, drifting, drifting, quiet, drifting, quiet, quiet, quiet]:
        policy.update(window)
        history.append(policy.drifted)
    assert history == [False, False, False, True, True, True, True, False, False]


def test_model_level_decision_waits_for_min_features() -> None:
    policy = DriftPolicy(min_features=2)
    policy.update({"a": FeatureEvidence(1e-9, 0.4), "b": FeatureEvidence(0.9, 0.0)})
    assert policy.drifted_features == {"a"} and not policy.drifted
    policy.update({"a": FeatureEvidence(1e-9, 0.4), "b": FeatureEvidence(1e-9, 0.4)})
    assert policy.drifted


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0}, "alpha must be in (0, 1), got 0"),
        ({"alpha": 1.5}, "alpha must be in (0, 1), got 1.5"),
        ({"correction": "bonferroni"}, "correction must be one of"),
        ({"min_effect": -1}, "min_effect must be a finite number >= 0, got -1"),
        ({"min_effect": float("nan")}, "min_effect must be a finite number >= 0"),
        ({"persistence": 0}, "persistence must be an integer >= 1, got 0"),
        ({"clear_after": 1.5}, "clear_after must be an integer >= 1, got 1.5"),
        ({"min_features": True}, "min_features must be an integer >= 1, got True"),
    ],
)
def test_bad_parameters_are_rejected_with_their_name_rule_and_value(
    kwargs: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DriftPolicy(**kwargs)


def test_reset_equals_a_fresh_policy_and_state_round_trips_through_json() -> None:
    rng = np.random.default_rng(3)
    windows = [
        {
            f"f{j}": FeatureEvidence(float(rng.uniform() ** 8), float(rng.uniform(0, 0.2)))
            for j in range(6)
        }
        for _ in range(40)
    ]
    original = DriftPolicy(persistence=2, clear_after=2)
    for w in windows[:20]:
        original.update(w)
    restored = DriftPolicy.from_state(json.loads(json.dumps(original.to_state())))
    for w in windows[20:]:
        original.update(w)
        restored.update(w)
        assert restored.drifted_features == original.drifted_features
        assert restored.adjusted_pvalues == original.adjusted_pvalues
    assert restored.to_state() == original.to_state()
    original.reset()
    assert original.to_state() == DriftPolicy(persistence=2, clear_after=2).to_state()


def test_a_state_of_another_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="expected a DriftPolicy state of version 1"):
        DriftPolicy.from_state({"type": "RateTracker", "version": 1})


def test_update_leaves_its_input_unchanged() -> None:
    evidence = {"a": FeatureEvidence(0.001, 0.2)}
    snapshot = dict(evidence)
    DriftPolicy().update(evidence)
    assert evidence == snapshot
