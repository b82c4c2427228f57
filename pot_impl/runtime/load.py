"""Closed- and open-loop load against a cluster, shared by the benchmark and the fault tests.

Each logical client keeps at most one request outstanding (PBFT's client
rule); concurrency comes from many logical clients multiplexed on one
``ClientSession``. With ``rate_per_s`` set, requests start on a fixed
schedule (open loop, for latency at a chosen load); without it every client
submits again as soon as its previous request completes (closed loop, for
saturation throughput).

Replicas order only requests of senders the ledger has an account for, so the logical clients
are accounts derived from the load generator's own key (``load_keys``), which a cluster funds
at genesis (``LocalCluster(load_accounts=...)``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pot_impl import codec
from pot_impl.ledger.transactions import Register, Role
from pot_impl.runtime.client import ClientSession, LogicalClient, Outcome, SubmitTimeout
from pot_impl.runtime.config import Config
from pot_impl.runtime.crypto import KeyPair

LOAD_KEY_DOMAIN = b"pot-load/v1/key\x00"


def load_keys(identity: KeyPair, count: int) -> list[KeyPair]:
    """``count`` key pairs derived from ``identity``'s secret seed: whoever holds it can sign as
    them, and a cluster can fund them at genesis knowing only the derivation."""
    return [
        KeyPair.from_seed(hashlib.sha256(LOAD_KEY_DOMAIN + identity.seed + index.to_bytes(4, "big")).digest())
        for index in range(count)
    ]


def register_operation(client: LogicalClient, index: int) -> bytes:
    """A real ledger transaction (a trainer registration staking ``index``): every replica decodes,
    checks and executes it, and its receipt is the reply."""
    return codec.encode(Register(role=int(Role.TRAINER), public_key=client.pair.public, stake=index))


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)
    timeouts: int = 0
    elapsed_s: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.outcomes) / self.elapsed_s if self.elapsed_s else 0.0

    def latency_quantile(self, q: float) -> float:
        latencies = sorted(o.latency_s for o in self.outcomes)
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]


async def run_load(
    config: Config,
    operation: Callable[[LogicalClient, int], bytes],
    *,
    identity: KeyPair,
    clients: int,
    duration_s: float | None = None,
    requests: int | None = None,
    rate_per_s: float | None = None,
    timeout_s: float = 10.0,
    retry_s: float = 1.0,
) -> LoadResult:
    """Submit until ``duration_s`` has passed or ``requests`` have been started, as ``clients``
    accounts derived from ``identity`` (``load_keys``)."""
    if (duration_s is None) == (requests is None):
        raise ValueError("give exactly one of duration_s and requests")
    session = ClientSession(config, identity, retry_s=retry_s)
    logical = [LogicalClient(pair) for pair in load_keys(identity, clients)]
    await session.connect(clients=logical)
    result = LoadResult()
    started = time.perf_counter()
    issued = 0
    interval = 1.0 / rate_per_s if rate_per_s else 0.0

    def more() -> bool:
        if requests is not None:
            return issued < requests
        assert duration_s is not None
        return time.perf_counter() - started < duration_s

    async def one(client: LogicalClient, index: int) -> None:
        try:
            result.outcomes.append(await session.submit(operation(client, index), client, timeout_s))
        except SubmitTimeout:
            result.timeouts += 1

    async def closed_loop(client: LogicalClient) -> None:
        nonlocal issued
        while more():
            issued += 1
            await one(client, issued)

    async def open_loop() -> None:
        nonlocal issued
        idle = list(logical)
        running: set[asyncio.Task[Any]] = set()
        next_start = time.perf_counter()
        while more():
            now = time.perf_counter()
            if now < next_start:
                await asyncio.sleep(next_start - now)
            next_start += interval
            if not idle:
                result.timeouts += 1  # offered load exceeded the client pool: count as not served
                continue
            client = idle.pop()
            issued += 1
            task = asyncio.create_task(serve(client, issued, idle))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.gather(*running)

    async def serve(client: LogicalClient, index: int, idle: list[LogicalClient]) -> None:
        await one(client, index)
        idle.append(client)

    try:
        if rate_per_s:
            await open_loop()
        else:
            await asyncio.gather(*(closed_loop(client) for client in logical))
    finally:
        result.elapsed_s = time.perf_counter() - started
        await session.close()
    return result
