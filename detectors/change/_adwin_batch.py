"""ADWIN's batch path: many updates at once, bit for bit what a loop of ``update`` does.

Between two detections ADWIN never drops a bucket (any drop is a detection, and the
update after one starts afresh), so its window is every value read since the last
start and its buckets are a fixed function of how many values that is: row ``i``
holds the aligned blocks of ``2**i`` values, and how many of them is a binary-counter
recurrence on the count alone. Every bucket that ever exists in a run is therefore a
node of one pairwise tree over the values, which numpy builds level by level with the
same float operations, in the same order, as ``ADWIN._merge_two_oldest``. The running
total and sum of squares are sequential recurrences, so ``np.cumsum`` (a left-to-right
accumulation) reproduces them exactly.

The cut test is then evaluated at every clock tick of a chunk at once, over all bucket
boundaries, with a relative slack of 1e-9 so that no tick that could cut is missed.
The first tick that passes is replayed exactly: the loop's first
``ADWIN._cut_oldest_bucket`` at that tick is evaluated with its own float operations
over all boundaries at once (:func:`_cuts_at`). If it cuts, that is the detection;
otherwise the next passing tick is tried. The state is written out, and the loop's
cuts run, only for a detection at the batch's last value.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from detectors.change.adwin import ADWIN

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Counts = tuple[Ints, Ints]  # buckets ever added to each row and kept, per tick
Row = Floats | list[float]  # one level of the tree: numpy, or a list once it is short

FIRST_CHUNK = 16384  # values per chunk after a (re)start; chunks double while nothing fires
LARGEST_CHUNK = 65536  # ... up to this many
SLACK = 1e-9  # relative margin of the vectorised cut test; passing ticks are replayed exactly
BLOCK = 8192  # boundaries x ticks per block of the cut test, to stay in cache
SHORT_BATCH = 256  # batches shorter than this go through the loop of updates
SMALL_ROW = 64  # tree levels built from rows this short are merged in a Python loop


def run(adwin: ADWIN, values: Floats) -> list[int] | None:
    """Read ``values`` into ``adwin``; the detection positions, or None if its state is
    not one a run of updates produces (the caller then falls back to the loop)."""
    if values.size and adwin._drift_detected:
        adwin._reset()
    if not _is_aligned(adwin):
        return None
    hits: list[int] = []
    scratch = _Scratch(min(values.size, LARGEST_CHUNK))
    start, chunk = 0, FIRST_CHUNK
    while start < values.size:
        stop = min(values.size, start + chunk)
        found = _scan(adwin, values[start:stop], stop == values.size, scratch)
        if found is None:
            start, chunk = stop, min(2 * chunk, LARGEST_CHUNK)
            continue
        hits.append(start + found)
        start += found + 1
        chunk = FIRST_CHUNK
        if start < values.size:
            adwin._reset()
    return hits


def _kept(m: int, max_buckets: int) -> int:
    """Buckets a row holds after ``m`` have been added to it (two merge up on overflow)."""
    return m if m <= max_buckets else max_buckets - 1 + (m - max_buckets - 1) % 2


@functools.lru_cache(maxsize=64)  # a chunk asks for the same n up to three times
def _rows(n: int, max_buckets: int) -> tuple[tuple[int, int], ...]:
    """Per row: (buckets ever added, buckets kept) after ``n`` values, while any were added."""
    rows = [(n, _kept(n, max_buckets))]
    while True:
        added = (rows[-1][0] - rows[-1][1]) // 2
        if added == 0:
            return tuple(rows)
        rows.append((added, _kept(added, max_buckets)))


def _is_aligned(adwin: ADWIN) -> bool:
    n = adwin._width
    expected = [kept for _, kept in _rows(n, adwin.max_buckets)]
    return (
        adwin._tick == n
        and [len(row) for row in adwin._totals] == expected
        and [len(row) for row in adwin._squares] == expected
    )


def _scan(adwin: ADWIN, x: Floats, ends_batch: bool, scratch: _Scratch) -> int | None:
    """Read the chunk ``x`` from an aligned state; the position of its first detection.

    With no detection the state is moved to the end of the chunk; with one at the last
    value of the batch, to the state right after the detecting update. With one earlier
    the caller resets the detector, so the cut test stops at the first cut.
    """
    m_buckets, clock = adwin.max_buckets, adwin.clock
    n_start = adwin._width
    n_stop = n_start + x.size
    start_rows = _rows(n_start, m_buckets)
    stop_rows = _rows(n_stop, m_buckets)

    # The pairwise tree: level i from the first bucket still kept at the chunk's start.
    scratch.used = 0
    totals: list[Row] = []
    squares: list[Row] = []
    bases: list[int] = []
    for i in range(len(stop_rows)):
        kept_total = adwin._totals[i] if i < len(adwin._totals) else []
        kept_square = adwin._squares[i] if i < len(adwin._squares) else []
        if i > 1 and len(totals[-1]) <= SMALL_ROW:
            below = _listed(totals[-1]), _listed(squares[-1])
            new_totals, new_squares = _merge_small(*below, 1 << (i - 1))
            totals.append(kept_total + new_totals)
            squares.append(kept_square + new_squares)
        else:
            plain = not any(adwin._squares[0])  # row 0 holds single values only
            starting = kept_total, kept_square
            total, square = _level(i, x, totals, squares, starting, plain, scratch)
            totals.append(total)
            squares.append(square)
        added, kept = start_rows[i] if i < len(start_rows) else (0, 0)
        bases.append(added - kept)

    # Running total and sum of squared deviations after each value, as _insert computes
    # them: ((n - 1) * d * d) / n with d = x - total / (n - 1), accumulated left to right.
    counts = np.add(scratch.steps[: x.size + 1], n_start, out=scratch.counts[: x.size + 1])
    before, after = counts[:-1], counts[1:]
    running = scratch.running[: x.size + 1]
    running[0] = adwin._total
    running[1:] = x
    np.cumsum(running, out=running)
    square_sums = scratch.square_sums[: x.size + 1]
    square_sums[0] = adwin._square_sum
    step = square_sums[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = np.divide(running[:-1], before, out=scratch.deviation[: x.size])
        np.subtract(x, deviation, out=deviation)
        np.multiply(before, deviation, out=step)
        step *= deviation
        step /= after
    if n_start == 0:
        step[0] = 0.0
    np.cumsum(square_sums, out=square_sums)

    # No boundary can be tested before both sides can hold min_window_length values.
    first_tick = max(adwin.grace_period + 1, n_start + 1, 2 * adwin.min_window_length)
    first_tick += -first_tick % clock
    ticks = np.arange(first_tick, n_stop + 1, clock, dtype=np.int64)
    if ticks.size:
        for tick in _passing_ticks(adwin, ticks, x, running, square_sums, n_start):
            if not _cuts_at(adwin, tick, totals, bases, running, square_sums, n_start):
                continue
            # Before the batch's end the caller resets the detector: only the position
            # counts. At the end the state after the detecting update is written out.
            if ends_batch and tick == n_stop:
                _write_state(adwin, tick, totals, squares, bases, running, square_sums, n_start)
                while adwin._cut_oldest_bucket():
                    pass
            adwin._drift_detected = True
            return tick - n_start - 1
    _write_state(adwin, n_stop, totals, squares, bases, running, square_sums, n_start)
    return None


class _Scratch:
    """Arrays reused by the chunks of one batch, as long as its longest chunk.

    A fresh array of that size costs a page fault per 4 KiB when first written, about
    as much as the arithmetic done on it. Besides the running sums, the levels of the
    tree are cut from one buffer (:meth:`array`), which is handed out again from its
    start at each chunk.
    """

    def __init__(self, size: int) -> None:
        self.steps = np.arange(size + 1, dtype=np.float64)
        self.counts = np.empty(size + 1)
        self.running = np.empty(size + 1)
        self.square_sums = np.empty(size + 1)
        self.deviation = np.empty(size)
        # Row 0 (size), then three arrays of each level above (1.5 size in all) + kept buckets.
        self.tree = np.empty(3 * size + 1024)
        self.used = 0

    def array(self, size: int) -> Floats:
        """An uninitialised array of ``size`` floats, valid until the next chunk starts."""
        if self.used + size > self.tree.size:
            return np.empty(size)
        self.used += size
        return self.tree[self.used - size : self.used]


def _level(
    i: int,
    x: Floats,
    totals: list[Row],
    squares: list[Row],
    kept: tuple[list[float], list[float]],
    plain: bool,
    scratch: _Scratch,
) -> tuple[Floats, Floats]:
    """Level ``i`` of the tree in numpy: the start's ``kept`` buckets (totals, squares),
    then the new ones; ``plain`` if row 0 holds single values only (all squares 0)."""
    kept_total, kept_square = kept
    k = len(kept_total)
    if i == 0:
        total = x
        if k:
            total = scratch.array(k + x.size)
            total[:k], total[k:] = kept_total, x
        if plain:  # a read-only view of zeros
            return total, np.broadcast_to(0.0, k + x.size)
        square = scratch.array(k + x.size)
        square[:k], square[k:] = kept_square, 0.0
        return total, square
    below = np.asarray(totals[-1])
    pairs = below.size // 2
    total, square = scratch.array(k + pairs), scratch.array(k + pairs)
    total[:k], square[:k] = kept_total, kept_square
    if i == 1 and plain:
        _merge_values(below, total[k:], square[k:])
    else:
        below_square = np.asarray(squares[-1])
        _merge_pairs(below, below_square, 1 << (i - 1), (total[k:], square[k:]), scratch)
    return total, square


def _cuts_at(
    adwin: ADWIN,
    n: int,
    totals: list[Row],
    bases: list[int],
    running: Floats,
    square_sums: Floats,
    n_start: int,
) -> bool:
    """Whether the loop's first ``_cut_oldest_bucket`` at the state after ``n`` values cuts.

    The same float operations on all boundaries at once: ``total0`` and ``total1`` are
    the loop's sequential sums (``np.add.accumulate`` and ``np.subtract.accumulate``
    run left to right), the bound is ``_significant``'s expression term by term. The
    boundary after the newest bucket, which the loop does not test, has ``n1 = 0 < l``.
    """
    rows = _rows(n, adwin.max_buckets)
    pieces = [
        totals[i][added - kept - bases[i] : added - bases[i]]
        for i, (added, kept) in enumerate(rows)
    ]
    bucket_totals = np.concatenate(pieces[::-1])
    sizes = np.repeat(1 << np.arange(len(rows) - 1, -1, -1), [kept for _, kept in rows[::-1]])
    n0 = np.cumsum(sizes)
    n1 = n - n0
    shortest = adwin.min_window_length
    tested = (n0 >= shortest) & (n1 >= shortest)
    if not tested.any():
        return False
    total = float(running[n - n_start])
    total0 = np.cumsum(bucket_totals)
    total1 = np.subtract.accumulate(np.concatenate(([total], bucket_totals)))[1:]
    n0, n1, total0, total1 = n0[tested], n1[tested], total0[tested], total1[tested]
    delta_prime = math.log(2.0 * math.log(n) / adwin.delta)
    m_recip = 1.0 / (n0 - shortest + 1.0) + 1.0 / (n1 - shortest + 1.0)
    spread = 2.0 * m_recip * (float(square_sums[n - n_start]) / n) * delta_prime
    # The loop calls a negative spread not significant; NaN from its square root fails too.
    with np.errstate(invalid="ignore"):
        epsilon = np.sqrt(spread) + 2.0 / 3.0 * delta_prime * m_recip
        return bool(np.any(np.abs(total0 / n0 - total1 / n1) > epsilon))


def _merge_small(
    totals: list[float], squares: list[float], size: int
) -> tuple[list[float], list[float]]:
    """:func:`_merge_pairs` in ``ADWIN._merge_two_oldest``'s own float expressions, for
    rows so short that numpy's cost per call outweighs a loop."""
    scale = float(size)
    weight = scale * scale / (scale + scale)
    merged_totals, merged_squares = [], []
    for j in range(0, len(totals) - 1, 2):
        first, second = totals[j], totals[j + 1]
        difference = first / scale - second / scale
        merged_totals.append(first + second)
        merged_squares.append(squares[j] + squares[j + 1] + weight * difference * difference)
    return merged_totals, merged_squares


