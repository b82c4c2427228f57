"""TwoPhase: exact counts against TLC, and the planted bug's shortest counterexample."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from model_checker.checker import check
from model_checker.examples.two_phase import RMState, TMState, two_phase
from model_checker.graph import explore
from model_checker.model import Model
from tests.model_checker.helpers import assert_valid_lasso


@pytest.mark.parametrize(
    ("rm", "distinct", "generated", "depth"), [(3, 288, 1_146, 11), (5, 8_832, 58_146, 17)]
)
def test_counts_match_tlc(rm: int, distinct: int, generated: int, depth: int) -> None:
    result = check(two_phase(rm))
    assert result.verdict == "ok"
    assert (result.distinct_states, result.generated_states, result.depth) == (distinct, generated, depth)
    assert {p.name: p.status for p in result.properties} == {
        "TPTypeOK": "holds",
        "TCConsistent": "holds",
        "deadlock": "holds",
        "AllDecide": "holds",
        "CommitLeadsToAllCommitted": "holds",
    }


@pytest.mark.slow
def test_counts_rm7() -> None:
    result = check(two_phase(7), liveness=False)
    assert (result.distinct_states, result.generated_states, result.depth) == (296_448, 2_744_706, 23)


def _violates(model: Model[Any], state: Any) -> bool:
    return not model.invariants["TCConsistent"](state)


def test_planted_bug_counterexample_is_shortest() -> None:
    buggy = two_phase(3, commit_needs_all_prepared=False)
    result = check(buggy)
    assert result.verdict == "violation"
    trace = result.counterexample
    assert trace is not None and trace.property == "TCConsistent"
    assert _violates(buggy, trace.steps[-1].state)
    # The shortest possible length: the BFS level of the first violating state in the full graph.
    graph = explore(buggy)
    levels = {int(i): len(graph.path(int(i))) for i in range(graph.num_states)}
    shortest = min(length for i, length in levels.items() if _violates(buggy, graph.state(i)))
    assert len(trace) == shortest
    assert not any(_violates(buggy, step.state) for step in trace.steps[:-1])


def test_planted_bug_is_a_real_behaviour() -> None:
    buggy = two_phase(4, commit_needs_all_prepared=False)
    trace = check(buggy).counterexample
    assert trace is not None
    final = trace.steps[-1].state[0]
    assert RMState.COMMITTED in final and RMState.ABORTED in final
    labels = [str(step.label) for step in trace.steps[1:]]
    assert "TMCommit()" in labels


def test_coverage_counts_every_action() -> None:
    result = check(two_phase(3))
    by_name = {c.name: c for c in result.coverage}
    assert sum(c.generated for c in result.coverage) == result.generated_states - 1  # minus the initial state
    assert sum(c.new for c in result.coverage) == result.distinct_states - 1
    assert by_name["TMCommit"].enabled == 1  # only when every RM has prepared
    assert result.never_enabled == []


def test_liveness_holds_under_fairness_and_needs_tm_abort_fairness() -> None:
    model = two_phase(3)
    statuses = {p.name: p.status for p in check(model).properties}
    assert statuses["AllDecide"] == statuses["CommitLeadsToAllCommitted"] == "holds"
    unfair = dataclasses.replace(model, fairness=tuple(f for f in model.fairness if f.action != "TMAbort"))
    result = check(unfair, stop_at_first=False)
    blocked = {p.name: p for p in result.properties}["AllDecide"]
    assert blocked.status == "violated" and blocked.counterexample is not None
    assert_valid_lasso(unfair, blocked.counterexample)
    final = blocked.counterexample.steps[-1].state
    assert final[1] == TMState.INIT and RMState.PREPARED in final[0]  # prepared RMs wait forever
