"""State fingerprints and what they cost in collisions.

``fingerprint`` is the compiled walker of ``_fingerprint.c``: a 64-bit function
of a state's value alone, identical in every process and on every run, equal for
values Python considers equal, and raising ``TypeError`` on anything that is not a
plain immutable value (int, bool, IntEnum, tuple, NamedTuple, frozenset, frozen
dataclass).

Why 64 bits and not 128: the visited table stores each fingerprint twice (by id
and in its fingerprint set, whose slots are 30 to 60% full), so 64 bits keep it at
25 to 39 bytes per state instead of 47 to 73, and the
probability that a run merges two distinct states stays small and is reported for
every run, as TLC reports it (``collision_estimates``): about 2e-3 for 60 M
distinct states with ten successors each.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from model_checker import _fingerprint

fingerprint = _fingerprint.fingerprint


def fingerprint_array(values: Iterable[Any], count: int) -> npt.NDArray[np.int64]:
    """The fingerprints of ``values`` (about ``count`` of them) in order, walked in one call: no
    Python int is made for each."""
    return np.frombuffer(_fingerprint.fingerprints(values, count), dtype=np.int64)


_TWO_64 = float(2**64)


def _record_layout(cls: type) -> tuple[int, tuple[str, ...]] | None:
    """A frozen, eq-comparing dataclass's seed (from its qualified name) and compared fields."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not (params.frozen and params.eq):
        return None
    name = f"{cls.__module__}.{cls.__qualname__}".encode()
    seed = int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "little")
    return seed, tuple(f.name for f in dataclasses.fields(cls) if f.compare)


def _big_int_bytes(value: int) -> bytes:
    return value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)


_fingerprint.set_helpers(_record_layout, _big_int_bytes)


@dataclass(frozen=True)
class CollisionEstimates:
    """TLC's two estimates of the probability that the run merged two distinct states."""

    optimistic: float
    """d * (g - d) / 2^64 for d distinct and g generated states: each of the g - d
    duplicate successors could have been a new state mistaken for one of the d."""
    observed: float
    """1 / (smallest gap between two sorted fingerprints): what the fingerprints seen
    suggest about how closely the space is packed."""

    def to_json(self) -> dict[str, float]:
        return {"optimistic": self.optimistic, "observed": self.observed}


_GAP_BLOCK = 1 << 22
"""Sorted fingerprints compared per block when looking for the smallest gap."""


def collision_estimates(
    distinct: int, generated: int, fingerprints: npt.NDArray[np.int64]
) -> CollisionEstimates:
    """Both estimates for a run that stored ``fingerprints`` (any order)."""
    optimistic = distinct * max(generated - distinct, 0) / _TWO_64
    if len(fingerprints) < 2:
        return CollisionEstimates(optimistic, 0.0)
    ordered = np.sort(fingerprints.view(np.uint64))
    smallest_gap = min(  # by blocks: a whole np.diff would double the sorted copy's memory
        int(np.diff(ordered[start : start + _GAP_BLOCK + 1]).min())
        for start in range(0, len(ordered) - 1, _GAP_BLOCK)
    )
    return CollisionEstimates(optimistic, 1.0 / smallest_gap if smallest_gap else 1.0)
