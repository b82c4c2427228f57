"""SIGKILL at arbitrary instants under load: no accepted request is ever lost, no replica diverges.

A load generator runs in a thread while the test kills replicas (the current
primary included) at random, seeded instants and restarts them from their
SQLite stores. Afterwards every replica must have executed, for every client,
at least the last request that client saw accepted by f+1 replicas (clients
submit in timestamp order and replicas execute a prefix, so this covers every
accepted request), with identical ledgers and no conflicting executions in the
event logs.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable

import pytest

from pot_impl.runtime.client import cluster_status
from pot_impl.runtime.cluster import LocalCluster
from pot_impl.runtime.load import LoadResult
from tests.runtime.conftest import statuses, wait_until
from tests.runtime.test_cluster import assert_converged, committed_height, config_of

MakeCluster = Callable[..., LocalCluster]


class BackgroundLoad:
    """Closed-loop load from a thread, so the test thread is free to kill processes."""

    def __init__(self, cluster: LocalCluster, clients: int, duration_s: float) -> None:
        self.result: LoadResult | None = None
        load = cluster.load(clients, duration_s=duration_s, timeout_s=30.0, retry_s=0.5)
        self._thread = threading.Thread(target=lambda: setattr(self, "result", asyncio.run(load)))

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._thread.join(timeout=120)

    def finished(self) -> LoadResult:
        assert self.result is not None, "the load generator did not finish"
        return self.result


def current_primary(cluster: LocalCluster) -> int:
    views = [int(r["view"]) for r in statuses(config_of(cluster)).values() if isinstance(r, dict)]
    return max(views) % cluster.n


def crash_and_recover(cluster: LocalCluster, rounds: int, seed: int, load_s: float) -> None:
    rng = random.Random(seed)
    with BackgroundLoad(cluster, clients=16, duration_s=load_s) as load:
        for round_ in range(rounds):
            time.sleep(rng.uniform(0.2, 1.0))
            victim = current_primary(cluster) if round_ % 2 == 0 else rng.randrange(cluster.n)
            cluster.kill(victim)
            time.sleep(rng.uniform(0.0, 1.0))
            cluster.restart(victim)
    result = load.finished()
    assert result.outcomes, "no request was accepted at all"
    assert_no_accepted_request_lost(cluster, result)


def assert_no_accepted_request_lost(cluster: LocalCluster, result: LoadResult) -> None:
    config = config_of(cluster)
    replicas = list(range(cluster.n))
    assert_converged(cluster, replicas, committed_height(result), timeout_s=60.0)
    accepted: dict[str, int] = {}
    for outcome in result.outcomes:
        accepted[outcome.client] = max(accepted.get(outcome.client, 0), outcome.timestamp)
    reports = asyncio.run(cluster_status(config, clients=sorted(accepted)))
    for replica, report in reports.items():
        assert isinstance(report, dict), f"replica {replica}: {report}"
        executed = report["client_timestamps"]
        lost = {c: t for c, t in accepted.items() if executed.get(c, 0) < t}
        assert lost == {}, f"replica {replica} lost accepted requests"


def test_sigkill_of_primary_and_backup_under_load(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(4)
    crash_and_recover(cluster, rounds=2, seed=1, load_s=6.0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_repeated_sigkill_at_random_instants_n4(make_cluster: MakeCluster, seed: int) -> None:
    cluster = make_cluster(4)
    crash_and_recover(cluster, rounds=8, seed=seed, load_s=20.0)


@pytest.mark.slow
def test_repeated_sigkill_at_random_instants_n7(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(7)
    crash_and_recover(cluster, rounds=8, seed=5, load_s=25.0)


@pytest.mark.slow
def test_two_crashed_replicas_of_seven_and_a_partition(make_cluster: MakeCluster) -> None:
    """f = 2 of n = 7 down (one of them the primary) while a third is cut off then healed."""
    cluster = make_cluster(7, proxied=True)
    config = config_of(cluster)
    assert cluster.network is not None
    with BackgroundLoad(cluster, clients=16, duration_s=15.0) as load:
        time.sleep(1.0)
        cluster.kill(0)
        cluster.kill(3)
        time.sleep(4.0)
        cluster.restart(0)
        cluster.network.partition(5)
        time.sleep(3.0)
        cluster.network.heal()
        cluster.restart(3)
    assert_no_accepted_request_lost(cluster, load.finished())
    wait_until(lambda: all(isinstance(r, dict) for r in statuses(config).values()), 10, "all replicas answer")
