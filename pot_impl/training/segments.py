"""Segment leaves and claims: the byte formats a trainer commits to.

A leaf records one segment of k steps: its index, the digest of the
checkpoint after it, the digest of the batch indices it used, the loss
of every step, for a task with ``step_digests`` the state digest after each
of the segment's first k - 1 steps (the dispute game's trajectory; flagged by
the top bit of the header's loss count), and under reproducible numerics the
segment's rounding log (``reproducible.RoundingLog``'s encoding; empty otherwise). A claim binds
the Merkle root over all leaves, the number of segments, the final model
digest, the claimed score and the trainer's environment fingerprint; its
``commitment`` is the proof root the ledger stores, so a challenge can
recover (and the ledger cannot confuse) all of them.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from pot_impl.training.canonical import EncodingError, canonical_json, parse_canonical_json

LEAF_HEADER = struct.Struct(">I32s32sI")
STEP_DIGESTS_FLAG = 1 << 31
"""Set in the header's loss count when the leaf carries per-step digests."""
DIGEST_BYTES = 32
ROUNDING_DECISION_BYTES = 12
CLAIM_DOMAIN = b"pot-claim-v1"


class ProofFormatError(ValueError):
    """Leaf, claim or evidence bytes that do not decode."""


@dataclass(frozen=True)
class SegmentLeaf:
    """What the trainer commits to for one segment."""

    index: int
    checkpoint_digest: bytes
    batch_digest: bytes
    losses: tuple[float, ...]
    rounding: bytes = b""
    steps: tuple[bytes, ...] = ()
    """With ``step_digests``: the state digest after each step but the last (which is
    ``checkpoint_digest``)."""

    def encode(self) -> bytes:
        if self.steps and len(self.steps) != len(self.losses) - 1:
            raise ValueError("a leaf's step digests cover every step but the last")
        count = len(self.losses) | (STEP_DIGESTS_FLAG if self.steps else 0)
        header = LEAF_HEADER.pack(self.index, self.checkpoint_digest, self.batch_digest, count)
        losses = struct.pack(f">{len(self.losses)}d", *self.losses)
        return header + losses + b"".join(self.steps) + self.rounding

    @classmethod
    def decode(cls, data: bytes) -> SegmentLeaf:
        if len(data) < LEAF_HEADER.size:
            raise ProofFormatError("leaf too short")
        index, checkpoint, batch, word = LEAF_HEADER.unpack_from(data)
        count = word & ~STEP_DIGESTS_FLAG
        digests = max(count - 1, 0) if word & STEP_DIGESTS_FLAG else 0
        end_of_losses = LEAF_HEADER.size + 8 * count
        end_of_steps = end_of_losses + DIGEST_BYTES * digests
        if len(data) < end_of_steps or (len(data) - end_of_steps) % ROUNDING_DECISION_BYTES:
            raise ProofFormatError("leaf length does not match its loss count, step digests and rounding log")
        losses = struct.unpack_from(f">{count}d", data, LEAF_HEADER.size)
        steps = tuple(data[at : at + DIGEST_BYTES] for at in range(end_of_losses, end_of_steps, DIGEST_BYTES))
        return cls(index, checkpoint, batch, losses, data[end_of_steps:], steps)

    def state_digest(self, step: int) -> bytes:
        """The committed digest of the state after ``step`` (1..k) of the segment's k steps (the last
        is ``checkpoint_digest``). Raises ProofFormatError for a step the leaf commits nothing to."""
        if step == len(self.losses):
            return self.checkpoint_digest
        if not 0 < step <= len(self.steps):
            raise ProofFormatError(f"leaf commits no digest after step {step}")
        return self.steps[step - 1]


@dataclass(frozen=True)
class Claim:
    """A trainer's claim on an order."""

    order_digest: bytes
    merkle_root: bytes
    segments: int
    final_model_digest: bytes
    score: int  # basis points of accuracy on the evaluation split
    environment: str

    def encode(self) -> bytes:
        return canonical_json(
            {
                "order": self.order_digest.hex(),
                "merkle_root": self.merkle_root.hex(),
                "segments": self.segments,
                "final_model": self.final_model_digest.hex(),
                "score": self.score,
                "environment": self.environment,
            }
        )

    @property
    def commitment(self) -> bytes:
        """The proof root recorded on the ledger."""
        return hashlib.sha256(CLAIM_DOMAIN + self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> Claim:
        try:
            obj = parse_canonical_json(data)
            claim = cls(
                order_digest=bytes.fromhex(obj["order"]),
                merkle_root=bytes.fromhex(obj["merkle_root"]),
                segments=int(obj["segments"]),
                final_model_digest=bytes.fromhex(obj["final_model"]),
                score=obj["score"],
                environment=str(obj["environment"]),
            )
        except (EncodingError, KeyError, TypeError, ValueError) as exc:
            raise ProofFormatError(f"malformed claim: {exc}") from None
        if not isinstance(claim.score, int) or isinstance(claim.score, bool) or claim.encode() != data:
            raise ProofFormatError("claim bytes are not canonical")
        return claim
