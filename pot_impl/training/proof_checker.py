"""The ledger's ``ProofChecker``: sample checks and fraud-proof checks by re-executing one segment.

Every coordinator runs this with the same pinned environment, so all reach the
same answer from the same bytes. A fraud proof is upheld only when the
evidence is bound to the ledger's proof root (claim commitment, Merkle paths,
checkpoint digests) and the committed data is shown wrong: a leaf that does
not decode, a start checkpoint that is not a valid state, a re-execution that
disagrees (tier A: bit for bit when the claim's environment is the
coordinator's; tier B otherwise), or a final model or score that is not the
claimed one. Evidence that is malformed or not bound to the claim is rejected,
so a validator cannot frame an honest trainer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pot_impl.ledger.proofs import StepRuling
from pot_impl.training.checkpoint import CheckpointError, checkpoint_digest, decode_checkpoint, model_digest
from pot_impl.training.comparison import DEFAULT_TOLERANCE, Tolerance, score_matches
from pot_impl.training.datasets import DatasetCatalog
from pot_impl.training.dispute import RefereeError, referee
from pot_impl.training.environment import Environment, run_fingerprint
from pot_impl.training.evidence import FraudEvidence
from pot_impl.training.merkle import verify_inclusion
from pot_impl.training.reexecution import Reexecutor
from pot_impl.training.reproducible import RoundingLog
from pot_impl.training.sampling import sample_is_valid
from pot_impl.training.segments import Claim, ProofFormatError, SegmentLeaf
from pot_impl.training.task import TaskError, TrainingOrder, decode_checker_order, decode_task, prepare_task

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Opened:
    """A dispute opening checked against the proof root: the order, the claim and the segment's leaf."""

    order: TrainingOrder
    claim: Claim
    leaf: SegmentLeaf
    evidence: FraudEvidence


