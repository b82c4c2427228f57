"""The validator: samples segments from its own signature, re-executes them, scores the final model.

Verdicts are accept, or reject with a reason; a reject caused by wrong
committed data comes with fraud evidence a coordinator can check
(``TrainingProofChecker.check_fraud_proof``). A trainer that does not serve
what it committed to (leaves, or any checkpoint the validator asks for) is
rejected without evidence: unavailability cannot be proved to a third party,
so the ledger must treat a missing validation quorum as failure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from nacl.signing import SigningKey

from pot_impl.training.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointSource,
    CheckpointUnavailable,
    decode_checkpoint,
    model_digest,
)
from pot_impl.training.comparison import DEFAULT_TOLERANCE, Drift, Tolerance, score_matches
from pot_impl.training.datasets import DatasetCatalog
from pot_impl.training.environment import Environment, run_fingerprint
from pot_impl.training.evidence import FraudEvidence, segment_opening
from pot_impl.training.merkle import MerkleTree
from pot_impl.training.reexecution import Reexecutor
from pot_impl.training.reproducible import REPRODUCIBLE
from pot_impl.training.sampling import draw_sample
from pot_impl.training.segments import Claim, ProofFormatError, SegmentLeaf
from pot_impl.training.task import TaskError, decode_order, prepare_task


class ProofSource(CheckpointSource, Protocol):
    """What a trainer serves: its committed leaves (encoded) and its checkpoints."""

    @property
    def leaves(self) -> Sequence[bytes]: ...


@dataclass(frozen=True)
class Verdict:
    """A validator's decision on one claim, with what it needs to post on the ledger."""

    accepted: bool
    reason: str
    sample: tuple[int, ...] = ()
    seed_signature: bytes = b""
    tier: str = "A"
    score: int | None = None
    evidence: bytes | None = None
    drifts: tuple[Drift, ...] = field(default=(), compare=False)

    @property
    def evidence_segment(self) -> int | None:
        """The segment the fraud evidence accuses; a ledger REJECT must name it (and it must be in
        the sample, so a score dispute whose last segment was not sampled goes on-chain as a
        challenge instead)."""
        return None if self.evidence is None else FraudEvidence.decode(self.evidence).index


class _Rejected(Exception):
    def __init__(self, reason: str, evidence: FraudEvidence | None = None) -> None:
        super().__init__(reason)
        self.evidence = evidence


