"""The model registry and the combined PBFT + ledger model."""

from __future__ import annotations

import pytest

from model_checker.checker import check
from model_checker.model import SpecError
from spec import combined
from spec.models import COMBINED_MODELS, MODELS
from spec.pbft import NULL


@pytest.mark.parametrize("name", ["pbft-tiny", "ledger-tiny", "tiny", "default"])
def test_required_models_are_registered(name: str) -> None:
    assert name in MODELS


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_constant_is_documented(name: str) -> None:
    spec = MODELS[name]
    assert set(spec.defaults) <= set(spec.constant_docs)
    assert spec.doc


def test_default_checks_its_four_liveness_properties_through_its_companions() -> None:
    companions = [MODELS[name].instantiate() for name in MODELS["default"].companions]
    temporal = {prop.name for model in companions for prop in model.properties}
    assert {
        "RequestsExecutedByAll",
        "ViewChangeCompletes",
        "EveryOrderEventuallyFinalized",
        "ClientReceivesReplies",
    } <= temporal
    assert all(model.fairness for model in companions if model.properties)  # under fairness, not plain


def test_default_has_what_make_check_promises() -> None:
    constants = MODELS["default"].defaults
    assert constants["replicas"] == 4 and constants["faulty"] == 1
    assert constants["byzantine"] == {0}  # primary of view 0: it can equivocate
    assert constants["requests"] >= 2 and constants["max_seq"] >= 2
    assert constants["max_view"] >= 1  # a view change
    assert constants["checkpoint_interval"] <= constants["max_seq"]  # a stable checkpoint
    combined = {spec.name for spec in COMBINED_MODELS}
    concurrent = [MODELS[name].defaults for name in MODELS["default"].companions if name in combined]
    # the ledger with two sequence numbers in flight, and the same view change
    assert any(c["window"] >= 2 and c["max_seq"] >= 2 and c["max_view"] >= 1 for c in concurrent)


def test_combined_tiny_checks_pbft_and_ledger_invariants() -> None:
    result = check(MODELS["tiny"].instantiate())
    assert result.verdict == "ok"
    names = {p.name for p in result.properties}
    assert {"Agreement", "ExecutedPrefix", "ClientAcceptsOnlyCorrectResults"} <= names
    assert {"ValueConservation", "NoDoublePayment", "NoFakeWinner", "HonestValidatorsNeverSlashed"} <= names
    assert {"BestValidClaimWins"} <= names


def test_ledger_state_is_a_function_of_the_executed_log() -> None:
    service = combined.LedgerService(combined.ROUND, combined.GENESIS, combined.HONESTY)
    # Null requests execute nothing; the round in order refunds the client (the fake was proved).
    assert service.state_after((1, NULL, 2)) == service.state_after((1, 2))
    settled = service.state_after((1, 2))
    assert [o.status.name for o in settled.orders] == ["REFUNDED"]
    # Committed the other way round, the claim comes before its order and is rejected.
    assert service.state_after((2, 1)).claims == frozenset()
    # Replies are the receipts of the request's own transactions where it ran.
    assert all(r.ok for r in service.receipts((1, 2), 2))
    claim_receipt = service.receipts((2, 1), 2)[0]
    assert claim_receipt.reason.name == "NOT_A_TRAINER"  # registration comes later
    assert service.result((2, 1), 2) == service.receipts((2, 1), 2)


def test_the_rounds_amounts_are_model_constants() -> None:
    """A richer round: the client escrows bounty + fee, and every invariant still holds."""
    model = MODELS["tiny"].instantiate({"bounty": 3, "fee": 1})
    assert (model.constants["bounty"], model.constants["fee"]) == (3, 1)
    assert check(model).verdict == "ok"
    settled = combined.LedgerService(
        combined.training_round(3, 1), combined.round_genesis(3, 1), combined.HONESTY
    ).state_after((1, 2))
    # the bounty back, the fee to the honest validator, the faking trainer's stake to the client
    assert settled.balances[combined.CLIENT] == 3 + 1
    with pytest.raises(SpecError, match="bounty"):
        MODELS["tiny"].instantiate({"bounty": 0})


def test_combined_requests_bounded_by_the_round() -> None:
    with pytest.raises(SpecError, match="requests"):
        MODELS["tiny"].instantiate({"requests": len(combined.ROUND) + 1})


def test_default_window_refutes_a_commit_quorum_bug_with_two_sequence_numbers_in_flight() -> None:
    result = check(MODELS["default-window"].instantiate({"bug": "commit_at_f_plus_1"}), liveness=False)
    violated = [p for p in result.properties if p.status == "violated"]
    assert result.verdict == "violation" and violated[0].name == "Agreement"
    trace = violated[0].counterexample
    assert trace is not None
    assert not MODELS["default-window"].instantiate().invariants["Agreement"](trace.steps[-1].state)
