"""Every cheating trainer is rejected, and its fraud proof convinces an independent checker."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from conformance.adversaries import (
    fabricate_stolen_trajectory,
    inflate_score,
    interpolate_to_stolen,
    train_on_other_data,
    train_skipping_steps,
    withhold_checkpoints,
)
from pot_impl.training.checkpoint import MODEL_PREFIX, CheckpointStore
from pot_impl.training.datasets import Dataset, synthetic_dataset
from pot_impl.training.environment import Environment
from pot_impl.training.evidence import FraudEvidence
from pot_impl.training.merkle import MerkleTree
from pot_impl.training.proof_checker import TrainingProofChecker
from pot_impl.training.reexecution import Reexecutor
from pot_impl.training.sampling import draw_sample
from pot_impl.training.task import TrainingOrder
from pot_impl.training.trainer import TrainingRun
from pot_impl.training.validator import Validator
from tests.training.conftest import DATASETS, ENV, make_order, prepare

CheatFactory = Callable[[TrainingOrder, CheckpointStore, TrainingRun], TrainingRun]


def stolen_model(victim: TrainingRun) -> dict[str, torch.Tensor]:
    final = victim.server.store.load(victim.leaves[-1].checkpoint_digest)
    return {k[len(MODEL_PREFIX) :]: v for k, v in final.items() if k.startswith(MODEL_PREFIX)}


def other_data() -> Dataset:
    generator, params = DATASETS["mlp"]
    return synthetic_dataset(generator, {**params, "seed": params["seed"] + 1})


CHEATS: dict[str, CheatFactory] = {
    "skipped steps everywhere": lambda order, store, victim: train_skipping_steps(
        order, prepare(order), store, ENV, range(order.task.segments)
    ),
    "interpolated to a stolen model": lambda order, store, victim: interpolate_to_stolen(
        order, prepare(order), store, ENV, stolen_model(victim)
    ),
    "stolen model, fabricated trajectory": lambda order, store, victim: fabricate_stolen_trajectory(
        order, prepare(order), store, ENV, stolen_model(victim)
    ),
    "trained on other data": lambda order, store, victim: train_on_other_data(
        order, prepare(order), store, ENV, other_data()
    ),
    "inflated score": lambda order, store, victim: inflate_score(order, victim, ENV, 2500),
}
VALIDATOR_ENVS = {"tier A": ENV, "tier B": Environment("cpu", 2)}


@pytest.mark.parametrize("tier", sorted(VALIDATOR_ENVS))
@pytest.mark.parametrize("cheat", sorted(CHEATS))
def test_cheat_is_rejected_with_a_fraud_proof_others_can_check(
    cheat: str, tier: str, mlp_order: TrainingOrder, honest_run: TrainingRun, tmp_path: Path
) -> None:
    run = CHEATS[cheat](mlp_order, CheckpointStore(tmp_path), honest_run)
    validator = Validator(SigningKey(b"\x05" * 32), 3, env=VALIDATOR_ENVS[tier])
    verdict = validator.validate(mlp_order.encode(), run.claim, run.server)
    assert not verdict.accepted
    assert verdict.tier == tier[-1]
    assert verdict.evidence is not None, verdict.reason
    for checker_env in VALIDATOR_ENVS.values():
        checker = TrainingProofChecker(env=checker_env)
        assert checker.check_fraud_proof(mlp_order.encode(), run.claim.commitment, verdict.evidence)
        assert checker.check_sample(
            mlp_order.encode(),
            run.claim.commitment,
            bytes(validator.key.verify_key),
            verdict.sample,
            verdict.seed_signature,
        )


def test_refusing_to_serve_checkpoints_fails_verification(
    mlp_order: TrainingOrder, honest_run: TrainingRun
) -> None:
    only_final = [honest_run.leaves[-1].checkpoint_digest]
    for served in ([], only_final):
        source = withhold_checkpoints(honest_run, served)
        verdict = Validator(SigningKey(b"\x06" * 32), 3).validate(
            mlp_order.encode(), honest_run.claim, source
        )
        assert not verdict.accepted and "did not serve" in verdict.reason
        assert verdict.evidence is None  # unavailability cannot be proved to a third party


def test_partial_fake_is_caught_exactly_when_the_sample_hits_it(
    mlp_order: TrainingOrder, tmp_path: Path
) -> None:
    faked = {3}
    run = train_skipping_steps(mlp_order, prepare(mlp_order), CheckpointStore(tmp_path), ENV, faked)
    outcomes = set()
    for seed in range(16):
        verdict = Validator(SigningKey(seed.to_bytes(32, "big")), 2).validate(
            mlp_order.encode(), run.claim, run.server
        )
        hit = bool(faked & set(verdict.sample))
        assert verdict.accepted is not hit, (verdict.sample, verdict.reason)
        outcomes.add(hit)
    assert outcomes == {True, False}


def test_honest_claims_cannot_be_framed(mlp_order: TrainingOrder, honest_run: TrainingRun) -> None:
    """Evidence against an honest claim, or evidence not bound to the ledger's proof root, is refused."""
    checker = TrainingProofChecker()
    order_bytes = mlp_order.encode()
    leaves = honest_run.server.leaves
    tree = MerkleTree(leaves)
    store = honest_run.server.store
    index = 4
    honest_evidence = FraudEvidence(
        "segment",
        honest_run.claim.encode(),
        index,
        leaves[index],
        tuple(tree.inclusion_path(index)),
        leaves[index - 1],
        tuple(tree.inclusion_path(index - 1)),
        store.fetch(honest_run.leaves[index - 1].checkpoint_digest),
        store.fetch(honest_run.leaves[index].checkpoint_digest),
    )
    root = honest_run.claim.commitment
    assert not checker.check_fraud_proof(order_bytes, root, honest_evidence.encode())
    score_evidence = FraudEvidence(
        "score",
        honest_run.claim.encode(),
        len(leaves) - 1,
        leaves[-1],
        tuple(tree.inclusion_path(len(leaves) - 1)),
        end=store.fetch(honest_run.leaves[-1].checkpoint_digest),
    )
    assert not checker.check_fraud_proof(order_bytes, root, score_evidence.encode())
    forged_start = dataclasses.replace(
        honest_evidence, start=store.fetch(honest_run.leaves[0].checkpoint_digest)
    )
    wrong_index = dataclasses.replace(honest_evidence, index=index + 1)
    assert not checker.check_fraud_proof(order_bytes, root, forged_start.encode())
    assert not checker.check_fraud_proof(order_bytes, root, wrong_index.encode())
    assert not checker.check_fraud_proof(order_bytes, b"\x00" * 32, honest_evidence.encode())
    assert not checker.check_fraud_proof(order_bytes, root, b"\x93garbage")


