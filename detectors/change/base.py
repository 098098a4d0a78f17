"""The contract every change detector follows, and the checks they share.

A change detector reads one number at a time and says, after each, whether the stream
has just changed. :class:`ChangeDetector` fixes how that reads:

- the constructor takes scalar hyper-parameters, validates them at once and stores them
  unchanged under their argument names; learned state lives in private attributes that
  one ``_reset()`` creates;
- ``update(x)`` returns nothing; ``drift_detected`` is true only after the update where
  a change was found, and the next update starts the detector afresh (River's rule);
- ``update_many(values)`` returns the positions, within the batch, of the detections;
- ``to_state()`` / ``from_state()`` give a versioned, JSON-safe snapshot from which the
  detector continues exactly as the original would.
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

STATE_VERSION = 1

_registry: dict[str, type[ChangeDetector]] = {}
_D = TypeVar("_D", bound="ChangeDetector")


class ChangeDetector(abc.ABC):
    """A detector of changes in a stream of numbers; see the module docstring.

    Subclasses list their hyper-parameters in ``_PARAMS``, build their state in
    ``_reset()`` (calling ``super()._reset()``), implement ``_update(x)`` for one finite
    float, and export/import the learned state with ``_get_state()``/``_set_state()``.
    """

    _PARAMS: ClassVar[tuple[str, ...]] = ()
    _BINARY: ClassVar[bool] = False

    _drift_detected: bool

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _registry[cls.__name__] = cls

    @property
    def drift_detected(self) -> bool:
        """Whether a change was detected by the last update."""
        return self._drift_detected

    def update(self, x: float) -> None:
        """Read one value of the stream; then read :attr:`drift_detected`."""
        self._update(self._check_value(x))

    def update_many(self, values: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """Read a batch in order; return the positions in it where a change was detected.

        The whole batch is validated before any value is read, so a bad batch leaves the
        detector untouched. The result equals a loop of :meth:`update` calls.
        """
        return np.asarray(self._update_many(self._check_batch(values)), dtype=np.intp)

    def reset(self) -> None:
        """Forget everything learned: the detector becomes equal to a fresh instance."""
        self._reset()

    def to_state(self) -> dict[str, Any]:
        """A JSON-safe snapshot: ``type``, ``version``, ``params`` and learned ``state``."""
        state = self._get_state()
        state["drift_detected"] = self._drift_detected
        return {
            "type": type(self).__name__,
            "version": STATE_VERSION,
            "params": {name: getattr(self, name) for name in self._PARAMS},
            "state": state,
        }

    @classmethod
    def from_state(cls: type[_D], state: Mapping[str, Any]) -> _D:
        """Rebuild a detector from :meth:`to_state`'s output.

        Called on the base class, the detector's type is taken from the snapshot.
        Raises ``ValueError`` on a wrong type or version or a malformed snapshot.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"state must be a mapping, got {type(state).__name__}")
        kind, version = state.get("type"), state.get("version")
        target = _registry.get(str(kind)) if cls is ChangeDetector else cls
        if target is None or kind != target.__name__ or not issubclass(target, cls):
            raise ValueError(f"state type must be {cls.__name__!r}, got {kind!r}")
        if version != STATE_VERSION:
            raise ValueError(f"state version must be {STATE_VERSION}, got {version!r}")
        try:
            detector = target(**state["params"])
            detector._set_state(state["state"])
            detector._drift_detected = bool(state["state"]["drift_detected"])
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"state for {kind} is malformed: {exc!r}") from exc
        return detector

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._PARAMS)
        return f"{type(self).__name__}({args})"

    # What subclasses provide.

    def _reset(self) -> None:
        self._drift_detected = False

    @abc.abstractmethod
    def _update(self, x: float) -> None:
        """Read one finite (for binary detectors, 0.0 or 1.0) value."""

    def _update_many(self, values: npt.NDArray[np.float64]) -> list[int]:
        hits = []
        for i, x in enumerate(values.tolist()):
            self._update(x)
            if self._drift_detected:
                hits.append(i)
        return hits

    @abc.abstractmethod
    def _get_state(self) -> dict[str, Any]:
        """The learned state, JSON-safe, without the drift flag."""

    @abc.abstractmethod
    def _set_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`_get_state` returned."""

    # Input checks.

    def _check_value(self, x: float) -> float:
        value = float(x)
        if not math.isfinite(value):
            raise ValueError(f"x must be finite, got {value!r}")
        if self._BINARY and value != 0.0 and value != 1.0:
            raise ValueError(f"x must be 0 or 1, got {x!r}")
        return value

    def _check_batch(self, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1:
            raise ValueError(f"values must be one-dimensional, got shape {array.shape}")
        bad = ~np.isfinite(array)
        if self._BINARY:
            bad |= (array != 0.0) & (array != 1.0)
        if bad.any():
            index = int(np.argmax(bad))
            rule = "0 or 1" if self._BINARY else "finite"
            raise ValueError(f"values must be {rule}, got {float(array[index])!r} at index {index}")
        return array


# Hyper-parameter checks: each returns the value and raises ValueError naming the rule.


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an ``int`` no smaller than ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(
    name: str,
    value: object,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = True,
    high_open: bool = True,
) -> float:
    """``value`` as a finite ``float`` inside the given interval."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = float(value) if ok else math.nan  # type: ignore[arg-type]
    above = number > low if low_open else number >= low
    below = number < high if high_open else number <= high
    if not (math.isfinite(number) and above and below):
        if math.isinf(low) and math.isinf(high):
            rule = "finite"
        elif math.isinf(high):
            rule = f"{'>' if low_open else '>='} {low:g}"
        elif math.isinf(low):
            rule = f"{'<' if high_open else '<='} {high:g}"
        else:
            rule = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return number


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return str(value)


def encode_float(x: float) -> float | str:
    """A float for JSON: infinities and NaN become the strings ``float()`` reads back."""
    return x if math.isfinite(x) else repr(x)
