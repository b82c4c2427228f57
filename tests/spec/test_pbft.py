"""The PBFT layer: it satisfies its invariants, Byzantine capability is what it should be, and the
planted bugs are refuted with shortest counterexamples."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checker.checker import check
from model_checker.model import Model, SpecError
from spec import pbft
from spec.models import MODELS
from spec.pbft import NULL, Pbft, PbftBug, PbftConfig, SearchPbft, State, ViewChange, properties, reductions

SMALL = dict(
    replicas=4, faulty=1, byzantine=(0,), requests=2, max_view=1, checkpoint_interval=1, window=1, max_seq=1
)


def build(**overrides: Any) -> Model[State]:
    return pbft.build(**{**SMALL, **overrides})


def test_pbft_tiny_satisfies_every_invariant() -> None:
    result = check(MODELS["pbft-tiny"].instantiate())
    assert result.verdict == "ok"
    assert {p.name for p in result.properties} >= {
        "Agreement",
        "ExecutedPrefix",
        "OnlySentRequestsExecuted",
        "ExecutedAtMostOnce",
        "CheckpointAgreement",
        "ClientAcceptsOnlyCorrectResults",
    }
    # Every protocol step happens somewhere in the model: none is dead code.
    assert result.never_enabled == []


def shortest_violation(model: Model[State], invariant: str) -> int:
    """Check ``model``; assert ``invariant`` is violated and no shorter counterexample exists."""
    result = check(model, deadlock=False)
    assert result.verdict == "violation"
    violated = [p for p in result.properties if p.status == "violated"]
    assert [p.name for p in violated] == [invariant]
    trace = violated[0].counterexample
    assert trace is not None
    assert not model.invariants[invariant](trace.steps[-1].state)
    assert all(model.invariants[invariant](step.state) for step in trace.steps[:-1])
    # Breadth-first: one level fewer holds no violation, so the counterexample is shortest.
    shorter = check(model, deadlock=False, max_depth=len(trace.steps) - 1)
    assert shorter.verdict != "violation"
    return len(trace.steps)


@pytest.mark.parametrize(
    ("bug", "overrides", "invariant"),
    [
        ("commit_at_f_plus_1", {}, "Agreement"),
        ("prepare_counted_twice", {}, "Agreement"),
        (
            "reexecute",
            dict(requests=1, max_seq=2, window=2, checkpoint_interval=2, max_view=0),
            "ExecutedAtMostOnce",
        ),
    ],
)
def test_planted_bug_is_refuted_with_a_shortest_counterexample(
    bug: str, overrides: dict[str, Any], invariant: str
) -> None:
    assert check(build(**overrides), deadlock=False).verdict == "ok"
    shortest_violation(build(bug=bug, **overrides), invariant)


@pytest.mark.slow
def test_new_view_taking_lowest_view_entry_breaks_agreement() -> None:
    """Needs three views: a request prepared in view 0, another committed in view 1, and a NEW-VIEW
    for view 2 that sees both (about 200k states)."""
    overrides = dict(max_view=2, byzantine=(2,), checkpoint_interval=2)
    shortest_violation(build(bug="new_view_lowest_view", **overrides), "Agreement")


# --------------------------------------------------------------------------- NEW-VIEW's O


def proposals(bug: PbftBug, chosen: list[ViewChange]) -> tuple[tuple[int, int], ...]:
    protocol = Pbft(PbftConfig(max_seq=4, bug=bug))
    return protocol.compute_proposals(chosen).proposals


def vc(stable: int, prepared: set[tuple[int, int, int]]) -> ViewChange:
    return ViewChange(view=3, stable=stable, stable_state=(1,) * stable, prepared=frozenset(prepared))


def test_new_view_takes_highest_view_digest_and_fills_gaps_with_null() -> None:
    chosen = [vc(0, {(1, 1, 0), (3, 2, 0)}), vc(0, {(1, 2, 1)}), vc(0, set())]
    assert proposals(PbftBug.NONE, chosen) == ((1, 2), (2, NULL), (3, 2))
    assert proposals(PbftBug.NEW_VIEW_LOWEST_VIEW, chosen) == ((1, 1), (2, NULL), (3, 2))
    assert proposals(PbftBug.NO_NULL_FILL, chosen) == ((1, 2), (3, 2))


def test_new_view_starts_after_the_latest_stable_checkpoint_in_v() -> None:
    chosen = [vc(2, {(3, 1, 0)}), vc(0, {(1, 1, 0), (2, 2, 0)}), vc(0, set())]
    message = Pbft(PbftConfig(max_seq=4)).compute_proposals(chosen)
    assert (message.stable, message.stable_state, message.proposals) == (2, (1, 1), ((3, 1),))


# --------------------------------------------------------------------------- Byzantine capability


def test_byzantine_primary_can_equivocate_but_not_forge_requests() -> None:
    protocol = Pbft(PbftConfig(requests=2, max_seq=2, window=2))
    (start,) = protocol.init()
    offers = {args for args, _ in protocol.prepare(start)}
    # Every honest backup may accept a different request at every sequence number ...
    assert offers == {(i, n, d) for i in (1, 2, 3) for n in (1, 2) for d in (1, 2)}
    # ... but never the digest of a request no client sent.
    assert all(d != protocol.forged for _, _, d in offers)


def test_byzantine_votes_complete_quorums_only_with_enough_honest_votes() -> None:
    protocol = Pbft(PbftConfig(byzantine=frozenset({3}), requests=1, max_seq=1))
    (s,) = protocol.init()
    (_, s), *_ = protocol.pre_prepare(s)  # honest primary 0 proposes request 1 at 1
    assert protocol.prepare_votes(s, (0, 1, 1)) == 1  # Byzantine backup 3 only
    s = next(nxt for args, nxt in protocol.prepare(s) if args[0] == 1)
    assert protocol.prepare_votes(s, (0, 1, 1)) == protocol.prepare_quorum
    assert protocol.has_prepared_certificate(s, (0, 1, 1))


def test_unknown_bug_and_bad_constants_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="unknown PBFT bug"):
        build(bug="typo")
    with pytest.raises(SpecError, match="exceed faulty"):
        build(byzantine=(0, 1))


@pytest.mark.parametrize(("replicas", "faulty"), [(3, 1), (3, 2), (6, 2)])
def test_fewer_than_3f_plus_1_replicas_is_checkable_but_warned(replicas: int, faulty: int) -> None:
    model = build(replicas=replicas, faulty=faulty)
    (warning,) = model.warnings
    assert f"replicas={replicas} < 3*faulty+1={3 * faulty + 1}" in warning and "n >= 3f + 1" in warning


@pytest.mark.parametrize(("replicas", "faulty"), [(4, 1), (5, 1), (7, 2), (2, 0)])
def test_3f_plus_1_replicas_or_more_is_not_warned(replicas: int, faulty: int) -> None:
    assert build(replicas=replicas, faulty=faulty, byzantine=()).warnings == ()


# --------------------------------------------------------------------------- symmetry


def random_walk(model: Model[State], choices: list[int]) -> list[State]:
    (state,) = model.init()
    states = [state]
    for choice in choices:
        successors = [nxt for action in model.actions for _, nxt in action.step(state)]
        if not successors:
            break
        state = successors[choice % len(successors)]
        states.append(state)
    return states


def swap_replicas(s: State, a: int, b: int) -> State:
    """Rename replica a to b and back: with messages stored per sender, a reordering of records."""
    replicas = list(s.replicas)
    replicas[a], replicas[b] = replicas[b], replicas[a]
    return s._replace(replicas=tuple(replicas))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=40))
def test_symmetric_states_share_one_representative(choices: list[int]) -> None:
    model = MODELS["pbft"].instantiate()
    assert model.symmetry is not None
    for s in random_walk(model, choices):
        representative = model.symmetry(s)
        assert representative == model.symmetry(swap_replicas(s, 2, 3))
        # The representative is itself a renaming of s, never a different state.
        assert representative in (s, swap_replicas(s, 2, 3))


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=40))
def test_renaming_interchangeable_replicas_maps_steps_to_steps(choices: list[int]) -> None:
    """Symmetry is sound: the renamed state's successors are the renamed successors."""
    model = MODELS["pbft"].instantiate()
    for s in random_walk(model, choices)[-3:]:
        successors = {nxt for action in model.actions for _, nxt in action.step(s)}
        renamed = {nxt for action in model.actions for _, nxt in action.step(swap_replicas(s, 2, 3))}
        assert {swap_replicas(nxt, 2, 3) for nxt in successors} == renamed