def _listed(row: Row) -> list[float]:
    return row if isinstance(row, list) else row.tolist()


def _merge_values(x: Floats, total: Floats, square: Floats) -> None:
    """:func:`_merge_pairs` of single values, whose squares are 0: 0 + 0 + s is s."""
    pairs = total.size
    first, second = x[0 : 2 * pairs : 2], x[1 : 2 * pairs : 2]
    difference = np.subtract(first, second, out=total)  # total holds it for a while
    np.multiply(difference, 0.5, out=square)
    square *= difference
    np.add(first, second, out=total)


def _merge_pairs(
    totals: Floats, squares: Floats, size: int, out: tuple[Floats, Floats], scratch: _Scratch
) -> None:
    """Merge buckets (0, 1), (2, 3), ... of one row with the operations of _merge_two_oldest,
    into ``out`` (totals, squares).

    Dividing by a power of two and multiplying by its inverse round alike, so the means
    are taken by multiplication.
    """
    total, square = out
    pairs = total.size
    first, second = totals[0 : 2 * pairs : 2], totals[1 : 2 * pairs : 2]
    difference = scratch.array(pairs)
    if size > 1:
        np.multiply(first, 1.0 / size, out=difference)
        difference -= np.multiply(second, 1.0 / size, out=total)  # total as scratch
    else:
        np.subtract(first, second, out=difference)
    weight = size * size / (size + size)
    np.add(squares[0 : 2 * pairs : 2], squares[1 : 2 * pairs : 2], out=square)
    spread = np.multiply(difference, weight, out=total)
    spread *= difference
    square += spread
    np.add(first, second, out=total)


