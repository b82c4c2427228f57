"""The honest trainer: determinism, checkpoints, and claims that verify in tier A and tier B."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from nacl.signing import SigningKey

from pot_impl.training.checkpoint import (
    CheckpointError,
    CheckpointStore,
    CheckpointUnavailable,
    checkpoint_digest,
    decode_checkpoint,
    encode_checkpoint,
    model_digest,
)
from pot_impl.training.environment import Environment
from pot_impl.training.merkle import MerkleTree
from pot_impl.training.session import TrainingSession
from pot_impl.training.task import TrainingOrder
from pot_impl.training.trainer import TrainingRun, train
from pot_impl.training.validator import Validator
from tests.training.conftest import ENV, make_order, prepare

ARCHITECTURES = ["mlp", "cnn", "transformer_lm"]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_training_is_deterministic_and_verifies_exactly(architecture: str, tmp_path: Path) -> None:
    order = make_order(architecture, steps=8, segment_length=2)
    first = train(order, prepare(order), CheckpointStore(tmp_path / "a"), ENV)
    second = train(order, prepare(order), CheckpointStore(tmp_path / "b"), ENV, background_writes=False)
    assert first.claim == second.claim
    assert first.leaves == second.leaves
    verdict = Validator(SigningKey(b"\x07" * 32), 2).validate(order.encode(), first.claim, first.server)
    assert verdict.accepted, verdict.reason
    assert verdict.tier == "A" and verdict.score == first.claim.score and verdict.evidence is None


def test_the_order_fixes_the_trajectory(tmp_path: Path) -> None:
    order = make_order("mlp", steps=4, segment_length=2)
    base = train(order, prepare(order), CheckpointStore(tmp_path / "base"), ENV).claim
    reseeded = TrainingOrder(order.task, b"\xff" * 32)
    other = train(reseeded, prepare(reseeded), CheckpointStore(tmp_path / "other"), ENV).claim
    assert other.merkle_root != base.merkle_root and other.final_model_digest != base.final_model_digest


def test_claim_commits_to_every_leaf(honest_run: TrainingRun, mlp_order: TrainingOrder) -> None:
    claim = honest_run.claim
    assert claim.segments == mlp_order.task.segments == len(honest_run.leaves)
    assert MerkleTree([leaf.encode() for leaf in honest_run.leaves]).root == claim.merkle_root
    assert [leaf.index for leaf in honest_run.leaves] == list(range(claim.segments))
    assert all(len(leaf.losses) == mlp_order.task.segment_length for leaf in honest_run.leaves)
    session, k = (
        TrainingSession(prepare(mlp_order), mlp_order.data_order_seed, ENV),
        mlp_order.task.segment_length,
    )
    assert [leaf.batch_digest for leaf in honest_run.leaves] == [
        session.batch_digest(index * k, k) for index in range(claim.segments)
    ]
    final = honest_run.server.store.load(honest_run.leaves[-1].checkpoint_digest)
    assert model_digest(final) == claim.final_model_digest
    assert int(final["step"][0]) == mlp_order.task.steps
    assert honest_run.leaves[0].losses[0] > honest_run.leaves[-1].losses[-1], (
        "training should reduce the loss"
    )


def test_store_serves_only_verified_checkpoints(honest_run: TrainingRun, tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    checkpoint = honest_run.server.store.load(honest_run.leaves[0].checkpoint_digest)
    digest = store.put(checkpoint)
    assert digest == honest_run.leaves[0].checkpoint_digest
    assert checkpoint_digest(store.load(digest)) == digest
    with pytest.raises(CheckpointUnavailable):
        store.fetch(b"\x00" * 32)
    files = sorted(tmp_path.iterdir())
    inode = store.path(digest).stat().st_ino
    assert store.put(checkpoint) == store.put_bytes(store.fetch(digest)) == digest
    assert sorted(tmp_path.iterdir()) == files and store.path(digest).stat().st_ino == inode, (
        "a checkpoint already stored is kept, not rewritten"
    )
    tampered = dict(checkpoint)
    tampered["step"] = torch.tensor([99], dtype=torch.int64)
    with pytest.raises(CheckpointError, match="does not match its digest"):
        decode_checkpoint(encode_checkpoint(tampered), digest)
    with pytest.raises(CheckpointError, match="malformed"):
        decode_checkpoint(b"garbage")


def test_restore_rejects_checkpoints_of_another_shape(mlp_order: TrainingOrder) -> None:
    session = TrainingSession(prepare(mlp_order), mlp_order.data_order_seed, ENV)
    original = {k: v.clone() for k, v in session.checkpoint().items()}
    extra = {**original, "optim/0/smuggled": torch.zeros(3)}
    wrong_shape = {**original, "model/net.0.weight": torch.zeros(2, 2)}
    no_step = {k: v for k, v in original.items() if k != "step"}
    for bad in (extra, wrong_shape, no_step):
        with pytest.raises(CheckpointError):
            session.restore(bad)
    session.restore(original)
    assert checkpoint_digest(session.checkpoint()) == checkpoint_digest(original)


def test_tier_b_accepts_honest_drift_across_thread_counts(
    honest_run: TrainingRun, mlp_order: TrainingOrder
) -> None:
    """A validator with another thread count is in another environment: it must use tier B and accept."""
    other_env = Environment("cpu", 2)
    validator = Validator(SigningKey(b"\x08" * 32), mlp_order.task.segments, env=other_env)
    verdict = validator.validate(mlp_order.encode(), honest_run.claim, honest_run.server)
    assert verdict.accepted, verdict.reason
    assert verdict.tier == "B" and len(verdict.drifts) == mlp_order.task.segments
