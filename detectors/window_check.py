"""One window against a whole profile: PSI plus KS or chi-square for many features at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import chdtrc

from detectors._categorical_batch import CategoricalOutcome, CategoricalTable
from detectors._numeric_batch import NumericBatch
from detectors._windows import check_positive
from detectors.feature_profile import NumericProfile
from detectors.ks import METHODS, KSMethod
from detectors.profile import Profile

__all__ = ["FeatureCheck", "WindowChecker"]

#: A window's column: numbers (NaN or ``None`` = missing) or labels (``None`` = missing).
Column = ArrayLike | Sequence[str | float | None]


@dataclass(frozen=True)
class FeatureCheck:
    """One feature of one window, compared with its reference.

    Parameters
    ----------
    kind
        ``"numeric"`` (``statistic`` is the KS :math:`D`) or ``"categorical"``
        (``statistic`` is the chi-square :math:`X^2`).
    count
        Non-missing values in the window.
    missing_ratio
        Missing values over the window's rows (0.0 for an empty window).
    outside_ratio
        Numeric: share of the non-missing values below the reference minimum or
        above its maximum. Categorical: share whose label is not one of the
        reference's kept categories (new labels, or labels it folded into
        ``"__other__"``).
    psi, statistic, pvalue
        As :func:`~detectors.psi.psi` and :func:`~detectors.ks.ks_test` or
        :func:`~detectors.chi2.chi2_test` on the non-missing values. NaN, as is
        ``outside_ratio``, when ``count`` is 0: nothing to test.
    """

    kind: Literal["numeric", "categorical"]
    count: int
    missing_ratio: float
    outside_ratio: float
    psi: float
    statistic: float
    pvalue: float


class WindowChecker:
    """Drift checks of whole windows against one profile, reference work done once.

    Build once per profile (sorting, binning and indexing the reference); call
    :meth:`check` once per window.

    Parameters
    ----------
    profile
        The reference.
    features
        Features to check, in this order; all of the profile's by default. Raises
        ``ValueError`` for one not in the profile or with no reference values.
    ks_method
        ``"asymp"`` (default: vectorised, cheap), ``"exact"`` or ``"auto"``, as for
        :func:`~detectors.ks.ks_test`; the last two run per feature and are slow.
    epsilon
        PSI's floor for empty bins, as in :func:`~detectors.psi.psi`.
    correction
        Yates' correction for two-category features, as in
        :func:`~detectors.chi2.chi2_test`.

    Notes
    -----
    Per numeric feature with sorted window :math:`x_{(1)} \\le \\dots \\le x_{(n)}`,
    window ECDF :math:`F_n` and reference ECDF :math:`G_m`: on
    :math:`[x_{(i)}, x_{(i+1)})` :math:`F_n = i/n` is constant and :math:`G_m` is
    non-decreasing, so :math:`F_n - G_m` peaks at the left end and
    :math:`G_m - F_n` at the right end's left limit. Hence

    .. math:: D = \\max\\Big(\\max_i \\Big[\\frac{i}{n} - G_m(x_{(i)})\\Big],\\;
              \\max_i \\Big[G_m(x_{(i)}^-) - \\frac{i - 1}{n}\\Big]\\Big),

    with :math:`m\\,G_m(x) =` ``searchsorted(sample, x, "right")`` and
    :math:`m\\,G_m(x^-) =` ``searchsorted(sample, x, "left")``; the outer pieces
    :math:`(-\\infty, x_{(1)})` and :math:`[x_{(n)}, \\infty)` are the :math:`i = 1`
    and :math:`i = n` terms. Within a run of tied window values the formula picks
    the run's last (first) index, where the bound is attained. The left search is
    only run for features where a window value equals a reference value. All
    features go through one 2-D sort and 2-D arithmetic; the asymptotic p-values
    of every feature come from one call of :func:`~detectors._kstwo.kstwo_sf`.
    PSI bin counts come from ``searchsorted(sorted_window, cuts, "right")``, the
    number of window values at or below each cut, differenced.
    Categorical p-values come from one ``scipy.special.chdtrc`` call.

    Under no drift PSI is about :math:`(B - 1)(1/n + 1/N)` (see
    :func:`~detectors.psi.psi`): about 0.01, and below 0.04 in the tests, for
    1,000 window rows, a 5,000-row reference and 10 bins. Cost per window, on two
    shared cores: about 1.5-2 ms for 20 numeric features of 1,000 rows against
    10,000-value samples, mostly the KS statistic's bounds, the p-values and the 2-D sort;
    categorical features cost about 0.1 ms each, mostly counting the labels in
    Python (``benchmarks/detectors_window.py``).

    Examples
    --------
    >>> from detectors.profile_builder import build_profile
    >>> rng = np.random.default_rng(5)
    >>> rows = [{"x": float(v), "plan": "pro" if v > 0 else "free"}
    ...         for v in rng.normal(size=3000)]
    >>> checker = WindowChecker.from_profile(build_profile(rows))
    >>> window = rng.normal(0.4, 1.0, size=500)
    >>> window[:10] = np.nan
    >>> result = checker.check({"x": window, "plan": ["pro"] * 300 + ["free"] * 200})
    >>> x = result["x"]
    >>> x.kind, x.count, x.missing_ratio, round(x.statistic, 3), x.pvalue < 1e-6
    ('numeric', 490, 0.02, 0.17, True)
    >>> plan = result["plan"]
    >>> plan.kind, round(plan.psi, 3), plan.pvalue < 1e-3, plan.outside_ratio
    ('categorical', 0.03, True, 0.0)
    """

    def __init__(
        self,
        profile: Profile,
        features: Iterable[str] | None = None,
        ks_method: KSMethod = "asymp",
        *,
        epsilon: float = 1e-4,
        correction: bool = True,
    ) -> None:
        if ks_method not in METHODS:
            raise ValueError(f"ks_method must be one of {METHODS}, got {ks_method!r}")
        check_positive("epsilon", epsilon, below_one=True)
        self.ks_method = ks_method
        self.epsilon = epsilon
        self.correction = correction
        self._names = tuple(profile.features if features is None else features)
        numeric: dict[str, NumericProfile] = {}
        self._categorical: dict[str, CategoricalTable] = {}
        for name in self._names:
            feature = profile.features.get(name)
            if feature is None:
                raise ValueError(
                    f"feature {name!r} must be in the profile, got {sorted(profile.features)}"
                )
            if feature.count == 0:
                raise ValueError(f"feature {name!r} must have reference values, got count 0")
            if isinstance(feature, NumericProfile):
                numeric[name] = feature
            else:
                self._categorical[name] = CategoricalTable.build(feature, epsilon, correction)
        self._numeric_names = tuple(numeric)
        self._numeric = NumericBatch.build(list(numeric.values()), epsilon, ks_method)

    @classmethod
    def from_profile(
        cls,
        profile: Profile,
        features: Iterable[str] | None = None,
        ks_method: KSMethod = "asymp",
        *,
        epsilon: float = 1e-4,
        correction: bool = True,
    ) -> WindowChecker:
        """Prepare checks of ``features`` (all of the profile's by default); as ``cls(...)``."""
        return cls(profile, features, ks_method, epsilon=epsilon, correction=correction)

    @property
    def features(self) -> tuple[str, ...]:
        """The checked features, in the order :meth:`check` returns them."""
        return self._names

    def check(self, columns: Mapping[str, Column]) -> dict[str, FeatureCheck]:
        """Compare one window with the reference, feature by feature.

        Parameters
        ----------
        columns
            Feature name to the window's values: for a numeric feature anything
            ``numpy.asarray(..., dtype=float64)`` takes, one-dimensional, NaN (or
            ``None`` in a list) for missing, infinities counted as values beyond the
            reference range; for a categorical one a sequence of ``str`` labels
            (:func:`~detectors.profile_builder.to_category`) with ``None`` for
            missing. Columns may differ in length; extra columns are ignored.

        Returns
        -------
        dict[str, FeatureCheck]
            One entry per checked feature, in :attr:`features` order.
        """
        absent = [name for name in self._names if name not in columns]
        if absent:
            raise ValueError(f"columns must hold every checked feature, missing {absent}")
        results: dict[str, FeatureCheck] = {}
        if self._numeric_names:
            arrays = [_numeric_column(name, columns[name]) for name in self._numeric_names]
            out = self._numeric.run(arrays)
            fields = zip(
                self._numeric_names,
                out.count.tolist(),
                out.missing_ratio.tolist(),
                out.outside_ratio.tolist(),
                out.psi.tolist(),
                out.statistic.tolist(),
                out.pvalue.tolist(),
                strict=True,
            )
            for name, *values in fields:
                results[name] = FeatureCheck("numeric", *values)
        outcomes = {n: t.run(n, columns[n]) for n, t in self._categorical.items()}  # type: ignore[arg-type]
        results.update(_categorical_checks(outcomes))
        return {name: results[name] for name in self._names}


def _numeric_column(name: str, column: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    try:
        values = np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"feature {name!r} must hold numbers, got {error}") from None
    if values.ndim != 1:
        raise ValueError(f"feature {name!r} must be one-dimensional, got shape {values.shape}")
    return values


def _categorical_checks(outcomes: Mapping[str, CategoricalOutcome]) -> dict[str, FeatureCheck]:
    if not outcomes:
        return {}
    stats = np.array([o.statistic for o in outcomes.values()])
    dofs = np.array([max(o.dof, 1) for o in outcomes.values()], dtype=np.float64)
    pvalues = chdtrc(dofs, stats)
    results = {}
    for (name, o), pvalue in zip(outcomes.items(), pvalues.tolist(), strict=True):
        p = np.nan if o.count == 0 else 1.0 if o.dof == 0 else pvalue
        results[name] = FeatureCheck(
            "categorical", o.count, o.missing_ratio, o.outside_ratio, o.psi, o.statistic, p
        )
    return results