def _counts(ticks: Ints, max_buckets: int, low: int, high: int) -> Counts:
    """Buckets ever added to rows ``low`` to ``high - 1`` (axis 0) at each tick (axis 1),
    and buckets kept.

    Row r + 1 receives (m - kept) / 2 = floor((m - M + 1) / 2) of the m buckets added to
    row r while m > M (the kept M - 1 or M make the rest even), else none, so m + M - 1
    halves from row to row: m_r = max(0, floor((n + M - 1) / 2**r) - M + 1). ``_kept``
    without a branch: min(m, M - 1 + (m - M - 1) mod 2) is m up to M.
    """
    shifts = np.arange(low, high, dtype=np.int64)[:, None]
    added = (ticks + (max_buckets - 1))[None, :] >> shifts
    added -= max_buckets - 1
    np.maximum(added, 0, out=added)
    kept = added - (max_buckets + 1)
    kept &= 1
    kept += max_buckets - 1
    np.minimum(kept, added, out=kept)
    return added, kept


def _prefix_by_position(adwin: ADWIN, x: Floats, running: Floats) -> tuple[Floats, float]:
    """Sums of the window's oldest ``p`` values at every bucket boundary ``p`` of the chunk,
    and a bound on how far any of them, or any sum the loop forms, can be from another.

    Every bucket in the chunk is a union of the start's buckets and the new values, so
    sums over those pieces give every boundary's older-part total (up to rounding): the
    start's buckets summed, then the running totals moved by what that sum and the
    start's total differ.
    """
    rows = adwin._totals[::-1]
    old = np.array([total for row in rows for total in row], dtype=np.float64)
    sizes = np.repeat(1 << np.arange(len(rows) - 1, -1, -1), [len(row) for row in rows])
    n_start = adwin._width
    prefix = np.empty(n_start + x.size + 1)
    prefix[0] = 0.0
    old_sums = np.cumsum(old)
    prefix[np.cumsum(sizes)] = old_sums
    old_sum = float(old_sums[-1]) if old.size else 0.0
    np.add(running[1:], old_sum - adwin._total, out=prefix[n_start + 1 :])
    # The sum of |values| is at most size times the largest |value| (no temporary array).
    largest = max(abs(float(x.max())), abs(float(x.min()))) if x.size else 0.0
    magnitude = float(np.abs(old).sum()) + x.size * largest + abs(adwin._total)
    # Sums of k terms in any order differ by at most about k * 2**-53 * sum of |terms|.
    return prefix, 16.0 * (old.size + x.size + 4) * 1.12e-16 * magnitude


