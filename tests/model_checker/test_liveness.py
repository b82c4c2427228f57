"""Liveness under fairness: each temporal kind, WF vs SF, lasso validity, a brute-force oracle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checker.checker import CheckResult, check
from model_checker.examples.liveness import countdown, mutex
from model_checker.model import (
    Fairness,
    Model,
    Property,
    SpecError,
    always_eventually,
    eventually,
    eventually_always,
    leads_to,
    strong_fairness,
    weak_fairness,
)
from model_checker.trace import Trace
from tests.model_checker.helpers import ACTIONS, Edges, assert_valid_lasso, graph_model, oracle_violated
from tests.schemas import assert_schema

MUTEX_PROPERTIES = ("WaitingLeadsToCritical", "InfinitelyOftenCritical", "EventuallyCritical")


def _statuses(result: CheckResult) -> dict[str, str]:
    return {p.name: p.status for p in result.properties if p.kind not in ("invariant", "deadlock")}


def _lasso(result: CheckResult, name: str) -> Trace[Any]:
    trace = next(p.counterexample for p in result.properties if p.name == name)
    assert trace is not None
    return trace


def _lassos_are_valid(model: Model[Any], result: CheckResult) -> None:
    for prop in result.properties:
        if prop.counterexample is not None and prop.counterexample.loop is not None:
            assert_valid_lasso(model, prop.counterexample)


def test_strong_fairness_suffices() -> None:
    result = check(mutex("strong"), stop_at_first=False)
    assert result.verdict == "ok"
    assert _statuses(result) == dict.fromkeys(MUTEX_PROPERTIES, "holds")


def test_weak_fairness_is_not_enough_for_an_intermittently_enabled_action() -> None:
    model = mutex("weak")
    result = check(model, stop_at_first=False)
    assert _statuses(result) == dict.fromkeys(MUTEX_PROPERTIES, "violated")
    _lassos_are_valid(model, result)
    lasso = _lasso(result, "InfinitelyOftenCritical")
    assert not lasso.stutters  # the adversary's Grab/Release cycle
    assert lasso.loop is not None
    cycle_labels = {str(s.label) for s in lasso.steps[lasso.loop + 1 :]} | {str(lasso.loop_label)}
    assert cycle_labels == {"Grab()", "Release()"}


def test_without_fairness_the_client_may_stutter_forever() -> None:
    model = mutex("none")
    result = check(model, stop_at_first=False)
    assert _statuses(result) == dict.fromkeys(MUTEX_PROPERTIES, "violated")
    _lassos_are_valid(model, result)
    lasso = _lasso(result, "EventuallyCritical")
    assert lasso.stutters


def test_removing_a_fairness_assumption_breaks_the_property() -> None:
    model = mutex("strong", release_fair=False)
    result = check(model, stop_at_first=False)
    assert _statuses(result) == dict.fromkeys(MUTEX_PROPERTIES, "violated")
    _lassos_are_valid(model, result)


def test_eventually_always() -> None:
    assert _statuses(check(countdown(4), deadlock=False)) == {"SettlesAtZero": "holds"}
    model = countdown(4, kick=True)
    result = check(model, deadlock=False)
    assert _statuses(result) == {"SettlesAtZero": "violated"}
    _lassos_are_valid(model, result)


def test_no_liveness_skips_properties() -> None:
    result = check(mutex("weak"), liveness=False)
    assert result.verdict == "ok"
    assert [p.kind for p in result.properties] == ["invariant", "deadlock"]


def test_bounded_search_leaves_liveness_unknown() -> None:
    result = check(mutex("strong"), max_depth=2, stop_at_first=False)
    assert result.verdict == "incomplete"
    assert set(_statuses(result).values()) == {"unknown"}


def test_violation_inside_the_bound_is_still_real() -> None:
    model = mutex("none")
    result = check(model, max_depth=2, stop_at_first=False)
    assert _statuses(result)["EventuallyCritical"] == "violated"
    _lassos_are_valid(model, result)


@pytest.mark.parametrize("reduction", ["symmetry", "view"])
def test_liveness_refuses_reductions(reduction: str) -> None:
    model = graph_model({0: [("A", 1)], 1: [("A", 0)]}, [0], properties=[eventually("E", lambda s: s == 1)])
    reduced = Model(**{**model.__dict__, reduction: lambda s: s})
    with pytest.raises(SpecError, match="--no-liveness"):
        check(reduced)
    assert check(reduced, liveness=False).verdict == "ok"


def test_json_lists_temporal_properties_with_kind() -> None:
    report = assert_schema(check(countdown(2, kick=True), deadlock=False).to_json(), "check")
    settles = next(p for p in report["properties"] if p["name"] == "SettlesAtZero")
    assert settles["kind"] == "eventually_always" and settles["status"] == "violated"
    assert settles["counterexample"] == report["counterexample"] and report["counterexample"]["loop"] == 0
    assert report["graph_edges"] == 3 and report["sccs"] == 1


def test_per_instance_fairness_is_one_condition_per_label() -> None:
    # From 0 the A-instances to 1 and to 2 compete; 1 and 2 return to 0.
    edges: Edges = {0: [("A", 1), ("A", 2)], 1: [("B", 0)], 2: [("B", 0)]}
    visits_two: list[Property[int]] = [eventually("ReachesTwo", lambda s: s == 2)]
    family = graph_model(edges, [0], properties=visits_two, fairness=[weak_fairness("A"), weak_fairness("B")])
    assert _statuses(check(family)) == {"ReachesTwo": "violated"}
    per_instance = [strong_fairness("A", per_instance=True), weak_fairness("B")]
    instances = graph_model(edges, [0], properties=visits_two, fairness=per_instance)
    assert _statuses(check(instances)) == {"ReachesTwo": "holds"}


def test_fairness_on_a_sub_relation_of_an_action() -> None:
    """A cycles 0 <-> 2 and, from either, may leave for good: WF of the whole family is met by the
    cycle, WF per instance too (each exit is enabled at one state only), WF of the exits is not."""
    edges: Edges = {0: [("A", 2), ("A", 1)], 2: [("A", 0), ("A", 3)]}
    leaves: list[Property[int]] = [eventually("Leaves", lambda s: s in (1, 3))]

    def exits(args: Mapping[str, Any]) -> bool:
        return bool(args["to"] in (1, 3))

    statuses = {}
    for name, fair in {
        "family": weak_fairness("A"),
        "instances": weak_fairness("A", per_instance=True),
        "exits": weak_fairness("A", when=exits),
    }.items():
        model = graph_model(edges, [0], properties=leaves, fairness=[fair])
        result = check(model, deadlock=False)
        _lassos_are_valid(model, result)
        statuses[name] = _statuses(result)["Leaves"]
    assert statuses == {"family": "violated", "instances": "violated", "exits": "holds"}
    assert weak_fairness("A", when=exits).title == "WF(A | exits)"


def test_a_property_conditioned_on_the_initial_state() -> None:
    """From 0 the run ends in 1; from 5 it cycles 5 <-> 6 for ever. ``initially`` picks the starts
    whose behaviours must satisfy the property; with none picked it holds vacuously."""
    edges: Edges = {0: [("A", 1)], 5: [("A", 6)], 6: [("A", 5)]}

    def from_start(start: int | None) -> str:
        done: Property[int] = eventually(
            "Done", lambda s: s == 1, initially=None if start is None else lambda s: s == start
        )
        reaches: Property[int] = leads_to("Reaches", lambda s: s in (0, 5), lambda s: s == 1)
        model = graph_model(edges, [0, 5], properties=[done, reaches], fairness=[weak_fairness("A")])
        result = check(model, deadlock=False, stop_at_first=False)
        _lassos_are_valid(model, result)
        if start == 5:
            assert _lasso(result, "Done").steps[0].state == 5
        return _statuses(result)["Done"]

    assert [from_start(start) for start in (None, 0, 5, 99)] == ["violated", "holds", "violated", "holds"]
    only_zero: Property[int] = leads_to(
        "Reaches", lambda s: s in (0, 5), lambda s: s == 1, initially=lambda s: s == 0
    )
    model = graph_model(edges, [0, 5], properties=[only_zero], fairness=[weak_fairness("A")])
    assert _statuses(check(model, deadlock=False)) == {"Reaches": "holds"}


def test_self_loops_do_not_count_as_taking_a_fair_action() -> None:
    # A at 0 only stutters; WF(A) must not make 0 -> 1 happen, and must not hide the stuttering.
    edges: Edges = {0: [("A", 0), ("B", 1)]}
    model = graph_model(
        edges, [0], properties=[eventually("Moves", lambda s: s == 1)], fairness=[weak_fairness("A")]
    )
    result = check(model, deadlock=False)
    assert _statuses(result) == {"Moves": "violated"}
    _lassos_are_valid(model, result)


# -- random graphs against the brute-force oracle ------------------------------


@st.composite
def liveness_cases(draw: st.DrawFn) -> tuple[Edges, list[int], list[Fairness], Property[int]]:
    # Mostly non-terminal states and at least one fairness condition, so that
    # fairness (and the WF/SF difference) decides a good share of the cases.
    n = draw(st.integers(1, 6))
    node = st.integers(0, n - 1)
    out = st.lists(st.tuples(st.sampled_from(ACTIONS), node), min_size=1, max_size=3)
    edges = draw(st.dictionaries(node, out, min_size=n - 1))
    if draw(st.booleans()):  # a ring of B steps: cycles on which A is enabled only sometimes
        edges = {s: [*edges.get(s, []), ("B", (s + 1) % n)] for s in range(n)}
    initial = draw(st.lists(node, min_size=1, max_size=2))
    fairness = draw(
        st.lists(
            st.builds(Fairness, st.sampled_from(["weak", "strong"]), st.sampled_from(ACTIONS), st.booleans()),
            min_size=1,
            max_size=3,
        )
    )
    p_set = draw(st.frozensets(node, max_size=2))
    q_set = draw(st.frozensets(node, max_size=2))
    kind = draw(st.sampled_from(["eventually", "always_eventually", "leads_to", "eventually_always"]))
    prop: Property[int]
    if kind == "eventually":
        prop = eventually("P", p_set.__contains__)
    elif kind == "always_eventually":
        prop = always_eventually("P", p_set.__contains__)
    elif kind == "leads_to":
        prop = leads_to("P", p_set.__contains__, q_set.__contains__)
    else:
        prop = eventually_always("P", p_set.__contains__)
    return edges, initial, fairness, prop


@settings(max_examples=400, deadline=None)
@given(liveness_cases())
def test_verdict_matches_brute_force_oracle(
    case: tuple[Edges, list[int], list[Fairness], Property[int]],
) -> None:
    edges, initial, fairness, prop = case
    model = graph_model(edges, initial, properties=[prop], fairness=fairness)
    result = check(model, deadlock=False)
    expected = "violated" if oracle_violated(model, edges, initial, prop) else "holds"
    assert _statuses(result) == {"P": expected}
    _lassos_are_valid(model, result)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6), st.data(), st.sampled_from(["weak", "strong"]))
def test_weak_and_strong_fairness_on_intermittently_enabled_exits(
    n: int, data: st.DataObject, kind: str
) -> None:
    # A ring 0 -> 1 -> ... -> n-1 -> 0 of B steps; A leaves to the exit n from some ring states.
    exits = data.draw(st.frozensets(st.integers(0, n - 1), min_size=1))
    edges: dict[int, list[tuple[str, int]]] = {
        s: [("B", (s + 1) % n)] + ([("A", n)] if s in exits else []) for s in range(n)
    }
    edges[n] = [("B", 0)]
    fairness = [weak_fairness("B"), Fairness("weak" if kind == "weak" else "strong", "A")]
    prop: Property[int] = always_eventually("ExitsOften", lambda s: s == n)
    model = graph_model(edges, [0], properties=[prop], fairness=fairness)
    result = check(model)
    holds = kind == "strong" or len(exits) == n
    assert _statuses(result) == {"ExitsOften": "holds" if holds else "violated"}
    assert oracle_violated(model, edges, [0], prop) == (not holds)
    _lassos_are_valid(model, result)


def test_stop_at_first_reports_one_temporal_violation() -> None:
    result = check(mutex("weak"))
    assert result.verdict == "violation"
    assert list(_statuses(result).values()) == ["violated", "unknown", "unknown"]


def test_safety_violation_stops_before_liveness() -> None:
    model = Model(**{**mutex("weak").__dict__, "invariants": {"NeverWaiting": lambda s: s.phase == 0}})
    result = check(model)
    assert {p.name: p.status for p in result.properties}["NeverWaiting"] == "violated"
    assert set(_statuses(result).values()) == {"unknown"}
