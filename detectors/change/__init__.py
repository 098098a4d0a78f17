"""Change detectors on a stream: ADWIN, Page–Hinkley, DDM, EDDM, KSWIN and CUSUM.

Each reads one value at a time (``update``) or a batch (``update_many``), reports a
change through the read-only ``drift_detected``, and snapshots to a JSON-safe dict
(``to_state`` / ``from_state``). :class:`ChangeDetector` is the contract they share;
``ChangeDetector.from_state`` rebuilds any of them from its snapshot. DDM and EDDM read
0/1 error indicators; the others read real values. Defaults and detections match
River 0.26's detectors of the same names (River has no CUSUM).
"""

from __future__ import annotations

from detectors.change.adwin import ADWIN
from detectors.change.base import STATE_VERSION, ChangeDetector
from detectors.change.cusum import CUSUM
from detectors.change.ddm import DDM
from detectors.change.eddm import EDDM
from detectors.change.kswin import KSWIN
from detectors.change.page_hinkley import PageHinkley

__all__ = [
    "ADWIN",
    "CUSUM",
    "DDM",
    "EDDM",
    "KSWIN",
    "STATE_VERSION",
    "ChangeDetector",
    "PageHinkley",
]
