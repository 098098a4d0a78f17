"""Helpers shared by the benchmark scripts (run from ``benchmarks/``, so importable)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from monitor.pipeline import Pipeline


def without_notes(argv: Sequence[str]) -> list[str]:
    """``argv`` without its ``--note`` options: the command line a results file shows."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--note":
            skip = True
        elif not arg.startswith("--note="):
            kept.append(arg)
    return kept


def bytes_per_join_entry(pipeline: Pipeline, sample: int = 1000) -> float | None:
    """Bytes per stored prediction by ``sys.getsizeof`` over the first ``sample``
    entries; objects shared by entries (model name, version, segments) excluded."""
    store: Any = pipeline.join._predictions  # the benchmark's business: how big entries are
    if not store:
        return None
    total = taken = 0
    for key, entry in store.items():
        payload = entry[0]  # (payload, timestamp, joined)
        total += sys.getsizeof(key) + sys.getsizeof(entry) + sys.getsizeof(payload)
        total += sys.getsizeof(payload[1])
        taken += 1
        if taken == sample:
            break
    return total / taken + sys.getsizeof(store) / len(store)