def test_random_walks_keep_the_invariants() -> None:
    model = MODELS["pbft-window"].instantiate()
    rng = random.Random(7)
    for _ in range(30):
        for s in random_walk(model, [rng.randrange(1000) for _ in range(40)]):
            assert all(holds(s) for holds in model.invariants.values())


def test_every_config_field_is_a_documented_model_constant() -> None:
    fields = set(PbftConfig().constants())
    assert fields == set(pbft.CONSTANT_DOCS)
    for spec in MODELS.values():
        if spec.name.startswith("pbft"):
            assert set(spec.instantiate().constants) == fields


@settings(max_examples=15, deadline=None)
@given(
    st.sampled_from(["pbft", "pbft-live", "pbft-live-gap"]),
    st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=30),
)
def test_search_memos_change_no_successor(name: str, choices: list[int]) -> None:
    """``SearchPbft`` (what the checker runs) takes exactly ``Pbft``'s steps, Quiescent included."""
    model = MODELS[name].instantiate()
    config = PbftConfig.of(model.constants)
    pure = Pbft(config).actions()
    for s in random_walk(model, choices):
        searched = [(a.name, Counter(a.step(s))) for a in model.actions]
        assert searched == [(a.name, Counter(a.step(s))) for a in pure]


@settings(max_examples=15, deadline=None)
@given(
    st.sampled_from(["none", "reexecute", "commit_at_f_plus_1"]),
    st.lists(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=30), max_size=4),
)
def test_memos_by_part_of_the_state_give_what_a_fresh_protocol_computes(
    bug: str, walks: list[list[int]]
) -> None:
    """The memos keyed by a part of the state (readable by watermarks, stable checkpoints and the
    log invariants by the honest logs), warmed on earlier walks, agree with a protocol that
    computes each state afresh, violated invariants included."""
    model = build(bug=bug, checkpoint_interval=2, window=2)
    config = PbftConfig.of(model.constants)
    search = SearchPbft(config)
    warm = properties.invariants(search)
    for choices in walks:
        for s in random_walk(model, choices):
            pure = Pbft(config)
            assert search.readable(s) == reductions.readable(pure, s)
            assert search.stable_checkpoints(s) == pure.stable_checkpoints(s)
            fresh = properties.invariants(pure)
            assert {name: holds(s) for name, holds in warm.items()} == {
                name: holds(s) for name, holds in fresh.items()
            }
