"""The ledger bridge: replayed behaviours conform; a wrong implementation diverges with a readable diff."""

from __future__ import annotations

from typing import Any

import pytest

import pot_impl.ledger.ledger as impl_ledger
from conformance.bridge_core import Divergence, Gap
from conformance.bridge_ledger import LedgerBridge, account_index, account_name
from conformance.bridge_training import RunKey
from conformance.replay import cover, replay, run_behaviour
from model_checker.graph import Behaviour
from model_checker.model import Label, Model
from pot_impl.training.task import committed_order, decode_task
from spec import ledger as sl
from spec.ledger.model import Cast
from spec.models import MODELS


@pytest.fixture(scope="module")
def model() -> Model[Any]:
    return MODELS["ledger-tiny"].instantiate()


@pytest.fixture(scope="module")
def bridge(model: Model[Any]) -> LedgerBridge:
    return LedgerBridge(model)


@pytest.fixture(scope="module")
def behaviours(model: Model[Any]) -> list[Behaviour]:
    return cover(model)[0]


def test_account_names_sort_like_account_ids() -> None:
    names = [account_name(i) for i in range(120)]
    assert sorted(names) == names
    assert [account_index(n) for n in names] == list(range(120))


def test_initial_state_abstracts_to_the_spec_initial_state(model: Model[Any], bridge: LedgerBridge) -> None:
    initial = next(iter(model.init()))
    bridge.start(initial, ())
    assert bridge.abstract() == initial


def test_replayed_behaviours_conform(
    model: Model[Any], bridge: LedgerBridge, behaviours: list[Behaviour]
) -> None:
    """Behaviours that settle orders (claims, votes, challenges, Finalize) replay with no divergence."""
    settling = [
        b for b in behaviours if any(label is not None and label.action == "Finalize" for label, _ in b)
    ]
    chosen = settling[:: max(1, len(settling) // 25)]
    report = replay(model, bridge, behaviours=chosen, transitions_total=0)
    assert report.divergences == [] and not report.gaps
    assert report.steps == sum(len(b) - 1 for b in chosen)


def test_wrong_fee_split_diverges_at_finalize(
    model: Model[Any], bridge: LedgerBridge, behaviours: list[Behaviour], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger that pays no validator its share of the fee is caught at the Finalize step."""
    monkeypatch.setattr(impl_ledger, "_vote_proved_right", lambda vote, proved, upheld: False)
    settling = [b for b in behaviours if any(lab is not None and lab.action == "Finalize" for lab, _ in b)]
    outcome = None
    for behaviour in settling:
        _, outcome = run_behaviour(model, bridge, behaviour)
        if isinstance(outcome, Divergence):
            break
    assert isinstance(outcome, Divergence)
    assert outcome.action.startswith("Finalize(")
    fields = {d.field for d in outcome.diff}
    assert any(f.startswith("balances[") for f in fields)
    assert "diverges at step" in outcome.describe() and outcome.trace[-1] == outcome.action


def test_score_lie_without_faked_last_segment_is_a_gap() -> None:
    """The spec lets a Byzantine trainer claim any score with honest segments; on real training a
    wrong score is provable at the last segment, so the bridge reports the step as unrealizable."""
    model = MODELS["ledger"].instantiate()
    bridge = LedgerBridge(model)
    state = next(iter(model.init()))
    bridge.start(state, ())
    cast = Cast.of_constants(model.constants)
    for label in [Label("RegisterTrainer", (("trainer", t),)) for t in cast.trainers] + [
        Label("PlaceOrder", (("client", cast.clients[0]),))
    ]:
        bridge.stimulate(label, state)
        state = next(s for lab, s in _enabled(model, state) if lab == label)
    trainer = cast.byzantine_trainers[0]
    lie = Label("ByzantineClaim", (("trainer", trainer), ("order", 0), ("score", 2), ("faked", frozenset())))
    reason = bridge.realizable(lie, state)
    assert reason is not None and "score fraud proof" in reason
    faked_last = Label(
        "ByzantineClaim", (("trainer", trainer), ("order", 0), ("score", 2), ("faked", frozenset({1})))
    )
    assert bridge.realizable(faked_last, state) is None


def test_validator_samples_follow_the_replayed_behaviour(
    model: Model[Any], bridge: LedgerBridge, behaviours: list[Behaviour]
) -> None:
    """Keys are chosen so each validator's signature derives the sample the behaviour names."""
    voting = [b for b in behaviours if any(lab is not None and "Accept" in lab.action for lab, _ in b)][:10]
    assert voting
    for behaviour in voting:
        _, outcome = run_behaviour(model, bridge, behaviour)
        assert not isinstance(outcome, (Divergence, Gap)), outcome
        assert bridge.abstract().votes == behaviour[-1][1].votes


def test_claims_train_the_order_as_the_ledger_committed_it(
    model: Model[Any], bridge: LedgerBridge, behaviours: list[Behaviour]
) -> None:
    """The client posts a task without a seed; the claim is a run of that task on the data-order seed
    the ledger fixed, and its order is score-stable (faking segments leaves the score unchanged)."""
    claiming = next(
        b
        for b in behaviours
        if any(
            lab is not None and lab.action == "ByzantineClaim" and not dict(lab.args)["faked"] for lab, _ in b
        )
    )
    _, outcome = run_behaviour(model, bridge, claiming)
    assert outcome is None
    ledger = bridge.ledger
    assert ledger is not None
    ((order_id, _), claim) = next(iter(ledger.claims.items()))
    record = ledger.orders[order_id]
    order = committed_order(record.task, record.data_order_seed)
    assert decode_task(record.task) == order.task
    honest = bridge.world.run(RunKey(order.digest, frozenset(), 0)).claim
    assert honest.order_digest == order.digest and honest.commitment == claim.proof_root
    scores = {
        bridge.world.run(RunKey(order.digest, frozenset(f), 0)).claim.score for f in ((0,), (1,), (0, 1))
    }
    assert scores == {honest.score}


def _enabled(model: Model[Any], state: sl.LedgerState) -> list[tuple[Label, sl.LedgerState]]:
    return [(a.label(values), nxt) for a in model.actions for values, nxt in a.step(state)]
