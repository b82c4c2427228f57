"""Regressions found by conformance trace validation, reproduced with ``pot_impl`` alone.

New primary proposing before installing O (docs/conformance_trace_mutants.md, Findings): on
entering a view, adopting the checkpoint min-s made it stable, and ``_make_stable`` let the new
primary propose a fresh batch at min-s + 1 before O's pre-prepares were installed; O then
re-proposed that seq with the batch prepared in the old view, so the primary pre-prepared two
batches at one (view, seq). C&L 4.4 has the new primary install O first and assign fresh
sequence numbers above max-s only.
"""

from __future__ import annotations

import dataclasses

import pytest

from pot_impl.pbft.io import EventKind
from pot_impl.sim.apps import RecordingApp
from pot_impl.sim.scenarios import random_scenario
from pot_impl.sim.simulator import Crash, RunResult, Scenario, simulate

PROPOSE_BEFORE_O_SEEDS = (65, 122, 161, 221, 256)
"""Simulator seeds at which the new primary proposed at a seq that O re-proposed (odd seeds with
faulty primaries, as conformance/trace runs them)."""


def crash_only(seed: int) -> Scenario:
    """``random_scenario(seed)`` (faulty primaries for odd seeds) with each Byzantine replica
    crashing for good at time 0 instead of misbehaving, so the view changes it forces go through
    NEW-VIEWs whose O re-proposes batches prepared in the old view."""
    scenario = random_scenario(seed, 4, faulty_primaries=seed % 2 == 1)
    crashed = tuple(Crash(replica, 0, None) for replica, _ in scenario.byzantine)
    return dataclasses.replace(scenario, byzantine=(), crashes=scenario.crashes + crashed)


def double_pre_prepares(result: RunResult) -> list[str]:
    """Honest replicas that pre-prepared two different batches at one (view, seq)."""
    found = []
    for replica in result.honest:
        accepted: dict[tuple[int, int], bytes] = {}
        for event in result.nodes[replica].events:
            if event.kind is not EventKind.PRE_PREPARED:
                continue
            first = accepted.setdefault((event.view, event.seq), event.digest)
            if first != event.digest:
                found.append(
                    f"replica {replica} pre-prepared two batches at view {event.view} seq {event.seq}"
                )
    return found


def divergent_commits(result: RunResult) -> list[str]:
    """Sequence numbers at which two honest replicas committed different batches (in any view)."""
    committed: dict[int, dict[bytes, set[int]]] = {}
    for replica in result.honest:
        for event in result.nodes[replica].events:
            if event.kind is EventKind.COMMITTED:
                committed.setdefault(event.seq, {}).setdefault(event.digest, set()).add(replica)
    return [
        f"seq {seq}: {sorted(map(sorted, by_digest.values()))}"
        for seq, by_digest in sorted(committed.items())
        if len(by_digest) > 1
    ]


@pytest.mark.parametrize("seed", PROPOSE_BEFORE_O_SEEDS)
def test_new_primary_installs_o_before_proposing(seed: int) -> None:
    scenario = crash_only(seed)
    result = simulate(scenario, RecordingApp)
    assert any(e.kind is EventKind.NEW_VIEW for r in result.honest for e in result.nodes[r].events), (
        f"seed {seed} no longer changes views"
    )
    assert double_pre_prepares(result) == [], f"seed {seed}"
    assert divergent_commits(result) == [], f"seed {seed}"
