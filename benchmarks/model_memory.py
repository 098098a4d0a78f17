"""Memory of the daemon's whole state for ten models of fifty features, over two million events.

Run ``python benchmarks/model_memory.py [--events N] [--every N] [--quick] [--seed S]
[--interval-s S] [--trace-top N] [--write benchmarks/RESULTS-model-memory.md [--append]]``.

Method
------
**Set-up.** Ten models (eight binary classifiers, two regressions), each with 40 numeric
features (normal, log-normal, integer and uniform, 0.5 % of values missing) and 10
categorical ones (2 to 30 labels, skewed). Each model's reference is built from
``--reference-rows`` (10,000) rows drawn from the same distributions, with the project's
own :class:`detectors.ProfileBuilder` (what ``driftline profile`` runs), written with
:func:`monitor.reference.save_reference` to a temporary directory and named under
``models:`` in the settings; the daemon's :func:`monitor.daemon.load_references` reads
them back. Every other setting is the default: drift windows of 1,000 predictions, the
default policy, ADWIN on the errors, performance windows of 1,000 outcomes, learned
signal baselines, the join store's 3-day TTL and 500,000 bound.

**Events.** :class:`EventStream` is a file-like object whose ``readline()`` makes each
JSON line on demand, so the input takes (almost) no memory. Predictions go to the models
in turn, ``--interval-s`` (2 s) of event time apart, with a model version and a segment
(not tracked: no segments by default). For 80 % of them an outcome comes after an
exponential delay (mean ``--label-delay-s``, one hour, capped at ten times that); for
10 % a ``conversion`` signal with the prediction's id comes 1–60 s later, and 1 % are
followed by a ``refund`` signal without id. Every prediction, joined or not, stays in the
join store until ``ttl_s`` of event time has passed (a joined one is kept, marked, so that
a second outcome is known as a duplicate), so the store levels off at
``min(ttl_s / interval_s + 1, max_predictions)`` entries: 129,601 with the defaults,
reached after about 246,000 events; from then on every part of the state should be at
its steady size, and the "growth" line compares RSS at half the events with RSS at the
end: over the second million of the default two million. (RSS still settles for a while
after the store is full, as the allocator's arenas do: the table shows it.) A busier
stream (``--interval-s 0.5`` or less) would fill the store towards its bound of 500,000
instead, and still be filling it at a million events. Lines are made in
blocks of 1,000 predictions with numpy (seeded).

**Run.** The lines go through :func:`monitor.replay.replay`, the daemon's own
:meth:`monitor.service.Service.process_batch` and ``tick`` (decode, pipeline, join,
alerts, telemetry) without a broker. ``replay()`` reads 1,000 lines per batch, so at a
sample after line ``n`` (a multiple of 1,000) exactly ``n`` events have been processed.

**Samples.** Every ``--every`` lines (and after set-up, before the first event),
``readline()`` records the resident set size (``/proc/self/statm``) and the join store's
size, then writes a checkpoint of the pipeline the way the daemon does
(:meth:`monitor.pipeline.Pipeline.to_state` with the join store's entries written as they
lie and the references spliced in as text, through :meth:`monitor.checkpoint.LocalStore.save`
to a temporary directory: its text in pieces, then gzip level 1 straight into the file)
and records its size. The daemon
writes one every 30 s, so the transient memory of encoding belongs in the figures; the
RSS of a sample is read before its checkpoint is made. Peaks are ``VmHWM``, reset
(``/proc/self/clear_refs``) after each reading, so that the table gives the peak while
the events since the previous sample were processed and the peak while this sample's
checkpoint was encoded, apart; the set-up's peak includes building the profiles.

``--trace-top N`` runs :mod:`tracemalloc` from the end of set-up and prints the ``N``
files and source lines holding the most memory at the end, and those whose holding grew
most since set-up and since the sample nearest half the events (several times slower).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import multiprocessing
import resource
import sys
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _common import bytes_per_join_entry, without_notes

import monitor.replay as replay_module
from detectors import ProfileBuilder
from monitor import __version__
from monitor.checkpoint import Checkpoint, Finite, LocalStore, release_free_memory
from monitor.config import Settings
from monitor.daemon import load_references, tune_gc
from monitor.pipeline import Pipeline
from monitor.reference import PREDICTION, ModelReference, save_reference

START_TIME_S = 1_700_000_000.0
_PAGE = resource.getpagesize()
_MIB = 1 << 20
_MB = 1_000_000
TARGET_BYTES = 300 * _MB
FLAT_MIB = 2.0  # |RSS growth| over the second half within which we call it flat
BLOCK = 1000  # predictions made at a time
MODELS = ("churn", "fraud", "upsell", "credit", "spam", "ranking", "intent", "renewal")
REGRESSIONS = ("ltv", "eta")
NUMERIC = tuple(f"num_{j:02d}" for j in range(40))
CARDINALITIES = (3, 5, 8, 12, 20, 4, 6, 30, 2, 10)
CATEGORICAL = tuple(f"cat_{j}" for j in range(len(CARDINALITIES)))
LABELS = tuple(tuple(f"c{k:02d}" for k in range(n)) for n in CARDINALITIES)
REGIONS = ("eu", "us", "apac")
MISSING_SHARE = 0.005
OUTCOME_SHARE = 0.8
CONVERSION_SHARE = 0.1
REFUND_SHARE = 0.01


def rss_bytes() -> int:
    """The resident set size of this process now."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def peak_rss_bytes() -> int:
    """The largest resident set size since start or since :func:`reset_peak` (``VmHWM``)."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> bool:
    """Start :func:`peak_rss_bytes` afresh from the RSS now; ``False`` where Linux will not."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


