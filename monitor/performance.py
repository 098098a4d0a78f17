"""Model performance over a sliding window of joined (prediction, label) pairs.

Pure: no I/O, no clock. The window keeps the last ``size`` pairs in fixed numpy
buffers; metrics are computed when asked (at a scrape or a window close), not per pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np

__all__ = ["METRICS", "PerformanceWindow", "Task", "error_of", "errors_of", "infer_task"]

Task = Literal["binary", "multiclass", "regression"]
TASKS: Final[tuple[Task, ...]] = ("binary", "multiclass", "regression")

#: The ``metric`` label values of ``driftline_performance`` per task.
METRICS: Final[dict[Task, tuple[str, ...]]] = {
    "binary": ("accuracy", "error_rate", "precision", "recall", "auc", "log_loss", "brier"),
    "multiclass": ("accuracy", "error_rate", "macro_f1"),
    "regression": ("mae", "rmse"),
}
_EPS: Final = 1e-15
_STATE_VERSION: Final = 1


def _binary_label(label: object) -> float | None:
    if isinstance(label, bool):
        return float(label)
    if isinstance(label, (int, float)) and label in (0, 1):
        return float(label)
    return None


def infer_task(prediction: object, label: object) -> Task | None:
    """The task a (prediction, label) pair looks like, or ``None`` if it fits none.

    A score in [0, 1] with a 0/1 (or bool) label is binary; a string on either side
    is multiclass; two numbers otherwise are regression.
    """
    if isinstance(prediction, str) or isinstance(label, str):
        return "multiclass"
    if isinstance(prediction, bool) or not isinstance(prediction, (int, float)):
        return None
    if 0.0 <= prediction <= 1.0 and _binary_label(label) is not None:
        return "binary"
    if isinstance(label, (int, float)) and not isinstance(label, bool):
        return "regression"
    return None


def error_of(task: Task, prediction: object, label: object, threshold: float = 0.5) -> float | None:
    """Per-example error fed to the concept-drift detectors, or ``None`` if the pair
    does not fit the task: 0/1 misclassification for classification (the score
    thresholded at ``threshold``), absolute error for regression."""
    if task == "binary":
        y = _binary_label(label)
        if (
            y is None
            or isinstance(prediction, (str, bool))
            or not isinstance(prediction, (int, float))
        ):
            return None
        return float((prediction >= threshold) != (y == 1.0))
    if task == "multiclass":
        return float(str(prediction) != str(label))
    if isinstance(prediction, (str, bool)) or isinstance(label, (str, bool)):
        return None
    if not isinstance(prediction, (int, float)) or not isinstance(label, (int, float)):
        return None
    return abs(float(prediction) - float(label))


def errors_of(
    task: Task, predictions: Sequence[object], labels: Sequence[object], threshold: float = 0.5
) -> list[float | None]:
    """:func:`error_of` of each (prediction, label) pair, the same values: an array at a
    time where every prediction and label is a float (binary labels 0 or 1), one by
    one otherwise."""
    if (
        task != "multiclass"
        and predictions
        and set(map(type, predictions)) == _FLOAT == set(map(type, labels))
    ):
        score, label = np.array(predictions), np.array(labels)
        if task == "regression":
            with np.errstate(over="ignore"):  # |1e308 - -1e308| is inf, as in Python
                return np.abs(score - label).tolist()
        positive = label == 1.0
        if (positive | (label == 0.0)).all():
            return ((score >= threshold) != positive).astype(np.float64).tolist()
    return [error_of(task, p, y, threshold) for p, y in zip(predictions, labels, strict=True)]


_FLOAT: Final = {float}


class PerformanceWindow:
    """The last ``size`` joined pairs of one model and its performance on them.

    Parameters
    ----------
    task
        ``binary``, ``multiclass`` or ``regression``.
    size
        Pairs kept (sliding window).
    threshold
        Score at or above which a binary prediction counts as positive.

    Notes
    -----
    Binary: accuracy, error rate, precision and recall of the thresholded score,
    AUC as the Mann-Whitney statistic :math:`U / (n_1 n_0)` (ties count one half),
    log loss :math:`-\\overline{y \\ln p + (1 - y) \\ln(1 - p)}` with :math:`p`
    clipped to :math:`[10^{-15}, 1 - 10^{-15}]`, and the Brier score
    :math:`\\overline{(p - y)^2}`. Multiclass: accuracy and the macro-averaged F1
    over the classes present in the window. Regression: MAE and RMSE. A metric that
    is undefined on the window (AUC with one class, precision with no positive
    prediction) is left out rather than reported as a made-up number.
    """

    def __init__(self, task: Task, size: int = 1000, threshold: float = 0.5) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size!r}")
        if not 0 < threshold < 1 and task == "binary":
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        self.task: Task = task
        self.size = size
        self.threshold = threshold
        self._reset()

    def _reset(self) -> None:
        numeric = self.task != "multiclass"
        self._pred: Any = np.zeros(self.size) if numeric else [""] * self.size
        self._label: Any = np.zeros(self.size) if numeric else [""] * self.size
        self._next = 0
        self._count = 0

    def reset(self) -> None:
        self._reset()

    def __len__(self) -> int:
        return self._count

    def add(self, prediction: object, label: object) -> bool:
        """Add a pair; ``False`` (and nothing kept) if it does not fit the task."""
        if error_of(self.task, prediction, label, self.threshold) is None:
            return False
        self.put(prediction, label)
        return True

    def put(self, prediction: Any, label: Any) -> None:
        """Add a pair known to fit the task (``error_of`` is not ``None`` for it)."""
        self.put_many([prediction], [label])

    def put_many(self, predictions: Sequence[Any], labels: Sequence[Any]) -> None:
        """Add pairs in order, as one :meth:`put` per pair would: a slice at a time."""
        # A binary label is a bool, 0 or 1 here: float() is its 0/1.
        convert: Callable[[Any], Any] = str if self.task == "multiclass" else float
        preds, labs = list(map(convert, predictions)), list(map(convert, labels))
        n, size, at = len(preds), self.size, self._next
        done = max(n - size, 0)  # pairs the window would push out again before the end
        at = (at + done) % size
        while done < n:
            take = min(n - done, size - at)
            self._pred[at : at + take] = preds[done : done + take]
            self._label[at : at + take] = labs[done : done + take]
            done += take
            at = (at + take) % size
        self._next = at
        self._count = min(self._count + n, size)

    def metrics(self) -> dict[str, float]:
        """Metrics over the window; empty while the window is empty."""
        if self._count == 0:
            return {}
        n = self._count
        if self.task == "multiclass":
            return _multiclass(self._pred[:n], self._label[:n])
        pred, label = self._pred[:n], self._label[:n]
        if self.task == "regression":
            err = pred - label
            return {"mae": float(np.mean(np.abs(err))), "rmse": float(math.sqrt(np.mean(err**2)))}
        return _binary(pred, label, self.threshold)

    def to_state(self) -> dict[str, Any]:
        # The buffers as they lie (not in time order), so that a restored window sums
        # in the same order and gives bit-identical metrics.
        def dump(buffer: Any) -> list[Any]:
            return list(buffer) if self.task == "multiclass" else np.asarray(buffer).tolist()

        return {
            "version": _STATE_VERSION,
            "task": self.task,
            "size": self.size,
            "threshold": self.threshold,
            "next": self._next,
            "count": self._count,
            "predictions": dump(self._pred),
            "labels": dump(self._label),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> PerformanceWindow:
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"performance state version must be 1, got {state.get('version')!r}")
        window = cls(state["task"], int(state["size"]), float(state["threshold"]))
        if len(state["predictions"]) != window.size or len(state["labels"]) != window.size:
            raise ValueError("performance state buffers must hold `size` entries")
        if window.task == "multiclass":
            window._pred, window._label = list(state["predictions"]), list(state["labels"])
        else:
            window._pred = np.asarray(state["predictions"], dtype=np.float64)
            window._label = np.asarray(state["labels"], dtype=np.float64)
        window._next, window._count = int(state["next"]), int(state["count"])
        return window


def _binary(score: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = score >= threshold
    positive = y == 1.0
    correct = predicted == positive
    out = {"accuracy": float(correct.mean()), "error_rate": float(1.0 - correct.mean())}
    true_pos = float(np.sum(predicted & positive))
    if predicted.any():
        out["precision"] = true_pos / float(predicted.sum())
    if positive.any():
        out["recall"] = true_pos / float(positive.sum())
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos and n_neg:
        ranks = _average_ranks(score)
        u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2
        out["auc"] = u / (n_pos * n_neg)
    p = np.clip(score, _EPS, 1 - _EPS)
    out["log_loss"] = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    out["brier"] = float(np.mean((score - y) ** 2))
    return out


def _multiclass(pred: list[str], label: list[str]) -> dict[str, float]:
    correct = sum(p == t for p, t in zip(pred, label, strict=True))
    accuracy = correct / len(pred)
    f1s = []
    for cls in sorted(set(pred) | set(label)):
        tp = sum(p == cls and t == cls for p, t in zip(pred, label, strict=True))
        fp = sum(p == cls and t != cls for p, t in zip(pred, label, strict=True))
        fn = sum(p != cls and t == cls for p, t in zip(pred, label, strict=True))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return {"accuracy": accuracy, "error_rate": 1 - accuracy, "macro_f1": float(np.mean(f1s))}


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank: ``scipy.stats.rankdata(values)``
    (without importing scipy.stats, about 45 MiB)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], values.size]  # one past each run of ties
    ranks = np.empty(values.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks
