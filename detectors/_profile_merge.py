"""Merging two feature summaries built from disjoint sets of rows.

Exact: ``count``, ``missing``, ``minimum``, ``maximum``; category counts when neither
side folded categories into ``OTHER``; while the merged count fits in ``max_sample``,
the sample, cuts and bin counts (the result equals the profile built from the union
of the rows); past it, bin counts when both sides share the same cuts.

Approximate, past ``max_sample``: the merged sample takes a seeded random subsample
from each side in proportion to its count; when the cuts differ, new cuts are the
quantiles of that sample and each side's bin counts are re-estimated from its own
sample (scaled to its count, rounded by largest remainder to sum to the merged
count). For categories: one kept by a side but folded into ``OTHER`` by the other
keeps only the first side's count, the rest stays in ``OTHER``.

The two operands are put in a canonical order (by the hash of their state) before
anything seeded happens, so ``merge(a, b) == merge(b, a)``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from typing import TypeVar

import numpy as np

from detectors._binning import (
    FloatArray,
    bin_counts,
    largest_remainder,
    quantile_cuts,
    subsample,
)
from detectors.feature_profile import OTHER, CategoricalProfile, FeatureProfile, NumericProfile

__all__ = ["merge_features", "top_k_counts"]

FeatureT = TypeVar("FeatureT", bound=FeatureProfile)


def top_k_counts(counts: Counter[str], top_k: int) -> dict[str, int]:
    """Keep the ``top_k`` largest counts (ties by name) and fold the rest into OTHER."""
    other = counts.get(OTHER, 0)
    ranked = sorted(((-n, k) for k, n in counts.items() if k != OTHER and n > 0))
    kept = {k: -negative for negative, k in ranked[:top_k]}
    other += sum(-negative for negative, _ in ranked[top_k:])
    if other:
        kept[OTHER] = other
    return kept


def merge_features(
    name: str,
    left: FeatureProfile,
    right: FeatureProfile,
    *,
    n_bins: int,
    max_sample: int,
    top_k: int,
    seed: int,
) -> FeatureProfile:
    """Merge two summaries of feature ``name``; see the module docstring for exactness."""
    if left.count == 0 and left.kind != right.kind:
        return _with_extra_missing(right, left.missing)
    if right.count == 0 and left.kind != right.kind:
        return _with_extra_missing(left, right.missing)
    if isinstance(left, NumericProfile) and isinstance(right, NumericProfile):
        first, second = sorted((left, right), key=_digest)
        return _merge_numeric(first, second, n_bins, max_sample, seed)
    if isinstance(left, CategoricalProfile) and isinstance(right, CategoricalProfile):
        merged: Counter[str] = Counter(left.counts)
        merged.update(right.counts)
        counts = top_k_counts(merged, top_k)
        return CategoricalProfile(left.count + right.count, left.missing + right.missing, counts)
    raise ValueError(
        f"feature {name!r} must have one kind in both profiles to merge, "
        f"got {left.kind} and {right.kind}"
    )


def _merge_numeric(
    a: NumericProfile, b: NumericProfile, n_bins: int, max_sample: int, seed: int
) -> NumericProfile:
    count = a.count + b.count
    if a.count == 0 or b.count == 0:
        filled = a if a.count else b
        return _with_extra_missing(filled, a.missing + b.missing - filled.missing)
    exact = count <= max_sample and a.sample_is_exact and b.sample_is_exact
    if exact:
        sample = np.sort(np.concatenate((a.sample, b.sample)))
    else:
        rng = np.random.default_rng(seed)
        take_a = int(np.clip(round(max_sample * a.count / count), 0, a.sample.size))
        take_b = min(max_sample - take_a, b.sample.size)
        parts = (subsample(a.sample, take_a, rng), subsample(b.sample, take_b, rng))
        sample = np.sort(np.concatenate(parts))
    if exact:  # every value is at hand: the same cuts and counts as building from the union
        cuts = quantile_cuts(sample, n_bins)
        counts = bin_counts(sample, cuts)
    elif np.array_equal(a.cuts, b.cuts):
        cuts, counts = a.cuts, a.bin_counts + b.bin_counts
    else:
        cuts = quantile_cuts(sample, n_bins)
        estimate = _scaled_counts(a, cuts) + _scaled_counts(b, cuts)
        counts = largest_remainder(estimate, count)
    assert a.minimum is not None and b.minimum is not None  # count > 0 on both sides
    assert a.maximum is not None and b.maximum is not None
    return NumericProfile(
        count=count,
        missing=a.missing + b.missing,
        minimum=min(a.minimum, b.minimum),
        maximum=max(a.maximum, b.maximum),
        cuts=cuts,
        bin_counts=counts,
        sample=sample,
    )


def _scaled_counts(profile: NumericProfile, cuts: FloatArray) -> FloatArray:
    counts = bin_counts(profile.sample, cuts).astype(np.float64)
    return counts * (profile.count / profile.sample.size)


def _with_extra_missing(profile: FeatureT, missing: int) -> FeatureT:
    return replace(profile, missing=profile.missing + missing)


def _digest(profile: FeatureProfile) -> str:
    text = json.dumps(profile.to_state(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
