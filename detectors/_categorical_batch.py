"""PSI and chi-square inputs for one categorical feature of a window, reference laid out once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from detectors._binning import FloatArray, IntArray
from detectors.chi2 import contingency_statistic
from detectors.feature_profile import OTHER, CategoricalProfile

__all__ = ["CategoricalOutcome", "CategoricalTable"]


@dataclass(frozen=True)
class CategoricalOutcome:
    """One feature's results for one window; ``dof`` 0 means a single column (p = 1)."""

    count: int
    missing_ratio: float
    outside_ratio: float
    psi: float
    statistic: float
    dof: int


@dataclass(frozen=True, eq=False)
class CategoricalTable:
    """A categorical reference as arrays: kept labels to columns, ``OTHER`` last.

    The window's ``OTHER`` column takes every label the reference did not keep,
    exactly as :func:`~detectors._windows.aligned_counts` does.
    """

    index: Mapping[str, int]
    expected: IntArray
    ref_share: FloatArray
    epsilon: float
    correction: bool

    @classmethod
    def build(
        cls, feature: CategoricalProfile, epsilon: float, correction: bool
    ) -> CategoricalTable:
        """Lay out ``feature`` (``count > 0``)."""
        labels = [label for label in feature.counts if label != OTHER]
        expected = np.array(
            [feature.counts[k] for k in labels] + [feature.counts.get(OTHER, 0)], dtype=np.int64
        )
        return cls(
            index=MappingProxyType({label: i for i, label in enumerate(labels)}),
            expected=expected,
            ref_share=np.maximum(expected / expected.sum(), epsilon),
            epsilon=epsilon,
            correction=correction,
        )

    def run(self, name: str, column: Iterable[Any]) -> CategoricalOutcome:
        """Counts, PSI and chi-square statistic of one window's labels (``None`` = missing)."""
        if isinstance(column, str):
            raise ValueError(f"feature {name!r} must be a sequence of labels, got a single str")
        tally = Counter(column.tolist() if isinstance(column, np.ndarray) else column)
        missing = tally.pop(None, 0)
        other = self.expected.size - 1
        observed = np.zeros(self.expected.size, dtype=np.int64)
        for label, times in tally.items():
            if not isinstance(label, str):
                raise ValueError(
                    f"feature {name!r} labels must be str or None (see to_category), "
                    f"got {type(label).__name__} {label!r}"
                )
            observed[self.index.get(label, other)] += times
        count = int(observed.sum())
        rows = count + missing
        missing_ratio = missing / rows if rows else 0.0
        if count == 0:
            return CategoricalOutcome(0, missing_ratio, np.nan, np.nan, np.nan, 0)
        share = np.maximum(observed / count, self.epsilon)
        psi = float(np.sum((share - self.ref_share) * np.log(share / self.ref_share)))
        statistic, dof = contingency_statistic(self.expected, observed, self.correction)
        return CategoricalOutcome(
            count, missing_ratio, float(observed[other]) / count, psi, statistic, dof
        )
