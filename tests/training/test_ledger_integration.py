"""The ledger's Claim / Validate / Challenge / Finalize path driven by real training and the real checker."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from conformance.adversaries import interpolate_to_stolen
from pot_impl.ledger.ledger import Ledger
from pot_impl.ledger.proofs import ProofChecker
from pot_impl.ledger.records import LedgerParams, OrderStatus
from pot_impl.ledger.transactions import (
    Challenge,
    Claim,
    Finalize,
    Order,
    Register,
    Role,
    Validate,
    Verdict,
)
from pot_impl.training.checkpoint import MODEL_PREFIX, CheckpointStore
from pot_impl.training.proof_checker import TrainingProofChecker
from pot_impl.training.task import TrainingOrder, TrainingTask, committed_order, encode_task
from pot_impl.training.trainer import TrainingRun, train
from pot_impl.training.validator import Validator
from pot_impl.training.validator import Verdict as ValidationVerdict
from tests.training.conftest import ENV, make_order, make_task, prepare

SAMPLE_SIZE = 3
DEADLINE = 10
STAKE = 100
VALIDATORS = {"val-a": SigningKey(b"\x0a" * 32), "val-b": SigningKey(b"\x0b" * 32)}


def ledger_with_order(task: TrainingTask) -> Ledger:
    """Roles registered and the client's order for ``task`` (posted without a seed) committed."""
    checker: ProofChecker = TrainingProofChecker(env=ENV)
    params = LedgerParams(
        segments=task.segments,
        sample_size=SAMPLE_SIZE,
        validation_quorum=2,
        min_trainer_stake=STAKE,
        min_validator_stake=STAKE,
        challenge_window=5,
    )
    ledger = Ledger(
        params, {"client": 1000, "trainer": 1000, "val-a": 1000, "val-b": 1000, "anyone": 10}, checker
    )
    assert ledger.apply("trainer", Register(Role.TRAINER, b"\x01" * 32, STAKE), 1).ok
    for name, key in VALIDATORS.items():
        assert ledger.apply(name, Register(Role.VALIDATOR, bytes(key.verify_key), STAKE), 1).ok
    receipt = ledger.apply("client", Order(encode_task(task), bounty=500, fee=40, deadline=DEADLINE), 2)
    assert receipt.ok and receipt.created_id == 0
    return ledger


def order_on(ledger: Ledger) -> TrainingOrder:
    """The order as the ledger committed it: the posted task with the ledger's data-order seed."""
    record = ledger.orders[0]
    return committed_order(record.task, record.data_order_seed)


@pytest.fixture(scope="module")
def mlp_order() -> TrainingOrder:
    """Overrides conftest's: the trainer trains on the seed the ledger fixed, not one of its choice."""
    return order_on(ledger_with_order(make_task("mlp")))


def ledger_for(order: TrainingOrder) -> Ledger:
    ledger = ledger_with_order(order.task)
    assert order_on(ledger) == order
    return ledger


def post_claim(ledger: Ledger, run: TrainingRun) -> None:
    claim = run.claim
    assert ledger.apply("trainer", Claim(0, claim.final_model_digest, claim.score, claim.commitment), 3).ok


def vote(validator: str, verdict: ValidationVerdict) -> Validate:
    """The ledger transaction for a validator's off-chain verdict."""
    if verdict.accepted:
        assert verdict.score is not None
        return Validate(0, "trainer", Verdict.ACCEPT, verdict.score, verdict.sample, verdict.seed_signature)
    assert verdict.evidence is not None and verdict.evidence_segment is not None
    return Validate(
        0,
        "trainer",
        Verdict.REJECT,
        0,
        verdict.sample,
        verdict.seed_signature,
        verdict.evidence_segment,
        verdict.evidence,
    )


def test_honest_claim_is_paid(mlp_order: TrainingOrder, honest_run: TrainingRun) -> None:
    ledger = ledger_for(mlp_order)
    post_claim(ledger, honest_run)
    for name, key in VALIDATORS.items():
        verdict = Validator(key, SAMPLE_SIZE, env=ENV).validate(
            mlp_order.encode(), honest_run.claim, honest_run.server
        )
        assert verdict.accepted, verdict.reason
        receipt = ledger.apply(name, vote(name, verdict), 4)
        assert receipt.ok, receipt.reason
    assert ledger.apply("client", Finalize(0), DEADLINE + 5).ok
    assert ledger.orders[0].status == OrderStatus.PAID and ledger.orders[0].winner == "trainer"
    assert ledger.slashed == frozenset()


def test_a_sample_the_validator_chose_itself_is_refused(
    mlp_order: TrainingOrder, honest_run: TrainingRun
) -> None:
    ledger = ledger_for(mlp_order)
    post_claim(ledger, honest_run)
    verdict = Validator(VALIDATORS["val-a"], SAMPLE_SIZE).validate(
        mlp_order.encode(), honest_run.claim, honest_run.server
    )
    chosen = tuple(sorted({0, 1, 2} if verdict.sample != (0, 1, 2) else {3, 4, 5}))
    forged = Validate(0, "trainer", Verdict.ACCEPT, honest_run.claim.score, chosen, verdict.seed_signature)
    assert ledger.apply("val-a", forged, 4).reason == "bad-sample"


