"""Reading training data row by row for ``driftline profile``: CSV, JSON lines, Parquet."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from monitor.errors import DriftlineError

__all__ = ["DataFormat", "Row", "guess_format", "read_rows"]

DataFormat = Literal["csv", "jsonl", "parquet"]
Row = dict[str, Any]
#: Called with the number of bytes read so far (for a progress bar).
Progress = Callable[[int], None]

_SUFFIXES: dict[str, DataFormat] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def guess_format(path: Path) -> DataFormat:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    fmt = _SUFFIXES.get(suffixes[-1].lower()) if suffixes else None
    if fmt is None:
        raise DriftlineError(
            f"cannot tell the format of {path.name}; name it .csv, .jsonl or .parquet, "
            "or pass --format"
        )
    return fmt


def read_rows(path: Path, fmt: DataFormat, progress: Progress = lambda n: None) -> Iterator[Row]:
    """Rows as dicts of column name to value (``None`` for missing)."""
    if fmt == "parquet":
        yield from _parquet_rows(path, progress)
        return
    try:
        raw = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise DriftlineError(f"cannot read {path}: {exc.strerror}") from None
    with raw:
        counting = _CountingReader(raw, progress)
        text = io.TextIOWrapper(io.BufferedReader(counting), encoding="utf-8", newline="")
        if fmt == "csv":
            yield from _csv_rows(text, path)
        else:
            yield from _jsonl_rows(text, path)


class _CountingReader(io.RawIOBase):
    def __init__(self, inner: io.BufferedReader, progress: Progress) -> None:
        self._inner = inner
        self._progress = progress
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._inner.readinto(buffer)
        self._read += n
        self._progress(self._read)
        return n


def _csv_rows(text: Iterable[str], path: Path) -> Iterator[Row]:
    reader = csv.DictReader(text)
    try:
        for row in reader:
            yield {k: _csv_value(v) for k, v in row.items() if k is not None}
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DriftlineError(f"{path}: line {reader.line_num}: {exc}") from None


def _csv_value(text: str | None) -> float | str | None:
    if text is None or text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    # "nan" or "inf" in a CSV is a missing or broken value, never a number to profile.
    return number if math.isfinite(number) else None


def _jsonl_rows(text: Iterable[str], path: Path) -> Iterator[Row]:
    try:
        for line_number, line in enumerate(text, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise DriftlineError(f"{path}: line {line_number}: invalid JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise DriftlineError(f"{path}: line {line_number}: expected an object")
            yield obj
    except UnicodeDecodeError as exc:
        raise DriftlineError(f"{path}: invalid UTF-8 ({exc.reason})") from None


def _parquet_rows(path: Path, progress: Progress) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DriftlineError(
            "reading Parquet needs pyarrow: python -m pip install 'driftline[parquet]'"
        ) from None
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise DriftlineError(f"cannot read {path} as Parquet: {exc}") from None
    size = path.stat().st_size
    groups = max(parquet.num_row_groups, 1)
    for i in range(parquet.num_row_groups):
        yield from parquet.read_row_group(i).to_pylist()
        progress(size * (i + 1) // groups)
