"""Simulation: seeded, reproducible random walks that never claim ``ok``."""

from __future__ import annotations

from model_checker.examples.two_phase import two_phase
from model_checker.simulate import simulate


def _walk_labels(seed: int) -> list[str]:
    model = two_phase(5, commit_needs_all_prepared=False)
    result = simulate(model, runs=200, depth=30, seed=seed)
    trace = result.counterexample
    assert trace is not None
    return [str(step.label) for step in trace.steps]


def test_same_seed_same_walks() -> None:
    assert _walk_labels(7) == _walk_labels(7)


def test_different_seeds_differ() -> None:
    assert len({tuple(_walk_labels(seed)) for seed in range(5)}) > 1


def test_simulation_of_a_correct_model_is_incomplete() -> None:
    result = simulate(two_phase(3), runs=20, depth=15, seed=1)
    assert result.verdict == "incomplete"
    assert 1 < result.distinct_states <= 288
    assert all(p.status == "unknown" for p in result.properties)
    assert sum(c.new for c in result.coverage) == result.distinct_states - 1


def test_simulation_finds_the_planted_bug() -> None:
    result = simulate(two_phase(3, commit_needs_all_prepared=False), runs=100, depth=20, seed=3)
    assert result.verdict == "violation"
    trace = result.counterexample
    assert trace is not None
    model = result.model
    assert not model.invariants["TCConsistent"](trace.steps[-1].state)