def _passing_ticks(
    adwin: ADWIN,
    ticks: Ints,
    x: Floats,
    running: Floats,
    square_sums: Floats,
    n_start: int,
) -> Iterator[int]:
    """Ticks at which some boundary may pass the cut test, in order, found block by block.

    One row per bucket, oldest first, one column per tick; a row that keeps fewer than
    ``max_buckets`` buckets is padded with empty ones, which repeat the boundary before.
    Totals come from prefix sums, so the test is loosened by their rounding bound and a
    relative slack: it may pass ticks that do not cut (they are replayed exactly), but
    never misses one that does.

    Rows of buckets larger than ``4 * clock`` keep their boundaries for four ticks or
    more, so they are first screened once per run of such ticks with a bound that holds
    at each of them (:func:`_held_runs`); only the ticks of a run that passes it test
    those rows tick by tick. The smaller rows are tested at every tick: once the window
    is long enough, first by the cheaper and looser :class:`_Steady` screen, and
    exactly only at the ticks that pass it.
    """
    m_buckets, shortest = adwin.max_buckets, adwin.min_window_length
    prefix, error = _prefix_by_position(adwin, x, running)
    rows = len(_rows(int(ticks[-1]), m_buckets))
    width = ticks.astype(np.float64)
    delta_prime = np.log(2.0 * np.log(width) / adwin.delta)
    variance = np.maximum(square_sums[ticks - n_start] / width, 0.0)
    # With a = n0 - l + 1, b = n1 - l + 1 and m = (a + b) / (a b), the loop cuts where
    # |t0 / n0 - t1 / n1| > sqrt(2 m v d') + 2/3 d' m. Times n0 n1 / n (>= a b / n) the
    # left side is |t0 - n0 T / n| and the right side is at least sqrt(c_sqrt a b) +
    # c_linear, with the constants below. a and b are taken 1/4 smaller, so that where
    # n0 < l or n1 < l (never both: ticks have n >= 2 l) a b < 0 and the square root is
    # NaN, which fails the test without a mask (c_sqrt is kept above zero for that;
    # 1e-300 is far inside SLACK).
    span = width - 2.0 * (shortest - 1)  # a + b
    c_sqrt = 2.0 * variance * delta_prime * span * (1.0 - SLACK) ** 2 / (width * width)
    np.maximum(c_sqrt, 1e-300, out=c_sqrt)
    # The prefix sums, the loop's sums and the products each stray by at most error.
    c_linear = 2.0 / 3.0 * delta_prime * span * (1.0 - SLACK) / width - 4.0 * error
    mean = running[ticks - n_start] / width
    test = _Test(prefix, mean, c_sqrt, c_linear, span - 0.5, shortest - 0.75)
    # Rows of buckets of up to 4 clock periods are tested at every tick; rows whose every
    # boundary leaves fewer than l newer values can never cut.
    split = min(rows, adwin.clock.bit_length() + 2)
    lowest = 0
    while lowest < split and (m_buckets << (lowest + 1)) - (1 << lowest) - m_buckets < shortest:
        lowest += 1
    held = _counts(ticks, m_buckets, split, rows)
    recheck = _held_runs(test, held, split, rows, m_buckets) if split < rows else None

    def every(cols: slice | Ints) -> Bools:
        """The exact test of the rows tested every tick at the ticks ``cols``."""
        if lowest == split:
            return np.zeros(ticks[cols].size, dtype=np.bool_)
        counts = _counts(ticks[cols], m_buckets, lowest, split)
        return test.passes(_boundaries(counts, lowest, split, m_buckets), cols)

    # Blocks of ticks small enough for the temporaries to stay in cache.
    step = max(16, BLOCK // (max(split - lowest, 1) * m_buckets))
    steady = None
    if lowest < split:
        steady = _Steady(adwin, ticks, width, test, (lowest, split), step)
    for low, high, screened in _blocks(ticks.size, step, steady):
        cols = slice(low, high)
        if screened and steady is not None:
            passed = steady.passes(test, low, high)
            again = np.nonzero(passed)[0]
            if again.size:
                passed[again] = every(again + low)
        else:
            passed = every(cols)
        if recheck is not None:
            again = np.nonzero(recheck[cols])[0] + low
            if again.size:
                held_rows = _boundaries(held, split, rows, m_buckets, again)
                passed[again - low] |= test.passes(held_rows, again)
        for tick in ticks[cols][passed]:
            yield int(tick)


Boundaries = tuple[Ints, Ints, Ints]


class _Steady:
    """A looser test without a square root per boundary, for the rows tested every tick
    (``lowest`` to ``split - 1``) once their boundaries repeat.

    Once the last of these rows has been added ``M - 1`` buckets, each of them keeps
    ``M - 1`` or ``M`` by the parity of the buckets added to it (:func:`_counts`), so the
    newer-part lengths ``n1`` of their boundaries depend on ``n mod 2**split`` alone:
    they repeat every ``period`` ticks, and :func:`_steady_table` reads them once per
    setting. Then ``b = n1 - l + 3/4`` is fixed per boundary and phase, and ``a = n0 -
    l + 3/4`` is at least ``n - L - l + 3/4`` with ``L`` the largest ``n1``, so the
    bound ``sqrt(c_sqrt a b) + c_linear`` of :func:`_passing_ticks` is at least ``u w +
    c_linear`` with ``u = sqrt(c_sqrt (n - L - l + 3/4))`` per tick and ``w = sqrt(b)``
    per boundary (infinite where ``b < 0``: those boundaries are never tested). The gap
    is computed as in :meth:`_Test.exceeds`. The screen starts at the first tick with
    ``n >= 2 M 2**split > 2 L``, where ``u`` is within a factor sqrt(2) of its exact
    value, and soon much closer.
    """

    def __init__(
        self,
        adwin: ADWIN,
        ticks: Ints,
        width: Floats,
        test: _Test,
        rows: tuple[int, int],
        block: int,
    ) -> None:
        self.ticks, self.clock = ticks, adwin.clock
        self.newer, self.w, largest, self.period = _steady_table(
            adwin.max_buckets, adwin.clock, *rows, test.shift, block
        )
        self.first = int(np.searchsorted(ticks, adwin.max_buckets << (rows[1] + 1)))
        least_a = np.subtract(width, largest + test.shift)
        np.maximum(least_a, 0.0, out=least_a)
        least_a *= test.c_sqrt
        self.u = np.sqrt(least_a, out=least_a)

    def passes(self, test: _Test, low: int, high: int) -> Bools:
        """Per tick ``low`` to ``high - 1`` (from ``first``, at most ``block`` ticks):
        whether any boundary passes the looser test."""
        cols = slice(low, high)
        phase = int(self.ticks[low]) // self.clock % self.period
        columns = slice(phase, phase + high - low)
        n0 = np.subtract(self.ticks[cols], self.newer[:, columns])
        gap = np.take(test.prefix, n0)
        position = n0.astype(np.float64)
        position *= test.mean[cols]
        gap -= position
        np.abs(gap, out=gap)
        bound = np.multiply(self.u[cols], self.w[:, columns], out=position)
        bound += test.c_linear[cols]
        passed = np.greater(gap, bound)
        anywhere: Bools = np.logical_or.reduce(passed, axis=0)
        return anywhere


@functools.lru_cache(maxsize=8)
def _steady_table(
    m_buckets: int, clock: int, lowest: int, split: int, shift: float, block: int
) -> tuple[Ints, Floats, int, int]:
    """:class:`_Steady`'s ``n1`` and ``w``, one row per boundary and one column per tick
    from phase 0 (``n / clock`` a multiple of the period) for ``block`` ticks from any
    phase; the largest ``n1`` and the period. The same for every batch with these
    settings, so made once (read-only)."""
    period = (1 << split) // math.gcd(clock, 1 << split)
    start = m_buckets << (split + 1)
    start += -start % (clock * period)
    ticks = np.arange(start, start + clock * period, clock, dtype=np.int64)
    counts = _counts(ticks, m_buckets, lowest, split)
    newer = ticks - _positions(_boundaries(counts, lowest, split, m_buckets), slice(None))
    newer = np.tile(newer, -(-block // period) + 1)
    b = newer - shift
    w = np.full(b.shape, np.inf)
    np.sqrt(b, out=w, where=b > 0.0)
    newer.flags.writeable = w.flags.writeable = False
    return newer, w, int(newer.max()), period


def _blocks(size: int, step: int, steady: _Steady | None) -> Iterator[tuple[int, int, bool]]:
    """Blocks of ``step`` ticks or so, in order: (low, high, whether the steady screen
    covers them)."""
    first = steady.first if steady is not None else size
    low = 0
    for end, width, screened in ((first, step, False), (size, step, True)):
        while low < end:
            high = min(end, low + width)
            yield low, high, screened
            low = high


class _Test:
    """The loosened cut test at given boundaries and ticks (see :func:`_passing_ticks`)."""

    def __init__(
        self,
        prefix: Floats,
        mean: Floats,
        c_sqrt: Floats,
        c_linear: Floats,
        span_b: Floats,
        shift: float,
    ) -> None:
        self.prefix, self.mean, self.shift = prefix, mean, shift
        self.c_sqrt, self.c_linear, self.span_b = c_sqrt, c_linear, span_b

    def passes(self, boundaries: Boundaries, cols: slice | Ints) -> Bools:
        """Per tick of ``cols``: whether any of ``boundaries`` (at those ticks) may cut there."""
        n0 = _positions(boundaries, slice(None))
        c_sqrt, c_linear, span_b = self.c_sqrt[cols], self.c_linear[cols], self.span_b[cols]
        passed = self.exceeds(n0, self.mean[cols], None, c_sqrt, c_linear, span_b)
        return np.zeros(n0.shape[1], dtype=np.bool_) if passed is None else passed

    def exceeds(
        self,
        n0: Ints,
        mean: Floats,
        spread: Floats | None,
        c_sqrt: Floats,
        c_linear: Floats,
        span_b: Floats,
    ) -> Bools | None:
        """Per column: whether any boundary ``n0`` passes (None if none does anywhere),
        with the window's mean anywhere in ``mean`` +- ``spread`` (which also drops the
        NaN that marks a too-short newer part: see :func:`_held_runs`)."""
        with np.errstate(invalid="ignore", over="ignore"):
            gap = np.take(self.prefix, n0)
            # One conversion to floats instead of a mixed-type loop in each operation.
            position = n0.astype(np.float64)
            scratch = np.multiply(position, mean)
            gap -= scratch
            np.abs(gap, out=gap)
            a = np.subtract(position, self.shift, out=scratch)
            bound = np.subtract(span_b, a)
            if spread is not None:
                position *= spread
                gap += position
                np.maximum(bound, 0.0, out=bound)
            bound *= a
            bound *= c_sqrt
            np.sqrt(bound, out=bound)
            bound += c_linear
            passed = np.greater(gap, bound)
        if not passed.any():
            return None
        anywhere: Bools = np.logical_or.reduce(passed, axis=0)
        return anywhere


def _boundaries(
    counts: Counts,
    low: int,
    high: int,
    m_buckets: int,
    cols: slice | Ints = slice(None),
) -> Boundaries:
    """Rows ``low`` to ``high - 1`` (those of ``counts``), oldest first, at the ticks ``cols``,
    as (slots, merged, added) arrays of shape (rows, M, 1), (rows, 1, ticks), (rows, 1,
    ticks): the boundaries of row r at a tick are min(merged + s, added) * 2**r for slots
    s = 1..M."""
    shifts = np.arange(high - 1, low - 1, -1, dtype=np.int64)[:, None, None]
    ever, kept = counts[0][::-1, cols], counts[1][::-1, cols]
    merged = np.subtract(ever, kept)[:, None, :]
    merged <<= shifts
    added = ever[:, None, :] << shifts
    slots = np.arange(1, m_buckets + 1)[None, :, None] << shifts
    return slots, merged, added


def _positions(boundaries: Boundaries, cols: slice | Ints) -> Ints:
    """Boundary positions at the ticks ``cols``, one row per boundary."""
    slots, merged, added = boundaries
    n0 = np.add(slots, merged[:, :, cols])
    np.minimum(n0, added[:, :, cols], out=n0)
    return n0.reshape(-1, n0.shape[2])


def _held_runs(test: _Test, counts: Counts, low: int, high: int, m_buckets: int) -> Bools | None:
    """Per tick: whether rows ``low`` to ``high - 1`` may cut there (None if at no tick),
    screened once per run of ticks over which their boundaries stay put.

    Those boundaries depend on the buckets ever added to row ``low`` alone. Over a run,
    the gap |t0 - n0 T / n| is at most |t0 - n0 c| + n0 h for the means T / n in
    c +- h, and the bound is at least its value with the smallest c_sqrt, c_linear and
    a + b (the first tick's) of the run, b clipped at zero: a boundary whose newer part
    is too short at the run's start may not be at a later tick. Every tick of a run
    that passes is then tested exactly, row by row.
    """
    added = counts[0][0]
    change = np.empty(added.size, dtype=bool)
    change[0] = True
    np.not_equal(added[1:], added[:-1], out=change[1:])
    starts = np.nonzero(change)[0]
    lo = np.minimum.reduceat(test.mean, starts)
    hi = np.maximum.reduceat(test.mean, starts)
    mid = lo + hi
    mid *= 0.5
    # The half-width, widened by a rounding of the means' size.
    spread = np.maximum(hi - mid, mid - lo)
    spread += 1e-15 * np.maximum(np.abs(lo), np.abs(hi))
    passed = test.exceeds(
        _positions(_boundaries(counts, low, high, m_buckets, starts), slice(None)),
        mid,
        spread,
        np.minimum.reduceat(test.c_sqrt, starts),
        np.minimum.reduceat(test.c_linear, starts),
        test.span_b[starts],
    )
    if passed is None:
        return None
    run = np.cumsum(change) - 1  # the run of each tick
    held: Bools = passed[run]
    return held


def _write_state(
    adwin: ADWIN,
    n: int,
    totals: list[Row],
    squares: list[Row],
    bases: list[int],
    running: Floats,
    square_sums: Floats,
    n_start: int,
) -> None:
    """Set ``adwin`` to the state a loop of updates has after ``n`` values."""
    adwin._totals, adwin._squares = [], []
    for i, (added, kept) in enumerate(_rows(n, adwin.max_buckets)):
        low, high = added - kept - bases[i], added - bases[i]
        adwin._totals.append(_listed(totals[i][low:high]))
        adwin._squares.append(_listed(squares[i][low:high]))
    adwin._width = adwin._tick = n
    adwin._total = float(running[n - n_start])
    adwin._square_sum = float(square_sums[n - n_start])
    adwin._drift_detected = False
