"""Segment leaves and claims: the byte formats a trainer commits to.

A leaf records one segment of k steps: its index, the digest of the
checkpoint after it, the digest of the batch indices it used, the loss
of every step and, under reproducible numerics, the segment's rounding log
(``reproducible.RoundingLog``'s encoding; empty otherwise). A claim binds
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

    def encode(self) -> bytes:
        header = LEAF_HEADER.pack(self.index, self.checkpoint_digest, self.batch_digest, len(self.losses))
        return header + struct.pack(f">{len(self.losses)}d", *self.losses) + self.rounding

    @classmethod
    def decode(cls, data: bytes) -> SegmentLeaf:
        if len(data) < LEAF_HEADER.size:
            raise ProofFormatError("leaf too short")
        index, checkpoint, batch, count = LEAF_HEADER.unpack_from(data)
        end_of_losses = LEAF_HEADER.size + 8 * count
        if len(data) < end_of_losses or (len(data) - end_of_losses) % ROUNDING_DECISION_BYTES:
            raise ProofFormatError("leaf length does not match its loss count and rounding log")
        losses = struct.unpack_from(f">{count}d", data, LEAF_HEADER.size)
        return cls(index, checkpoint, batch, losses, data[end_of_losses:])


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