# -- data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """``n`` rows of features and predictions of one model."""

    numeric: np.ndarray  # (n, 40) floats, NaN where missing
    categorical: np.ndarray  # (n, 10) label indices
    scores: np.ndarray  # (n,) the predictions

    def rows(self) -> Iterator[dict[str, Any]]:
        """The rows as a training set would give them (``None`` for missing)."""
        numbers = self.numeric.tolist()
        for values, labels in zip(numbers, self.categorical.tolist(), strict=True):
            row: dict[str, Any] = {
                name: None if v != v else v for name, v in zip(NUMERIC, values, strict=True)
            }
            for name, choices, k in zip(CATEGORICAL, LABELS, labels, strict=True):
                row[name] = choices[k]
            yield row


def draw_block(rng: np.random.Generator, n: int, regression: bool) -> Block:
    """Rows from the fixed distributions every model and its reference share."""
    columns = []
    for j in range(len(NUMERIC)):
        kind = j % 4
        if kind == 0:
            column = rng.normal(j / 10, 1.0, n).round(4)
        elif kind == 1:
            column = rng.lognormal(3.0, 0.5, n).round(2)
        elif kind == 2:
            column = rng.integers(0, 101, n).astype(np.float64)
        else:
            column = rng.random(n).round(4)
        columns.append(column)
    numeric = np.column_stack(columns)
    numeric[rng.random(numeric.shape) < MISSING_SHARE] = np.nan
    # Skewed labels: an exponential draw cut at the cardinality.
    sizes = np.array(CARDINALITIES)
    categorical = np.minimum(
        (rng.exponential(1.0, (n, len(sizes))) * sizes / 4).astype(np.int64), sizes - 1
    )
    scores = rng.lognormal(4.0, 0.6, n).round(2) if regression else rng.beta(2.0, 5.0, n).round(4)
    return Block(numeric, categorical, scores)


def model_names(count: int) -> tuple[str, ...]:
    """``count`` (at most ten) model names, the last two of them regressions when ``count > 2``."""
    if not 1 <= count <= len(MODELS) + len(REGRESSIONS):
        raise ValueError(f"count must be 1 to {len(MODELS) + len(REGRESSIONS)}, got {count}")
    return (MODELS[: count - len(REGRESSIONS)] + REGRESSIONS) if count > 2 else MODELS[:count]


def build_reference(name: str, rows: int, seed: int, regression: bool) -> ModelReference:
    """A model's reference, as ``driftline profile`` builds it from training rows."""
    features, predictions = ProfileBuilder(seed=seed), ProfileBuilder(seed=seed)
    rng = np.random.default_rng((seed, 1, zlib.crc32(name.encode())))
    for start in range(0, rows, BLOCK):
        block = draw_block(rng, min(BLOCK, rows - start), regression)
        for row, score in zip(block.rows(), block.scores.tolist(), strict=True):
            features.update(row)
            predictions.update({PREDICTION: score})
    return ModelReference(name, features.build(), predictions.build())


