"""The dispute game through the ledger bridge: real per-step digests and a real one-step referee
conform to spec/dispute.py, every way a dispute can end; a wrong ruling diverges at the move."""

from __future__ import annotations

from typing import Any

import pytest

import pot_impl.ledger.ledger as impl_ledger
from conformance.bridge_core import Divergence
from conformance.bridge_ledger import LedgerBridge
from conformance.replay import cover, replay, run_behaviour
from model_checker.graph import Behaviour
from model_checker.model import Model
from pot_impl.ledger.proofs import StepRuling
from pot_impl.ledger.records import DisputeOutcome
from spec.dispute import Outcome
from spec.models import MODELS


@pytest.fixture(scope="module")
def model() -> Model[Any]:
    return MODELS["ledger-dispute"].instantiate()


@pytest.fixture(scope="module")
def bridge(model: Model[Any]) -> LedgerBridge:
    return LedgerBridge(model)


@pytest.fixture(scope="module")
def endings(model: Model[Any]) -> dict[tuple[str, Outcome], Behaviour]:
    """For each way a dispute ends (the move that ends it, and the outcome), the first behaviour of
    the transition cover that ends one so and settles its order."""
    chosen: dict[tuple[str, Outcome], Behaviour] = {}
    for behaviour in cover(model)[0]:
        if not any(label is not None and label.action == "Finalize" for label, _ in behaviour):
            continue
        for (label, state), (_, before) in zip(behaviour[1:], behaviour, strict=False):
            assert label is not None
            ended = {d.key: d.outcome for d in state.disputes}.items() - {
                d.key: d.outcome for d in before.disputes
            }.items()
            for _, outcome in ended:
                if outcome is not Outcome.OPEN:
                    chosen.setdefault((label.action, outcome), behaviour)
    return chosen


def test_every_way_a_dispute_ends_replays_on_real_training(
    model: Model[Any], bridge: LedgerBridge, endings: dict[tuple[str, Outcome], Behaviour]
) -> None:
    assert {outcome for _, outcome in endings} == set(Outcome) - {Outcome.OPEN}
    assert {"HonestSupply", "ByzantineSupply", "Timeout"} <= {action for action, _ in endings}
    report = replay(model, bridge, behaviours=list(endings.values()), transitions_total=0)
    assert report.divergences == [] and not report.gaps
    assert report.steps == sum(len(b) - 1 for b in endings.values())


def test_a_referee_that_mistakes_a_wrong_state_for_fraud_diverges_at_the_supply(
    model: Model[Any],
    bridge: LedgerBridge,
    endings: dict[tuple[str, Outcome], Behaviour],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ruling a forged state as a proved fraud would convict the validators who accepted a genuine
    segment; the bridge sees the outcome differ at the very move."""
    monkeypatch.setitem(impl_ledger._RULED, StepRuling.WRONG_STATE, DisputeOutcome.FRAUD_PROVED)
    _, outcome = run_behaviour(model, bridge, endings[("ByzantineSupply", Outcome.TRAINER_DEFAULTED)])
    assert isinstance(outcome, Divergence)
    assert outcome.action.startswith("ByzantineSupply(")
    assert any(d.field == "disputes" for d in outcome.diff)
