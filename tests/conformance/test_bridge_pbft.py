"""The PBFT bridge: replayed behaviours of pbft-tiny conform; a wrong quorum diverges with a readable diff;
wrong messages (mis-signed, forged, bad certificates) change nothing the spec does not allow."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

import pot_impl.pbft.normal_case as impl_normal_case
import pot_impl.pbft.replica as impl_replica
from conformance.adversaries.messages import mutants
from conformance.bridge_core import BridgeError, Divergence
from conformance.bridge_pbft import PbftBridge
from conformance.replay import cover, replay, run_behaviour
from conformance.stateful import stateful_check
from model_checker.graph import Behaviour
from model_checker.model import Model
from pot_impl.auth import verify_message
from pot_impl.pbft.messages import NewView, Request, ViewChange
from spec.models import MODELS
from tests.conformance.pbft_driving import driven
from tests.model_checker.helpers import successors


@pytest.fixture(scope="module")
def model() -> Model[Any]:
    return MODELS["pbft-tiny"].instantiate()


@pytest.fixture(scope="module")
def behaviours(model: Model[Any]) -> list[Behaviour]:
    return cover(model)[0]


def _with_action(behaviours: list[Behaviour], action: str) -> list[Behaviour]:
    return [b for b in behaviours if any(label is not None and label.action == action for label, _ in b)]


def test_initial_state_abstracts_to_the_spec_initial_state(model: Model[Any]) -> None:
    bridge = PbftBridge(model)
    initial = next(iter(model.init()))
    bridge.start(initial, ())
    assert bridge.abstract() == initial


@pytest.mark.parametrize("action", ["Execute", "StableCheckpoint", "NewView", "AcceptNewView"])
def test_replayed_behaviours_conform(model: Model[Any], behaviours: list[Behaviour], action: str) -> None:
    """Behaviours through each phase (normal case, checkpoints, view change) conform."""
    chosen = _with_action(behaviours, action)[:40]
    assert chosen
    report = replay(model, PbftBridge(model), behaviours=chosen, transitions_total=0)
    assert report.divergences == []
    assert report.steps > 0


def test_wrong_prepare_quorum_diverges(
    model: Model[Any], behaviours: list[Behaviour], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica that is prepared with one PREPARE too few sends its COMMIT when it accepts the
    PRE-PREPARE, a step the spec has not taken: the diff names that replica's commits."""
    monkeypatch.setattr(impl_normal_case, "prepare_quorum", lambda n, f: 1)
    bridge = PbftBridge(model)
    outcome = None
    for behaviour in _with_action(behaviours, "Prepare")[:20]:
        _, outcome = run_behaviour(model, bridge, behaviour)
        if isinstance(outcome, Divergence):
            break
    assert isinstance(outcome, Divergence)
    assert outcome.action.startswith("Prepare(")
    assert any(d.field.endswith(".commits") for d in outcome.diff)


def test_models_the_implementation_cannot_size_are_refused() -> None:
    """The implementation derives f from n; a model assuming another f has no bridge."""
    model = MODELS["pbft-tiny"].instantiate({"replicas": 3})
    with pytest.raises(BridgeError, match="tolerates f"):
        PbftBridge(model)


def _behaviour(model: Model[Any], labels: list[str]) -> Behaviour:
    """The spec behaviour taking ``labels`` from the initial state."""
    behaviour: Behaviour = [(None, next(iter(model.init())))]
    for text in labels:
        behaviour.append(next(step for step in successors(model, behaviour[-1][1]) if str(step[0]) == text))
    return behaviour


def test_forks_step_independently(model: Model[Any], behaviours: list[Behaviour]) -> None:
    """A fork shares replicas copy-on-write: stepping one bridge leaves the other as it was."""
    behaviour = max(_with_action(behaviours, "Execute")[:50], key=len)
    bridge = PbftBridge(model)
    bridge.start(behaviour[0][1], ())
    middle = len(behaviour) // 2
    for (label, _), (_, before) in zip(behaviour[1 : middle + 1], behaviour, strict=False):
        assert label is not None
        bridge.stimulate(label, before)
    fork = bridge.fork()
    for (label, after), (_, before) in zip(behaviour[middle + 1 :], behaviour[middle:], strict=False):
        assert label is not None
        fork.stimulate(label, before)
        assert fork.abstract() == after
        assert bridge.abstract() == behaviour[middle][1]
    (label, after), before = behaviour[middle + 1], behaviour[middle][1]
    assert label is not None
    bridge.stimulate(label, before)
    assert bridge.abstract() == after and fork.abstract() == behaviour[-1][1]


