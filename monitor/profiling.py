"""``driftline profile``: training data in, reference file out, with progress shown."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from detectors import ProfileBuilder
from monitor import __version__
from monitor.datasets import Row, guess_format, read_rows
from monitor.errors import DriftlineError
from monitor.events import MODEL_NAME_PATTERN
from monitor.progress import Progress
from monitor.reference import PREDICTION, ModelReference, save_reference

__all__ = ["build_reference"]


def build_reference(args: argparse.Namespace) -> int:
    if not re.fullmatch(MODEL_NAME_PATTERN.strip("^$"), args.model):
        raise DriftlineError(f"--model must match {MODEL_NAME_PATTERN}, got {args.model!r}")
    fmt = args.format or guess_format(args.data)
    exclude = {c for c in args.exclude.split(",") if c}
    only = {c for c in args.features.split(",") if c}
    try:
        settings = {
            "n_bins": args.bins,
            "max_sample": args.max_sample,
            "top_k": args.top_k,
            "seed": args.seed,
        }
        features, predictions = ProfileBuilder(**settings), ProfileBuilder(**settings)
    except ValueError as exc:
        raise DriftlineError(str(exc)) from None
    size = args.data.stat().st_size if args.data.exists() else 0
    with Progress(size, f"profiling {args.data.name}") as progress:
        for number, row in enumerate(read_rows(args.data, fmt, progress.update), 1):
            values, prediction = _split(row, args.prediction_column, exclude, only)
            try:
                features.update(values)
                if prediction is not None:
                    predictions.update({PREDICTION: prediction})
            except (TypeError, ValueError) as exc:
                raise DriftlineError(f"{args.data}: row {number}: {exc}") from None
    if features.n_rows == 0:
        raise DriftlineError(f"{args.data} holds no rows")
    reference = ModelReference(
        args.model,
        features.build(),
        predictions.build() if predictions.n_rows else None,
    )
    save_reference(reference, args.output, f"driftline {__version__}")
    kinds = [f.kind for f in reference.features.features.values()]
    print(
        f"profiled {features.n_rows:,} rows of {args.model}: {len(kinds)} features "
        f"({kinds.count('numeric')} numeric, {kinds.count('categorical')} categorical), "
        f"prediction {'included' if reference.prediction else 'absent'}; "
        f"wrote {args.output} (profile id {reference.profile_id})",
        file=sys.stderr,
    )
    return 0


def _split(
    row: Row, prediction_column: str, exclude: set[str], only: set[str]
) -> tuple[dict[str, Any], Any]:
    if isinstance(row.get("features"), dict):  # a prediction event
        values, prediction = row["features"], row.get("prediction")
    else:
        values = {k: v for k, v in row.items() if k != prediction_column}
        prediction = row.get(prediction_column)
    return {
        k: v for k, v in values.items() if k not in exclude and (not only or k in only)
    }, prediction
