"""Instructions per event of the daemon's batch path, counted by callgrind.

Run ``python benchmarks/batch_instructions.py [--predictions N] [--baseline REV]
[--write FILE]``.

Wall time on a shared machine moves by a third between runs of the same code (see
``benchmarks/e2e.py``); instruction counts do not: the same tree, inputs and seeds give
the same count within a few hundredths of a percent, whatever else runs. They are not
time (a cache miss costs no instruction), so they judge changes that remove work, and
the end-to-end benchmark stays the judge of speed.

Method
------
A child Python process, under ``valgrind --tool=callgrind --instr-atstart=no`` with
``PYTHONHASHSEED=0``:

1. makes the e2e benchmark's events (:func:`e2e.make_events`, seed 0): the predictions
   every model needs to learn its reference, then ``--predictions`` more, with their
   outcomes and signals, as JSON lines;
2. cuts them into batches of ``kafka.max_poll_records`` records, each sorted by topic
   as kafka-python hands a poll over (:class:`monitor.replay.FileSource`);
3. sets the garbage collector as the daemon does (:func:`monitor.daemon.tune_gc`) and
   runs the warm-up batches through :meth:`monitor.service.Service.process_batch` and
   ``tick`` (the clock moves 0.1 s per batch), uncounted;
4. counts the instructions of the rest of the batches, then of a forced tick: a client
   request starts and stops callgrind around them (a two-line C function, compiled
   here with the system's C compiler against valgrind's headers).

With ``--baseline REV`` the same child runs again with ``monitor`` and ``detectors``
taken from a temporary git worktree of ``REV`` (events, harness and interpreter are the
same), and the ratio of the two counts is reported.

Needs valgrind (Debian package ``valgrind``, which brings the headers) and a C compiler.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from _common import without_notes

ROOT = Path(__file__).resolve().parents[1]
CHILD = "--batch-child"
_TOGGLE_C = """\
#include <valgrind/callgrind.h>
void count_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void count_stop(void) { CALLGRIND_DUMP_STATS_AT("steady"); CALLGRIND_STOP_INSTRUMENTATION; }
"""


def child(predictions: int, toggle: str) -> int:
    """The counted run (inside valgrind); prints the steady events it counted."""
    import ctypes
    import io
    import threading
    from operator import attrgetter

    import e2e

    from monitor.config import Settings
    from monitor.daemon import tune_gc
    from monitor.pipeline import Pipeline
    from monitor.replay import FileSource
    from monitor.service import Service
    from monitor.source import Record
    from monitor.telemetry import Telemetry

    settings = Settings()
    start_s = e2e.START_TIME_S
    events, warmup = e2e.warmed_events(predictions, seed=0, start_s=start_s)
    data = b"".join(e.value(e.time_s) + b"\n" for e in events)
    source = FileSource(io.BytesIO(data), settings, start_s)
    size = settings.kafka.max_poll_records
    batches: list[list[Record]] = []
    split = 0  # the first batch after the warm-up
    while records := source.poll(0, min(size, warmup - source.lines) if not split else size):
        records.sort(key=attrgetter("topic"))
        batches.append(records)
        if source.lines == warmup:
            split = len(batches)
    now = [start_s]
    service = Service(
        settings,
        Telemetry(),
        lambda stop, beat: source,
        clock=lambda: now[0],
        pipeline=Pipeline(settings),
        wall=lambda: now[0],
        store=None,
    )
    stop = threading.Event()

    def run(chunk: Sequence[list[Record]]) -> None:
        for records in chunk:
            service.process_batch(source, records, stop)
            now[0] += 0.1
            service.tick(source)
        now[0] += 0.1
        service.tick(source, force=True)

    # "none": no counting (a run without valgrind, as the tests make).
    start, end = (lambda: None, lambda: None)
    if toggle != "none":
        counter = ctypes.CDLL(toggle)
        start, end = counter.count_start, counter.count_stop
    tune_gc()
    run(batches[:split])
    start()
    run(batches[split:])
    end()
    print(f"steady events: {sum(map(len, batches[split:]))}")
    return 0


def compile_toggle(directory: Path) -> Path:
    source, library = directory / "toggle.c", directory / "toggle.so"
    source.write_text(_TOGGLE_C)
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc or gcc) to build the callgrind client request")
    done = subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-o", str(library), str(source)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cannot build the callgrind toggle (valgrind headers?):\n{done.stderr}")
    return library


def count(tree: Path, predictions: int, toggle: Path, directory: Path) -> tuple[int, int]:
    """(instructions, events) of the steady part, with ``monitor`` from ``tree``."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (Debian package valgrind)")
    out = directory / f"callgrind-{tree.name}-{time.monotonic_ns()}.out"
    env = {
        **os.environ,
        "PYTHONHASHSEED": "0",
        # The tree's packages first, the benchmarks' helpers (e2e, _common) next.
        "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT / "benchmarks")]),
    }
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(Path(__file__).resolve()),
        CHILD,
        str(predictions),
        str(toggle),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=directory)
    steady = re.search(r"steady events: (\d+)", done.stdout)
    dumps = sorted(directory.glob(out.name + ".*"))
    if done.returncode != 0 or steady is None or not dumps:
        raise RuntimeError(f"counted run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    totals = re.search(r"^totals: (\d+)", dumps[-1].read_text(), re.MULTILINE)
    if totals is None:
        raise RuntimeError(f"no totals in {dumps[-1]}")
    return int(totals.group(1)), int(steady.group(1))


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A temporary, detached git worktree of ``rev``."""
    path = Path(tempfile.mkdtemp(prefix="batch-baseline-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(path), rev],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True
        )
        shutil.rmtree(path, ignore_errors=True)


def head() -> str:
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [CHILD]:
        return child(int(argv[1]), argv[2])
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--predictions", type=int, default=20_000, help="counted, after warm-up")
    parser.add_argument("--baseline", metavar="REV", help="also count this git revision")
    parser.add_argument("--note", action="append", default=[], help="add to the results")
    parser.add_argument("--write", type=Path, metavar="FILE", help="write the results here")
    args = parser.parse_args(argv)
    if args.predictions < 1:
        parser.error("--predictions must be positive")
    rows: list[tuple[str, int, int]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="batch-instructions-") as tmp:
            directory = Path(tmp)
            toggle = compile_toggle(directory)
            print("counting the working tree ...", file=sys.stderr, flush=True)
            rows.append(
                (f"working tree ({head()})", *count(ROOT, args.predictions, toggle, directory))
            )
            if args.baseline:
                print(f"counting {args.baseline} ...", file=sys.stderr, flush=True)
                with worktree(args.baseline) as tree:
                    rows.append((args.baseline, *count(tree, args.predictions, toggle, directory)))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"batch_instructions failed: {exc}", file=sys.stderr)
        return 1
    command = shlex.join(["python", "benchmarks/batch_instructions.py", *without_notes(argv)])
    lines = [
        "# Instructions of the batch path (callgrind)",
        "",
        "Generated by `benchmarks/batch_instructions.py`; the method is in its docstring.",
        "",
        "```sh",
        command,
        "```",
        "",
        "| tree | steady events | instructions | per event |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {n:,} | {ir:,} | {ir / n:,.0f} |" for name, ir, n in rows),
    ]
    if len(rows) == 2:
        ratio = (rows[0][1] / rows[0][2]) / (rows[1][1] / rows[1][2])
        lines += [
            "",
            f"Working tree / {args.baseline}: **{ratio:.3f}** of the instructions per event.",
        ]
    lines += [f"- note: {n}" for n in args.note]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write is not None:
        args.write.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