def make_settings(
    names: Sequence[str], reference_rows: int, seed: int, directory: Path
) -> Settings:
    """Settings with every model named and its reference file written to ``directory``.

    The files are built in a child process: the daemon reads reference files and never
    builds them, so building must leave nothing behind in the process measured.
    """
    with multiprocessing.get_context("fork").Pool(1) as pool:
        models = pool.apply(write_references, (list(names), reference_rows, seed, directory))
    return Settings.model_validate({"models": models})


def write_references(
    names: list[str], reference_rows: int, seed: int, directory: Path
) -> dict[str, Any]:
    """Build and save each model's reference; the ``models`` settings naming them."""
    models: dict[str, Any] = {}
    for name in names:
        regression = name in REGRESSIONS
        path = directory / f"{name}.json"
        reference = build_reference(name, reference_rows, seed, regression)
        save_reference(reference, path, f"driftline {__version__}")
        models[name] = {"profile": str(path), "task": "regression" if regression else "binary"}
    return models


def _template(model: str) -> str:
    """A prediction line with ``%s`` for id, time, features, prediction and region."""
    parts = [f'"{name}":%s' for name in NUMERIC] + [f'"{name}":"%s"' for name in CATEGORICAL]
    return (
        f'{{"id":"%s","model":"{model}","model_version":"v1","timestamp":%.3f,'
        f'"features":{{{",".join(parts)}}},"prediction":%s,"segment":{{"region":"%s"}}}}\n'
    )


def _inflated_size(path: Path) -> int:
    """The size of the gzip file at ``path`` once inflated, read 64 KiB at a time: no
    large buffer is made, so measuring leaves the process's heap as the daemon's would be."""
    inflate = zlib.decompressobj(wbits=31)
    size = 0
    with path.open("rb") as data:
        while chunk := data.read(65_536):
            size += len(inflate.decompress(chunk))
    return size + len(inflate.flush())


# -- the stream ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    lines: int
    predictions: int
    outcomes: int
    signals: int
    rss: int
    join_entries: int
    peak: int  # the highest RSS since the previous sample's checkpoint was made
    checkpoint_peak: int  # the highest RSS while this sample's checkpoint was made
    checkpoint_bytes: int  # gzip, as written
    checkpoint_json_bytes: int
    elapsed_s: float
    making_s: float  # of elapsed_s, the time spent making lines
    checkpoint_s: float  # of elapsed_s, the time spent encoding checkpoints


