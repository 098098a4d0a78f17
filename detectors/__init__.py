"""Pure statistics for driftline: drift tests, change detectors, rate trackers, profiles.

Nothing here does I/O, reads a clock or logs. The public names:

Reference profiles
    :class:`Profile`, :class:`NumericProfile`, :class:`CategoricalProfile`,
    :class:`ProfileBuilder`, :func:`build_profile`, :func:`to_category`, :data:`OTHER`.
Two-sample drift tests of a window against a feature's profile
    :func:`psi`, :func:`ks_test`, :func:`chi2_test`, :func:`jensen_shannon`,
    :func:`wasserstein`, each returning a :class:`DriftResult`.
Whole windows against a whole profile, reference work done once
    :class:`WindowChecker`, returning a :class:`FeatureCheck` per feature.
"""

from __future__ import annotations

from detectors.chi2 import chi2_test
from detectors.feature_profile import OTHER, CategoricalProfile, FeatureProfile, NumericProfile
from detectors.jensen_shannon import jensen_shannon
from detectors.ks import ks_test
from detectors.profile import PROFILE_VERSION, Profile
from detectors.profile_builder import FeatureValue, ProfileBuilder, build_profile, to_category
from detectors.psi import psi
from detectors.result import DriftResult
from detectors.wasserstein import reference_scale, wasserstein
from detectors.window_check import FeatureCheck, WindowChecker

__all__ = [
    "OTHER",
    "PROFILE_VERSION",
    "CategoricalProfile",
    "DriftResult",
    "FeatureCheck",
    "FeatureProfile",
    "FeatureValue",
    "NumericProfile",
    "Profile",
    "ProfileBuilder",
    "WindowChecker",
    "build_profile",
    "chi2_test",
    "jensen_shannon",
    "ks_test",
    "psi",
    "reference_scale",
    "to_category",
    "wasserstein",
]
