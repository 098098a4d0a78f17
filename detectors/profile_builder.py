"""Building a reference :class:`~detectors.profile.Profile` from rows of features."""

from __future__ import annotations

import math
import numbers
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any, Final, TypeAlias

import numpy as np

from detectors._binning import FloatArray, bin_counts, quantile_cuts, subsample
from detectors._profile_merge import top_k_counts
from detectors.feature_profile import CategoricalProfile, FeatureProfile, NumericProfile
from detectors.profile import PROFILE_VERSION, Profile, check_settings

__all__ = [
    "ABSENT",
    "FeatureValue",
    "ProfileBuilder",
    "build_profile",
    "to_category",
    "to_columns",
]

#: What a row may hold for a feature; ``None`` (or NaN) means missing.
FeatureValue: TypeAlias = float | int | str | bool | None
_EXACT_INT = 2.0**53


class _Absent:
    """Marks a feature a row does not hold (``None`` is held, as missing)."""


ABSENT: Final = _Absent()
_EMPTY = frozenset({type(None), _Absent})
_NUMBERS = frozenset({float, int})
_LABELS = frozenset({str, bool})


def to_category(value: float | int | str | bool) -> str:
    """Category label of a feature value, as profiles and windows use it.

    Strings are kept; booleans become ``"true"`` / ``"false"``; integral numbers
    print as integers (``1`` and ``1.0`` are both ``"1"``), other numbers as the
    shortest ``repr`` that round-trips.

    Examples
    --------
    >>> [to_category(v) for v in ("pro", True, 3, 3.0, 0.5)]
    ['pro', 'true', '3', '3', '0.5']
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    number = float(value)
    if number.is_integer() and abs(number) < _EXACT_INT:
        return str(int(number))
    return repr(number)


def to_columns(
    rows: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> tuple[list[Sequence[Any]], int]:
    """The values of ``names`` in ``rows``, one column per name (:data:`ABSENT` where a
    row does not hold the name), and how many values the rows hold."""
    if len(names) > 1 and rows:
        try:  # the usual row holds every name: one transpose in C
            return list(zip(*map(itemgetter(*names), rows), strict=True)), len(names) * len(rows)
        except KeyError:
            pass
    columns: list[Sequence[Any]] = [[row.get(name, ABSENT) for row in rows] for name in names]
    return columns, sum(len(rows) - column.count(ABSENT) for column in columns)


class ProfileBuilder:
    """Accumulates rows, then summarises them into a :class:`Profile`.

    A feature is numeric when every non-missing value seen is a number (bools are
    not numbers here), categorical when every one is a string or a bool, and
    categorical with the numbers turned into labels by :func:`to_category` when
    both occur. ``None``, NaN and an absent key are missing.

    Numeric values are buffered (8 bytes each) until :meth:`build`, so quantile
    cuts are exact rather than sketched: the profile is built once, off the hot path.

    Parameters
    ----------
    n_bins, max_sample, top_k, seed
        As for :class:`Profile`.

    Examples
    --------
    >>> builder = ProfileBuilder(n_bins=4)
    >>> for i in range(8):
    ...     builder.update({"x": float(i), "flag": i % 2 == 0, "note": None})
    >>> profile = builder.build()
    >>> profile.features["x"].bin_counts.tolist()
    [2, 2, 2, 2]
    >>> dict(profile.features["flag"].counts), profile.features["note"].missing
    ({'false': 4, 'true': 4}, 8)
    """

    def __init__(
        self, n_bins: int = 10, max_sample: int = 10_000, top_k: int = 50, seed: int = 0
    ) -> None:
        check_settings(n_bins, max_sample, top_k, seed)
        self.n_bins = n_bins
        self.max_sample = max_sample
        self.top_k = top_k
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        self._n_rows = 0
        self._numbers: dict[str, array[float]] = {}
        self._categories: dict[str, Counter[str]] = {}

    def reset(self) -> None:
        """Forget every row seen."""
        self._reset()

    @property
    def n_rows(self) -> int:
        """Rows seen so far."""
        return self._n_rows

    def update(self, row: Mapping[str, FeatureValue]) -> None:
        """Add one row: feature name to number, string, bool or ``None``.

        A row with an invalid value raises and leaves the builder unchanged.
        """
        labels: list[tuple[str, str]] = []
        readings: list[tuple[str, float]] = []
        for name, value in row.items():
            if not isinstance(name, str):
                raise TypeError(f"feature names must be str, got {name!r}")
            if isinstance(value, str | bool | np.bool_):
                labels.append((name, to_category(value)))
            elif value is None:
                readings.append((name, math.nan))
            elif isinstance(value, numbers.Real):
                number = float(value)
                if math.isinf(number):
                    raise ValueError(f"feature {name!r} must be finite or None, got {value!r}")
                readings.append((name, number))
            else:
                raise TypeError(
                    f"feature {name!r} must be a number, string, bool or None, "
                    f"got {type(value).__name__}"
                )
        for name, label in labels:
            self._categories.setdefault(name, Counter())[label] += 1
        for name, number in readings:
            buffer = self._numbers.setdefault(name, array("d"))
            if not math.isnan(number):  # NaN is how CSV and Parquet readers say missing
                buffer.append(number)
        self._n_rows += 1

    def update_many(self, rows: Sequence[Mapping[str, FeatureValue]]) -> bool:
        """Add rows as one :meth:`update` per row would, a column at a time.

        Returns ``False``, having added nothing, unless every value is a float, int,
        str, bool or ``None``, every number is finite or NaN, every name is a str and
        no feature holds both numbers and labels in these rows: such rows are for
        :meth:`update`, one at a time.
        """
        names = list(dict.fromkeys(chain.from_iterable(rows)))  # in order of first sight
        if not all(type(name) is str for name in names):
            return False
        columns, _ = to_columns(rows, names)
        numeric: list[list[float]] = []
        labelled: list[list[str]] = []
        for column in columns:
            kinds = set(map(type, column)) - _EMPTY
            if kinds <= _NUMBERS:
                values = [v for v in column if v is not None and v is not ABSENT and v == v]
                if not all(map(math.isfinite, values)):
                    return False
                numeric.append(values)
                labelled.append([])
            elif kinds <= _LABELS:
                numeric.append([])
                labelled.append(
                    [v if type(v) is str else to_category(v) for v in column if type(v) in kinds]
                )
            else:
                return False
        self._make_entries(rows, names)
        for name, values, labels in zip(names, numeric, labelled, strict=True):
            if values:
                self._numbers[name].extend(values)
            if labels:
                self._categories[name].update(labels)
        self._n_rows += len(rows)
        return True

    def _make_entries(self, rows: Sequence[Mapping[str, FeatureValue]], names: list[str]) -> None:
        """Make the entries of features new here in the order :meth:`update` would
        (that of their first number or ``None``, and of their first label)."""
        numbers = {n for n in names if n not in self._numbers}
        labels = {n for n in names if n not in self._categories}
        for row in rows:
            if not (numbers or labels):
                return
            for name, value in row.items():
                if type(value) in _LABELS:
                    if name in labels:
                        self._categories[name] = Counter()
                        labels.discard(name)
                elif name in numbers:
                    self._numbers[name] = array("d")
                    numbers.discard(name)

    def build(self) -> Profile:
        """Summarise the rows seen so far; the builder is left unchanged."""
        features: dict[str, FeatureProfile] = {}
        for name in sorted(set(self._numbers) | set(self._categories)):
            values = np.frombuffer(self._numbers.get(name, array("d")), dtype=np.float64)
            if self._categories.get(name):
                features[name] = self._categorical(self._categories[name], values)
            else:
                features[name] = self._numeric(np.sort(values))
        return Profile(features, self._n_rows, self.n_bins, self.max_sample, self.top_k, self.seed)

    def _numeric(self, values: FloatArray) -> NumericProfile:
        if values.size == 0:
            return NumericProfile.empty(self._n_rows)
        cuts = quantile_cuts(values, self.n_bins)
        return NumericProfile(
            count=int(values.size),
            missing=self._n_rows - int(values.size),
            minimum=float(values[0]),
            maximum=float(values[-1]),
            cuts=cuts,
            bin_counts=bin_counts(values, cuts),
            sample=subsample(values, self.max_sample, np.random.default_rng(self.seed)),
        )

    def _categorical(self, labels: Counter[str], values: FloatArray) -> CategoricalProfile:
        counts = Counter(labels)
        distinct, repeats = np.unique(values, return_counts=True)
        for number, repeat in zip(distinct.tolist(), repeats.tolist(), strict=True):
            counts[to_category(number)] += repeat
        total = sum(counts.values())
        return CategoricalProfile(total, self._n_rows - total, top_k_counts(counts, self.top_k))

    def to_state(self) -> dict[str, Any]:
        """JSON-safe snapshot of the rows seen so far (for warm-up checkpoints)."""
        return {
            "version": PROFILE_VERSION,
            "n_rows": self._n_rows,
            "settings": {
                "n_bins": self.n_bins,
                "max_sample": self.max_sample,
                "top_k": self.top_k,
                "seed": self.seed,
            },
            "numbers": {name: list(values) for name, values in self._numbers.items()},
            "categories": {name: dict(c) for name, c in self._categories.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ProfileBuilder:
        """Inverse of :meth:`to_state`."""
        if state.get("version") != PROFILE_VERSION:
            raise ValueError(
                f"builder state version must be {PROFILE_VERSION}, got {state.get('version')!r}"
            )
        builder = cls(**state["settings"])
        builder._n_rows = int(state["n_rows"])
        builder._numbers = {n: array("d", v) for n, v in state["numbers"].items()}
        builder._categories = {n: Counter(c) for n, c in state["categories"].items()}
        return builder


def build_profile(
    rows: Iterable[Mapping[str, FeatureValue]],
    *,
    n_bins: int = 10,
    max_sample: int = 10_000,
    top_k: int = 50,
    seed: int = 0,
) -> Profile:
    """Profile of ``rows`` in one pass; see :class:`ProfileBuilder` for the rules."""
    builder = ProfileBuilder(n_bins=n_bins, max_sample=max_sample, top_k=top_k, seed=seed)
    for row in rows:
        builder.update(row)
    return builder.build()
