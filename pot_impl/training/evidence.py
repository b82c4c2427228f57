"""Fraud evidence: what a validator hands the ledger so any coordinator can re-check one segment.

The evidence is self-contained: the claim (whose commitment must equal the
proof root on the ledger), the disputed leaf with its Merkle path, the
previous leaf with its path (which fixes the start checkpoint's digest), and
the start and end checkpoint bytes themselves. Shipping the checkpoints
rather than their digests means a coordinator never depends on the accused
trainer to serve them; the cost is two checkpoints per challenge
(docs/training.md discusses the size). Encoded with msgpack, decoded
defensively: sizes are bounded and every field is type-checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import msgpack

from pot_impl.training.merkle import MerkleTree
from pot_impl.training.segments import Claim, ProofFormatError, SegmentLeaf

EVIDENCE_VERSION = 1
MAX_EVIDENCE_BYTES = 1 << 30
MAX_PATH_LENGTH = 64
KINDS = ("segment", "score")


class ProofSource(Protocol):
    """What a trainer serves (``trainer.ProofServer``): its committed leaves and checkpoints."""

    @property
    def leaves(self) -> tuple[bytes, ...]: ...

    def fetch(self, digest: bytes) -> bytes: ...


@dataclass(frozen=True)
class FraudEvidence:
    """``segment``: leaf ``index`` is not what honest training produces from the previous checkpoint.
    ``score``: the final checkpoint does not have the claimed model digest or score."""

    kind: str
    claim: bytes
    index: int
    leaf: bytes
    path: tuple[bytes, ...]
    previous_leaf: bytes | None = None
    previous_path: tuple[bytes, ...] = ()
    start: bytes | None = None
    end: bytes | None = None

    def encode(self) -> bytes:
        payload = {
            "v": EVIDENCE_VERSION,
            "kind": self.kind,
            "claim": self.claim,
            "index": self.index,
            "leaf": self.leaf,
            "path": list(self.path),
            "previous_leaf": self.previous_leaf,
            "previous_path": list(self.previous_path),
            "start": self.start,
            "end": self.end,
        }
        return msgpack.packb(payload, use_bin_type=True)  # type: ignore[no-any-return]

    @classmethod
    def decode(cls, data: bytes) -> FraudEvidence:
        if len(data) > MAX_EVIDENCE_BYTES:
            raise ProofFormatError("evidence too large")
        try:
            obj = msgpack.unpackb(data, raw=False, strict_map_key=True, max_bin_len=MAX_EVIDENCE_BYTES)
        except (ValueError, msgpack.UnpackException) as exc:
            raise ProofFormatError(f"evidence is not msgpack: {exc}") from None
        if not isinstance(obj, dict) or obj.get("v") != EVIDENCE_VERSION or obj.get("kind") not in KINDS:
            raise ProofFormatError("evidence has an unknown version or kind")
        if set(obj) != {
            "v",
            "kind",
            "claim",
            "index",
            "leaf",
            "path",
            "previous_leaf",
            "previous_path",
            "start",
            "end",
        }:
            raise ProofFormatError("evidence has missing or unknown fields")
        index = obj["index"]
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ProofFormatError("evidence index must be a non-negative integer")
        return cls(
            kind=obj["kind"],
            claim=_bytes(obj, "claim"),
            index=index,
            leaf=_bytes(obj, "leaf"),
            path=_path(obj, "path"),
            previous_leaf=_optional_bytes(obj, "previous_leaf"),
            previous_path=_path(obj, "previous_path"),
            start=_optional_bytes(obj, "start"),
            end=_optional_bytes(obj, "end"),
        )


def _bytes(obj: dict[str, Any], key: str) -> bytes:
    value = obj[key]
    if not isinstance(value, bytes):
        raise ProofFormatError(f"evidence field {key!r} must be bytes")
    return value


def _optional_bytes(obj: dict[str, Any], key: str) -> bytes | None:
    return None if obj[key] is None else _bytes(obj, key)


def _path(obj: dict[str, Any], key: str) -> tuple[bytes, ...]:
    value = obj[key]
    if not isinstance(value, list) or len(value) > MAX_PATH_LENGTH:
        raise ProofFormatError(f"evidence field {key!r} must be a list of at most {MAX_PATH_LENGTH} hashes")
    if not all(isinstance(item, bytes) and len(item) == 32 for item in value):
        raise ProofFormatError(f"evidence field {key!r} must hold 32-byte hashes")
    return tuple(value)


def segment_opening(claim: bytes, leaves: Sequence[bytes], tree: MerkleTree, index: int) -> FraudEvidence:
    """Leaf ``index`` and the leaf before it, with their Merkle paths under the encoded ``claim``:
    evidence about that segment still without its checkpoints."""
    return FraudEvidence(
        "segment",
        claim,
        index,
        leaves[index],
        tuple(tree.inclusion_path(index)),
        leaves[index - 1] if index else None,
        tuple(tree.inclusion_path(index - 1)) if index else (),
    )


def committed_segment(claim: Claim, proof: ProofSource, index: int, checkpoints: bool = True) -> bytes:
    """Segment ``index`` of a claim as its trainer committed it, in the evidence format: the claim,
    the leaf and the previous leaf with their Merkle paths, and with ``checkpoints`` the checkpoints
    around it. Without them it is the opening a trainer reveals its step digests with in a dispute;
    with them, evidence that re-executes the segment (upheld only if the segment is wrong)."""
    leaves = proof.leaves
    opening = segment_opening(claim.encode(), leaves, MerkleTree(list(leaves)), index)
    if not checkpoints:
        return opening.encode()
    start = proof.fetch(SegmentLeaf.decode(leaves[index - 1]).checkpoint_digest) if index else None
    end = proof.fetch(SegmentLeaf.decode(leaves[index]).checkpoint_digest)
    return replace(opening, start=start, end=end).encode()