def test_partial_fakes_are_caught_at_the_rate_sampling_theory_predicts(tmp_path: Path) -> None:
    """Every faked segment fails re-execution and no honest one does; over 400 validator keys the
    signed samples then catch the fake at the hypergeometric rate (within 4 standard deviations)."""
    order = make_order("mlp", steps=120, segment_length=2)
    segments, faked, q = order.task.segments, {5, 17, 23, 40, 51, 58}, 8
    run = train_skipping_steps(order, prepare(order), CheckpointStore(tmp_path), ENV, faked)
    replayer = Reexecutor(order, prepare(order), ENV)
    store = run.server.store
    failing = set()
    for leaf in run.leaves:
        start = (
            replayer.initial if leaf.index == 0 else store.load(run.leaves[leaf.index - 1].checkpoint_digest)
        )
        if replayer.check_segment(leaf, start, None, None).mismatch is not None:
            failing.add(leaf.index)
    assert failing == faked
    trials = 400
    caught = 0
    for seed in range(trials):
        key = SigningKey(hashlib.sha256(b"rate" + seed.to_bytes(4, "big")).digest())
        sample, _ = draw_sample(key, order.digest, run.claim.commitment, segments, q)
        caught += not failing.isdisjoint(sample)
    expected = 1 - math.comb(segments - len(faked), q) / math.comb(segments, q)
    spread = math.sqrt(expected * (1 - expected) / trials)
    assert abs(caught / trials - expected) < 4 * spread


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_checker_never_raises_on_corrupted_evidence(
    data: st.DataObject, mlp_order: TrainingOrder, honest_run: TrainingRun
) -> None:
    """Coordinators run the checker inside the replicated ledger: corrupted evidence against an honest
    claim gives a plain False (never an exception, never an upheld proof)."""
    leaves, store = honest_run.server.leaves, honest_run.server.store
    tree = MerkleTree(leaves)
    evidence = FraudEvidence(
        "segment",
        honest_run.claim.encode(),
        1,
        leaves[1],
        tuple(tree.inclusion_path(1)),
        leaves[0],
        tuple(tree.inclusion_path(0)),
        store.fetch(honest_run.leaves[0].checkpoint_digest),
        store.fetch(honest_run.leaves[1].checkpoint_digest),
    ).encode()
    position = data.draw(st.integers(0, len(evidence) - 1))
    corrupted = (
        evidence[:position]
        + bytes([evidence[position] ^ data.draw(st.integers(1, 255))])
        + evidence[position + 1 :]
    )
    checker = TrainingProofChecker()
    assert checker.check_fraud_proof(mlp_order.encode(), honest_run.claim.commitment, corrupted) is False
