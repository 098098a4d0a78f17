"""Time of one window's drift check: :class:`detectors.WindowChecker` against per-feature scipy.

Run ``python benchmarks/detectors_window.py [--repeat N] [--seed S]``. Each scenario
builds a 10,000-row reference profile and a 1,000-row window (seeded), then times

* ``WindowChecker.check`` (PSI + KS with the asymptotic p-value, or PSI +
  chi-square for categorical features), the median of ``--repeat`` calls;
* the per-feature baseline in the same process: ``scipy.stats.ks_2samp`` with its
  default method (exact here, as both sizes are at most 10,000) or
  ``scipy.stats.chi2_contingency``, plus PSI in numpy over the profile's bins,
  the median of ``--baseline-repeat`` rounds;
* the same baseline with ``ks_2samp(method="asymp")``, for the fairer comparison.

The target is the first scenario's ``WindowChecker.check`` in at most 2 ms.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
from scipy import stats

from detectors import (
    OTHER,
    CategoricalProfile,
    NumericProfile,
    Profile,
    WindowChecker,
    build_profile,
)

REFERENCE_ROWS = 10_000
WINDOW_ROWS = 1_000
LABELS = np.array(["free", "pro", "team", "enterprise", "trial", "edu"])


def make_data(
    rng: np.random.Generator, n_numeric: int, n_categorical: int, n_drifted: int
) -> tuple[Profile, dict[str, Any]]:
    """A profile of seeded reference rows and one window, with ``n_drifted`` shifted features."""
    reference: dict[str, Any] = {}
    window: dict[str, Any] = {}
    for j in range(n_numeric):
        shift = 0.3 if j < n_drifted else 0.0
        draw = _numeric_draw(j)
        reference[f"num_{j:02d}"] = draw(rng, REFERENCE_ROWS, 0.0)
        column = draw(rng, WINDOW_ROWS, shift)
        column[rng.random(WINDOW_ROWS) < 0.01] = np.nan  # a few missing values
        window[f"num_{j:02d}"] = column
    for j in range(n_categorical):
        weights = rng.dirichlet(np.ones(LABELS.size))
        reference[f"cat_{j:02d}"] = rng.choice(LABELS, REFERENCE_ROWS, p=weights).tolist()
        labels: list[str | None] = rng.choice(LABELS, WINDOW_ROWS, p=weights).tolist()
        labels[::97] = [None] * len(labels[::97])
        window[f"cat_{j:02d}"] = labels
    names = list(reference)
    rows = ({name: _plain(reference[name][i]) for name in names} for i in range(REFERENCE_ROWS))
    return build_profile(rows), window


def _numeric_draw(j: int) -> Callable[[np.random.Generator, int, float], np.ndarray]:
    kinds: list[Callable[[np.random.Generator, int, float], np.ndarray]] = [
        lambda rng, n, s: rng.normal(s, 1.0, n),
        lambda rng, n, s: rng.lognormal(s, 0.75, n),
        lambda rng, n, s: rng.gamma(2.0 + 2 * s, 1.0, n),
        lambda rng, n, s: rng.uniform(s, 1.0 + s, n),
    ]
    return kinds[j % len(kinds)]


def _plain(value: Any) -> float | str:
    return value if isinstance(value, str) else float(value)


def numpy_psi(expected: np.ndarray, observed: np.ndarray, epsilon: float = 1e-4) -> float:
    """PSI of two count vectors, the textbook formula."""
    p = np.maximum(expected / expected.sum(), epsilon)
    q = np.maximum(observed / observed.sum(), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def baseline(
    profile: Profile, window: Mapping[str, Any], method: str
) -> dict[str, tuple[float, ...]]:
    """Per-feature scipy tests plus numpy PSI, as a script without a checker would do it."""
    results: dict[str, tuple[float, ...]] = {}
    for name, feature in profile.features.items():
        if isinstance(feature, NumericProfile):
            values = np.asarray(window[name], dtype=np.float64)
            values = values[~np.isnan(values)]
            bins = np.bincount(
                np.searchsorted(feature.cuts, values, side="left"), minlength=feature.cuts.size + 1
            )
            ks = stats.ks_2samp(values, feature.sample, method=method)
            results[name] = (numpy_psi(feature.bin_counts, bins), ks.statistic, ks.pvalue)
        else:
            assert isinstance(feature, CategoricalProfile)
            labels = [v for v in window[name] if v is not None]
            kept = [k for k in feature.counts if k != OTHER]
            seen = {k: 0 for k in kept}
            other = 0
            for label in labels:
                if label in seen:
                    seen[label] += 1
                else:
                    other += 1
            expected = np.array([feature.counts[k] for k in kept] + [feature.counts.get(OTHER, 0)])
            observed = np.array(list(seen.values()) + [other])
            table = np.vstack((expected, observed))
            chi2 = stats.chi2_contingency(table[:, table.sum(axis=0) > 0])
            results[name] = (numpy_psi(expected, observed), chi2.statistic, chi2.pvalue)
    return results


def median_ms(call: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls, in milliseconds (after one warm-up call)."""
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300, help="WindowChecker.check calls")
    parser.add_argument("--baseline-repeat", type=int, default=7, help="baseline rounds")
    parser.add_argument("--seed", type=int, default=20_240_601)
    args = parser.parse_args(argv)
    scenarios = [
        ("20 numeric, no drift", 20, 0, 0),
        ("15 numeric + 5 categorical", 15, 5, 0),
        ("20 numeric, 5 drifted", 20, 0, 5),
    ]
    header = (
        f"{'scenario':<28} {'check ms':>9} {'scipy auto ms':>14} {'ratio':>7} "
        f"{'scipy asymp ms':>15} {'ratio':>7}"
    )
    print(f"window {WINDOW_ROWS} rows, reference {REFERENCE_ROWS} rows, seed {args.seed}")
    print(header)
    print("-" * len(header))
    for label, n_numeric, n_categorical, n_drifted in scenarios:
        rng = np.random.default_rng(args.seed)
        profile, window = make_data(rng, n_numeric, n_categorical, n_drifted)
        checker = WindowChecker.from_profile(profile)
        fast = median_ms(partial(checker.check, window), args.repeat)
        auto = median_ms(partial(baseline, profile, window, "auto"), args.baseline_repeat)
        asymp = median_ms(partial(baseline, profile, window, "asymp"), args.baseline_repeat)
        print(
            f"{label:<28} {fast:>9.3f} {auto:>14.2f} {auto / fast:>6.0f}x "
            f"{asymp:>15.2f} {asymp / fast:>6.0f}x"
        )


if __name__ == "__main__":
    main()
