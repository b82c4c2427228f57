"""Fixtures that run real replica processes on 127.0.0.1 and always stop them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pot_impl.runtime.client import cluster_status
from pot_impl.runtime.cluster import LocalCluster
from pot_impl.runtime.config import Config
from pot_impl.runtime.load import LoadResult

FAST_PROTOCOL = {
    "checkpoint_interval": 4,
    "watermark_window": 16,
    "batch_size": 32,
    "view_change_timeout_ms": 1000,
    "state_transfer_timeout_ms": 500,
}
"""Short timeouts and frequent checkpoints, so faults are detected and logs compacted within a test."""


def submit(cluster: LocalCluster, requests: int, clients: int = 4, timeout_s: float = 20.0) -> LoadResult:
    """``requests`` closed-loop requests from ``clients`` of the cluster's funded load accounts."""
    return asyncio.run(cluster.load(clients, requests=requests, timeout_s=timeout_s, retry_s=0.5))


def statuses(config: Config) -> dict[int, dict[str, Any] | str]:
    return asyncio.run(cluster_status(config))


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting until {what}")
        time.sleep(0.2)


def converged(config: Config, replicas: list[int], at_least: int) -> bool:
    """``replicas`` all executed at least ``at_least`` batches and hold the same stable checkpoint
    (same sequence number and state digest); replicas at the same position have equal ledgers.

    Equal stable checkpoints rather than equal positions: while requests flow, a replica that lost
    a message legitimately trails until the next checkpoint becomes stable."""
    reports = [statuses(config)[r] for r in replicas]
    if not all(isinstance(r, dict) for r in reports):
        return False
    seen = [r for r in reports if isinstance(r, dict)]
    ledgers: dict[int, set[str]] = {}
    for report in seen:
        ledgers.setdefault(report["last_executed"], set()).add(report["ledger"]["state_digest"])
    assert all(len(digests) == 1 for digests in ledgers.values()), f"ledgers diverged: {ledgers}"
    stable = {(r["stable_checkpoint"], r["stable_digest"]) for r in seen}
    return len(stable) == 1 and min(r["last_executed"] for r in seen) >= at_least


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    clusters: list[LocalCluster] = []

    def make(n: int = 4, **options: Any) -> LocalCluster:
        options = {"protocol": FAST_PROTOCOL, **options}
        cluster = LocalCluster(tmp_path / f"cluster{len(clusters)}", n, **options)
        cluster.create()
        clusters.append(cluster)
        cluster.start()
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop()
