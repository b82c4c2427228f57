"""Replay driver: transition coverage, gaps, budget, and the field-by-field diff it reports."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pot_impl.pbft.normal_case as impl_normal_case
from conformance.bridge_core import FieldDiff, Unrealizable, state_diff
from conformance.bridge_ledger import LedgerBridge
from conformance.bridge_pbft import PbftBridge
from conformance.replay import cover, replay, walk, without_symmetry
from conformance.runner import run_mode
from model_checker.graph import explore
from model_checker.model import Action, Label, Model
from spec import ledger as sl
from spec.models import MODELS
from tests.model_checker.helpers import successors


class Point(NamedTuple):
    x: int
    tags: frozenset[int]


class Pair(NamedTuple):
    left: Point
    right: tuple[int, ...]


def _model() -> Model[Any]:
    return Model("pairs", init=lambda: [], actions=(Action("Noop", lambda s: iter(())),))


def test_equal_states_have_no_diff() -> None:
    state = Pair(Point(1, frozenset({2})), (3, 4))
    assert state_diff(_model(), state, state) == ()


@given(st.integers(), st.integers(), st.frozensets(st.integers(0, 5)), st.frozensets(st.integers(0, 5)))
def test_diff_names_exactly_the_differing_fields(
    x1: int, x2: int, t1: frozenset[int], t2: frozenset[int]
) -> None:
    spec, impl = Pair(Point(x1, t1), (0, 1)), Pair(Point(x2, t2), (0, 1))
    fields = {d.field for d in state_diff(_model(), spec, impl)}
    assert fields == {name for name, differs in (("left.x", x1 != x2), ("left.tags", t1 != t2)) if differs}


def test_set_diff_says_what_is_missing_and_extra() -> None:
    (diff,) = state_diff(
        _model(), Pair(Point(0, frozenset({1, 2})), ()), Pair(Point(0, frozenset({2, 3})), ())
    )
    assert diff == FieldDiff("left.tags", "only in spec: 1", "only in impl: 3")


class NoFinalize:
    """The ledger bridge, unable to realise Finalize: exercises gap accounting."""

    def __init__(self, inner: LedgerBridge) -> None:
        self.inner = inner

    def start(self, initial: Any, plan: Any) -> None:
        self.inner.start(initial, plan)

    def realizable(self, label: Label, state: Any) -> str | None:
        return self.inner.realizable(label, state)

    def stimulate(self, label: Label, state: Any) -> tuple[FieldDiff, ...]:
        if label.action == "Finalize":
            raise Unrealizable("no Finalize here")
        return self.inner.stimulate(label, state)

    def abstract(self) -> sl.LedgerState:
        return self.inner.abstract()

    def probe(self, state: Any) -> tuple[str, tuple[FieldDiff, ...]] | None:
        return None


def test_gaps_are_counted_and_not_covered() -> None:
    model = MODELS["ledger-tiny"].instantiate()
    behaviours, total = cover(model)
    full = replay(model, LedgerBridge(model), behaviours=behaviours, transitions_total=total)
    assert full.conforms and full.transitions_covered == total and not full.gaps
    partial = replay(model, NoFinalize(LedgerBridge(model)), behaviours=behaviours, transitions_total=total)
    assert partial.conforms and partial.gaps[("Finalize", "no Finalize here")] > 0
    assert partial.transitions_covered < total


def test_budget_stops_replay() -> None:
    model = MODELS["ledger-tiny"].instantiate()
    report = replay(model, LedgerBridge(model), budget_s=0.0)
    assert report.out_of_budget and report.behaviours == 0 and report.transitions_total > 0


@pytest.mark.parametrize("name", ["tiny", "pbft-tiny"])
def test_full_transition_coverage_conforms(name: str) -> None:
    """Every transition of the model's symmetry-reduced graph taken on the real replicas (a few
    seconds each; ``default``'s million transitions take minutes, see docs/conformance.md)."""
    report = run_mode(name, "replay")
    assert report.verdict == "ok", report.summary()
    assert report.graph == "symmetry-reduced" and not report.gaps
    assert report.transitions_covered == report.transitions_total == report.steps


@pytest.fixture(scope="module")
def tiny() -> Model[Any]:
    return MODELS["tiny"].instantiate()


def test_walk_takes_every_transition_of_the_reduced_graph_once(tiny: Model[Any]) -> None:
    """One implementation step per transition of the symmetry-reduced graph, each checked."""
    report = walk(tiny, PbftBridge(tiny))
    graph = explore(tiny)
    assert report.graph == "symmetry-reduced" and report.complete and report.conforms
    assert (
        report.transitions_total
        == graph.distinct_transitions
        < explore(without_symmetry(tiny)).distinct_transitions
    )
    assert report.transitions_covered == report.transitions_total == report.steps
    assert report.states == graph.num_states
    assert 0 < report.probed < report.states


def test_walk_shared_by_workers_is_the_same_walk(tiny: Model[Any]) -> None:
    alone = walk(tiny, PbftBridge(tiny))
    shared = walk(tiny, PbftBridge(tiny), workers=2)
    figures = ("transitions_total", "transitions_covered", "steps", "states", "probed")
    assert [getattr(shared, f) for f in figures] == [getattr(alone, f) for f in figures]


def test_walk_budget_leaves_coverage_partial(tiny: Model[Any]) -> None:
    report = walk(tiny, PbftBridge(tiny), budget_s=0.0)
    assert report.out_of_budget and not report.complete
    assert report.transitions_covered < report.transitions_total


def test_walk_divergence_names_a_replayable_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica prepared one PREPARE early diverges; the reported trace is a spec behaviour."""
    monkeypatch.setattr(impl_normal_case, "prepare_quorum", lambda n, f: 1)
    model = MODELS["pbft-tiny"].instantiate()
    report = walk(model, PbftBridge(model))
    (divergence,) = report.divergences
    assert divergence.action.startswith("Prepare(") and not report.complete
    assert any(d.field.endswith(".commits") for d in divergence.diff)
    state = next(iter(model.init()))
    for text in divergence.trace[1:]:
        state = next(s for label, s in successors(model, state) if str(label) == text)
    assert divergence.step == len(divergence.trace) - 1


def test_walk_probes_catch_a_commit_quorum_of_2f(monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk's probes (in a share of the tree's leaves) find a replica executing on 2f COMMITs."""
    monkeypatch.setattr(impl_normal_case, "commit_quorum", lambda n, f: 2 * ((n - 1) // 3))
    model = MODELS["pbft-tiny"].instantiate()
    report = walk(model, PbftBridge(model))
    (divergence,) = report.divergences
    assert "heard every message" in divergence.action and report.probed > 0
    assert any(d.field.endswith(".executed") for d in divergence.diff)
