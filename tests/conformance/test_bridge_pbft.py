"""The PBFT bridge: replayed behaviours of pbft-tiny conform; a wrong quorum diverges with a readable diff."""

from __future__ import annotations

from typing import Any

import pytest

import pot_impl.pbft.replica as impl_replica
from conformance.bridge_core import BridgeError, Divergence, Gap
from conformance.bridge_pbft import PbftBridge
from conformance.replay import cover, replay, run_behaviour
from model_checker.graph import Behaviour
from model_checker.model import Model
from spec.models import MODELS


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


def test_commits_of_a_left_view_are_a_gap(model: Model[Any], behaviours: list[Behaviour]) -> None:
    """Executing on COMMITs of a view the replica has left is a spec step the implementation cannot
    take (it drops them, C&L 4.4): reported as a gap, never as a divergence."""
    bridge = PbftBridge(model)
    gaps = []
    for behaviour in _with_action(_with_action(behaviours, "StartViewChange"), "Execute")[:300]:
        _, outcome = run_behaviour(model, bridge, behaviour)
        assert not isinstance(outcome, Divergence), outcome
        if isinstance(outcome, Gap):
            gaps.append(outcome)
    assert gaps and all(g.action.startswith("Execute(") and "drops COMMITs" in g.reason for g in gaps)


def test_models_the_implementation_cannot_size_are_refused() -> None:
    """The implementation derives f from n; a model assuming another f has no bridge."""
    model = MODELS["pbft-tiny"].instantiate({"replicas": 3})
    with pytest.raises(BridgeError, match="tolerates f"):
        PbftBridge(model)
