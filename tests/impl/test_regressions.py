"""Regressions found by conformance trace validation, reproduced with ``pot_impl`` alone.

New primary proposing before installing O (CHANGELOG.md, fixed finding 1): on
entering a view, adopting the checkpoint min-s made it stable, and ``Checkpoints.make_stable`` let the new
primary propose a fresh batch at min-s + 1 before O's pre-prepares were installed; O then
re-proposed that seq with the batch prepared in the old view, so the primary pre-prepared two
batches at one (view, seq). C&L 4.4 has the new primary install O first and assign fresh
sequence numbers above max-s only.

Executed state going backwards across a restart (seeds 28, 290): a batch committed in view v
but executed only after NEW-VIEW(v + 1) installed (its view-v slot discarded), followed by a
stable checkpoint below it, vanished from the compacted log; a restart then recovered below what
the replica had executed. The compacted log now keeps a ``CommittedCertificate`` per committed
seq above the stable checkpoint. The property below recovers a fresh replica from the store
after every step of a run and compares it with the live one.

Primary re-ordering requests a certified checkpoint already executed (seed 147 after catch-up
changed the schedule): a new primary behind the new view's min-s, with that state not fetched
yet, proposed a request still pending in its stale client table although min-s had executed
it. A primary now proposes nothing while a certified checkpoint it has not reached is pending.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pot_impl import codec
from pot_impl.pbft.io import (
    DURABLE_TYPES,
    CompactLog,
    DurableRecord,
    Effect,
    EventKind,
    Persist,
    Timer,
    TimerKind,
)
from pot_impl.pbft.messages import Commit, PrePrepare
from pot_impl.pbft.replica import Replica
from pot_impl.sim import checks
from pot_impl.sim.apps import RecordingApp
from pot_impl.sim.scenarios import random_scenario
from pot_impl.sim.simulator import Crash, RunResult, Scenario, simulate
from tests.impl.harness import Cluster, signed_request
from tests.impl.recovery import RecoveryChecked

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


ROLLBACK_SEEDS = (28, 290)
"""Simulator seeds at which a restarted replica recovered below the seq it had executed."""


class RecoveryCheckedSimulation(RecoveryChecked):
    """Recovery checked after every step that writes an honest replica's store, from that store."""

    def stored_records(
        self, replica: int, live: Replica, effects: list[Effect]
    ) -> list[DurableRecord] | None:
        if not any(isinstance(e, Persist | CompactLog) for e in effects):
            return None
        return [codec.decode(data, DURABLE_TYPES) for data in self.nodes[replica].store]


@pytest.mark.parametrize("seed", ROLLBACK_SEEDS)
def test_a_restarted_replica_never_un_executes(seed: int) -> None:
    result = simulate(crash_only(seed), RecordingApp)
    assert any(result.nodes[r].restarts for r in result.honest), f"seed {seed} no longer restarts a replica"
    assert checks.no_rollback_on_recovery(result) == [], f"seed {seed}"
    assert checks.all_safety(result) + checks.progress(result) == [], f"seed {seed}"


def recovery_divergences(scenario: Scenario) -> list[str]:
    simulation = RecoveryCheckedSimulation(scenario)
    simulation.run()
    assert simulation.recoveries > 0
    return simulation.divergences


@pytest.mark.parametrize("seed", ROLLBACK_SEEDS)
def test_the_store_restores_the_executed_state_after_every_step(seed: int) -> None:
    assert recovery_divergences(crash_only(seed)) == [], f"seed {seed}"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), faulty_primaries=st.booleans())
def test_the_store_restores_the_executed_state_at_any_seed(seed: int, faulty_primaries: bool) -> None:
    """Byzantine replicas, loss, partitions and crashes included (``random_scenario``)."""
    assert recovery_divergences(random_scenario(seed, 4, faulty_primaries)) == []


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), faulty_primaries=st.booleans())
def test_the_store_restores_the_executed_state_at_many_seeds(seed: int, faulty_primaries: bool) -> None:
    """40 seeds at n = 4 (about a minute of CPU; recovering after every step costs O(log) each)."""
    assert recovery_divergences(random_scenario(seed, 4, faulty_primaries)) == []


def test_a_primary_behind_a_certified_checkpoint_proposes_only_after_fetching_it() -> None:
    cluster = Cluster.build(4, checkpoint_interval=2, watermark_window=4, batch_size=1)
    primary = cluster.replicas[0]
    for t in (1, 2):
        cluster.submit(signed_request("c", t, f"op{t}".encode()), to=[0])
    cluster.run(keep=lambda r, m: r != 0 or not isinstance(m, Commit))  # the primary never commits
    assert primary.last_executed == 0 and primary.checkpoint_votes[2].keys() == {1, 2, 3}

    cluster.submit(signed_request("d", 1, b"next"), to=[0])
    assert not [m for _, m in cluster.queue if isinstance(m, PrePrepare)]  # waits for the state
    cluster.queue.clear()
    cluster.absorb(0, primary.fire(Timer(TimerKind.STATE_TRANSFER, 0)))
    cluster.run()
    assert primary.last_executed == 3 and primary.stable_checkpoint == 2
    assert [e.seq for e in cluster.events_of(0, EventKind.PRE_PREPARED)] == [1, 2, 3]
    assert all(cluster.replicas[r].last_executed == 3 for r in range(4))
