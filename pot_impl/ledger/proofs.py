"""The seam between the ledger and the proof-of-training machinery.

The ledger stores tasks, claims and evidence as opaque canonical bytes and
asks a ``ProofChecker`` the only questions whose answers depend on real
training: whether a sample is the one a validator's signature derives, whether
a fraud proof shows a segment faked, and, for the bisection dispute game, what
state digest a claim commits to after a step, and whether one step from a
supplied state gives it. The ``task`` argument is the committed order,
``codec.encode(CommittedOrder(posted task bytes, data-order seed))``: the seed is
the one the ledger derived from its own state when the order executed (see
``Ledger._data_order_seed``), never one the client or a trainer supplied.
Every coordinator must reach the same answer from the same bytes, so an
implementation must be deterministic (tier-A re-execution in the pinned
environment).
"""

from __future__ import annotations

import enum
from typing import Protocol


class StepRuling(enum.Enum):
    """What re-executing the one contested step of a dispute found."""

    STEP_VALID = "step-valid"
    """One step from the agreed state gives the trainer's committed digest: the challenger loses."""
    FRAUD_PROVED = "fraud-proved"
    """One step from the agreed state does not give the trainer's digest: the segment is faked."""
    WRONG_STATE = "wrong-state"
    """The supplied state is not the agreed one (or not a state of this task): the trainer defaults."""


class ProofChecker(Protocol):
    """Decides training-proof questions for the ledger, deterministically."""

    def check_sample(
        self,
        task: bytes,
        proof_root: bytes,
        validator_key: bytes,
        sample: tuple[int, ...],
        seed_signature: bytes,
    ) -> bool:
        """True iff ``sample`` is the segment sample derived from the validator's signature
        ``seed_signature`` over (order, proof root), so a validator cannot pick its sample freely."""
        ...

    def check_fraud_proof(self, task: bytes, proof_root: bytes, evidence: bytes) -> bool:
        """True iff ``evidence`` proves that a segment committed under ``proof_root`` was not
        produced by honest training of ``task`` (re-executing that one segment)."""
        ...

    def segment_of(self, evidence: bytes) -> int | None:
        """The segment index that ``evidence`` is about (None if it does not decode). The ledger
        upholds a fraud proof only for the segment the transaction names, so a valid proof about
        one segment cannot be used to slash a validator that sampled another."""
        ...

    def fits_dispute_game(self, task: bytes, steps: int) -> bool:
        """Whether posted ``task`` bytes can be disputed step by step with ``steps`` steps a segment:
        its segments have that many steps and its leaves commit a digest after each. The ledger
        refuses other orders under the game, where an honest trainer could not reveal its digests."""
        ...

    def step_digest(
        self, task: bytes, proof_root: bytes, segment: int, step: int, opening: bytes
    ) -> bytes | None:
        """The state digest committed under ``proof_root`` after ``step`` of ``segment``'s steps,
        read from ``opening``; None if the opening does not open it (malformed, not bound to the
        proof root, another segment, or a leaf without per-step digests)."""
        ...

    def referee(
        self, task: bytes, proof_root: bytes, segment: int, step: int, state: bytes, opening: bytes
    ) -> StepRuling | None:
        """Judge the step ``step -> step + 1`` of ``segment``: ``state`` must be the committed state
        after ``step`` and one step from it must give the committed digest after ``step + 1``.
        None where nothing can be judged: the opening does not open both digests, or the claim's
        numerics cannot be reproduced bit for bit here."""
        ...