class Validator:
    """Checks claims by sampled re-execution in its own environment."""

    def __init__(
        self,
        key: SigningKey,
        sample_size: int,
        catalog: DatasetCatalog | None = None,
        env: Environment | None = None,
        tolerance: Tolerance = DEFAULT_TOLERANCE,
    ) -> None:
        self.key = key
        self.sample_size = sample_size
        self.catalog = catalog or DatasetCatalog(None)
        self.env = env or Environment()
        self.tolerance = tolerance

    def validate(self, order_bytes: bytes, claim: Claim, source: ProofSource) -> Verdict:
        """Verify ``claim`` on ``order_bytes`` using the sample drawn from this validator's signature."""
        try:
            order = decode_order(order_bytes)
        except TaskError as exc:
            return Verdict(False, f"order cannot be trained here: {exc}")
        sample, signature = draw_sample(
            self.key, order.digest, claim.commitment, claim.segments, self.sample_size
        )
        return self.audit(order_bytes, claim, source, sample, signature)

    def audit(
        self,
        order_bytes: bytes,
        claim: Claim,
        source: ProofSource,
        segments: tuple[int, ...],
        seed_signature: bytes = b"",
    ) -> Verdict:
        """Re-execute the given ``segments`` and check the score. ``validate`` uses its signed sample;
        a challenger uses the sample of a validator whose ACCEPT it disputes."""
        try:
            order = decode_order(order_bytes)
            prepared = prepare_task(order.task, self.catalog)
        except TaskError as exc:
            return Verdict(False, f"order cannot be trained here: {exc}")
        if claim.order_digest != order.digest or claim.segments != order.task.segments:
            return Verdict(False, "claim does not match the order (order digest or segment count)")
        if not all(0 <= index < claim.segments for index in segments):
            return Verdict(False, f"segments {segments} are outside the claim's {claim.segments}")
        pinned = run_fingerprint(self.env, order.task.numerics)
        tolerance = None if claim.environment == pinned else self.tolerance
        tier = "A" if tolerance is None else "B"
        drifts: list[Drift] = []
        try:
            leaves = self._committed_leaves(claim, source)
            tree = MerkleTree(leaves)
            replayer = Reexecutor(order, prepared, self.env)
            exact = [
                self._check_segment(index, claim, leaves, tree, source, replayer, tolerance, drifts)
                for index in segments
            ]
            score = self._check_score(claim, leaves, tree, source, replayer, tolerance)
            if order.task.numerics == REPRODUCIBLE and all(exact) and score == claim.score:
                tier = "A"  # reproducible numerics met tier A's standard across environments
        except _Rejected as rejection:
            evidence = None if rejection.evidence is None else rejection.evidence.encode()
            return Verdict(
                False, str(rejection), segments, seed_signature, tier, None, evidence, tuple(drifts)
            )
        return Verdict(
            True,
            "sampled segments and score verified",
            segments,
            seed_signature,
            tier,
            score,
            None,
            tuple(drifts),
        )

    def _committed_leaves(self, claim: Claim, source: ProofSource) -> list[bytes]:
        leaves = list(source.leaves)
        if len(leaves) != claim.segments or MerkleTree(leaves).root != claim.merkle_root:
            raise _Rejected("served leaves do not match the claim's Merkle root")
        return leaves

    def _check_segment(
        self,
        index: int,
        claim: Claim,
        leaves: list[bytes],
        tree: MerkleTree,
        source: ProofSource,
        replayer: Reexecutor,
        tolerance: Tolerance | None,
        drifts: list[Drift],
    ) -> bool:
        """Judge one sampled segment (raising _Rejected); True when it matched bit for bit."""
        evidence = segment_opening(claim.encode(), leaves, tree, index)
        leaf = self._decode_leaf(leaves, index, evidence)
        start: Checkpoint = replayer.initial
        start_bytes = None
        if index:
            previous = self._decode_leaf(leaves, index - 1, evidence)
            start_bytes = self._fetch_bytes(source, previous.checkpoint_digest)
            start = decode_checkpoint(start_bytes)
        end_bytes = self._fetch_bytes(source, leaf.checkpoint_digest)
        evidence = replace(evidence, start=start_bytes, end=end_bytes)
        try:
            judgement = replayer.check_segment(leaf, start, decode_checkpoint(end_bytes), tolerance)
        except CheckpointError as exc:
            raise _Rejected(f"segment {index} starts from an invalid checkpoint: {exc}", evidence) from None
        if judgement.drift is not None:
            drifts.append(judgement.drift)
        if judgement.mismatch is not None:
            raise _Rejected(f"segment {index}: {judgement.mismatch}", evidence)
        return judgement.exact

    @staticmethod
    def _decode_leaf(leaves: list[bytes], index: int, evidence: FraudEvidence) -> SegmentLeaf:
        try:
            leaf = SegmentLeaf.decode(leaves[index])
        except ProofFormatError as exc:
            raise _Rejected(f"leaf {index} is malformed: {exc}", evidence) from None
        if leaf.index != index:
            raise _Rejected(f"leaf {index} names segment {leaf.index}", evidence)
        return leaf

    @staticmethod
    def _fetch_bytes(source: CheckpointSource, digest: bytes) -> bytes:
        """Checkpoint bytes that provably are the committed checkpoint (their SHA-256 is the digest)."""
        try:
            data = source.fetch(digest)
        except CheckpointUnavailable:
            data = b""
        if hashlib.sha256(data).digest() != digest:
            raise _Rejected(f"trainer did not serve checkpoint {digest.hex()[:16]}")
        return data

    def _check_score(
        self,
        claim: Claim,
        leaves: list[bytes],
        tree: MerkleTree,
        source: ProofSource,
        replayer: Reexecutor,
        tolerance: Tolerance | None,
    ) -> int:
        last = claim.segments - 1
        evidence = FraudEvidence(
            "score", claim.encode(), last, leaves[last], tuple(tree.inclusion_path(last))
        )
        leaf = self._decode_leaf(leaves, last, evidence)
        final_bytes = self._fetch_bytes(source, leaf.checkpoint_digest)
        evidence = replace(evidence, end=final_bytes)
        final = decode_checkpoint(final_bytes)
        if model_digest(final) != claim.final_model_digest:
            raise _Rejected("final checkpoint does not hold the claimed model", evidence)
        try:
            score = replayer.score(final)
        except CheckpointError as exc:
            raise _Rejected(f"final checkpoint is not a valid final state: {exc}", evidence) from None
        if not score_matches(claim.score, score, tolerance):
            raise _Rejected(f"claimed score {claim.score} but the final model scores {score}", evidence)
        return score
