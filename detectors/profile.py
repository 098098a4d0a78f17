"""Reference profiles: a compact, mergeable, versioned summary of a model's features.

A :class:`Profile` maps each feature name to a
:class:`~detectors.feature_profile.NumericProfile` or
:class:`~detectors.feature_profile.CategoricalProfile`; build one with
:func:`detectors.profile_builder.build_profile`. Its state is plain JSON (no pickle:
profiles sit on shared storage) and :attr:`Profile.profile_id` is a content hash,
so alerts can name the exact reference they were judged against.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

from detectors._profile_merge import merge_features
from detectors.feature_profile import (
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    feature_from_state,
)

__all__ = ["PROFILE_VERSION", "Profile", "check_settings"]

#: Version of the state layout written by :meth:`Profile.to_state`.
PROFILE_VERSION = 1


def check_settings(n_bins: int, max_sample: int, top_k: int, seed: int) -> None:
    """Raise ``ValueError`` naming the first profile setting that is out of range."""
    rules = (
        ("n_bins", n_bins, 2),
        ("max_sample", max_sample, 1),
        ("top_k", top_k, 1),
        ("seed", seed, 0),
    )
    for name, value, minimum in rules:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True, eq=False)
class Profile:
    """Reference summary of every feature of one model.

    Parameters
    ----------
    features
        Summary per feature name.
    n_rows
        Rows the profile was built from. Each feature has ``count + missing == n_rows``:
        a row that lacks a feature counts as missing for it.
    n_bins
        Quantile bins per numeric feature (fewer when values are tied).
    max_sample
        Largest number of values kept per numeric feature for KS and Wasserstein.
    top_k
        Most frequent categories kept per categorical feature; the rest are counted
        in the ``"__other__"`` bucket.
    seed
        Seed of the subsampling, so that equal data give equal profiles.

    Notes
    -----
    ``to_state()`` gives ``{"version": 1, "n_rows", "settings", "features"}`` with
    only JSON types; floats survive a JSON round trip exactly. The id is the first
    16 hex digits of the SHA-256 of the canonical JSON of that state (sorted keys,
    no spaces), so it changes whenever data or settings change and never otherwise.

    Examples
    --------
    >>> from detectors.profile_builder import build_profile
    >>> rows = [{"age": float(i), "plan": "pro" if i % 3 else "free"} for i in range(100)]
    >>> profile = build_profile(rows, n_bins=4)
    >>> profile.numeric("age").cuts.tolist()
    [24.75, 49.5, 74.25]
    >>> dict(profile.categorical("plan").counts)
    {'pro': 66, 'free': 34}
    >>> Profile.from_state(profile.to_state()) == profile
    True
    """

    features: Mapping[str, FeatureProfile]
    n_rows: int
    n_bins: int = 10
    max_sample: int = 10_000
    top_k: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        check_settings(self.n_bins, self.max_sample, self.top_k, self.seed)
        if self.n_rows < 0:
            raise ValueError(f"n_rows must be an integer >= 0, got {self.n_rows}")
        features = dict(sorted(self.features.items()))
        for name, feature in features.items():
            if feature.count + feature.missing != self.n_rows:
                raise ValueError(
                    f"feature {name!r} must have count + missing == n_rows = {self.n_rows}, "
                    f"got {feature.count} + {feature.missing}"
                )
            if isinstance(feature, NumericProfile) and feature.sample.size > self.max_sample:
                raise ValueError(
                    f"feature {name!r} sample must hold at most max_sample = "
                    f"{self.max_sample} values, got {feature.sample.size}"
                )
        object.__setattr__(self, "features", MappingProxyType(features))

    @cached_property
    def profile_id(self) -> str:
        """Content hash: first 16 hex digits of SHA-256 of the canonical state JSON."""
        text = json.dumps(self.to_state(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def to_state(self) -> dict[str, Any]:
        """Versioned, JSON-safe state."""
        return {
            "version": PROFILE_VERSION,
            "n_rows": self.n_rows,
            "settings": {
                "n_bins": self.n_bins,
                "max_sample": self.max_sample,
                "top_k": self.top_k,
                "seed": self.seed,
            },
            "features": {name: f.to_state() for name, f in self.features.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Profile:
        """Restore a profile from :meth:`to_state` output (e.g. parsed JSON)."""
        version = state.get("version")
        if version != PROFILE_VERSION:
            raise ValueError(f"profile state version must be {PROFILE_VERSION}, got {version!r}")
        settings = state["settings"]
        return cls(
            features={n: feature_from_state(s) for n, s in state["features"].items()},
            n_rows=int(state["n_rows"]),
            n_bins=settings["n_bins"],
            max_sample=settings["max_sample"],
            top_k=settings["top_k"],
            seed=settings["seed"],
        )

    def numeric(self, name: str) -> NumericProfile:
        """The summary of feature ``name``, which must be numeric."""
        feature = self.features[name]
        if not isinstance(feature, NumericProfile):
            raise ValueError(f"feature {name!r} must be numeric, got {feature.kind}")
        return feature

    def categorical(self, name: str) -> CategoricalProfile:
        """The summary of feature ``name``, which must be categorical."""
        feature = self.features[name]
        if not isinstance(feature, CategoricalProfile):
            raise ValueError(f"feature {name!r} must be categorical, got {feature.kind}")
        return feature

    def merge(self, other: Profile) -> Profile:
        """Profile of the union of both profiles' rows.

        Counts, missing counts and ranges merge exactly; bin cuts, the sample and
        folded categories are approximated past ``max_sample`` / ``top_k`` (see
        :mod:`detectors._profile_merge`). The result does not depend on the order
        of the operands. Raises ``ValueError`` when the settings differ or a feature
        is numeric in one profile and categorical in the other (a builder fed both
        sides' rows would have made it categorical; the numbers are gone by now).
        """
        settings = ("n_bins", "max_sample", "top_k", "seed")
        for name in settings:
            if getattr(self, name) != getattr(other, name):
                raise ValueError(
                    f"profiles must share {name} to merge, "
                    f"got {getattr(self, name)} and {getattr(other, name)}"
                )
        kwargs = {name: getattr(self, name) for name in settings}
        merged = {}
        for name in sorted(set(self.features) | set(other.features)):
            left = self.features.get(name)
            right = other.features.get(name)
            # A feature one side never saw was missing in all of that side's rows.
            merged[name] = merge_features(
                name,
                NumericProfile.empty(self.n_rows) if left is None else left,
                NumericProfile.empty(other.n_rows) if right is None else right,
                **kwargs,
            )
        return Profile(merged, self.n_rows + other.n_rows, **kwargs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Profile):
            return NotImplemented
        return self.to_state() == other.to_state()

    __hash__ = None  # type: ignore[assignment]