def test_a_run_on_a_seed_of_the_clients_choosing_cannot_be_validated(
    mlp_order: TrainingOrder, tmp_path: Path
) -> None:
    """Training the same task on another seed (the client's, say) makes a claim about another
    order: validators' samples are signed over that order's digest, so the ledger refuses them."""
    chosen = make_order("mlp")
    assert chosen.task == mlp_order.task and chosen.data_order_seed != mlp_order.data_order_seed
    run = train(chosen, prepare(chosen), CheckpointStore(tmp_path), ENV)
    ledger = ledger_for(mlp_order)
    post_claim(ledger, run)
    verdict = Validator(VALIDATORS["val-a"], SAMPLE_SIZE, env=ENV).validate(
        chosen.encode(), run.claim, run.server
    )
    assert verdict.accepted, verdict.reason
    assert ledger.apply("val-a", vote("val-a", verdict), 4).reason == "bad-sample"


@pytest.fixture
def cheating_run(mlp_order: TrainingOrder, honest_run: TrainingRun, tmp_path: Path) -> TrainingRun:
    final = honest_run.server.store.load(honest_run.leaves[-1].checkpoint_digest)
    stolen = {k[len(MODEL_PREFIX) :]: v for k, v in final.items() if k.startswith(MODEL_PREFIX)}
    return interpolate_to_stolen(mlp_order, prepare(mlp_order), CheckpointStore(tmp_path), ENV, stolen)


def test_rejection_with_fraud_proof_slashes_the_cheater(
    mlp_order: TrainingOrder, cheating_run: TrainingRun
) -> None:
    ledger = ledger_for(mlp_order)
    post_claim(ledger, cheating_run)
    verdict = Validator(VALIDATORS["val-a"], SAMPLE_SIZE).validate(
        mlp_order.encode(), cheating_run.claim, cheating_run.server
    )
    assert not verdict.accepted
    assert ledger.apply("val-a", vote("val-a", verdict), 4).ok
    assert ledger.votes[(0, "trainer", "val-a")].evidence_upheld == 1
    assert ledger.apply("client", Finalize(0), DEADLINE + 5).ok
    assert ledger.orders[0].status == OrderStatus.REFUNDED
    assert ledger.slashed == frozenset({"trainer"})


def test_challenge_of_a_lazy_accept_slashes_the_validator(
    mlp_order: TrainingOrder, cheating_run: TrainingRun
) -> None:
    """val-b accepts without checking; anyone re-executes val-b's own sample and challenges."""
    ledger = ledger_for(mlp_order)
    post_claim(ledger, cheating_run)
    honest_looking = Validator(VALIDATORS["val-b"], SAMPLE_SIZE).validate(
        mlp_order.encode(), cheating_run.claim, cheating_run.server
    )
    lazy = Validate(
        0,
        "trainer",
        Verdict.ACCEPT,
        cheating_run.claim.score,
        honest_looking.sample,
        honest_looking.seed_signature,
    )
    assert ledger.apply("val-b", lazy, 4).ok
    audit = Validator(SigningKey(b"\x0c" * 32), SAMPLE_SIZE).audit(
        mlp_order.encode(), cheating_run.claim, cheating_run.server, honest_looking.sample
    )
    assert audit.evidence is not None and audit.evidence_segment is not None
    segment = audit.evidence_segment
    receipt = ledger.apply("anyone", Challenge(0, "trainer", "val-b", segment, audit.evidence), 5)
    assert receipt.ok, receipt.reason
    assert ledger.challenges[(0, "trainer", "val-b", segment)].upheld == 1
    assert ledger.apply("client", Finalize(0), DEADLINE + 5).ok
    assert ledger.slashed == frozenset({"trainer", "val-b"})


def test_false_accusation_is_not_upheld_and_costs_the_accuser(
    mlp_order: TrainingOrder, honest_run: TrainingRun, cheating_run: TrainingRun
) -> None:
    """Evidence valid against another claim cannot be replayed against the honest one."""
    ledger = ledger_for(mlp_order)
    post_claim(ledger, honest_run)
    key = VALIDATORS["val-a"]
    against_cheater = Validator(key, SAMPLE_SIZE).validate(
        mlp_order.encode(), cheating_run.claim, cheating_run.server
    )
    honest_sample = Validator(key, SAMPLE_SIZE).validate(
        mlp_order.encode(), honest_run.claim, honest_run.server
    )
    assert against_cheater.evidence is not None
    segment = honest_sample.sample[0]
    accusation = Validate(
        0,
        "trainer",
        Verdict.REJECT,
        0,
        honest_sample.sample,
        honest_sample.seed_signature,
        segment,
        against_cheater.evidence,
    )
    assert ledger.apply("val-a", accusation, 4).ok
    assert ledger.votes[(0, "trainer", "val-a")].evidence_upheld == 0
    assert ledger.apply("client", Finalize(0), DEADLINE + 5).ok
    assert "val-a" in ledger.slashed and "trainer" not in ledger.slashed
