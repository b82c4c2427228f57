"""A deterministic stand-in ``ProofChecker`` for simulations and tests that do not train models.

Truth about training comes from a table, fixed when the checker is built, of
which segments of which proof roots are faked (what real re-execution would
reveal). Samples derive from the validator's "signature", here
HMAC-SHA256(validator_key, task || proof_root), so the sample is fixed by
the validator's key and the claim, as in the real scheme. ``task`` is the task
the client posted, taken from the ``CommittedOrder`` the ledger hands over (the
stand-in ignores the data-order seed, so scripted workloads can sign before the
ledger fixes it). Evidence is the 8-byte big-endian segment index it accuses.
In the dispute game a committed state is its own digest, a hash of the proof
root, segment and step (``step_state``), and one step of a faked segment is
always found wrong.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from pot_impl import codec
from pot_impl.ledger.proofs import StepRuling
from pot_impl.ledger.records import CommittedOrder

EVIDENCE_BYTES = 8


def seed_signature(validator_key: bytes, task: bytes, proof_root: bytes) -> bytes:
    """The stand-in's "signature" a validator derives its sample from."""
    return hmac.new(validator_key, task + proof_root, hashlib.sha256).digest()


def derive_sample(signature: bytes, segments: int, size: int) -> tuple[int, ...]:
    """``size`` distinct segments chosen by hashing the signature with a counter (sorted)."""
    chosen: list[int] = []
    counter = 0
    while len(chosen) < min(size, segments):
        value = int.from_bytes(hashlib.sha256(signature + counter.to_bytes(4, "big")).digest()[:8], "big")
        segment = value % segments
        if segment not in chosen:
            chosen.append(segment)
        counter += 1
    return tuple(sorted(chosen))


def step_state(proof_root: bytes, segment: int, step: int) -> bytes:
    """The stand-in's committed state (and digest) after ``step`` of ``segment`` under ``proof_root``."""
    return hashlib.sha256(proof_root + segment.to_bytes(8, "big") + step.to_bytes(8, "big")).digest()


def fraud_evidence(segment: int) -> bytes:
    """Stand-in evidence accusing ``segment``."""
    return segment.to_bytes(EVIDENCE_BYTES, "big")


class StandInProofChecker:
    """Upholds evidence exactly for the segments listed as faked under a proof root."""

    def __init__(self, segments: int, sample_size: int, faked: Mapping[bytes, frozenset[int]]) -> None:
        self.segments = segments
        self.sample_size = sample_size
        self.faked = dict(faked)

    def check_sample(
        self,
        task: bytes,
        proof_root: bytes,
        validator_key: bytes,
        sample: tuple[int, ...],
        seed_signature_: bytes,
    ) -> bool:
        try:
            posted = codec.decode(task, CommittedOrder).task
        except codec.DecodeError:
            return False
        expected = seed_signature(validator_key, posted, proof_root)
        return hmac.compare_digest(expected, seed_signature_) and sample == derive_sample(
            expected, self.segments, self.sample_size
        )

    def check_fraud_proof(self, task: bytes, proof_root: bytes, evidence: bytes) -> bool:
        segment = self.segment_of(evidence)
        return segment is not None and segment in self.faked.get(proof_root, frozenset())

    def segment_of(self, evidence: bytes) -> int | None:
        if len(evidence) != EVIDENCE_BYTES:
            return None
        return int.from_bytes(evidence, "big")

    def fits_dispute_game(self, task: bytes, steps: int) -> bool:
        return True

    def step_digest(
        self, task: bytes, proof_root: bytes, segment: int, step: int, opening: bytes
    ) -> bytes | None:
        return step_state(proof_root, segment, step)

    def referee(
        self, task: bytes, proof_root: bytes, segment: int, step: int, state: bytes, opening: bytes
    ) -> StepRuling | None:
        if state != step_state(proof_root, segment, step):
            return StepRuling.WRONG_STATE
        if segment in self.faked.get(proof_root, frozenset()):
            return StepRuling.FRAUD_PROVED
        return StepRuling.STEP_VALID
