"""The model registry and the combined PBFT + ledger model."""

from __future__ import annotations

import pytest

from model_checker.checker import check
from spec import combined
from spec.models import MODELS
from spec.pbft import NULL


@pytest.mark.parametrize("name", ["pbft-tiny", "ledger-tiny", "tiny", "default"])
def test_required_models_are_registered(name: str) -> None:
    assert name in MODELS


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_constant_is_documented(name: str) -> None:
    spec = MODELS[name]
    assert set(spec.defaults) <= set(spec.constant_docs)
    assert spec.doc


def test_default_checks_the_issue_4_liveness_properties_through_its_companions() -> None:
    companions = [MODELS[name].instantiate() for name in MODELS["default"].companions]
    temporal = {prop.name for model in companions for prop in model.properties}
    assert {
        "RequestsExecutedByAll",
        "ViewChangeCompletes",
        "EveryOrderEventuallyFinalized",
        "ClientReceivesReplies",
    } <= temporal
    assert all(model.fairness for model in companions)  # properties under fairness, not plain


def test_default_has_what_make_check_promises() -> None:
    constants = MODELS["default"].defaults
    assert constants["replicas"] == 4 and constants["faulty"] == 1
    assert constants["byzantine"] == {0}  # primary of view 0: it can equivocate
    assert constants["requests"] >= 2 and constants["max_seq"] >= 2
    assert constants["max_view"] >= 1  # a view change
    assert constants["checkpoint_interval"] <= constants["max_seq"]  # a stable checkpoint


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


def test_combined_requests_bounded_by_the_round() -> None:
    from model_checker.model import SpecError

    with pytest.raises(SpecError, match="requests"):
        MODELS["tiny"].instantiate({"requests": len(combined.ROUND) + 1})
