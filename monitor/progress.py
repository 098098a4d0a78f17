"""A byte-count progress bar on stderr for long file work; silent when stderr is no terminal."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress"]


class Progress:
    """A progress bar on a terminal (rich), nothing when stderr is not one."""

    def __init__(self, total: int, label: str) -> None:
        self._total = total
        self._label = label
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if sys.stderr.isatty() and self._total > 0:
            from rich import progress as rp

            self._bar = rp.Progress(
                rp.TextColumn("{task.description}"),
                rp.BarColumn(),
                rp.DownloadColumn(),
                rp.TimeRemainingColumn(),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self._label, total=self._total)
        return self

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
