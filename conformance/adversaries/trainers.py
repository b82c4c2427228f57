"""Cheating trainer variants, each producing a claim plus the proof material it would serve.

Every variant commits with the production claim format (``make_claim``) and
serves through the production ``ProofServer`` (or a withholding wrapper), so
the validator sees exactly what a real cheater could send:

- ``train_skipping_steps``: saves compute by skipping steps inside chosen
  segments (the partial fake behind the detection-rate experiment);
- ``interpolate_to_stolen``: checkpoints on the straight line from the
  initial weights to a stolen final model (a spoof in the style of Zhang et
  al. 2022);
- ``fabricate_stolen_trajectory``: a stolen model with a made-up converging
  trajectory of noisy copies around it;
- ``train_on_other_data``: real training, but on a substitute dataset,
  while claiming the order's batch indices;
- ``inflate_score``: an honest run whose claimed score is raised;
- ``withhold_checkpoints``: an honest run whose trainer refuses to serve
  checkpoints.

Forged checkpoints reuse the honest checkpoint layout (optimizer and RNG
entries included) and carry losses actually computed on the order's batches,
so they fail only where the protocol says they must: on re-execution.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import torch

from pot_impl.training.architectures import classification_loss
from pot_impl.training.checkpoint import (
    MODEL_PREFIX,
    CheckpointStore,
    CheckpointUnavailable,
    checkpoint_digest,
    model_digest,
)
from pot_impl.training.datasets import Dataset
from pot_impl.training.environment import Environment, deterministic
from pot_impl.training.reexecution import detached_copy
from pot_impl.training.segments import SegmentLeaf
from pot_impl.training.session import SegmentOutcome, TrainingSession
from pot_impl.training.task import PreparedTask, TrainingOrder
from pot_impl.training.trainer import ProofServer, TrainingRun, make_claim

ModelState = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Segment:
    """What a cheating trainer commits to for one segment."""

    checkpoint: dict[str, torch.Tensor]
    batch_digest: bytes
    losses: tuple[float, ...]
    rounding: bytes = b""
    """The rounding log of the steps it did train, under reproducible numerics."""
    steps: tuple[bytes, ...] = ()
    """With the task's ``step_digests``: the digest of its state after each step but the last."""

    @classmethod
    def trained(cls, outcome: SegmentOutcome) -> Segment:
        """A segment trained for real."""
        checkpoint = detached_copy(outcome.checkpoint)
        return cls(
            checkpoint, outcome.batch_digest, outcome.losses, outcome.near_ties.encode(), outcome.step_digests
        )


def _commit(
    order: TrainingOrder,
    store: CheckpointStore,
    env: Environment,
    segments: list[Segment],
    score: int,
) -> TrainingRun:
    """Store the checkpoints, build leaves and the claim, exactly as the honest trainer does."""
    leaves = []
    for index, segment in enumerate(segments):
        digest = store.put(segment.checkpoint)
        leaves.append(
            SegmentLeaf(index, digest, segment.batch_digest, segment.losses, segment.rounding, segment.steps)
        )
    final_model = model_digest(segments[-1].checkpoint)
    claim, encoded = make_claim(order, leaves, final_model, score, env)
    return TrainingRun(claim, tuple(leaves), ProofServer(encoded, store))


def train_skipping_steps(
    order: TrainingOrder,
    prepared: PreparedTask,
    store: CheckpointStore,
    env: Environment,
    faked_segments: Collection[int],
    skipped_steps: int = 1,
    forward_skipped: bool = False,
) -> TrainingRun:
    """Skip the last ``skipped_steps`` steps of each of ``faked_segments``; every other segment is
    trained honestly from the (faked) state before it. The loss trace is padded with the last real
    loss, or with ``forward_skipped`` each skipped step's loss is computed by a forward pass
    without the update: for one skipped step that is the honest loss, so the trace stays within
    any tolerance while the backward pass and update are saved. With the task's ``step_digests``
    the committed trajectory is the cheater's own (honest steps, then the last trained weights with
    the step counted on), so it can supply any committed state in a dispute."""
    task = order.task
    if not 1 <= skipped_steps <= task.segment_length:
        raise ValueError("skipped_steps must be in [1, segment_length]")
    session = TrainingSession(prepared, order.data_order_seed, env)
    segments = []
    for index in range(task.segments):
        first_step = session.step
        if index in faked_segments:
            steps = session.run_steps(task.segment_length - skipped_steps, digest_steps=task.step_digests)
            losses = steps.losses.cpu().tolist()
            trail = list(steps.state_digests)
            if task.step_digests:  # the skipped steps' states: the last trained weights, the step counted
                for step in range(session.step + 1, first_step + task.segment_length):
                    session.step = step
                    trail.append(checkpoint_digest(session.checkpoint()))
            session.step = first_step + task.segment_length
            if forward_skipped:
                first_skipped = first_step + task.segment_length - skipped_steps
                trace = tuple(losses + _forward_losses(session, range(first_skipped, session.step)))
            else:
                padding = losses[-1:] if losses else [float("nan")]
                trace = tuple(losses + padding * skipped_steps)
            batch_digest = session.batch_digest(first_step, task.segment_length)
            rounding = steps.near_ties.encode()
            checkpoint = detached_copy(session.checkpoint())
            segments.append(Segment(checkpoint, batch_digest, trace, rounding, tuple(trail)))
        else:
            outcome = session.run_segment()
            segments.append(Segment.trained(outcome))
    return _commit(order, store, env, segments, session.evaluate())