@dataclass
class EventStream:
    """A file-like object that makes ``events`` lines on demand and samples memory."""

    events: int
    every: int
    names: Sequence[str]
    seed: int = 0
    interval_s: float = 2.0
    label_delay_s: float = 3600.0
    pipeline: Pipeline | None = None
    #: With tracemalloc on, a snapshot is taken at this sample (before its checkpoint).
    trace_at: int | None = None
    snapshot: tracemalloc.Snapshot | None = None
    references: dict[str, ModelReference] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"predictions": 0, "outcomes": 0, "signals": 0}
    )
    _served: int = 0
    _started: float = 0.0
    _making_s: float = 0.0
    _checkpoint_s: float = 0.0
    _lines: Iterator[tuple[str, bytes]] = field(init=False)

    def __post_init__(self) -> None:
        self._lines = self._generate()

    def readline(self) -> bytes:
        entered = time.perf_counter()
        if self._served == 0 and not self.samples:
            self._started = entered
        if self._served % self.every == 0 or self._served == self.events:
            self.sample(entered)
            entered = time.perf_counter()
        if self._served >= self.events:
            return b""
        stream, line = next(self._lines)
        self._served += 1
        self.counts[stream] += 1
        self._making_s += time.perf_counter() - entered
        return line

    def sample(self, now: float) -> None:
        if self.samples and self.samples[-1].lines == self._served:
            return  # the end of the stream is read more than once
        rss, peak = rss_bytes(), peak_rss_bytes()
        reset_peak()
        if self._served == self.trace_at and tracemalloc.is_tracing():
            self.snapshot = tracemalloc.take_snapshot()
        entries = 0 if self.pipeline is None else len(self.pipeline.join)
        size, text_size, took = self._checkpoint()
        checkpoint_peak = peak_rss_bytes()
        reset_peak()
        self._checkpoint_s += took
        point = Sample(
            lines=self._served,
            predictions=self.counts["predictions"],
            outcomes=self.counts["outcomes"],
            signals=self.counts["signals"],
            rss=rss,
            peak=peak,
            checkpoint_peak=checkpoint_peak,
            join_entries=entries,
            checkpoint_bytes=size,
            checkpoint_json_bytes=text_size,
            elapsed_s=now - self._started,
            making_s=self._making_s,
            checkpoint_s=self._checkpoint_s,
        )
        self.samples.append(point)
        print(
            f"{point.lines:>10,} events  {point.rss / _MIB:8.1f} MiB  "
            f"{entries:>8,} in the store  checkpoint {size / _MIB:6.2f} MiB  "
            f"{point.elapsed_s:7.1f} s",
            file=sys.stderr,
            flush=True,
        )

    def _checkpoint(self) -> tuple[int, int, float]:
        """Write the pipeline's checkpoint as the daemon does (its text, then gzip
        straight into a file of a :class:`LocalStore`): gzip size, JSON size, time."""
        if self.pipeline is None:
            return 0, 0, 0.0
        started = time.perf_counter()
        refs: dict[str, ModelReference] = {}
        state = {"pipeline": self.pipeline.to_state(refs, wrap=Finite)}
        with tempfile.TemporaryDirectory(prefix="driftline-model-memory-") as directory:
            store = LocalStore(Path(directory))
            size = store.save(Checkpoint(1, START_TIME_S, {}, state, references=refs))
            took = time.perf_counter() - started
            del state, refs
            [(_, path)] = store.files()
            sizes = size, _inflated_size(path), took
        release_free_memory()  # as the daemon does after each checkpoint
        return sizes

    def _generate(self) -> Iterator[tuple[str, bytes]]:
        rng = np.random.default_rng((self.seed, 2))
        templates = {name: _template(name) for name in self.names}
        pending: list[tuple[float, int, str, bytes]] = []  # outcomes and signals, by time
        sequence = 0
        i = 0
        while True:
            block = self._block(rng, i)
            for model, event_id, t, fields, score, regression in block:
                while pending and pending[0][0] <= t:
                    _, _, stream, due = heapq.heappop(pending)
                    yield stream, due
                yield "predictions", (templates[model] % (event_id, t, *fields)).encode()
                draws = rng.random(5)
                if draws[0] < OUTCOME_SHARE:
                    delay = min(rng.exponential(self.label_delay_s), 10 * self.label_delay_s)
                    label = (
                        round(score * float(rng.lognormal(0.0, 0.2)), 2)
                        if regression
                        else int(draws[1] < score)
                    )
                    text = (
                        f'{{"id":"{event_id}","model":"{model}","timestamp":{t + delay:.3f},'
                        f'"label":{label}}}\n'
                    )
                    heapq.heappush(pending, (t + delay, sequence, "outcomes", text.encode()))
                    sequence += 1
                if draws[2] < CONVERSION_SHARE:
                    at = t + 1.0 + 59.0 * draws[3]
                    text = (
                        f'{{"id":"{event_id}","model":"{model}","timestamp":{at:.3f},'
                        f'"signal":"conversion","value":1}}\n'
                    )
                    heapq.heappush(pending, (at, sequence, "signals", text.encode()))
                    sequence += 1
                if draws[4] < REFUND_SHARE:
                    at = t + 1.0 + 59.0 * draws[3]
                    text = (
                        f'{{"model":"{model}","timestamp":{at:.3f},"signal":"refund","value":1}}\n'
                    )
                    heapq.heappush(pending, (at, sequence, "signals", text.encode()))
                    sequence += 1
            i += BLOCK

    def _block(
        self, rng: np.random.Generator, first: int
    ) -> list[tuple[str, str, float, list[Any], float, bool]]:
        """The next ``BLOCK`` predictions, models in turn, as values ready for the template."""
        count = len(self.names)
        out: list[tuple[str, str, float, list[Any], float, bool]] = []
        per_model = -(-BLOCK // count)
        blocks = {name: draw_block(rng, per_model, name in REGRESSIONS) for name in self.names}
        cursors = dict.fromkeys(self.names, 0)
        regions = rng.integers(0, len(REGIONS), BLOCK).tolist()
        for k in range(BLOCK):
            i = first + k
            name = self.names[i % count]
            block, row = blocks[name], cursors[name]
            cursors[name] = row + 1
            numbers: list[Any] = ["null" if v != v else v for v in block.numeric[row].tolist()]
            labels = [LABELS[j][c] for j, c in enumerate(block.categorical[row].tolist())]
            score = float(block.scores[row])
            fields = [*numbers, *labels, score, REGIONS[regions[k]]]
            out.append(
                (
                    name,
                    f"p-{i:09d}",
                    START_TIME_S + i * self.interval_s,
                    fields,
                    score,
                    name in REGRESSIONS,
                )
            )
        return out


# -- running -----------------------------------------------------------------------------


@dataclass
class Setup:
    settings: Settings
    references: dict[str, ModelReference]
    rss_imported: int  # before anything is built
    rss_profiles: int  # references built, written and read back
    peak_setup: int
    profiles_s: float


@dataclass
class Run:
    setup: Setup
    stream: EventStream
    peak: int
    wall_s: float
    traced: list[str] = field(default_factory=list)


def prepare(names: Sequence[str], reference_rows: int, seed: int) -> Setup:
    rss_imported = rss_bytes()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="driftline-model-memory-") as directory:
        settings = make_settings(names, reference_rows, seed, Path(directory))
        references = load_references(settings)
    gc.collect()
    took = time.perf_counter() - started
    return Setup(settings, references, rss_imported, rss_bytes(), peak_rss_bytes(), took)


