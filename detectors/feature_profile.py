"""Per-feature reference summaries: one for numeric features, one for categorical ones.

Both are immutable and validate their own consistency, so a summary restored from a
(possibly hand-edited) state is as trustworthy as one just built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, TypeAlias

import numpy as np

from detectors._binning import FloatArray, IntArray

__all__ = ["OTHER", "CategoricalProfile", "FeatureProfile", "NumericProfile"]

#: Bucket that holds every category outside a profile's top-k, and, in a window,
#: every category the reference never kept.
OTHER = "__other__"


def _frozen(array: Any, dtype: type) -> Any:
    out: np.ndarray[Any, Any] = np.array(array, dtype=dtype, copy=True).reshape(-1)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """Reference summary of a numeric feature.

    Parameters
    ----------
    count
        Number of non-missing values seen.
    missing
        Number of rows where the feature was missing (``None``, NaN or absent).
    minimum, maximum
        Observed range; ``None`` when ``count == 0``.
    cuts
        Strictly increasing interior cut points at reference quantiles. Bins are
        right-closed, ``(-inf, cuts[0]], (cuts[0], cuts[1]], ..., (cuts[-1], inf)``.
    bin_counts
        Reference values per bin, ``len(cuts) + 1`` of them, summing to ``count``.
    sample
        Ascending sample of the reference values: all of them when ``count`` does not
        exceed the profile's ``max_sample``, else a seeded simple random subsample.
    """

    kind: ClassVar[str] = "numeric"

    count: int
    missing: int
    minimum: float | None
    maximum: float | None
    cuts: FloatArray = field(repr=False)
    bin_counts: IntArray = field(repr=False)
    sample: FloatArray = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("cuts", "sample"):
            object.__setattr__(self, name, _frozen(getattr(self, name), np.float64))
        object.__setattr__(self, "bin_counts", _frozen(self.bin_counts, np.int64))
        _check_counts(self.count, self.missing)
        if self.bin_counts.size != self.cuts.size + 1:
            raise ValueError(
                f"bin_counts must have len(cuts) + 1 = {self.cuts.size + 1} entries, "
                f"got {self.bin_counts.size}"
            )
        if int(self.bin_counts.sum()) != self.count or (self.bin_counts < 0).any():
            raise ValueError(
                f"bin_counts must be non-negative and sum to count = {self.count}, "
                f"got {self.bin_counts.tolist()}"
            )
        if np.any(np.diff(self.cuts) <= 0) or np.any(np.diff(self.sample) < 0):
            raise ValueError("cuts must be strictly increasing and sample ascending")
        if not (np.isfinite(self.cuts).all() and np.isfinite(self.sample).all()):
            raise ValueError("cuts and sample must be finite")
        if self.sample.size > self.count or (self.count > 0) != (self.sample.size > 0):
            raise ValueError(
                f"sample must hold between 1 and count = {self.count} values "
                f"(none when count is 0), got {self.sample.size}"
            )
        if (self.minimum is None) != (self.count == 0) or (self.maximum is None) != (
            self.count == 0
        ):
            raise ValueError("minimum and maximum must be None exactly when count is 0")

    @property
    def missing_ratio(self) -> float:
        """Fraction of rows where the feature was missing (0.0 for no rows)."""
        rows = self.count + self.missing
        return self.missing / rows if rows else 0.0

    @property
    def sample_is_exact(self) -> bool:
        """Whether ``sample`` holds every reference value."""
        return self.sample.size == self.count

    def to_state(self) -> dict[str, Any]:
        """JSON-safe state; floats are exact (JSON numbers round-trip a float64)."""
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "min": self.minimum,
            "max": self.maximum,
            "cuts": self.cuts.tolist(),
            "bin_counts": self.bin_counts.tolist(),
            "sample": self.sample.tolist(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> NumericProfile:
        """Inverse of :meth:`to_state`."""
        return cls(
            count=int(state["count"]),
            missing=int(state["missing"]),
            minimum=None if state["min"] is None else float(state["min"]),
            maximum=None if state["max"] is None else float(state["max"]),
            cuts=np.asarray(state["cuts"], dtype=np.float64),
            bin_counts=np.asarray(state["bin_counts"], dtype=np.int64),
            sample=np.asarray(state["sample"], dtype=np.float64),
        )

    @classmethod
    def empty(cls, missing: int) -> NumericProfile:
        """Summary of a feature that was missing in all ``missing`` rows."""
        return cls(0, missing, None, None, np.empty(0), np.zeros(1, np.int64), np.empty(0))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumericProfile):
            return NotImplemented
        return self.to_state() == other.to_state()

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class CategoricalProfile:
    """Reference summary of a categorical feature.

    Parameters
    ----------
    count
        Number of non-missing values seen.
    missing
        Number of rows where the feature was missing.
    counts
        Count per kept category (the ``top_k`` most frequent, ties broken by name)
        plus, when non-zero, the :data:`OTHER` bucket for the rest; sums to ``count``.
    """

    kind: ClassVar[str] = "categorical"

    count: int
    missing: int
    counts: Mapping[str, int]

    def __post_init__(self) -> None:
        _check_counts(self.count, self.missing)
        counts = {str(k): int(v) for k, v in self.counts.items()}
        if any(v <= 0 for v in counts.values()) or sum(counts.values()) != self.count:
            raise ValueError(
                f"counts must be positive and sum to count = {self.count}, got {counts}"
            )
        object.__setattr__(self, "counts", MappingProxyType(counts))

    @property
    def missing_ratio(self) -> float:
        """Fraction of rows where the feature was missing (0.0 for no rows)."""
        rows = self.count + self.missing
        return self.missing / rows if rows else 0.0

    def to_state(self) -> dict[str, Any]:
        """JSON-safe state."""
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "counts": dict(self.counts),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> CategoricalProfile:
        """Inverse of :meth:`to_state`."""
        return cls(int(state["count"]), int(state["missing"]), dict(state["counts"]))


FeatureProfile: TypeAlias = NumericProfile | CategoricalProfile


def feature_from_state(state: Mapping[str, Any]) -> FeatureProfile:
    """Restore either kind of feature summary from its state."""
    kind = state.get("kind")
    if kind == NumericProfile.kind:
        return NumericProfile.from_state(state)
    if kind == CategoricalProfile.kind:
        return CategoricalProfile.from_state(state)
    raise ValueError(f"feature kind must be 'numeric' or 'categorical', got {kind!r}")


def _check_counts(count: int, missing: int) -> None:
    if count < 0 or missing < 0:
        raise ValueError(
            f"count and missing must be integers >= 0, got count={count}, missing={missing}"
        )
