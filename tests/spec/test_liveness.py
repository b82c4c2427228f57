"""PBFT liveness under partial synchrony (issue 4): the properties hold under fairness, each planted
liveness bug yields a lasso, and removing a fairness assumption makes a property fail."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from model_checker.checker import CheckResult, check
from model_checker.model import Model
from spec.models import MODELS
from spec.pbft import Pbft, PbftConfig, State

LIVE = MODELS["pbft-live"]


def live_check(model: Model[State]) -> CheckResult:
    return check(model, stop_at_first=False)


def statuses(result: CheckResult) -> dict[str, str]:
    return {p.name: p.status for p in result.properties if p.kind != "invariant" and p.kind != "deadlock"}


def assert_lasso(result: CheckResult, prop: str, model: Model[State]) -> None:
    """``prop`` fails with a lasso whose states satisfy the model's steps and on which it fails."""
    (found,) = [p for p in result.properties if p.name == prop]
    assert found.status == "violated"
    trace = found.counterexample
    assert trace is not None and trace.steps
    predicate = next(p for p in model.properties if p.name == prop)
    if predicate.kind == "eventually":
        assert not any(predicate.p(step.state) for step in trace.steps)


def test_liveness_properties_hold_under_fairness() -> None:
    model = LIVE.instantiate()
    result = live_check(model)
    assert result.verdict == "ok"
    assert statuses(result) == {"ClientReceivesReplies": "holds", "ViewChangeCompletes": "holds"}


@pytest.mark.parametrize(
    ("bug", "prop"),
    [
        ("silent_primary", "ClientReceivesReplies"),
        ("no_view_change_join", "ViewChangeCompletes"),
    ],
)
def test_liveness_bug_yields_a_lasso(bug: str, prop: str) -> None:
    model = LIVE.instantiate({"bug": bug})
    assert_lasso(live_check(model), prop, model)


def test_removing_fairness_of_honest_commits_breaks_liveness() -> None:
    """Fairness is used, not ignored: without WF on honest COMMITs replicas may never commit."""
    model = LIVE.instantiate()
    unfair = dataclasses.replace(
        model, fairness=tuple(f for f in model.fairness if f.action != "HonestCommit")
    )
    assert_lasso(live_check(unfair), "ClientReceivesReplies", unfair)


def test_every_replica_executing_is_not_guaranteed_by_pbft() -> None:
    """Issue 4 asks that every honest replica eventually executes every request. PBFT does not
    guarantee it: a Byzantine replica completes a quorum for two honest replicas and then stays
    silent; the third honest replica, alone in its view change, can never catch up. The checker
    finds that lasso; the models declare what PBFT does guarantee (ClientReceivesReplies)."""
    constants: dict[str, Any] = dict(LIVE.defaults)
    constants["byzantine"] = frozenset(constants["byzantine"])
    del constants["bug"]
    protocol = Pbft(PbftConfig(**constants))
    model = protocol.model("pbft-live-all", LIVE.defaults)
    everyone = dataclasses.replace(model, properties=(protocol.requests_executed_by_all(),))
    result = live_check(everyone)
    assert_lasso(result, "RequestsExecutedByAll", everyone)
    (found,) = [p for p in result.properties if p.name == "RequestsExecutedByAll"]
    assert found.counterexample is not None
    last = found.counterexample.steps[-1].state
    executed = [len(last.replicas[i].executed) for i in protocol.honest]
    assert sorted(executed) == [0, 1, 1]  # two replicas served the client, one never can