def _view_change_after_checkpoint(
    executed: tuple[int, ...], request: int, changing: tuple[int, ...]
) -> list[str]:
    """Labels of ``default``: request 1 committed at seq 1 everywhere and executed by ``executed``,
    checkpoint 1 stable at replicas 2 and 3 (3 by state transfer if it did not execute), the
    Byzantine primary's PRE-PREPARE of ``request`` at seq 2 prepared by them, then the view-change
    timers of ``changing`` fire."""
    return [
        *(f"{step}(replica={i}, seq=1, request=1)" for step in ("Prepare", "Commit") for i in (1, 2, 3)),
        *(f"Execute(replica={i}, request=1)" for i in executed),
        "StableCheckpoint(replica=2, seq=1)",
        f"Prepare(replica=2, seq=2, request={request})",
        "StableCheckpoint(replica=3, seq=1)",
        f"Prepare(replica=3, seq=2, request={request})",
        *(f"StartViewChange(replica={i}, view=1)" for i in changing),
    ]


def test_byzantine_view_changes_are_ones_honest_replicas_accept() -> None:
    """The spec lets a Byzantine VIEW-CHANGE claim checkpoint 0 with a prepared certificate for
    sequence number 2 (above its high watermark, window 1); honest replicas reject it (C&L 4.4),
    so the bridge realises the NEW-VIEW with the VIEW-CHANGE that claims checkpoint 1 instead."""
    default = MODELS["default"].instantiate()
    labels = _view_change_after_checkpoint((1, 2), 2, (1, 2))
    behaviour = _behaviour(default, [*labels, "NewView(primary=1, O=((2, 2),))"])
    taken, outcome = run_behaviour(default, PbftBridge(default), behaviour)
    assert outcome is None and taken == len(behaviour) - 1


def test_new_primary_behind_min_s_logs_o_above_its_old_watermark() -> None:
    """Primary 1 never executed sequence number 1, which V's checkpoint certifies: installing the
    NEW-VIEW it fetches that state and logs O's entry for sequence number 2, above the high
    watermark it had before (window 1), as the spec's primary does."""
    default = MODELS["default"].instantiate()
    labels = _view_change_after_checkpoint((2, 3), 1, (1, 2, 3))
    behaviour = _behaviour(default, [*labels, "NewView(primary=1, O=((2, 1),))"])
    taken, outcome = run_behaviour(default, PbftBridge(default), behaviour)
    assert outcome is None and taken == len(behaviour) - 1
    assert (1, 2, 1) in behaviour[-1][1].replicas[1].proposals


# -- wrong messages (conformance.adversaries.messages) -------------------------------------------

VIEW_CHANGE_BEHAVIOUR = (
    "Prepare(replica=1, seq=1, request=1)",
    "Prepare(replica=2, seq=1, request=1)",
    "Prepare(replica=3, seq=1, request=1)",
    "Commit(replica=2, seq=1, request=1)",
    "StartViewChange(replica=3, view=1)",
    "StartViewChange(replica=1, view=1)",
    "NewView(primary=1, O=((1, 1),))",
    "StartViewChange(replica=2, view=1)",
    "AcceptNewView(replica=2, view=1, O=((1, 1),))",
)


def test_every_operator_makes_wrong_messages_signed_as_the_table_says(model: Model[Any]) -> None:
    bridge, _ = driven(model, VIEW_CHANGE_BEHAVIOUR)
    new_view = next(m for m in bridge.sent[1] if isinstance(m, NewView))
    view_change = next(m for m in bridge.sent[3] if isinstance(m, ViewChange))
    byzantine = bridge._sign(replace(view_change, replica=0, signature=b""))
    pre_prepare = bridge._pre_prepare_for(0, 1, 1)
    made = [
        *mutants(new_view, 4, None),
        *mutants(byzantine, 4, bridge.keys.sign_as_sender),
        *mutants(pre_prepare, 4, bridge.keys.sign_as_sender),
    ]
    operators = {m.operator for m in made}
    assert {"bad-signature", "forged-sender", "other-view", "other-seq", "bad-client-signature"} <= operators
    assert {"duplicate-sender", "missing-vote", "bad-inner-signature"} <= operators
    verifier = bridge.keys.verifier()
    for mutant in made:
        assert verify_message(verifier, mutant.message) is mutant.validly_signed, mutant.operator
        assert mutant.message != new_view and mutant.message != byzantine and mutant.message != pre_prepare


def test_a_new_view_forwarded_to_a_lagging_replica_is_not_the_forwarders_step(model: Model[Any]) -> None:
    """A backup that hears a VIEW-CHANGE for its current view resends the NEW-VIEW: a stutter."""
    bridge, state = driven(model, VIEW_CHANGE_BEHAVIOUR)
    view_change = next(m for m in bridge.sent[1] if isinstance(m, ViewChange))
    bridge._deliver(2, [bridge._sign(replace(view_change, replica=0, signature=b""))])
    assert bridge.abstract() == state


def test_a_replica_that_skips_signature_checks_is_caught_by_a_wrong_message(
    model: Model[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicas' signatures unchecked (clients' still checked, so that the outer signature is what
    the wrong messages find)."""
    monkeypatch.setattr(
        impl_replica,
        "verify_message",
        lambda verifier, m: not isinstance(m, Request) or verify_message(verifier, m),
    )
    result = stateful_check(model, PbftBridge(model), examples=10, steps=20, seed_value=0)
    assert result.divergence is not None and "heard a wrong" in result.divergence.action
    assert "invalidly signed" in result.divergence.action
