"""Differential check of the NEW-VIEW computation: ``pot_impl``'s ``plan_new_view`` against the spec.

O (C&L 4.4) is a pure function of V in both: ``plan_new_view`` in
``pot_impl/pbft/certificates.py`` and ``Pbft.compute_proposals`` in
``spec/pbft/``. Here both get the same random V sets: quorums of
VIEW-CHANGEs whose P sets hold certificates for overlapping sequence numbers
from different views, which a run needs a rare schedule to produce. Digests
map to byte strings in the same order as the spec's request ids, so the two
tie-breaks (by view, then digest) agree; signatures are irrelevant to the
computation and left empty.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pot_impl.pbft.certificates import NULL_DIGEST, plan_new_view
from pot_impl.pbft.messages import PreparedCertificate, PrePrepare, ViewChange
from spec.pbft import NULL, Pbft, PbftConfig
from spec.pbft import ViewChange as SpecViewChange

REPLICAS = 4
INTERVAL = 2
WINDOW = 8
REQUESTS = 4
NEW_VIEW = 3


@dataclass(frozen=True)
class PlanMismatch:
    """A V for which the implementation's O (or min-s) differs from the spec's."""

    trial: int
    spec: tuple[int, tuple[tuple[int, int], ...]]
    impl: tuple[int, tuple[tuple[int, int], ...]]


def _digest(request: int) -> bytes:
    return NULL_DIGEST if request == NULL else request.to_bytes(32, "big")


def _request(digest: bytes) -> int:
    return NULL if digest == NULL_DIGEST else int.from_bytes(digest, "big")


def _random_view_change(rng: random.Random, replica: int) -> tuple[ViewChange, SpecViewChange]:
    """One VIEW-CHANGE for ``NEW_VIEW``, in both vocabularies: a stable checkpoint and at most one
    certificate per sequence number above it, from a random earlier view."""
    stable = rng.choice([0, INTERVAL, 2 * INTERVAL])
    certificates = []
    for seq in range(stable + 1, stable + WINDOW + 1):
        if rng.random() < 0.5:
            certificates.append((seq, rng.randint(1, REQUESTS), rng.randrange(NEW_VIEW)))
    impl = ViewChange(
        NEW_VIEW,
        stable,
        (),
        tuple(
            PreparedCertificate(PrePrepare(view, seq, _digest(d), (), view % REPLICAS), ())
            for seq, d, view in certificates
        ),
        replica,
    )
    spec = SpecViewChange(NEW_VIEW, stable, (), frozenset(certificates))
    return impl, spec


def compare(trials: int, seed: int) -> tuple[int, PlanMismatch | None]:
    """Run ``trials`` random V sets; how many agreed before the first mismatch (and that mismatch)."""
    rng = random.Random(seed)
    spec = Pbft(PbftConfig(replicas=REPLICAS, faulty=1, byzantine=frozenset(), requests=REQUESTS))
    for trial in range(trials):
        senders = rng.sample(range(REPLICAS), spec.quorum)
        pairs = [_random_view_change(rng, replica) for replica in senders]
        plan = plan_new_view([impl for impl, _ in pairs])
        expected = spec.compute_proposals([s for _, s in pairs])
        got = (plan.min_seq, tuple((seq, _request(digest)) for seq, digest, _ in plan.proposals))
        wanted = (expected.stable, expected.proposals)
        if got != wanted:
            return trial, PlanMismatch(trial, wanted, got)
    return trials, None
