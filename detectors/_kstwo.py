"""Vectorised survival function of the one-sample two-sided Kolmogorov distribution.

``scipy.stats.kstwo.sf`` evaluates each element in a Python loop (0.1-0.8 ms per
p-value at ``n = 900``) and costs about 45 MiB to import. A window check needs a few
dozen p-values per window: for ``n > 140`` every branch is evaluated here, mostly as
whole-array numpy expressions; smaller ``n`` goes to scipy.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import gammaln

from detectors._binning import FloatArray

__all__ = ["kstwo_sf"]

_SQRT2PI = np.sqrt(2.0 * np.pi)
_PI2, _PI4, _PI6 = np.pi**2, np.pi**4, np.pi**6
#: scipy's cut-offs, repeated so that each element takes scipy's branch.
_SMALL_N, _MIN_LOG, _ZERO_NX2, _SMIRNOV_NX2 = 140, -708.0, 370.0, 2.2
_DURBIN_MAX_N = 100_000


def kstwo_sf(statistic: FloatArray, n: FloatArray) -> FloatArray:
    """:math:`P(D_n \\ge d)` elementwise; equals ``scipy.stats.kstwo.sf(d, n)``.

    Parameters
    ----------
    statistic
        Values :math:`d` of the statistic.
    n
        Sample sizes, positive integers stored as floats; broadcast with ``statistic``.

    Returns
    -------
    numpy.ndarray
        Survival probabilities in [0, 1], shape of the broadcast inputs.

    Notes
    -----
    Branches follow Simard and L'Ecuyer [1]_ as scipy does. With :math:`t = nd`,
    for :math:`n > 140` and :math:`1 < t < n - 1`:

    * :math:`nd^2 \\ge 370`: the probability is below :math:`10^{-300}`; 0.
    * :math:`nd^2 \\ge 2.2` or :math:`d \\ge 1/2`: twice the exact one-sided
      tail of Birnbaum and Tingey [2]_,

      .. math:: P(D_n^+ \\ge d) = d \\sum_{j=0}^{\\lfloor n(1-d) \\rfloor}
                \\binom{n}{j} \\Big(1 - d - \\frac{j}{n}\\Big)^{n-j}
                \\Big(d + \\frac{j}{n}\\Big)^{j-1},

      summed in logs over a padded ``(elements, n)`` grid.
    * otherwise, if :math:`n d^{3/2} \\le 1.4` and :math:`n \\le 100{,}000`: one
      minus Durbin's matrix probability (:func:`_durbin_cdf`);
    * otherwise: one minus the Pelz-Good expansion [3]_
      :math:`K_0(z) + K_1(z)/\\sqrt n + K_2(z)/n + K_3(z)/n^{3/2}`,
      :math:`z = \\sqrt n\\, d`, each :math:`K_i` a theta-type series over odd
      :math:`m = 2k - 1 \\le 32z/\\pi` in :math:`q^{m^2}`, :math:`q = e^{-\\pi^2/8z^2}`.

    For :math:`n > 140`, Ruben and Gambino's closed forms cover the ends:
    :math:`1 - n!\\,(2t - 1)^n / n^n` for :math:`1/2 < t \\le 1` and
    :math:`2(1 - d)^n` for :math:`t \\ge n - 1`. Elements with :math:`d \\le 0` or
    :math:`d \\ge 1` give 1 or 0, and :math:`t \\le 1/2` gives 1; the rest (only
    :math:`n \\le 140`) go to scipy element by element, which imports ``scipy.stats``
    (about 45 MiB) on first use. In Durbin's region above :math:`n \\approx 56{,}000`
    scipy 1.17 can return 0 (its scaling underflows); the matrix here gives about 1.

    References
    ----------
    .. [1] Simard, R., L'Ecuyer, P. (2011). Computing the two-sided
       Kolmogorov-Smirnov distribution. *J. Stat. Softw.* 39(11).
    .. [2] Birnbaum, Z. W., Tingey, F. H. (1951). One-sided confidence contours
       for probability distribution functions. *Ann. Math. Stat.* 22(4), 592-596.
    .. [3] Pelz, W., Good, I. J. (1976). Approximating the lower tail-areas of
       the Kolmogorov-Smirnov one-sample statistic. *J. R. Stat. Soc. B* 38(2).

    Examples
    --------
    >>> d, n = np.array([0.02, 0.06, 0.5]), np.array([900.0, 900.0, 900.0])
    >>> from scipy import stats
    >>> bool(np.allclose(kstwo_sf(d, n), stats.kstwo.sf(d, n), rtol=0, atol=1e-12))
    True
    """
    d = np.asarray(statistic, dtype=np.float64)
    size = np.asarray(n, dtype=np.float64)
    if d.shape != size.shape:
        d, size = np.broadcast_arrays(d, size)
    shape = d.shape
    d, size = d.ravel(), size.ravel()
    # A window check asks for a few dozen elements, so each numpy call costs more than
    # its arithmetic: the branches are told apart with as few calls as possible.
    t = size * d
    nx2 = t * d
    out = np.ones(d.size)
    if np.isnan(t).any():
        out[np.isnan(d) | np.isnan(size)] = np.nan
    out[d >= 1.0] = 0.0
    inside = (d > 0.0) & (d < 1.0) & (t > 0.5)
    regular = inside & (size > _SMALL_N) & (t > 1.0) & (t < size - 1.0)
    large = regular & ((d >= 0.5) | (nx2 >= _SMIRNOV_NX2))  # zero or tail
    body = regular & ~large
    durbin = body & (size * d**1.5 <= 1.4) & (size <= _DURBIN_MAX_N)
    body &= ~durbin
    zero = large & (d < 0.5) & (nx2 >= _ZERO_NX2)
    tail = np.flatnonzero(large & ~zero)
    done = large | body | durbin
    if tail.size:
        out[tail] = np.clip(2.0 * _smirnov(size[tail], d[tail]), 0.0, 1.0)
    out[zero] = 0.0
    index = np.flatnonzero(body)
    if index.size:
        out[index] = np.clip(1.0 - _pelz_good_cdf(size[index], d[index]), 0.0, 1.0)
    for i in np.flatnonzero(durbin).tolist():
        out[i] = min(max(1.0 - _durbin_cdf(int(size[i]), float(d[i])), 0.0), 1.0)
    # Ruben and Gambino's closed forms at the ends: t <= 1 and t >= n - 1.
    near = inside & (size > _SMALL_N) & ~done
    low = np.flatnonzero(near & (t <= 1.0))
    if low.size:
        n_low = size[low]
        log_cdf = gammaln(n_low + 1.0) - n_low * np.log(n_low) + n_low * np.log(2.0 * t[low] - 1.0)
        out[low] = np.clip(1.0 - np.exp(log_cdf), 0.0, 1.0)
    high = np.flatnonzero(near & (t > 1.0) & (t >= size - 1.0))
    if high.size:
        out[high] = np.clip(2.0 * (1.0 - d[high]) ** size[high], 0.0, 1.0)
    done[low] = True
    done[high] = True
    rest = np.flatnonzero(inside & ~done)
    if rest.size:
        from scipy import stats  # imported on first use (about 45 MiB): seldom needed

        out[rest] = stats.kstwo.sf(d[rest], size[rest])
    return out.reshape(shape)


def _durbin_cdf(n: int, d: float) -> float:
    """:math:`P(D_n < d)` by Durbin's matrix, as Marsaglia, Tsang and Wang [4]_ compute it.

    With :math:`k = \\lceil nd \\rceil`, :math:`h = k - nd` and :math:`m = 2k - 1`, the
    probability is :math:`n!/n^n` times entry :math:`(k, k)` of :math:`H^n`, where
    :math:`H_{ij} = 1/(i - j + 1)!` for :math:`i - j + 1 \\ge 0` (else 0), except the
    first column, :math:`(1 - h^i)/i!`, the last row, :math:`(1 - h^{m-j+1})/(m-j+1)!`,
    and their corner, :math:`(1 - 2h^m + \\max(0, 2h - 1)^m)/m!` (1-based indices).
    :math:`H^n` comes from repeated squaring, each product rescaled by a power of two so
    that nothing overflows; :math:`n!/n^n` and the scale are applied together in logs.

    References
    ----------
    .. [4] Marsaglia, G., Tsang, W. W., Wang, J. (2003). Evaluating Kolmogorov's
       distribution. *J. Stat. Softw.* 8(18).
    """
    nd = n * d
    k = math.ceil(nd)
    h = k - nd
    m = 2 * k - 1
    order = np.arange(m)
    # 1/(i - j + 1)! below and on the superdiagonal, 0 above it.
    steps = order[:, None] - order[None, :] + 1
    inverse_factorials = np.exp(-gammaln(np.arange(m + 1) + 1.0))
    matrix = np.where(steps >= 0, inverse_factorials[np.maximum(steps, 0)], 0.0)
    powers = h ** np.arange(1, m + 1)
    matrix[:, 0] -= powers * inverse_factorials[1:]
    matrix[-1, :] -= powers[::-1] * inverse_factorials[1:][::-1]
    if 2.0 * h > 1.0:
        matrix[-1, 0] += (2.0 * h - 1.0) ** m * inverse_factorials[m]
    result, scale = np.eye(m), 0  # result * 2**scale is the product so far
    base, base_scale = matrix, 0
    exponent = n
    while exponent:
        if exponent & 1:
            result = result @ base
            scale += base_scale
            result, scale = _rescaled(result, scale)
        exponent >>= 1
        if exponent:
            base, base_scale = _rescaled(base @ base, 2 * base_scale)
    entry = float(result[k - 1, k - 1])
    if entry <= 0.0:
        return 0.0
    log_p = math.log(entry) + scale * math.log(2.0) + gammaln(n + 1.0) - n * math.log(n)
    return math.exp(log_p)


def _rescaled(matrix: FloatArray, scale: int) -> tuple[FloatArray, int]:
    """``matrix`` divided by a power of two near its largest entry, and ``scale`` raised
    by that power (the product ``matrix * 2**scale`` is unchanged, exactly)."""
    largest = float(np.abs(matrix).max())
    if largest == 0.0 or not math.isfinite(largest):
        return matrix, scale
    _, power = math.frexp(largest)
    return np.ldexp(matrix, -power), scale + power


def _smirnov_terms(n: int) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """For ``j = 0..n``: ``j/n``, ``log C(n, j)``, ``n - j`` and ``j - 1``, read-only.

    A window check asks for tails at a handful of sizes ``n`` (the effective sizes of
    windows of nearly equal length), so sizes up to ``_CACHED_N`` are built once; the
    cache then holds at most about 20 MB.
    """
    return _cached_smirnov_terms(n) if n <= _CACHED_N else _build_smirnov_terms(n)


def _build_smirnov_terms(n: int) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    j = np.arange(n + 1, dtype=np.float64)
    log_fact = gammaln(j + 1.0)
    k = j.astype(np.int64)
    tables = (j / float(n), log_fact[n] - log_fact[k] - log_fact[n - k], float(n) - j, j - 1.0)
    for table in tables:
        table.setflags(write=False)
    return tables


_CACHED_N = 20_000
_cached_smirnov_terms = lru_cache(maxsize=32)(_build_smirnov_terms)


def _smirnov(n: FloatArray, d: FloatArray) -> FloatArray:
    """One-sided tail :math:`P(D_n^+ \\ge d)`, Birnbaum-Tingey sum, one element at a time.

    The terms run over ``j = 0..floor(n(1 - d))`` with ``1 - d - j/n > 0``, a prefix of
    ``j``, so each element sums a slice of its size's tables (:func:`_smirnov_terms`).
    """
    result = np.empty(d.size)
    for index, (size, stat) in enumerate(zip(n.tolist(), d.tolist(), strict=True)):
        j_over_n, log_binom, n_minus_j, j_minus_1 = _smirnov_terms(int(size))
        stop = int(np.floor(size * (1.0 - stat))) + 1
        below = stat + j_over_n[:stop]
        above = 1.0 - below
        while stop and above[stop - 1] <= 0.0:  # rounding at j = n(1 - d)
            stop -= 1
        below, above = below[:stop], above[:stop]
        logs = log_binom[:stop] + n_minus_j[:stop] * np.log(above)
        logs += j_minus_1[:stop] * np.log(below)  # d > 0 here, so below > 0
        result[index] = stat * np.exp(logs).sum()
    return result


@lru_cache(maxsize=64)
def _pelz_good_powers(
    top: int,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """For k = 1..top: k, m^2 = (2k - 1)^2, k^2, and the columns (1, m^2, m^4, m^6)
    and (k^2, k^4) of the power sums, built once per length."""
    k = np.arange(1.0, top + 1.0)
    m2 = (2.0 * k - 1.0) ** 2
    k_square = k * k
    powers = np.stack((np.ones_like(m2), m2, m2**2, m2**3), axis=1)
    k_powers = np.stack((k**2, k**4), axis=1)
    tables = (k, m2, k_square, powers, k_powers)
    for table in tables:
        table.setflags(write=False)
    return tables


def _pelz_good_cdf(n: FloatArray, d: FloatArray) -> FloatArray:
    """Pelz-Good approximation of :math:`P(D_n \\le d)`, vectorised over elements.

    Each power of ``c`` and ``z`` is computed once and reused; every expression keeps
    the operations and their order of the textbook form, so results do not depend on
    this sharing.
    """
    z = np.sqrt(n) * d
    c = z * z
    max_k = np.ceil(16.0 * z / np.pi)
    k, m2, k_square, powers, k_powers = _pelz_good_powers(int(max(max_k.max(), 1.0)))
    used = k <= max_k[:, None]
    # Power sums S_p = sum_k q^(m^2) m^(2p), p = 0..3, and T_p = sum_k q'^(k^2) k^(2p),
    # p = 1, 2, with q = exp(-pi^2 / 8z^2), q' = exp(-pi^2 / 2z^2), as two matrix products.
    # The terms lie in [0, 1], so multiplying by the mask zeroes the unused ones exactly.
    weight = np.exp(np.outer(-_PI2 / 8.0 / c, m2))
    weight *= used
    s0, s1, s2, s3 = (weight @ powers).T
    extra = np.exp(np.outer(-_PI2 / 2.0 / c, k_square))
    extra *= used
    t1, t2 = (extra @ k_powers).T
    c2, c3 = c**2, c**3
    pi2_s1 = _PI2 / 4.0 * s1
    k0 = s0 / z
    k1 = (-c * s0 + pi2_s1) / (6.0 * c * c)
    k2 = (
        (6.0 * c3 + 2.0 * c2) * s0
        + (2.0 * c2 - 5.0 * c) * _PI2 / 4.0 * s1
        + _PI4 * (1.0 - 2.0 * c) / 16.0 * s2
    ) / (72.0 * z**7) - _PI2 * t1 / (36.0 * z**3)
    k3 = (
        (-30.0 * c3 - 90.0 * c**4) * s0
        + _PI2 * (135.0 * c2 - 96.0 * c3) / 4.0 * s1
        + _PI4 * (-60.0 * c + 212.0 * c2) / 16.0 * s2
        + _PI6 * (5.0 - 30.0 * c) / 64.0 * s3
    ) / (6480.0 * z**10) + _PI2 * (3.0 * c * t1 - _PI2 * t2) / (216.0 * c3)
    cdf: FloatArray = _SQRT2PI * (k0 + k1 / np.sqrt(n) + k2 / n + k3 / n**1.5)
    # Below z ~ 0.042 the series underflows; scipy calls the CDF 0 there.
    cdf[-_PI2 / 8.0 / c < _MIN_LOG] = 0.0
    return cdf