def _forward_losses(session: TrainingSession, steps: range) -> list[float]:
    """Each step's training loss at the session's current weights, by a forward pass alone."""
    losses = []
    with deterministic(session.env), torch.no_grad(), torch.random.fork_rng(devices=[]):
        session.model.train()
        for step in steps:
            indices = session.batch_indices(step).to(session.device)
            inputs = session.train_inputs.index_select(0, indices)
            loss = classification_loss(session.model(inputs), session.train_targets.index_select(0, indices))
            losses.append(float(loss.to(torch.float32)))
    return losses


def _forged_run(
    order: TrainingOrder,
    prepared: PreparedTask,
    store: CheckpointStore,
    env: Environment,
    weights_after: Callable[[int, ModelState], ModelState],
) -> TrainingRun:
    """Commit checkpoints whose model weights are ``weights_after(segment, initial weights)``, with the
    honest optimizer/RNG layout and losses evaluated on the order's real batches."""
    task = order.task
    session = TrainingSession(prepared, order.data_order_seed, env)
    initial: ModelState = {k: v.detach().clone() for k, v in session.model.state_dict().items()}
    session.run_steps(1)  # one real step gives the optimizer-state layout a verifier expects
    layout = detached_copy(session.checkpoint())
    segments = []
    for index in range(task.segments):
        weights = weights_after(index, initial)
        session.model.load_state_dict(weights)
        first_step = index * task.segment_length
        losses = _losses_on_batches(session, first_step, task.segment_length)
        checkpoint = {**layout, **{MODEL_PREFIX + k: v.clone() for k, v in weights.items()}}
        checkpoint["step"] = torch.tensor([first_step + task.segment_length], dtype=torch.int64)
        segments.append(Segment(checkpoint, session.batch_digest(first_step, task.segment_length), losses))
    return _commit(order, store, env, segments, session.evaluate())


def _losses_on_batches(session: TrainingSession, first_step: int, count: int) -> tuple[float, ...]:
    """Forward-only losses of the current weights on the order's batches: a cheap, plausible trace."""
    losses = []
    with deterministic(session.env), torch.no_grad():
        session.model.eval()
        for step in range(first_step, first_step + count):
            indices = session.batch_indices(step).to(session.device)
            inputs = session.train_inputs.index_select(0, indices)
            targets = session.train_targets.index_select(0, indices)
            losses.append(float(classification_loss(session.model(inputs), targets)))
    return tuple(losses)


def interpolate_to_stolen(
    order: TrainingOrder,
    prepared: PreparedTask,
    store: CheckpointStore,
    env: Environment,
    stolen: Mapping[str, torch.Tensor],
) -> TrainingRun:
    """Checkpoint i holds initial + (i+1)/n * (stolen - initial): a smooth fake path to a stolen model."""
    segments = order.task.segments

    def weights_after(index: int, initial: ModelState) -> ModelState:
        fraction = (index + 1) / segments
        return {k: initial[k] + fraction * (stolen[k] - initial[k]) for k in initial}

    return _forged_run(order, prepared, store, env, weights_after)


def fabricate_stolen_trajectory(
    order: TrainingOrder,
    prepared: PreparedTask,
    store: CheckpointStore,
    env: Environment,
    stolen: Mapping[str, torch.Tensor],
    noise: float = 0.05,
    seed: int = 0,
) -> TrainingRun:
    """Checkpoint i is the stolen model plus noise shrinking to zero at the end: a fake convergence."""
    segments = order.task.segments
    generator = torch.Generator().manual_seed(seed)

    def weights_after(index: int, initial: ModelState) -> ModelState:
        scale = noise * (1 - (index + 1) / segments)
        return {
            k: stolen[k] + scale * torch.randn(stolen[k].shape, generator=generator)
            if stolen[k].is_floating_point()
            else stolen[k].clone()
            for k in initial
        }

    return _forged_run(order, prepared, store, env, weights_after)


def train_on_other_data(
    order: TrainingOrder,
    prepared: PreparedTask,
    store: CheckpointStore,
    env: Environment,
    substitute: Dataset,
) -> TrainingRun:
    """Train for real on ``substitute`` (same shapes) while claiming the order's batch indices."""
    session = TrainingSession(PreparedTask(order.task, substitute), order.data_order_seed, env)
    segments = []
    for _ in range(order.task.segments):
        outcome = session.run_segment()
        segments.append(Segment.trained(outcome))
    return _commit(order, store, env, segments, session.evaluate())


def inflate_score(order: TrainingOrder, run: TrainingRun, env: Environment, increase: int) -> TrainingRun:
    """The same proof, with the claimed score raised by ``increase`` basis points."""
    claim, encoded = make_claim(
        order, run.leaves, run.claim.final_model_digest, run.claim.score + increase, env
    )
    return TrainingRun(claim, run.leaves, ProofServer(encoded, run.server.store))


@dataclass(frozen=True)
class WithholdingServer:
    """Serves the committed leaves but only the checkpoints in ``served``."""

    leaves: tuple[bytes, ...]
    store: CheckpointStore
    served: frozenset[bytes]

    def fetch(self, digest: bytes) -> bytes:
        if digest not in self.served:
            raise CheckpointUnavailable(f"trainer refuses to serve {digest.hex()[:16]}")
        return self.store.fetch(digest)


def withhold_checkpoints(run: TrainingRun, served: Collection[bytes] = ()) -> WithholdingServer:
    """A server for ``run`` that refuses every checkpoint except those in ``served``."""
    return WithholdingServer(run.server.leaves, run.server.store, frozenset(served))
