"""Judging a re-executed segment against the trainer's leaf: tier A (exact) and tier B (tolerant).

Tier A applies when trainer and validator share the pinned environment
(same fingerprint): every bit must match, so any difference is fraud. Tier B
applies across environments (e.g. a CPU validator checking a GPU trainer),
where floating-point reassociation makes honest runs drift. It accepts a
segment when (1) the batch indices match exactly (integer computation), (2)
the claimed end weights are within a normalised distance of the re-executed
ones, measured relative to the size of the segment's own update, (3) the
loss traces agree within a relative deviation, and (4) the claimed update
points the same way as the re-executed one (cosine similarity). The default
tolerance is calibrated from measured honest drift (docs/training.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pot_impl.training.checkpoint import Checkpoint, model_tensors

LOSS_FLOOR = 1e-2  # losses below this are compared absolutely, so near-zero losses do not blow up ratios


@dataclass(frozen=True)
class Tolerance:
    """Tier-B acceptance thresholds."""

    max_distance: float
    max_loss_deviation: float
    min_cosine: float
    max_score_deviation: int  # basis points


# Calibrated on this project's honest runs across thread counts and float64 references; see
# docs/training.md ("Tier B calibration") and benchmarks/bench_training.py, which re-measures it.
DEFAULT_TOLERANCE = Tolerance(
    max_distance=0.05, max_loss_deviation=0.01, min_cosine=0.99, max_score_deviation=200
)


@dataclass(frozen=True)
class Drift:
    """How far a claimed segment is from its re-execution."""

    distance: float
    loss_deviation: float
    cosine: float

    def within(self, tolerance: Tolerance) -> bool:
        return (
            self.distance <= tolerance.max_distance
            and self.loss_deviation <= tolerance.max_loss_deviation
            and self.cosine >= tolerance.min_cosine
        )


def _flat_model(checkpoint: Checkpoint) -> torch.Tensor:
    tensors = model_tensors(checkpoint)
    parts = [tensors[name].detach().to("cpu", torch.float64).reshape(-1) for name in sorted(tensors)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def loss_deviation(claimed: Sequence[float], reexecuted: Sequence[float]) -> float:
    """Largest relative difference between two loss traces (inf if lengths or non-finite values differ)."""
    if len(claimed) != len(reexecuted):
        return math.inf
    worst = 0.0
    for a, b in zip(claimed, reexecuted, strict=True):
        if not (math.isfinite(a) and math.isfinite(b)):
            if a != b and not (math.isnan(a) and math.isnan(b)):
                return math.inf
            continue
        worst = max(worst, abs(a - b) / max(abs(b), LOSS_FLOOR))
    return worst


def measure_drift(
    start: Checkpoint,
    claimed_end: Checkpoint,
    reexecuted_end: Checkpoint,
    claimed_losses: Sequence[float],
    reexecuted_losses: Sequence[float],
) -> Drift:
    """Normalised weight distance, loss deviation and update cosine between claim and re-execution."""
    origin = _flat_model(start)
    claimed, honest = _flat_model(claimed_end), _flat_model(reexecuted_end)
    if claimed.shape != honest.shape or origin.shape != honest.shape:
        return Drift(math.inf, math.inf, -1.0)
    honest_update, claimed_update = honest - origin, claimed - origin
    update_norm = float(honest_update.norm())
    gap = float((claimed - honest).norm())
    distance = gap / update_norm if update_norm > 0 else (0.0 if gap == 0 else math.inf)
    norms = update_norm * float(claimed_update.norm())
    cosine = float(honest_update @ claimed_update) / norms if norms > 0 else (1.0 if gap == 0 else -1.0)
    return Drift(distance, loss_deviation(claimed_losses, reexecuted_losses), cosine)


@dataclass(frozen=True)
class SegmentJudgement:
    """The outcome of comparing one segment: ``mismatch`` is None when the claim holds; ``exact``
    when it holds bit for bit (tier A's standard, met across environments too by reproducible numerics)."""

    mismatch: str | None
    drift: Drift | None = None
    exact: bool = False


def judge_segment(
    *,
    claimed_checkpoint_digest: bytes,
    claimed_batch_digest: bytes,
    claimed_losses: Sequence[float],
    reexecuted_checkpoint_digest: bytes,
    reexecuted_batch_digest: bytes,
    reexecuted_losses: Sequence[float],
    tolerance: Tolerance | None,
    start: Checkpoint | None = None,
    claimed_end: Checkpoint | None = None,
    reexecuted_end: Checkpoint | None = None,
    claimed_step_digests: Sequence[bytes] = (),
    reexecuted_step_digests: Sequence[bytes] = (),
) -> SegmentJudgement:
    """Tier A when ``tolerance`` is None, else tier B (which needs the three checkpoints for the
    weight checks; without ``claimed_end`` it can judge only batches and losses). Per-step digests
    are judged in tier A only: no tolerance applies to a digest."""
    if len(claimed_losses) != len(reexecuted_losses):
        return SegmentJudgement(
            f"leaf has {len(claimed_losses)} losses, the segment has {len(reexecuted_losses)}"
        )
    if claimed_batch_digest != reexecuted_batch_digest:
        return SegmentJudgement("batch indices differ from the order's data order")
    same_trajectory = tuple(claimed_step_digests) == tuple(reexecuted_step_digests)
    exact = (
        reexecuted_checkpoint_digest == claimed_checkpoint_digest
        and tuple(claimed_losses) == tuple(reexecuted_losses)
        and same_trajectory
    )
    if tolerance is None:
        if exact:
            return SegmentJudgement(None, exact=True)
        if reexecuted_checkpoint_digest != claimed_checkpoint_digest:
            return SegmentJudgement("checkpoint after the segment differs from re-execution (tier A)")
        if not same_trajectory:
            return SegmentJudgement("per-step state digests differ from re-execution (tier A)")
        return SegmentJudgement("loss trace differs from re-execution (tier A)")
    if claimed_end is None or start is None or reexecuted_end is None:
        deviation = loss_deviation(claimed_losses, reexecuted_losses)
        if deviation > tolerance.max_loss_deviation:
            return SegmentJudgement(f"loss trace deviates by {deviation:.3g} (tier B)")
        return SegmentJudgement(None, exact=exact)
    drift = measure_drift(start, claimed_end, reexecuted_end, claimed_losses, reexecuted_losses)
    if not drift.within(tolerance):
        return SegmentJudgement(
            f"segment outside tier-B tolerance: distance {drift.distance:.3g}, "
            f"loss deviation {drift.loss_deviation:.3g}, cosine {drift.cosine:.4f}",
            drift,
        )
    return SegmentJudgement(None, drift, exact)


def score_matches(claimed: int, measured: int, tolerance: Tolerance | None) -> bool:
    """Exact in tier A; within ``max_score_deviation`` in tier B."""
    if tolerance is None:
        return claimed == measured
    return abs(claimed - measured) <= tolerance.max_score_deviation
