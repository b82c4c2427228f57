"""Real cluster runs with injected faults, whose event logs trace validation then checks.

Each scenario starts a ``LocalCluster`` (one OS process per replica, TCP on
loopback, Ed25519, SQLite), drives real ledger transactions through it,
injects its fault, stops the cluster and returns the directory holding the
logs. Used by the trace tests and by ``benchmarks/bench_conformance.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pot_impl import codec
from pot_impl.auth import client_principal
from pot_impl.ledger.transactions import Claim, Order, Receipt, Register, Role
from pot_impl.pbft.messages import Request
from pot_impl.runtime.client import ClientSession
from pot_impl.runtime.cluster import LocalCluster
from pot_impl.runtime.config import Config
from pot_impl.runtime.crypto import Ed25519Signer, KeyPair, client_id, read_key_pair
from pot_impl.runtime.faults import LinkPolicy
from pot_impl.runtime.framing import encode_frame
from pot_impl.runtime.load import LoadResult
from pot_impl.runtime.transport import FrameKind, frame, make_hello

PROTOCOL = {
    "checkpoint_interval": 4,
    "watermark_window": 16,
    "batch_size": 32,
    "view_change_timeout_ms": 1000,
    "state_transfer_timeout_ms": 500,
}
"""Frequent checkpoints and short timeouts, so faults are noticed and logs compacted within seconds."""

SUBMIT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ScenarioRun:
    """A finished run: its cluster directory and what the clients saw."""

    name: str
    directory: Path
    accepted: int
    timeouts: int
    receipts: tuple[str, ...] = ()
    """Receipt reasons of the scenario's own ledger transactions (the training scenario's)."""


def _load(cluster: LocalCluster, requests: int, clients: int = 4) -> LoadResult:
    return asyncio.run(cluster.load(clients, requests=requests, timeout_s=SUBMIT_TIMEOUT_S, retry_s=0.5))


class _Driver:
    """Counts what the clients got while a scenario runs."""

    def __init__(self, cluster: LocalCluster) -> None:
        assert cluster.config is not None
        self.cluster = cluster
        self.config = cluster.config
        self.victim = client_id(cluster.client_identity().public)
        """A funded account whose name hostile clients forge requests in."""
        self.accepted = 0
        self.timeouts = 0
        self.receipts: list[str] = []

    def load(self, requests: int, clients: int = 4) -> None:
        result = _load(self.cluster, requests, clients)
        self.accepted += len(result.outcomes)
        self.timeouts += result.timeouts


def _crash_restart(driver: _Driver) -> None:
    """SIGKILL the primary under load (the others change view), restart it, then SIGKILL and
    restart a backup while it recovers from its SQLite log."""
    driver.load(8)
    driver.cluster.kill(0)
    driver.load(6)
    driver.cluster.restart(0)
    driver.cluster.kill(2)
    driver.cluster.restart(2)
    driver.load(6)


def hostile_frames(replica: int, victim: str) -> list[bytes]:
    """Frames a hostile client sends to ``replica``: an unknown kind, malformed msgpack, a second
    HELLO, garbage, and requests in the name of ``victim`` (a funded account, so the replica checks
    their signatures): one with a zeroed signature and one the attacker signed with its own key."""
    pair = KeyPair.generate()
    me = client_id(pair.public)
    signer = Ed25519Signer(client_principal(me), pair)
    forged = Request(victim, 1, b"not a transaction")
    own_signature = signer.sign(codec.signing_payload(forged))
    return [
        encode_frame(b"\x7fno such frame kind"),
        frame(FrameKind.HELLO, b"\xc1 not msgpack"),
        frame(FrameKind.HELLO, make_hello(client_principal(me), replica, signer.sign)),
        frame(FrameKind.MESSAGE, b"\x93\x01garbage"),
        frame(FrameKind.MESSAGE, codec.encode(dataclasses.replace(forged, signature=bytes(64)))),
        frame(FrameKind.MESSAGE, codec.encode(dataclasses.replace(forged, signature=own_signature))),
        frame(FrameKind.HELLO, make_hello(client_principal(me), replica, signer.sign)),  # a second hello
    ]


def attack(config: Config, replica: int, victim: str) -> None:
    """Send ``hostile_frames`` and then unknown frames up to the abuse limit, which closes the
    connection; returns once the replica has closed it."""
    address = config.replica(replica).address
    with socket.create_connection((address.host, address.port), timeout=5) as sock:
        for data in hostile_frames(replica, victim):
            sock.sendall(data)
        sock.sendall(encode_frame(b"\x7f") * config.transport.abuse_limit)
        try:
            while sock.recv(4096):
                pass
        except (ConnectionResetError, TimeoutError):
            pass


def _hostile(driver: _Driver) -> None:
    """Hostile clients attack honest replicas before, during and after a primary's crash and
    restart and a partition that leaves a replica behind: every frame is dropped and logged,
    abusers are cut off, the protocol goes on and the lagging replica catches up."""
    network = driver.cluster.network
    assert network is not None
    driver.load(8)
    attack(driver.config, 1, driver.victim)
    driver.cluster.kill(0)
    attack(driver.config, 2, driver.victim)
    driver.load(6)
    driver.cluster.restart(0)
    network.partition(3)
    attack(driver.config, 0, driver.victim)
    driver.load(16, clients=2)
    network.heal()
    driver.load(8, clients=2)


def _equivocation(driver: _Driver) -> None:
    """Replica 0 (the first primary) sends different batches to different backups."""
    driver.load(16, clients=8)


def _partition(driver: _Driver) -> None:
    """Replica 3 is cut off while the others order requests past a few checkpoints, then the
    partition heals and it catches up by state transfer."""
    network = driver.cluster.network
    assert network is not None
    network.partition(3)
    driver.load(32, clients=2)
    network.heal()
    driver.load(12, clients=2)


def _lossy(driver: _Driver) -> None:
    """Every link drops, duplicates, delays and reorders frames."""
    network = driver.cluster.network
    assert network is not None
    network.set_all(LinkPolicy(drop=0.02, duplicate=0.1, delay_s=0.001, jitter_s=0.01))
    driver.load(16)
    network.heal()
    driver.load(4)


def _training(driver: _Driver) -> None:
    """The genesis client registers as a trainer, posts a tiny MLP order, trains it for real on
    the CPU and posts the claim; a backup is killed and restarted in between."""
    from conformance.trace.training import train_tiny_order  # torch loads only for this scenario

    order, run = train_tiny_order()
    transactions: list[Register | Order | Claim] = [
        Register(int(Role.TRAINER), b"\x01" * 32, 100),
        Order(order.encode(), bounty=500, fee=40, deadline=1_000),
    ]
    driver.receipts += _submit(driver.cluster, transactions)
    driver.cluster.kill(3)
    claim = Claim(0, run.claim.final_model_digest, run.claim.score, run.claim.commitment)
    driver.receipts += _submit(driver.cluster, [claim])
    driver.cluster.restart(3)
    driver.load(6)


def _submit(cluster: LocalCluster, transactions: list[Register | Order | Claim]) -> list[str]:
    """Order ``transactions`` one after the other as the genesis-funded client; their receipts."""
    assert cluster.config is not None
    config = cluster.config
    identity = read_key_pair(cluster.client_key_path)

    async def submit_all() -> list[str]:
        session = ClientSession(config, identity, retry_s=0.5)
        await session.connect()
        try:
            reasons = []
            for tx in transactions:
                outcome = await session.submit(codec.encode(tx), timeout_s=SUBMIT_TIMEOUT_S)
                reasons.append(codec.decode(outcome.result, Receipt).reason)
            return reasons
        finally:
            await session.close()

    return asyncio.run(submit_all())


@dataclass(frozen=True)
class Scenario:
    name: str
    drive: Callable[[_Driver], None]
    byzantine: Mapping[int, str] | None = None
    proxied: bool = False
    protocol: Mapping[str, int] | None = None
    """Overrides of ``PROTOCOL`` for this scenario."""


SCENARIOS: Mapping[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("crash-restart", _crash_restart),
        Scenario("hostile", _hostile, proxied=True),
        # A long batch timeout keeps batches at several requests: from a one-request batch the
        # runtime's equivocation forges an empty one, which honest backups accept and the spec
        # does not (CHANGELOG.md, the empty-batch finding).
        Scenario(
            "equivocation", _equivocation, byzantine={0: "equivocate"}, protocol={"batch_timeout_ms": 50}
        ),
        Scenario("partition", _partition, proxied=True),
        Scenario("lossy", _lossy, proxied=True),
        Scenario("training", _training),
    )
}


def run_scenario(name: str, directory: Path | None = None, fault_seed: int = 7) -> ScenarioRun:
    """Run scenario ``name`` in ``directory`` (a fresh temporary one by default); always stops the cluster."""
    scenario = SCENARIOS[name]
    where = directory or Path(tempfile.mkdtemp(prefix=f"pot-trace-{name}-"))
    cluster = LocalCluster(
        where,
        4,
        byzantine=dict(scenario.byzantine or {}),
        protocol={**PROTOCOL, **(scenario.protocol or {})},
        proxied=scenario.proxied,
        fault_seed=fault_seed,
    )
    cluster.create()
    try:
        cluster.start()
        driver = _Driver(cluster)
        scenario.drive(driver)
    finally:
        cluster.stop()
    return ScenarioRun(name, where, driver.accepted, driver.timeouts, tuple(driver.receipts))
