"""Casts whose roles overlap, and challenges with forged evidence, in the ledger specification."""

from __future__ import annotations

import pytest

from model_checker.checker import check
from model_checker.model import ConstantError
from spec.ledger import (
    Challenge,
    ChallengeRecord,
    Claim,
    LedgerBug,
    LedgerParams,
    Order,
    Reason,
    Register,
    Role,
    Validate,
    Verdict,
    apply,
    genesis,
)
from spec.ledger.model import LEDGER_MODELS, Cast, LedgerModelConfig
from tests.spec.test_ledger_models import violated


def test_shared_roles_take_one_account_each() -> None:
    """The client is the last (Byzantine) validator, the first challenger the last trainer; ids stay
    dense and ordered, and each shared account holds the sum of its roles' funds."""
    cast = Cast.of(1, 1, 1, 1, 1, 1, client_validates=True, trainer_challenges=True)
    assert cast == Cast((0,), (1,), (2,), (3,), (0,), (2,))
    assert cast.accounts == 4 and cast.shared == frozenset({0, 2})
    assert cast.funds(escrow=4, stake=1) == [5, 1, 1, 1]
    disjoint = Cast.of(1, 1, 1, 1, 1, 1)
    assert disjoint.accounts == 6 and not disjoint.shared
    assert disjoint.funds(escrow=4, stake=1) == [4, 1, 1, 1, 1, 0]


def test_overlap_needs_both_roles() -> None:
    with pytest.raises(ConstantError, match="client_validates"):
        LedgerModelConfig(clients=0, client_validates=True)
    with pytest.raises(ConstantError, match="trainer_challenges"):
        LedgerModelConfig(challengers=0, trainer_challenges=True)


def test_overlap_model_holds_every_property() -> None:
    result = check(LEDGER_MODELS["ledger-overlap"].instantiate())
    assert not violated(result)
    assert result.verdict == "ok" and result.distinct_states < 2_000


def test_forged_evidence_is_rejected_without_effect() -> None:
    """Evidence about another segment, or another claim's genuine fraud proof, proves nothing about
    the segment named; only the planted bug upholds it."""
    client, honest, cheat, validator, challenger = range(5)
    params = LedgerParams(2, 1, 1, 0, 1, 1, 1)
    state = genesis(params, [4, 1, 1, 1, 0])
    for tx in (
        Register(honest, Role.TRAINER, 1),
        Register(cheat, Role.TRAINER, 1),
        Register(validator, Role.VALIDATOR, 1),
        Order(client, 2, 2, 1),
        Claim(honest, 0, honest, 1, frozenset()),
        Claim(cheat, 0, cheat, 1, frozenset({1})),
        Validate(validator, 0, honest, Verdict.ACCEPT, 1, frozenset({0})),
    ):
        state, receipt = apply(state, tx)
        assert receipt.ok, tx
    for proof in ((0, honest, 1), (0, cheat, 0), (0, cheat, 1)):
        forged = Challenge(challenger, 0, honest, validator, 0, proof)
        assert apply(state, forged)[1].reason is Reason.BAD_EVIDENCE
        upheld, receipt = apply(state, forged, LedgerBug.CHALLENGE_ACCEPTS_FOREIGN_EVIDENCE)
        framed = ChallengeRecord(0, honest, 0, challenger) in upheld.challenges
        assert receipt.ok == framed == (proof == (0, cheat, 1)), proof
    genuine = Challenge(challenger, 0, honest, validator, 0, (0, honest, 0))
    assert apply(state, genuine)[1].reason is Reason.CHALLENGE_NOT_UPHELD


def test_framing_with_a_rivals_fraud_proof_is_a_counterexample() -> None:
    """With the planted bug, the Byzantine trainer reuses the fraud proof against its own faked claim
    to challenge a vote on the honest claim, and the honest trainer is slashed."""
    model = LEDGER_MODELS["ledger-overlap"].instantiate({"bug": "challenge_accepts_foreign_evidence"})
    found = violated(check(model, liveness=False, invariants=["HonestTrainersNeverSlashed"]))
    trace = found["HonestTrainersNeverSlashed"].counterexample
    assert trace is not None
    cast = Cast.of_constants(model.constants)
    forged = [s.label for s in trace.steps if s.label is not None and s.label.action == "ForgedChallenge"]
    assert len(forged) == 1
    args = dict(forged[0].args)
    assert args["challenger"] in cast.byzantine_trainers and args["trainer"] in cast.honest_trainers
    assert args["proof"][1] == args["challenger"]