def run(
    events: int,
    every: int,
    *,
    models: int = 10,
    reference_rows: int = 10_000,
    interval_s: float = 2.0,
    label_delay_s: float = 3600.0,
    seed: int = 0,
    trace_top: int = 0,
) -> Run:
    started = time.perf_counter()
    names = model_names(models)
    print(
        f"building {len(names)} references of {reference_rows:,} rows...",
        file=sys.stderr,
        flush=True,
    )
    setup = prepare(names, reference_rows, seed)
    stream = EventStream(
        events, every, names, seed=seed, interval_s=interval_s, label_delay_s=label_delay_s
    )
    # As in the daemon, a model's monitor is made at its first event, and the garbage
    # collector is set for the loop once the references are loaded.
    stream.pipeline = Pipeline(setup.settings, setup.references)
    tune_gc()
    if trace_top:
        tracemalloc.start()
        stream.trace_at = nearest_sample(events, every, events // 2)
    before = tracemalloc.take_snapshot() if trace_top else None
    result = replay_module.replay(
        stream,  # type: ignore[arg-type]  # readline() is all replay reads
        setup.settings,
        start_time_s=START_TIME_S,
        pipeline=stream.pipeline,
    )
    if result.lines != events:
        raise RuntimeError(f"replay read {result.lines:,} lines, expected {events:,}")
    traced: list[str] = []
    if before is not None:
        half = stream.snapshot
        traced = trace_report(before, half, tracemalloc.take_snapshot(), trace_top)
        tracemalloc.stop()
    peak = max(setup.peak_setup, *(max(s.peak, s.checkpoint_peak) for s in stream.samples))
    return Run(setup, stream, peak, time.perf_counter() - started, traced)


def nearest_sample(events: int, every: int, lines: int) -> int:
    """The sample point (a multiple of ``every``, or ``events``) nearest ``lines``."""
    points = [*range(0, events, every), events]
    return min(points, key=lambda p: abs(p - lines))


def trace_report(
    before: tracemalloc.Snapshot,
    half: tracemalloc.Snapshot | None,
    after: tracemalloc.Snapshot,
    top: int,
) -> list[str]:
    """Where the traced memory is at the end, and where it grew (since set-up, since half)."""
    keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before, after = before.filter_traces(keep), after.filter_traces(keep)
    total = sum(s.size for s in after.statistics("filename"))
    lines = [f"tracemalloc: {total / _MIB:.1f} MiB traced at the end; by file:", ""]
    lines += [f"    {s}" for s in after.statistics("filename")[:top]]
    lines += ["", "by line:", ""]
    lines += [f"    {s}" for s in after.statistics("lineno")[:top]]
    lines += ["", "grown most since set-up (before the first event):", ""]
    lines += [f"    {s}" for s in after.compare_to(before, "lineno")[:top]]
    if half is not None:
        half = half.filter_traces(keep)
        grown = sum(s.size_diff for s in after.compare_to(half, "filename"))
        lines += ["", f"grown since half the events: {grown / _MIB:+.2f} MiB in all; by line:", ""]
        lines += [f"    {s}" for s in after.compare_to(half, "lineno")[:top]]
    return lines


# -- the report ---------------------------------------------------------------------------


def nearest(samples: Sequence[Sample], lines: int) -> Sample:
    return min(samples, key=lambda s: abs(s.lines - lines))


def table(samples: Sequence[Sample]) -> list[str]:
    lines = [
        "| events | predictions | outcomes | signals | join store | RSS (MiB) | Δ RSS (MiB) "
        "| peak RSS, events (MiB) | peak RSS, checkpoint (MiB) | checkpoint gz (MiB) "
        "| checkpoint JSON (MiB) | elapsed (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    previous = samples[0].rss
    for s in samples:
        lines.append(
            f"| {s.lines:,} | {s.predictions:,} | {s.outcomes:,} | {s.signals:,} | "
            f"{s.join_entries:,} | {s.rss / _MIB:.1f} | {(s.rss - previous) / _MIB:+.1f} | "
            f"{s.peak / _MIB:.1f} | {s.checkpoint_peak / _MIB:.1f} | "
            f"{s.checkpoint_bytes / _MIB:.2f} | "
            f"{s.checkpoint_json_bytes / _MIB:.2f} | {s.elapsed_s:.1f} |"
        )
        previous = s.rss
    return lines


def state_parts(pipeline: Pipeline) -> dict[str, int]:
    """Bytes of compact JSON of each part of the checkpoint: references, models, join."""
    refs: dict[str, ModelReference] = {}
    state = pipeline.to_state(refs)

    def size(obj: Any) -> int:
        return len(json.dumps(obj, separators=(",", ":")))

    return {
        "references": sum(len(r.json_bytes) for r in refs.values()),
        "models (windows, decisions, performance, detectors, signals)": size(state["models"]),
        "join store": size(state["join"]),
    }


def report(result: Run) -> str:
    setup, stream = result.setup, result.stream
    samples = stream.samples
    first, last = samples[0], samples[-1]
    half = nearest(samples, stream.events // 2)
    growth = last.rss - half.rss
    per_100k = growth / max(last.lines - half.lines, 1) * 100_000
    n_models = len(stream.names)
    reference_rows = next(iter(setup.references.values())).features.n_rows
    join = setup.settings.join
    lines = [
        f"{n_models} models × {len(NUMERIC) + len(CATEGORICAL)} features ({len(NUMERIC)} "
        f"numeric, {len(CATEGORICAL)} categorical); references of {reference_rows:,} rows "
        f"from `ProfileBuilder`; default settings otherwise (window 1,000, performance window "
        f"1,000, ADWIN, join TTL {join.ttl_s:,.0f} s, at most {join.max_predictions:,} "
        f"waiting predictions).",
        f"{stream.events:,} events: predictions {stream.interval_s:g} s apart in event time, "
        f"outcomes for {OUTCOME_SHARE:.0%} (mean delay {stream.label_delay_s:,.0f} s), "
        f"conversion signals for {CONVERSION_SHARE:.0%}, refund signals (no id) for "
        f"{REFUND_SHARE:.0%}.",
        "",
        f"- RSS after imports: {setup.rss_imported / _MIB:.1f} MiB; after building and "
        f"loading the references: {setup.rss_profiles / _MIB:.1f} MiB "
        f"({setup.profiles_s:.1f} s); with the pipeline set up, before the first event: "
        f"{first.rss / _MIB:.1f} MiB",
        "",
        *table(samples),
        "",
        f"- RSS growth from {half.lines:,} to {last.lines:,} events: {growth / _MIB:+.1f} MiB "
        f"({half.rss / _MIB:.1f} → {last.rss / _MIB:.1f} MiB; {per_100k / _MIB:+.2f} MiB "
        f"per 100,000 events)",
        f"- RSS at the end less RSS before the first event: "
        f"{(last.rss - first.rss) / _MIB:+.1f} MiB; less RSS after imports: "
        f"{(last.rss - setup.rss_imported) / _MIB:+.1f} MiB",
        f"- peak RSS (VmHWM): {result.peak / _MIB:.1f} MiB; "
        f"{setup.peak_setup / _MIB:.1f} MiB during set-up, "
        f"{max(s.peak for s in samples) / _MIB:.1f} MiB while processing events, "
        f"{max(s.checkpoint_peak for s in samples) / _MIB:.1f} MiB while encoding a "
        f"checkpoint",
    ]
    flat = abs(growth) <= FLAT_MIB * _MIB
    lines.append(
        f"- target, RSS under 300 MB ({TARGET_BYTES / _MIB:.1f} MiB) and flat: "
        f"{'met' if last.rss < TARGET_BYTES else 'NOT met'} at the end "
        f"({last.rss / _MIB:.1f} MiB), {'met' if result.peak < TARGET_BYTES else 'NOT met'} "
        f"at the peak; {'flat' if flat else 'NOT flat'} "
        f"(|growth over the second half| ≤ {FLAT_MIB:g} MiB counts as flat)"
    )
    processing = last.elapsed_s - last.making_s - last.checkpoint_s
    lines.append(
        f"- time: {result.wall_s:.0f} s in all; {last.elapsed_s:.0f} s of events, of which "
        f"{last.making_s:.0f} s making lines and {last.checkpoint_s:.1f} s encoding "
        f"{len(samples)} checkpoints: {last.lines / max(processing, 1e-9):,.0f} events/s "
        f"through the pipeline (machine shared: times are noisy)"
    )
    if stream.pipeline is not None:
        parts = state_parts(stream.pipeline)
        lines.append(
            f"- checkpoint at the end: {last.checkpoint_bytes / _MIB:.2f} MiB gzip, "
            f"{last.checkpoint_json_bytes / _MIB:.2f} MiB of JSON, of which "
            + ", ".join(f"{name} {n / _MIB:.2f} MiB" for name, n in parts.items())
        )
        per_entry = bytes_per_join_entry(stream.pipeline)
        if per_entry is not None:
            lines.append(
                f"- join store: {last.join_entries:,} waiting predictions at the end, "
                f"{per_entry:,.0f} B each by sys.getsizeof: "
                f"{last.join_entries * per_entry / _MIB:.1f} MiB; at its bound of "
                f"{join.max_predictions:,} it would hold "
                f"{join.max_predictions * per_entry / _MIB:.0f} MiB"
            )
    if result.traced:
        lines += ["", "```", *result.traced, "```"]
    return "\n".join(lines)


def markdown(result: Run, command: str, section: bool = False, notes: Sequence[str] = ()) -> str:
    """The results as a page, or as a section to append to one."""
    title = (
        f"\n## `{command}`\n\n"
        if section
        else "# Memory of the daemon's state: ten models of 50 features, "
        f"{result.stream.events:,} events\n\nCommand: `{command}`.\n"
    )
    return (
        f"{title}Wall time {result.wall_s / 60:.1f} min. "
        "Method: see the docstring of `benchmarks/model_memory.py`.\n\n"
        f"{report(result)}\n" + "".join(f"\n{note}\n" for note in notes)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000, help="lines to send")
    parser.add_argument("--every", type=int, default=100_000, help="lines between samples")
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--reference-rows", type=int, default=10_000, help="rows per profile")
    parser.add_argument("--interval-s", type=float, default=2.0, help="between predictions")
    parser.add_argument("--label-delay-s", type=float, default=3600.0, help="mean outcome delay")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trace-top", type=int, default=0, help="tracemalloc's top N lines")
    parser.add_argument("--quick", action="store_true", help="20,000 events, small references")
    parser.add_argument("--write", type=Path, metavar="FILE", help="also write the results here")
    parser.add_argument("--append", action="store_true", help="add them to FILE as a section")
    parser.add_argument("--note", action="append", default=[], help="a paragraph for FILE")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.every = min(args.events, 20_000), min(args.every, 5_000)
        args.reference_rows = min(args.reference_rows, 2_000)
    if args.events < 1 or args.every < 1 or args.reference_rows < 1:
        parser.error("--events, --every and --reference-rows must be >= 1")
    if not 1 <= args.models <= len(MODELS) + len(REGRESSIONS):
        parser.error(f"--models must be 1 to {len(MODELS) + len(REGRESSIONS)}")
    if args.append and args.write is None:
        parser.error("--append needs --write FILE")
    if args.interval_s <= 0 or args.label_delay_s <= 0:
        parser.error("--interval-s and --label-delay-s must be > 0")
    result = run(
        args.events,
        args.every,
        models=args.models,
        reference_rows=args.reference_rows,
        interval_s=args.interval_s,
        label_delay_s=args.label_delay_s,
        seed=args.seed,
        trace_top=args.trace_top,
    )
    print(report(result))
    if args.write is not None:
        command = " ".join(["python benchmarks/model_memory.py", *without_notes(sys.argv[1:])])
        with args.write.open("a" if args.append else "w", encoding="utf-8") as out:
            out.write(markdown(result, command, section=args.append, notes=args.note))
        print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
