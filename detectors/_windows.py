"""Checking windows and lining them up with a reference, shared by the drift tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from detectors._binning import FloatArray, IntArray, bin_counts
from detectors.feature_profile import OTHER, CategoricalProfile, FeatureProfile, NumericProfile

__all__ = [
    "aligned_counts",
    "categorical_reference",
    "categorical_window",
    "check_positive",
    "numeric_reference",
    "numeric_window",
    "Window",
]

#: A window: finite numbers for a numeric feature, labels for a categorical one.
Window = ArrayLike | Iterable[str]


def numeric_window(window: ArrayLike, test: str) -> FloatArray:
    """The window as a sorted float64 array; raises on empty or non-finite input."""
    try:
        values = np.asarray(window, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{test} window must hold numbers, got {error}") from None
    if values.ndim != 1:
        raise ValueError(f"{test} window must be one-dimensional, got shape {values.shape}")
    if values.size == 0:
        raise ValueError(f"{test} window must hold at least one value, got an empty window")
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(
            f"{test} window values must be finite (drop missing values first), "
            f"got {int(values.size - finite.sum())} non-finite of {values.size}"
        )
    return np.sort(values)


def categorical_window(window: Iterable[Any], test: str) -> Counter[str]:
    """Counts of the window's labels; raises on an empty window or non-string labels."""
    if isinstance(window, str):
        raise ValueError(f"{test} window must be a sequence of labels, got a single str")
    counts = Counter(window.tolist() if isinstance(window, np.ndarray) else window)
    if not counts:
        raise ValueError(f"{test} window must hold at least one value, got an empty window")
    # Checks each distinct label once, not each element.
    for label in counts:
        if not isinstance(label, str):
            raise ValueError(
                f"{test} window labels must be str (see to_category), "
                f"got {type(label).__name__} {label!r}"
            )
    return counts


def numeric_reference(reference: FeatureProfile, test: str) -> NumericProfile:
    """The reference, checked to be numeric and non-empty."""
    if not isinstance(reference, NumericProfile):
        raise ValueError(f"{test} needs a numeric reference, got a {reference.kind} one")
    if reference.count == 0:
        raise ValueError(f"{test} needs a reference with at least one value, got count 0")
    return reference


def categorical_reference(reference: FeatureProfile, test: str) -> CategoricalProfile:
    """The reference, checked to be categorical and non-empty."""
    if not isinstance(reference, CategoricalProfile):
        raise ValueError(f"{test} needs a categorical reference, got a {reference.kind} one")
    if reference.count == 0:
        raise ValueError(f"{test} needs a reference with at least one value, got count 0")
    return reference


def aligned_counts(window: Any, reference: FeatureProfile, test: str) -> tuple[IntArray, IntArray]:
    """Reference and window counts over the same bins or categories.

    Numeric: the reference's quantile bins. Categorical: the reference's kept
    categories in its order, then ``OTHER``, which also takes every window label
    the reference did not keep (new categories included).
    """
    if isinstance(reference, NumericProfile):
        ref = numeric_reference(reference, test)
        return ref.bin_counts, bin_counts(numeric_window(window, test), ref.cuts)
    ref_cat = categorical_reference(reference, test)
    labels = [label for label in ref_cat.counts if label != OTHER]
    observed = categorical_window(window, test)
    expected = np.array([ref_cat.counts[k] for k in labels] + [ref_cat.counts.get(OTHER, 0)])
    kept = [observed.get(k, 0) for k in labels]
    seen = np.array(kept + [sum(observed.values()) - sum(kept)], dtype=np.int64)
    return expected.astype(np.int64), seen


def check_positive(name: str, value: float, *, below_one: bool = False) -> None:
    """Raise ``ValueError`` unless ``0 < value`` (and ``value < 1`` if asked)."""
    upper = 1.0 if below_one else np.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < upper:
        rule = "a number in (0, 1)" if below_one else "a number > 0"
        raise ValueError(f"{name} must be {rule}, got {value!r}")
