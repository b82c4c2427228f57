"""The PBFT bridge: replayed behaviours of pbft-tiny conform; a wrong quorum diverges with a readable diff."""

from __future__ import annotations

from typing import Any

import pytest

import pot_impl.pbft.replica as impl_replica
from conformance.bridge_core import BridgeError, Divergence
from conformance.bridge_pbft import PbftBridge
from conformance.replay import cover, replay, run_behaviour
from model_checker.graph import Behaviour
from model_checker.model import Model
from spec.models import MODELS
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
    monkeypatch.setattr(impl_replica, "prepare_quorum", lambda n, f: 1)
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


def test_byzantine_view_changes_are_ones_honest_replicas_accept() -> None:
    """The spec lets a Byzantine VIEW-CHANGE claim checkpoint 0 with a prepared certificate for
    sequence number 2 (above its high watermark, window 1); honest replicas reject it (C&L 4.4),
    so the bridge realises the NEW-VIEW with the VIEW-CHANGE that claims checkpoint 1 instead."""
    default = MODELS["default"].instantiate()
    agree = [f"{step}(replica={i}, seq=1, request=1)" for step in ("Prepare", "Commit") for i in (1, 2, 3)]
    behaviour = _behaviour(
        default,
        [
            *agree,
            "Execute(replica=1, request=1)",
            "Execute(replica=2, request=1)",
            "StableCheckpoint(replica=2, seq=1)",
            "Prepare(replica=2, seq=2, request=2)",
            "StableCheckpoint(replica=3, seq=1)",
            "Prepare(replica=3, seq=2, request=2)",
            "StartViewChange(replica=1, view=1)",
            "StartViewChange(replica=2, view=1)",
            "NewView(primary=1, O=((2, 2),))",
        ],
    )
    taken, outcome = run_behaviour(default, PbftBridge(default), behaviour)
    assert outcome is None and taken == len(behaviour) - 1
