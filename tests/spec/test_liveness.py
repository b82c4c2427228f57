"""PBFT liveness under partial synchrony: the properties hold under fairness, each planted
liveness bug yields a lasso, and removing a fairness assumption makes a property fail."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from model_checker.checker import CheckResult, check
from model_checker.model import Action, Model
from spec.models import MODELS
from spec.pbft import State

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


def within_views(model: Model[State]) -> Model[State]:
    """``model`` with an invariant saying no honest replica ever exhausts the views (StartViewChange
    beyond ``max_view``, the outcome that counts against ViewChangeCompletes)."""
    bound = model.constants["max_view"]
    invariants = {**model.invariants, "WithinViews": lambda s: all(r.view <= bound for r in s.replicas)}
    return dataclasses.replace(model, invariants=invariants)


def test_liveness_properties_hold_under_fairness() -> None:
    """All three properties hold, and the correct protocol never reaches the views-exhausted
    outcome: after GST every replica waiting for a NEW-VIEW has a long enough timeout."""
    model = within_views(LIVE.instantiate())
    result = live_check(model)
    assert result.verdict == "ok"
    assert statuses(result) == {
        "ClientReceivesReplies": "holds",
        "RequestsExecutedByAll": "holds",
        "ViewChangeCompletes": "holds",
    }


@pytest.mark.parametrize(
    ("bug", "prop"),
    [
        ("silent_primary", "ClientReceivesReplies"),
        ("no_view_change_join", "ViewChangeCompletes"),
        ("no_timeout_doubling", "ViewChangeCompletes"),
    ],
)
def test_liveness_bug_yields_a_lasso(bug: str, prop: str) -> None:
    model = LIVE.instantiate({"bug": bug})
    assert_lasso(live_check(model), prop, model)


def test_without_timeout_doubling_view_changes_outlast_the_views() -> None:
    """The lasso of no_timeout_doubling: after GST a replica waiting for a NEW-VIEW at max_view still
    has the initial timeout, so it times out again and again; the model records the first such
    expiry beyond the bound as the views-exhausted outcome."""
    model = LIVE.instantiate({"bug": "no_timeout_doubling"})
    result = live_check(model)
    (found,) = [p for p in result.properties if p.name == "ViewChangeCompletes"]
    assert found.counterexample is not None
    last = found.counterexample.steps[-1].state
    assert last.gst
    exhausted = [r for r in last.replicas if r.view > model.constants["max_view"]]
    assert exhausted and all(r.changing and r.timer == 0 for r in exhausted)


def test_removing_fairness_of_honest_commits_breaks_liveness() -> None:
    """Fairness is used, not ignored: without WF on honest COMMITs replicas may never commit."""
    model = LIVE.instantiate()
    unfair = dataclasses.replace(
        model, fairness=tuple(f for f in model.fairness if f.action != "HonestCommit")
    )
    assert_lasso(live_check(unfair), "ClientReceivesReplies", unfair)


def test_a_lagging_replica_catches_up_only_by_fetching_certificates() -> None:
    """Without CatchUp (fetching a committed request with its certificate from a replica ahead,
    C&L TOCS 5.2-5.3) a lagging honest replica may never execute: the Byzantine replica completes a
    quorum for two honest replicas and then stays silent; the third, alone in its view change,
    gets no quorum to commit with and no f + 1 replicas to join. The checker finds that lasso."""
    model = LIVE.instantiate()
    unfair = dataclasses.replace(model, fairness=tuple(f for f in model.fairness if f.action != "CatchUp"))
    result = live_check(unfair)
    assert_lasso(result, "RequestsExecutedByAll", unfair)
    (found,) = [p for p in result.properties if p.name == "RequestsExecutedByAll"]
    assert found.counterexample is not None
    last = found.counterexample.steps[-1].state
    executed = [len(last.replicas[i].executed) for i in (1, 2, 3)]
    assert sorted(executed) == [0, 1, 1]  # two replicas served the client, one never caught up


def test_checkpoints_become_stable_and_a_replica_behind_adopts_the_certified_state() -> None:
    """`pbft-live-checkpoint`: every property holds under fairness while checkpoints become
    stable, and some replica catches up by adopting a certified checkpoint it had not executed to
    (a step the ``Adopt`` probe copies out of StableCheckpoint; reachable states are unchanged)."""
    model = MODELS["pbft-live-checkpoint"].instantiate()
    result = live_check(model)
    assert result.verdict == "ok" and set(statuses(result).values()) == {"holds"}
    (stable,) = [action for action in model.actions if action.name == "StableCheckpoint"]

    def adopt(s: State) -> Iterator[tuple[tuple[int, int], State]]:
        for (replica, seq), after in stable.step(s):
            if len(s.replicas[replica].executed) < seq:
                yield (replica, seq), after

    probe = dataclasses.replace(model, actions=(*model.actions, Action("Adopt", adopt, stable.params)))
    explored = check(probe, liveness=False)
    adopted = {c.name: c.generated for c in explored.coverage}["Adopt"]
    assert adopted > 0 and explored.distinct_states == result.distinct_states


def test_a_request_beyond_the_window_waits_for_a_stable_checkpoint() -> None:
    """`pbft-live-window`: the second request's sequence number is outside the window until the
    first one's checkpoint is stable. Every property holds under fairness; without fairness for
    honest checkpoints the second request may wait for ever."""
    model = MODELS["pbft-live-window"].instantiate()
    result = live_check(model)
    assert result.verdict == "ok" and set(statuses(result).values()) == {"holds"}
    unfair = dataclasses.replace(
        model, fairness=tuple(f for f in model.fairness if f.action != "HonestStableCheckpoint")
    )
    assert_lasso(live_check(unfair), "RequestsExecutedByAll", unfair)


def test_no_null_fill_leaves_a_gap_that_blocks_execution_forever() -> None:
    """`no_null_fill`, a liveness bug (Agreement cannot fail: a gap holds nothing
    committed anywhere). The PRE-PREPARE for sequence number 1 is lost before GST while 2
    prepares; NEW-VIEW's O then skips 1, and nothing ever fills it, so 2 and everything after it
    stay committed but unexecuted. The correct spec fills the gap with a null request."""
    gap = MODELS["pbft-live-gap"]
    correct = live_check(gap.instantiate())
    assert correct.verdict == "ok"
    assert set(statuses(correct).values()) == {"holds"}
    model = gap.instantiate({"bug": "no_null_fill"})
    result = live_check(model)
    assert_lasso(result, "ClientReceivesReplies", model)
    (found,) = [p for p in result.properties if p.name == "ClientReceivesReplies"]
    assert found.counterexample is not None
    states = [step.state for step in found.counterexample.steps]
    assert any(nv.proposals and nv.proposals[0][0] > 1 for s in states for nv in s.new_views)  # O skips 1
    last = states[-1]
    assert {n for n, _ in last.decided} >= {2} and 1 not in {n for n, _ in last.decided}
    assert all(r.executed == () for r in last.replicas)
