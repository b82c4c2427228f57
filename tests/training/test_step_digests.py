"""Per-step digests for the dispute game: committed in the leaves, checked by validators in tier A,
opened and refereed by the ledger's proof checker one step at a time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from benchmarks.training_orders import make_order, prepared
from conformance.adversaries import train_skipping_steps
from pot_impl.ledger.ledger import Ledger
from pot_impl.ledger.proofs import StepRuling
from pot_impl.ledger.records import LedgerParams
from pot_impl.ledger.transactions import Order
from pot_impl.training.checkpoint import CheckpointStore, encode_checkpoint
from pot_impl.training.environment import Environment
from pot_impl.training.evidence import committed_segment
from pot_impl.training.proof_checker import TrainingProofChecker
from pot_impl.training.reexecution import Reexecutor
from pot_impl.training.reproducible import REPRODUCIBLE
from pot_impl.training.segments import STEP_DIGESTS_FLAG, ProofFormatError, SegmentLeaf
from pot_impl.training.task import TaskError, TrainingOrder, decode_task, encode_task
from pot_impl.training.trainer import TrainingRun, make_claim, train
from pot_impl.training.validator import Validator

STEPS, K = 8, 4
ENV = Environment("cpu", 1)


def order_with_digests(numerics: str = "native") -> TrainingOrder:
    order = make_order("tiny_mlp", STEPS, K, batch_size=16, numerics=numerics)
    return dataclasses.replace(order, task=dataclasses.replace(order.task, step_digests=True))


def opening(run: TrainingRun, index: int) -> bytes:
    return committed_segment(run.claim, run.server, index, checkpoints=False)


def state_after(order: TrainingOrder, run: TrainingRun, steps: int) -> bytes:
    """The honest state ``steps`` steps into segment 1 (from its committed start)."""
    replayer = Reexecutor(order, prepared(order), ENV)
    replayer.restore_at(run.server.store.load(run.leaves[0].checkpoint_digest), K)
    replayer.session.run_steps(steps)
    return encode_checkpoint(replayer.session.checkpoint())


def test_the_task_flag_is_left_out_when_off_and_must_be_a_boolean() -> None:
    order = make_order("tiny_mlp", STEPS, K)
    assert b"step_digests" not in encode_task(order.task)
    on = dataclasses.replace(order.task, step_digests=True)
    assert decode_task(encode_task(on)) == on
    with pytest.raises(TaskError, match="step_digests"):
        decode_task(encode_task(on).replace(b'"step_digests":true', b'"step_digests":1'))


@given(
    st.integers(0, 2**31 - 1),
    st.lists(st.floats(allow_nan=False), min_size=1, max_size=9),
    st.booleans(),
    st.integers(0, 3),
)
def test_leaves_round_trip_with_and_without_step_digests(
    index: int, losses: list[float], digests: bool, decisions: int
) -> None:
    steps = tuple(bytes([i]) * 32 for i in range(len(losses) - 1)) if digests else ()
    leaf = SegmentLeaf(index, b"c" * 32, b"b" * 32, tuple(losses), b"r" * 12 * decisions, steps)
    encoded = leaf.encode()
    assert SegmentLeaf.decode(encoded) == leaf
    if steps or decisions:
        with pytest.raises(ProofFormatError):
            SegmentLeaf.decode(encoded[:-1])


def test_a_flagged_leaf_counts_its_losses_without_the_flag() -> None:
    leaf = SegmentLeaf(0, b"c" * 32, b"b" * 32, (1.0, 2.0), b"", (b"s" * 32,))
    assert int.from_bytes(leaf.encode()[68:72], "big") == 2 | STEP_DIGESTS_FLAG
    assert SegmentLeaf(0, b"c" * 32, b"b" * 32, (1.0, 2.0)).encode()[68:72] == (2).to_bytes(4, "big")


def test_validators_check_every_step_digest_in_tier_a(tmp_path: Path) -> None:
    order = order_with_digests()
    run = train(order, prepared(order), CheckpointStore(tmp_path), ENV)
    assert all(len(leaf.steps) == K - 1 for leaf in run.leaves)
    validator = Validator(SigningKey(b"\x01" * 32), 2, env=ENV)
    assert validator.validate(order.encode(), run.claim, run.server).accepted
    leaves = list(run.leaves)
    leaves[1] = dataclasses.replace(leaves[1], steps=(leaves[0].steps[0], *leaves[1].steps[1:]))
    claim, encoded = make_claim(order, leaves, run.claim.final_model_digest, run.claim.score, ENV)
    tampered = TrainingRun(claim, tuple(leaves), dataclasses.replace(run.server, leaves=encoded))
    verdict = validator.audit(order.encode(), tampered.claim, tampered.server, (1,))
    assert not verdict.accepted and "per-step state digests differ" in verdict.reason


def test_the_checker_opens_committed_digests_and_referees_one_step(tmp_path: Path) -> None:
    order = order_with_digests()
    honest = train(order, prepared(order), CheckpointStore(tmp_path / "honest"), ENV)
    checker = TrainingProofChecker(env=ENV)
    task, root = order.encode(), honest.claim.commitment
    assert checker.step_digest(task, root, 1, 2, opening(honest, 1)) == honest.leaves[1].steps[1]
    assert checker.step_digest(task, root, 1, K, opening(honest, 1)) == honest.leaves[1].checkpoint_digest
    assert checker.step_digest(task, root, 0, 1, opening(honest, 1)) is None  # another segment's opening
    assert checker.step_digest(task, b"\x00" * 32, 1, 1, opening(honest, 1)) is None
    assert checker.referee(task, root, 1, 2, state_after(order, honest, 2), opening(honest, 1)) is (
        StepRuling.STEP_VALID
    )
    assert checker.referee(task, root, 1, 2, state_after(order, honest, 1), opening(honest, 1)) is (
        StepRuling.WRONG_STATE
    )
    assert checker.referee(task, root, 1, 2, b"junk", opening(honest, 1)) is StepRuling.WRONG_STATE


def test_a_skipped_step_is_proved_by_refereeing_it_alone(tmp_path: Path) -> None:
    order = order_with_digests()
    cheat = train_skipping_steps(order, prepared(order), CheckpointStore(tmp_path), ENV, {1}, skipped_steps=2)
    checker = TrainingProofChecker(env=ENV)
    task, root = order.encode(), cheat.claim.commitment
    first_skipped = K - 2  # steps 0..1 of the segment trained, step 2 -> 3 skipped
    agreed = state_after(order, cheat, first_skipped)
    ruling = checker.referee(task, root, 1, first_skipped, agreed, opening(cheat, 1))
    assert ruling is StepRuling.FRAUD_PROVED
    assert checker.referee(
        task, root, 1, first_skipped - 1, state_after(order, cheat, 1), opening(cheat, 1)
    ) is (StepRuling.STEP_VALID)


def test_the_referee_declines_a_step_it_cannot_reproduce_bit_for_bit(tmp_path: Path) -> None:
    order = order_with_digests()
    run = train(order, prepared(order), CheckpointStore(tmp_path), Environment("cpu", 2))
    checker = TrainingProofChecker(env=ENV)
    supplied = state_after(order, run, 1)
    assert checker.referee(order.encode(), run.claim.commitment, 1, 1, supplied, opening(run, 1)) is None
    reproducible = order_with_digests(REPRODUCIBLE)
    run = train(reproducible, prepared(reproducible), CheckpointStore(tmp_path / "r"), Environment("cpu", 2))
    supplied = state_after(reproducible, run, 1)
    ruling = checker.referee(reproducible.encode(), run.claim.commitment, 1, 1, supplied, opening(run, 1))
    assert (
        ruling is StepRuling.STEP_VALID
    )  # reproducible numerics: judged bit for bit on another thread count


def test_under_the_game_the_ledger_takes_only_orders_whose_leaves_commit_every_step() -> None:
    """An order the game could not bisect (no per-step digests, or segments of another length)
    would leave an honest trainer unable to reveal its digests: the ledger refuses it."""
    params = LedgerParams(2, 1, 1, 1, 1, 2, dispute_steps=K, move_window=2, dispute_bond=1)
    fit = order_with_digests().task
    for task, reason in (
        (fit, "ok"),
        (dataclasses.replace(fit, step_digests=False), "unfit-for-disputes"),
        (dataclasses.replace(fit, segment_length=2), "unfit-for-disputes"),
    ):
        ledger = Ledger(params, {"client": 100}, TrainingProofChecker(env=ENV))
        assert ledger.apply("client", Order(encode_task(task), 10, 1, 5), 1).reason == reason
    plain = Ledger(
        dataclasses.replace(params, dispute_steps=0), {"client": 100}, TrainingProofChecker(env=ENV)
    )
    assert plain.apply("client", Order(encode_task(make_order("tiny_mlp", STEPS, K).task), 10, 1, 5), 1).ok
