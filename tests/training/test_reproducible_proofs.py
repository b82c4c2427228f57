"""Reproducible numerics in proofs: the rounding log travels in the committed leaves, validators in
other environments follow it and check bit for bit, and a log cannot steer what is not a tie."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from nacl.signing import SigningKey

from benchmarks.training_orders import make_order, prepared
from conformance.adversaries import train_skipping_steps
from pot_impl.training.checkpoint import CheckpointStore
from pot_impl.training.environment import Environment, run_fingerprint
from pot_impl.training.reexecution import Reexecutor
from pot_impl.training.reproducible import NATIVE, REPRODUCIBLE, RoundingLog
from pot_impl.training.segments import ProofFormatError, SegmentLeaf
from pot_impl.training.task import TrainingOrder
from pot_impl.training.trainer import TrainingRun, train
from pot_impl.training.validator import Validator


def reproducible_run(tmp_path: Path, config: str = "tiny_mlp") -> tuple[TrainingOrder, TrainingRun]:
    order = make_order(config, 8, 4, batch_size=16, numerics=REPRODUCIBLE)
    return order, train(order, prepared(order), CheckpointStore(tmp_path / "store"), Environment("cpu", 1))


def test_a_validator_on_another_thread_count_verifies_a_reproducible_claim_bit_for_bit(
    tmp_path: Path,
) -> None:
    order, run = reproducible_run(tmp_path, "transformer_lm")
    assert any(leaf.rounding for leaf in run.leaves)  # the log travels in the committed leaves
    validator = Validator(SigningKey(b"\x05" * 32), 2, env=Environment("cpu", 2))
    verdict = validator.validate(order.encode(), run.claim, run.server)
    assert verdict.accepted, verdict.reason
    assert verdict.tier == "A"  # although the environments differ


def judge_with_log(order: TrainingOrder, run: TrainingRun, index: int, rounding: bytes) -> str | None:
    replayer = Reexecutor(order, prepared(order), Environment("cpu", 1))
    start = replayer.initial if index == 0 else run.server.store.load(run.leaves[index - 1].checkpoint_digest)
    leaf = dataclasses.replace(run.leaves[index], rounding=rounding)
    return replayer.check_segment(leaf, start, None, None).mismatch


def test_a_logged_decision_where_there_is_no_tie_cannot_steer_the_replay(tmp_path: Path) -> None:
    order, run = reproducible_run(tmp_path)
    assert judge_with_log(order, run, 1, run.leaves[1].rounding) is None
    log = RoundingLog.decode(run.leaves[1].rounding)
    step = log.at_step(4)
    logged = dict(zip(step.positions.tolist(), step.bits.tolist(), strict=True))
    free = next(position for position in range(1, 10_000) if position not in logged)
    positions = np.sort(np.append(step.positions, free))
    one = 0x3F800000  # the float32 1.0: no neighbour of any value here
    bits = np.array([logged.get(position, one) for position in positions.tolist()])
    forged = RoundingLog(np.full(len(positions), 4), positions, bits)
    rest = RoundingLog.of([forged, *(log.at_step(later) for later in range(5, 8))])
    assert judge_with_log(order, run, 1, rest.encode()) is None  # the honest state, as committed
    replayer = Reexecutor(order, prepared(order), Environment("cpu", 2))
    replayer.restore_at(run.server.store.load(run.leaves[0].checkpoint_digest), 4)
    assert replayer.session.run_segment(rest).refused == 1


def test_a_rounding_log_outside_its_segment_or_on_a_native_order_is_a_mismatch(tmp_path: Path) -> None:
    order, run = reproducible_run(tmp_path)
    elsewhere = RoundingLog(np.array([0]), np.array([1]), np.array([0x3F800000])).encode()
    assert "outside the segment" in (judge_with_log(order, run, 1, elsewhere) or "")
    native = make_order("tiny_mlp", 8, 4, batch_size=16)
    native_run = train(native, prepared(native), CheckpointStore(tmp_path / "native"), Environment("cpu", 1))
    assert "native" in (judge_with_log(native, native_run, 0, elsewhere) or "")


def test_leaves_carry_their_rounding_log_through_their_encoding(tmp_path: Path) -> None:
    _, run = reproducible_run(tmp_path)
    for leaf in run.leaves:
        assert SegmentLeaf.decode(leaf.encode()) == leaf
    with pytest.raises(ProofFormatError, match="rounding log"):
        SegmentLeaf.decode(run.leaves[0].encode() + b"\x00")


def test_reproducible_claims_pin_the_numerics_not_the_device_or_thread_count() -> None:
    order = make_order("tiny_mlp", 8, 4, numerics=REPRODUCIBLE)
    native = make_order("tiny_mlp", 8, 4)
    one, two = Environment("cpu", 1), Environment("cpu", 2)
    assert run_fingerprint(one, order.task.numerics) == run_fingerprint(two, order.task.numerics)
    assert run_fingerprint(one, native.task.numerics) != run_fingerprint(two, native.task.numerics)


@pytest.mark.parametrize(("numerics", "caught"), [(NATIVE, False), (REPRODUCIBLE, True)])
def test_skipping_the_last_step_of_each_segment_is_caught_on_another_thread_count_only_when_reproducible(
    tmp_path: Path, numerics: str, caught: bool
) -> None:
    """The skipper saves the backward pass and update of 1 step in k and keeps an honest loss
    trace, so it stays inside tier B's tolerance; bit-for-bit verification across environments is
    what catches it."""
    order = make_order("mlp", 100, 50, numerics=numerics)
    store, env = CheckpointStore(tmp_path), Environment("cpu", 1)
    cheat = train_skipping_steps(order, prepared(order), store, env, {0, 1}, forward_skipped=True)
    validator = Validator(SigningKey(b"\x06" * 32), 2, env=Environment("cpu", 2))
    verdict = validator.validate(order.encode(), cheat.claim, cheat.server)
    assert verdict.accepted is not caught, verdict.reason
