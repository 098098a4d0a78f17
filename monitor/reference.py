"""A model's reference: the profile of its features and of its predictions, as one file.

The file is JSON::

    {"kind": "driftline-reference", "version": 1, "model": "churn",
     "profile_id": "3f9c...", "created_by": "driftline 0.1.0",
     "features": <Profile state>, "prediction": <Profile state with one feature> | null}

``profile_id`` is a content hash of ``features`` and ``prediction``: alerts and metrics
name the reference they were computed against by it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Final

from detectors import Profile
from monitor.errors import DriftlineError

__all__ = [
    "PREDICTION",
    "ModelReference",
    "load_reference",
    "reference_from_json",
    "save_reference",
]

KIND: Final = "driftline-reference"
VERSION: Final = 1
#: Name of the prediction's single feature in the ``prediction`` profile.
PREDICTION: Final = "prediction"


@dataclass(frozen=True)
class ModelReference:
    model: str
    features: Profile
    prediction: Profile | None = None

    @cached_property
    def profile_id(self) -> str:
        """A hash of the content (profiles never change once built: computed once)."""
        body = {
            "features": self.features.to_state(),
            "prediction": None if self.prediction is None else self.prediction.to_state(),
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    @property
    def json_bytes(self) -> bytes:
        """:meth:`to_json` as compact UTF-8 JSON (checkpoints splice it in).

        Made once, and kept compressed (about a quarter of its size): writing a
        reference's samples as text costs far more than inflating it again.
        """
        return zlib.decompress(self._packed_json)

    @cached_property
    def _packed_json(self) -> bytes:
        text = json.dumps(self.to_json("checkpoint"), separators=(",", ":"), allow_nan=False)
        return zlib.compress(text.encode("utf-8"), 1)

    def to_json(self, created_by: str) -> dict[str, Any]:
        return {
            "kind": KIND,
            "version": VERSION,
            "model": self.model,
            "profile_id": self.profile_id,
            "created_by": created_by,
            "features": self.features.to_state(),
            "prediction": None if self.prediction is None else self.prediction.to_state(),
        }


def save_reference(reference: ModelReference, path: Path, created_by: str) -> None:
    """Write atomically: a temporary file in the same directory, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(reference.to_json(created_by), sort_keys=True, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # a profile holds no secret; mkstemp made it 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_reference(path: Path) -> ModelReference:
    """Read a reference file; :class:`DriftlineError` saying what is wrong otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DriftlineError(f"cannot read reference {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise DriftlineError(f"reference {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise DriftlineError(f"{path} is not a driftline reference (no kind {KIND!r})")
    if data.get("version") != VERSION:
        raise DriftlineError(
            f"reference {path} has version {data.get('version')!r}; this driftline reads {VERSION}"
        )
    try:
        return reference_from_json(data)
    except ValueError as exc:
        raise DriftlineError(f"reference {path} is damaged: {exc}") from None


def reference_from_json(data: Mapping[str, Any]) -> ModelReference:
    """Inverse of :meth:`ModelReference.to_json`; ``ValueError`` if it does not hold up."""
    try:
        reference = ModelReference(
            model=str(data["model"]),
            features=Profile.from_state(data["features"]),
            prediction=None
            if data["prediction"] is None
            else Profile.from_state(data["prediction"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(repr(exc)) from None
    if data.get("profile_id") != reference.profile_id:
        raise ValueError("its content does not match its profile_id")
    return reference