class TrainingProofChecker:
    """Implements ``pot_impl.ledger.proofs.ProofChecker`` with real PyTorch re-execution."""

    def __init__(
        self,
        catalog: DatasetCatalog | None = None,
        env: Environment | None = None,
        tolerance: Tolerance = DEFAULT_TOLERANCE,
    ) -> None:
        self.catalog = catalog or DatasetCatalog(None)
        self.env = env or Environment()
        self.tolerance = tolerance

    def check_sample(
        self,
        task: bytes,
        proof_root: bytes,
        validator_key: bytes,
        sample: tuple[int, ...],
        seed_signature: bytes,
    ) -> bool:
        try:
            order = decode_checker_order(task)
        except TaskError:
            return False
        return sample_is_valid(
            order.digest, proof_root, order.task.segments, validator_key, sample, seed_signature
        )

    def segment_of(self, evidence: bytes) -> int | None:
        """The segment the evidence accuses (the last segment for a score dispute)."""
        try:
            return FraudEvidence.decode(evidence).index
        except ProofFormatError:
            return None

    def check_fraud_proof(self, task: bytes, proof_root: bytes, evidence: bytes) -> bool:
        try:
            order = decode_checker_order(task)
            proof = FraudEvidence.decode(evidence)
            claim = Claim.decode(proof.claim)
        except (TaskError, ProofFormatError):
            return False
        if claim.commitment != proof_root or claim.order_digest != order.digest:
            return False
        if not verify_inclusion(claim.merkle_root, claim.segments, proof.index, proof.leaf, proof.path):
            return False
        # The disputed leaf is now known to be committed under the ledger's proof root.
        if claim.segments != order.task.segments:
            return True
        try:
            leaf = SegmentLeaf.decode(proof.leaf)
        except ProofFormatError:
            return True
        if leaf.index != proof.index:
            return True
        pinned = run_fingerprint(self.env, order.task.numerics)
        tolerance = None if claim.environment == pinned else self.tolerance
        try:
            replayer = self._reexecutor(order)
            if proof.kind == "score":
                return self._score_is_wrong(proof, claim, leaf, replayer, tolerance)
            return self._segment_is_wrong(proof, claim, leaf, replayer, tolerance)
        except TaskError as exc:  # this coordinator cannot resolve the order: it cannot uphold anything
            LOG.warning("fraud proof not checkable here: %s", exc)
        except RuntimeError as exc:  # a torch failure must not take the replica down; nothing is proved
            LOG.error("fraud proof re-execution failed: %s", exc)
        return False

    def _segment_is_wrong(
        self,
        proof: FraudEvidence,
        claim: Claim,
        leaf: SegmentLeaf,
        replayer: Reexecutor,
        tolerance: Tolerance | None,
    ) -> bool:
        if leaf.index == 0:
            start = replayer.initial
        else:
            previous_bytes = proof.previous_leaf
            if previous_bytes is None or proof.start is None:
                return False
            if not verify_inclusion(
                claim.merkle_root, claim.segments, leaf.index - 1, previous_bytes, proof.previous_path
            ):
                return False
            try:
                previous = SegmentLeaf.decode(previous_bytes)
            except ProofFormatError:
                return True
            try:
                start = decode_checkpoint(proof.start, previous.checkpoint_digest)
            except CheckpointError:
                return False
        try:
            claimed_end = None if proof.end is None else decode_checkpoint(proof.end, leaf.checkpoint_digest)
        except CheckpointError:
            return False
        try:
            judgement = replayer.check_segment(leaf, start, claimed_end, tolerance)
        except CheckpointError:
            return True  # the committed start checkpoint is not a valid state of this task
        return judgement.mismatch is not None

    def _score_is_wrong(
        self,
        proof: FraudEvidence,
        claim: Claim,
        leaf: SegmentLeaf,
        replayer: Reexecutor,
        tolerance: Tolerance | None,
    ) -> bool:
        if proof.index != claim.segments - 1 or proof.end is None:
            return False
        try:
            final = decode_checkpoint(proof.end, leaf.checkpoint_digest)
        except CheckpointError:
            return False
        if model_digest(final) != claim.final_model_digest:
            return True
        try:
            score = replayer.score(final)
        except CheckpointError:
            return True
        return not score_matches(claim.score, score, tolerance)

    # ------------------------------------------------------------------ the dispute game

    def fits_dispute_game(self, task: bytes, steps: int) -> bool:
        try:
            posted = decode_task(task)
        except TaskError:
            return False
        return posted.step_digests and posted.segment_length == steps

    def step_digest(
        self, task: bytes, proof_root: bytes, segment: int, step: int, opening: bytes
    ) -> bytes | None:
        opened = self._open(task, proof_root, segment, opening)
        return None if opened is None else self._committed_digest(opened, step)

    def referee(
        self, task: bytes, proof_root: bytes, segment: int, step: int, state: bytes, opening: bytes
    ) -> StepRuling | None:
        opened = self._open(task, proof_root, segment, opening)
        if opened is None:
            return None
        try:
            replayer = self._reexecutor(opened.order)
            agreed = self._committed_digest(opened, step, replayer)
            claimed = self._committed_digest(opened, step + 1, replayer)
            if agreed is None or claimed is None:
                return None
            log = RoundingLog.decode(opened.leaf.rounding)
            first = segment * opened.order.task.segment_length
            return referee(replayer, opened.claim.environment, first + step, state, agreed, claimed, log)
        except (RefereeError, ValueError, TaskError) as exc:  # not bit-exact here, or a malformed log
            LOG.warning("dispute step not refereeable here: %s", exc)
        except RuntimeError as exc:
            LOG.error("dispute step re-execution failed: %s", exc)
        return None

    def _open(self, task: bytes, proof_root: bytes, segment: int, opening: bytes) -> _Opened | None:
        """The order, claim and leaf ``opening`` commits to for ``segment``, if it is bound to
        ``proof_root`` and the leaf commits a digest after every step of the segment."""
        try:
            order = decode_checker_order(task)
            evidence = FraudEvidence.decode(opening)
            claim = Claim.decode(evidence.claim)
            leaf = SegmentLeaf.decode(evidence.leaf)
        except (TaskError, ProofFormatError):
            return None
        steps = order.task.segment_length
        if (
            claim.commitment != proof_root
            or claim.order_digest != order.digest
            or claim.segments != order.task.segments
            or evidence.index != segment
            or leaf.index != segment
            or len(leaf.losses) != steps
            or len(leaf.steps) != steps - 1
            or not verify_inclusion(claim.merkle_root, claim.segments, segment, evidence.leaf, evidence.path)
        ):
            return None
        return _Opened(order, claim, leaf, evidence)

    def _reexecutor(self, order: TrainingOrder) -> Reexecutor:
        """A re-executor of ``order`` in the pinned environment; raises TaskError where this
        coordinator cannot resolve the order."""
        return Reexecutor(order, prepare_task(order.task, self.catalog), self.env)

    def _committed_digest(
        self, opened: _Opened, step: int, replayer: Reexecutor | None = None
    ) -> bytes | None:
        """The committed digest after ``step`` of the opened segment; after step 0, the segment's
        start: the previous leaf's checkpoint (which the opening must include) or the initial state
        (of ``replayer``, if the caller has one already)."""
        if step:
            try:
                return opened.leaf.state_digest(step)
            except ProofFormatError:
                return None
        if opened.leaf.index == 0:
            try:
                replayer = replayer or self._reexecutor(opened.order)
            except TaskError:
                return None
            return checkpoint_digest(replayer.initial)
        evidence, claim = opened.evidence, opened.claim
        if evidence.previous_leaf is None or not verify_inclusion(
            claim.merkle_root,
            claim.segments,
            opened.leaf.index - 1,
            evidence.previous_leaf,
            evidence.previous_path,
        ):
            return None
        try:
            return SegmentLeaf.decode(evidence.previous_leaf).checkpoint_digest
        except ProofFormatError:
            return None
