"""The breadth-first engine: reachability, bounds, deadlocks, --continue, spec errors."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checker.checker import check
from model_checker.engine import ActionFailure, Progress
from model_checker.graph import explore
from model_checker.model import Action, Model, SpecError
from tests.model_checker.helpers import Edges, graph_model, reachable_levels


@st.composite
def random_graphs(draw: st.DrawFn, max_states: int = 40) -> tuple[Edges, list[int]]:
    n = draw(st.integers(1, max_states))
    node = st.integers(0, n - 1)
    edges = draw(st.dictionaries(node, st.lists(st.tuples(st.sampled_from(["A", "B"]), node), max_size=4)))
    initial = draw(st.lists(node, min_size=1, max_size=3))
    return edges, initial


@settings(max_examples=60, deadline=None)
@given(random_graphs())
def test_reachable_states_and_depth_match_naive_bfs(case: tuple[Edges, list[int]]) -> None:
    edges, initial = case
    result = check(graph_model(edges, initial), deadlock=False)
    levels = reachable_levels(edges, initial)
    assert result.verdict == "ok"
    assert result.distinct_states == len(levels)
    assert result.depth == max(levels.values()) + 1
    generated = len(initial) + sum(len(edges.get(s, ())) for s in levels)
    assert result.generated_states == generated


@settings(max_examples=40, deadline=None)
@given(random_graphs(), st.data())
def test_invariant_counterexample_is_a_shortest_path(
    case: tuple[Edges, list[int]], data: st.DataObject
) -> None:
    edges, initial = case
    levels = reachable_levels(edges, initial)
    bad = data.draw(st.sampled_from(sorted(levels)))
    result = check(graph_model(edges, initial, invariants={"NotBad": lambda s: s != bad}), deadlock=False)
    trace = result.counterexample
    assert result.verdict == "violation" and trace is not None
    assert trace.steps[-1].state == bad
    assert len(trace) == levels[bad] + 1
    assert trace.steps[0].state in initial
    for before, after in zip(trace.steps, trace.steps[1:], strict=False):
        assert after.label is not None
        assert (after.label.action, after.state) in edges[before.state]


def test_deadlock_is_reported_with_its_trace() -> None:
    model = graph_model({0: [("A", 1)], 1: [("B", 2)]}, [0])
    result = check(model)
    assert result.verdict == "violation"
    trace = result.counterexample
    assert trace is not None and trace.kind == "deadlock"
    assert [s.state for s in trace.steps] == [0, 1, 2]
    assert check(model, deadlock=False).verdict == "ok"


def test_stuttering_step_is_not_a_deadlock() -> None:
    assert check(graph_model({0: [("A", 1)], 1: [("A", 1)]}, [0])).verdict == "ok"


def test_bounds_give_incomplete_never_ok() -> None:
    chain = graph_model({i: [("A", i + 1)] for i in range(10)}, [0])
    by_depth = check(chain, deadlock=False, max_depth=4)
    assert by_depth.verdict == "incomplete"
    assert (by_depth.distinct_states, by_depth.depth) == (4, 4)
    assert "depth" in (by_depth.incomplete_reason or "")
    by_states = check(chain, deadlock=False, max_states=6)
    assert by_states.verdict == "incomplete" and by_states.distinct_states == 6
    assert all(p.status == "unknown" for p in by_states.properties)
    assert check(chain, deadlock=False, max_depth=11).verdict == "ok"


def test_bounded_search_still_finds_violations_inside_the_bound() -> None:
    chain = graph_model({i: [("A", i + 1)] for i in range(10)}, [0], invariants={"Small": lambda s: s < 3})
    assert check(chain, deadlock=False, max_depth=5).verdict == "violation"


def test_continue_collects_one_counterexample_per_property() -> None:
    model = graph_model(
        {0: [("A", 1)], 1: [("A", 2)], 2: [("A", 3)]},
        [0],
        invariants={"Below2": lambda s: s < 2, "Below3": lambda s: s < 3, "Any": lambda s: True},
    )
    first = check(model)
    assert [p.status for p in first.properties] == ["violated", "unknown", "unknown", "unknown"]
    every = check(model, stop_at_first=False)
    statuses = {p.name: p.status for p in every.properties}
    assert statuses == {"Below2": "violated", "Below3": "violated", "Any": "holds", "deadlock": "violated"}
    lengths = {p.name: len(p.counterexample) for p in every.properties if p.counterexample is not None}
    assert lengths == {"Below2": 3, "Below3": 4, "deadlock": 4}


def test_selected_invariants_only() -> None:
    model = graph_model({0: [("A", 1)], 1: [("A", 0)]}, [0], invariants={"Zero": lambda s: s == 0})
    assert check(model, invariants=[]).verdict == "ok"
    with pytest.raises(SpecError, match="its invariants are Zero"):
        check(model, invariants=["Nope"])


def test_constraint_keeps_states_but_does_not_expand_them() -> None:
    counter = Model(
        name="counter",
        init=lambda: iter([0]),
        actions=(Action("Inc", lambda s: iter([((), s + 1)])),),
        constraint=lambda s: s < 5,
    )
    result = check(counter)
    assert result.verdict == "ok" and result.distinct_states == 6


def _raising(state: int) -> Iterator[tuple[tuple[int], int]]:
    for n in (1, 2):
        if state == 2 and n == 2:
            raise ZeroDivisionError("boom")
        yield (n,), state + n


def test_exception_in_action_names_action_state_and_trace() -> None:
    model = Model(name="m", init=lambda: iter([0]), actions=(Action("Step", _raising, ("n",)),))
    with pytest.raises(ActionFailure, match=r"action Step\(n=2\) raised ZeroDivisionError: boom") as info:
        check(model)
    assert info.value.state == 2
    assert info.value.trace is not None
    assert [step.state for step in info.value.trace] == [0, 2]


def test_exception_in_invariant_is_a_spec_error() -> None:
    model = graph_model({0: [("A", 1)]}, [0], invariants={"Bad": lambda s: 1 // (1 - s) > 0})
    with pytest.raises(ActionFailure, match="invariant Bad raised ZeroDivisionError") as info:
        check(model, deadlock=False)
    assert info.value.state == 1


@pytest.mark.parametrize(
    ("initial", "message"),
    [("text", "str value"), (None, "NoneType"), (1.5, "float"), (frozenset({"a"}), "str value")],
)
def test_unstable_state_values_are_rejected(initial: object, message: str) -> None:
    model = Model(name="m", init=lambda: iter([initial]), actions=())
    with pytest.raises(SpecError, match=message):
        check(model)


def test_unstable_successor_is_rejected() -> None:
    model: Model[Any] = Model(
        name="m", init=lambda: iter([0]), actions=(Action("S", cast(Any, lambda s: iter([((), (s, "x"))]))),)
    )
    with pytest.raises(SpecError, match="successor of S"):
        check(model)


def test_malformed_step_output_is_rejected() -> None:
    yields_bare_state: Action[Any] = Action("S", cast(Any, lambda s: iter([s + 1])))  # deliberately ill-typed
    model: Model[Any] = Model(name="m", init=lambda: iter([0]), actions=(yields_bare_state,))
    with pytest.raises(SpecError):
        check(model)


def test_wrong_number_of_parameter_values_is_rejected() -> None:
    step = Action("S", lambda s: iter([((1, 2), 1)]), ("a",))
    model = Model(name="m", init=lambda: iter([0]), actions=(step,))
    with pytest.raises(SpecError, match="yielded 2 parameter values"):
        check(model)


def test_never_enabled_action_is_flagged() -> None:
    model = graph_model({0: [("A", 1)], 1: [("A", 0)]}, [0])
    result = check(model)
    assert result.never_enabled == ["B"]
    flags = {c["action"]: c["never_enabled"] for c in result.to_json()["coverage"]}
    assert flags == {"A": False, "B": True}


def test_view_merges_states_it_cannot_tell_apart() -> None:
    pairs = Model(
        name="pairs",
        init=lambda: iter([(0, 0)]),
        actions=(Action("Inc", lambda s: iter([((), (s[0] + 1, s[1] + 1))] if s[0] < 4 else [])),),
        view=lambda s: s[0] % 2,
    )
    assert check(pairs, deadlock=False).distinct_states == 2


def test_symmetry_canonicalises_before_fingerprinting() -> None:
    swap = Model(
        name="swap",
        init=lambda: iter([(0, 1)]),
        actions=(Action("Swap", lambda s: iter([((), (s[1], s[0]))])),),
        symmetry=lambda s: tuple(sorted(s)),
    )
    assert check(swap).distinct_states == 1


def test_progress_is_reported_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(10_000))
    monkeypatch.setattr("model_checker.engine.time.perf_counter", lambda: float(next(clock)))
    reports: list[Progress] = []
    chain = graph_model({i: [("A", i + 1)] for i in range(6)}, [0])
    check(chain, deadlock=False, progress=reports.append)
    assert [r.depth for r in reports] == [2, 3, 4, 5, 6, 7, 7]  # the last pass finds nothing new
    assert [r.distinct for r in reports] == [2, 3, 4, 5, 6, 7, 7]
    assert all(later.seconds > earlier.seconds for earlier, later in pairwise(reports))


def test_no_progress_for_short_runs() -> None:
    reports: list[Progress] = []
    check(graph_model({0: [("A", 1)]}, [0]), deadlock=False, progress=reports.append)
    assert reports == []


def test_rare_malformed_yield_names_its_action() -> None:
    def good(s: int) -> Iterator[tuple[tuple[()], int]]:
        if s < 100:
            yield (), s + 1

    def rare(s: int) -> Iterator[Any]:
        if s == 50:
            yield s  # a bare state instead of ((), state)

    model: Model[Any] = Model(
        name="m", init=lambda: iter([0]), actions=(Action("Good", good), Action("Rare", rare))
    )
    with pytest.raises(ActionFailure, match="action Rare yielded 50") as info:
        check(model, deadlock=False)
    assert info.value.state == 50


def test_a_model_without_initial_states_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="no initial state"):
        check(Model(name="empty", init=lambda: iter([]), actions=()))


def test_unhashable_parameter_values_are_a_spec_error_when_labelling_edges() -> None:
    step: Action[int] = Action("S", lambda s: iter([(([s],), s)]), ("items",))
    with pytest.raises(SpecError, match="hashable"):
        explore(Model(name="m", init=lambda: iter([0]), actions=(step,)))
