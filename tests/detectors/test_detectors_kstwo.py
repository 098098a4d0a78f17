"""The vectorised Kolmogorov survival function against scipy.stats.kstwo.sf, branch by branch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from detectors._kstwo import kstwo_sf
from detectors.ks import asymp_pvalues

SIZES = [1, 2, 7, 140, 141, 500, 909, 2_000, 9_091, 30_000]


@pytest.mark.parametrize("n", SIZES)
def test_kstwo_sf_equals_scipy_across_every_branch(n: int) -> None:
    rng = np.random.default_rng(n)
    edges = [0.0, 1.0, 0.5, 0.5 / n, 1.0 / n, (n - 1.0) / n, (1.4 / n) ** (2 / 3)]
    edges += [np.sqrt(c / n) * f for c in (2.2, 370.0) for f in (0.999999, 1.0, 1.000001)]
    # scipy takes about a millisecond per element at large n: fewer points there.
    points = 200 if n < 5000 else 25
    d = np.concatenate([rng.uniform(0, 1, 20), rng.uniform(0, 3 / np.sqrt(n), points), edges])
    d = d[(d >= 0) & (d <= 1)]
    size = np.full(d.size, float(n))
    np.testing.assert_allclose(kstwo_sf(d, size), stats.kstwo.sf(d, size), rtol=0, atol=1e-9)


@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8),
    st.lists(st.integers(1, 20_000), min_size=1, max_size=8),
)
def test_kstwo_sf_equals_scipy_for_any_statistics_and_sizes(
    statistics: list[float], sizes: list[int]
) -> None:
    d = np.resize(np.array(statistics), max(len(statistics), len(sizes)))
    n = np.resize(np.array(sizes, dtype=np.float64), d.size)
    np.testing.assert_allclose(kstwo_sf(d, n), stats.kstwo.sf(d, n), rtol=0, atol=1e-9)


def test_asymp_pvalues_equal_ks_2samp_asymp_for_many_features_at_once() -> None:
    rng = np.random.default_rng(8)
    pairs = [(rng.normal(size=1000), rng.normal(0.05 * j, size=5000)) for j in range(12)]
    oracle = [stats.ks_2samp(a, b, method="asymp") for a, b in pairs]
    got = asymp_pvalues([o.statistic for o in oracle], [1000] * 12, [5000] * 12)
    np.testing.assert_allclose(got, [o.pvalue for o in oracle], rtol=0, atol=1e-9)


def test_kstwo_sf_keeps_the_shape_and_propagates_nan() -> None:
    out = kstwo_sf(np.array([[0.1, np.nan]]), np.array([300.0]))
    assert out.shape == (1, 2)
    assert np.isnan(out[0, 1]) and 0 < out[0, 0] < 1


@pytest.mark.parametrize("n", [141, 909, 9_091, 100_000, 100_001])
def test_durbins_matrix_region_equals_scipy(n: int) -> None:
    # n d^(3/2) <= 1.4 above n = 140: Durbin's matrix up to n = 100,000, then Pelz-Good.
    rng = np.random.default_rng(n)
    top = (1.4 / n) ** (2 / 3)
    d = np.concatenate([rng.uniform(1.0 / n, top, 15), [top, 1.000001 / n]])
    size = np.full(d.size, float(n))
    np.testing.assert_allclose(kstwo_sf(d, size), stats.kstwo.sf(d, size), rtol=0, atol=1e-12)


def test_sizes_above_140_never_import_scipy_stats() -> None:
    # scipy.stats costs about 45 MiB of memory: a window check does without it.
    code = """
import sys
import numpy as np
from detectors import WindowChecker, build_profile
from detectors._kstwo import kstwo_sf
import monitor.service
rng = np.random.default_rng(0)
for n in (141.0, 833.0, 909.0, 5_000.0, 100_000.0, 100_001.0):
    d = np.concatenate([rng.uniform(0, 1, 200), rng.uniform(0, 3 / np.sqrt(n), 200)])
    kstwo_sf(np.concatenate([d, [0.5 / n, 0.75 / n, 1 / n, 1 - 1 / n, 1 - 0.5 / n]]), n)
rows = [{"x": float(v), "c": "ab"[int(v > 0)]} for v in rng.normal(size=5000)]
checker = WindowChecker.from_profile(build_profile(rows))
checker.check({"x": np.array([r["x"] for r in rows[:1000]]), "c": ["a"] * 1000})
assert "scipy.stats" not in sys.modules, "scipy.stats was imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
