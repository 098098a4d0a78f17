"""The detectors package as a whole: public API, purity, size and doctests."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import detectors

MODULES = sorted(f"detectors.{info.name}" for info in pkgutil.iter_modules(detectors.__path__))
# No I/O, no clock, no logging, no pickle: detectors are pure statistics.
FORBIDDEN_IMPORTS = {
    "datetime", "kafka", "logging", "monitor", "os", "pathlib", "pickle",
    "prometheus_client", "shelve", "socket", "subprocess", "time",
}  # fmt: skip


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_every_public_name_is_exported_and_documented() -> None:
    for name in detectors.__all__:
        value = getattr(detectors, name)
        if callable(value):
            assert value.__doc__, f"{name} has no docstring"


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_no_io_clock_logging_or_pickle(module: str) -> None:
    path = Path(importlib.import_module(module).__file__ or "")
    assert not imported_roots(path) & FORBIDDEN_IMPORTS


@pytest.mark.parametrize("module", MODULES)
def test_each_module_stays_small_and_postpones_annotations(module: str) -> None:
    path = Path(importlib.import_module(module).__file__ or "")
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 300
    assert "from __future__ import annotations" in text


@pytest.mark.parametrize("module", MODULES)
def test_the_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
