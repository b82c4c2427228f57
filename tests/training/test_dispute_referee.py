"""The one-step referee and per-step digests: a faked step is found by comparing trajectories and
proved by re-executing that step alone; an honest step stands; a wrong supplied state defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.training_orders import make_order, prepared
from conformance.adversaries import train_skipping_steps
from pot_impl.ledger.proofs import StepRuling
from pot_impl.training.checkpoint import CheckpointStore, encode_checkpoint
from pot_impl.training.dispute import RefereeError, first_disagreement, referee, trajectory
from pot_impl.training.environment import Environment
from pot_impl.training.reexecution import Reexecutor
from pot_impl.training.reproducible import NATIVE, REPRODUCIBLE, RoundingLog
from pot_impl.training.task import TrainingOrder
from pot_impl.training.trainer import TrainingRun, train

STEPS, K = 8, 4
TRAINER, OTHER = Environment("cpu", 1), Environment("cpu", 2)


def runs(tmp_path: Path, numerics: str = REPRODUCIBLE) -> tuple[TrainingOrder, TrainingRun, TrainingRun]:
    order = make_order("tiny_mlp", STEPS, K, batch_size=16, numerics=numerics)
    honest = train(order, prepared(order), CheckpointStore(tmp_path / "honest"), TRAINER)
    skipper = train_skipping_steps(
        order, prepared(order), CheckpointStore(tmp_path / "skip"), TRAINER, {1}, forward_skipped=True
    )
    return order, honest, skipper


def segment_one(order: TrainingOrder, run: TrainingRun, env: Environment) -> tuple[Reexecutor, list[bytes]]:
    """A party's digests after each step of segment 1, re-run from the run's committed start."""
    replayer = Reexecutor(order, prepared(order), env)
    start = run.server.store.load(run.leaves[0].checkpoint_digest)
    return replayer, trajectory(replayer, start, K, K, RoundingLog.decode(run.leaves[1].rounding))


def state_after(replayer: Reexecutor, run: TrainingRun, steps: int) -> bytes:
    """The state ``steps`` steps into segment 1, as the trainer would supply it."""
    trajectory(
        replayer,
        run.server.store.load(run.leaves[0].checkpoint_digest),
        K,
        steps,
        RoundingLog.decode(run.leaves[1].rounding),
    )
    return encode_checkpoint(replayer.session.checkpoint())


def test_a_skipped_last_step_is_found_by_the_trajectories_and_proved_by_one_step(tmp_path: Path) -> None:
    order, _, skipper = runs(tmp_path)
    _, honest_digests = segment_one(order, skipper, OTHER)  # an honest challenger elsewhere
    claimed = [*honest_digests[:-1], skipper.leaves[1].checkpoint_digest]  # what the skipper reveals
    contested = first_disagreement(claimed, honest_digests)
    assert contested == K - 1  # the last step of the segment
    agreed = honest_digests[contested - 1]
    supplied = state_after(Reexecutor(order, prepared(order), TRAINER), skipper, contested)
    ruling = referee(
        Reexecutor(order, prepared(order), OTHER),
        skipper.claim.environment,
        K + contested,
        supplied,
        agreed,
        claimed[contested],
        RoundingLog.decode(skipper.leaves[1].rounding),
    )
    assert ruling is StepRuling.FRAUD_PROVED


def test_an_honest_step_stands_and_a_wrong_supplied_state_defaults(tmp_path: Path) -> None:
    order, honest, _ = runs(tmp_path)
    _, digests = segment_one(order, honest, TRAINER)
    assert digests[-1] == honest.leaves[1].checkpoint_digest
    assert first_disagreement(digests, segment_one(order, honest, OTHER)[1]) is None
    log = RoundingLog.decode(honest.leaves[1].rounding)
    judge = Reexecutor(order, prepared(order), OTHER)
    supplied = state_after(Reexecutor(order, prepared(order), TRAINER), honest, 2)
    environment = honest.claim.environment
    assert referee(judge, environment, K + 2, supplied, digests[1], digests[2], log) is StepRuling.STEP_VALID
    earlier = state_after(Reexecutor(order, prepared(order), TRAINER), honest, 1)
    assert referee(judge, environment, K + 2, earlier, digests[1], digests[2], log) is StepRuling.WRONG_STATE


def test_a_referee_that_cannot_reproduce_a_native_claim_refuses_to_judge(tmp_path: Path) -> None:
    order, honest, _ = runs(tmp_path, NATIVE)
    _, digests = segment_one(order, honest, TRAINER)
    supplied = state_after(Reexecutor(order, prepared(order), TRAINER), honest, 2)
    elsewhere = Reexecutor(order, prepared(order), OTHER)
    with pytest.raises(RefereeError, match="reproduces"):
        referee(
            elsewhere,
            honest.claim.environment,
            K + 2,
            supplied,
            digests[1],
            digests[2],
            RoundingLog.decode(b""),
        )
