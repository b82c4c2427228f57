"""Re-executing single segments from checkpoints: the common core of validators and fraud-proof checkers."""

from __future__ import annotations

import torch

from pot_impl.training.checkpoint import Checkpoint, CheckpointError, checkpoint_digest
from pot_impl.training.comparison import SegmentJudgement, Tolerance, judge_segment
from pot_impl.training.environment import Environment, deterministic
from pot_impl.training.reproducible import RoundingLog
from pot_impl.training.segments import SegmentLeaf
from pot_impl.training.session import TrainingSession
from pot_impl.training.task import PreparedTask, TrainingOrder


def detached_copy(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """A copy that later training cannot mutate."""
    return {name: tensor.detach().clone() for name, tensor in checkpoint.items()}


class Reexecutor:
    """Runs any one segment of an order from a given start checkpoint."""

    def __init__(self, order: TrainingOrder, prepared: PreparedTask, env: Environment) -> None:
        self.task = order.task
        self.session = TrainingSession(prepared, order.data_order_seed, env)
        with deterministic(env):
            self.initial = detached_copy(self.session.checkpoint())

    def restore_at(self, checkpoint: Checkpoint, step: int) -> None:
        """Restore ``checkpoint`` and insist it is the state after ``step`` steps."""
        self.session.restore(checkpoint)
        if self.session.step != step:
            raise CheckpointError(f"checkpoint is at step {self.session.step}, expected step {step}")

    def check_segment(
        self,
        leaf: SegmentLeaf,
        start: Checkpoint,
        claimed_end: Checkpoint | None,
        tolerance: Tolerance | None,
    ) -> SegmentJudgement:
        """Re-execute segment ``leaf.index`` from ``start`` and judge the leaf (tier A if no tolerance),
        following the leaf's rounding log under reproducible numerics. Raises CheckpointError if
        ``start`` is not a valid state at the segment's first step."""
        first = leaf.index * self.task.segment_length
        try:
            follow = RoundingLog.decode(leaf.rounding)
        except ValueError as exc:
            return SegmentJudgement(f"malformed rounding log: {exc}")
        if len(follow) and not self.session.reproducible:
            return SegmentJudgement("leaf carries a rounding log but the order's numerics is native")
        if (
            len(follow)
            and not first <= follow.steps[0] <= follow.steps[-1] < first + self.task.segment_length
        ):
            return SegmentJudgement("rounding log names steps outside the segment")
        self.restore_at(start, first)
        outcome = self.session.run_segment(follow)
        reexecuted = outcome.checkpoint  # live views: judged before the session trains again
        return judge_segment(
            claimed_checkpoint_digest=leaf.checkpoint_digest,
            claimed_batch_digest=leaf.batch_digest,
            claimed_losses=leaf.losses,
            reexecuted_checkpoint_digest=checkpoint_digest(reexecuted),
            reexecuted_batch_digest=outcome.batch_digest,
            reexecuted_losses=outcome.losses,
            tolerance=tolerance,
            start=start,
            claimed_end=claimed_end,
            reexecuted_end=reexecuted,
            claimed_step_digests=leaf.steps,
            reexecuted_step_digests=outcome.step_digests,
        )

    def score(self, final: Checkpoint) -> int:
        """Evaluation score of the final checkpoint; raises CheckpointError if it is not a final state."""
        self.restore_at(final, self.task.steps)
        return self.session.evaluate()
