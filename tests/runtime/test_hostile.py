"""A real 4-replica cluster under attack: large requests, requests from fresh keys, a status flood,
idle connections beyond the caps and a subscription flood, each for a few seconds from separate
processes on other loopback addresses (127.0.0.2 and up) while honest clients on 127.0.0.1 keep
submitting.

Each attack runs at a fixed pace (``ROUNDS_PER_S`` rounds a second, one connection per replica per
round; the status flood sends over a thousand requests a second), small enough that the attacking
process does not take a whole core of this 2-core machine from the cluster: the test measures the
node's defences, not how the machine shares its CPU.

During each attack the cluster keeps committing, nothing it should refuse is accepted, every
replica stays under ``RSS_BOUND_MB``, and afterwards each replica is killed, restarted and catches
up (one of them from a store holding an unreadable record and one larger than any frame).

Throughput under attack is asserted to be at least half (``MIN_THROUGHPUT_RATIO``) of the same
load without it, and the ratio is attached to the test report (``record_property``): 0.80 to 1.04
in three runs of the attacks on this 2-core machine (0.6 to 1.2 in five earlier runs, under other
jobs' load). A node that an attack stalls takes the ratio to nearly nothing."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pot_impl import codec
from pot_impl.auth import client_principal, sign_message
from pot_impl.ledger.transactions import Receipt
from pot_impl.pbft.messages import PrePrepare, Request
from pot_impl.runtime.client import ClientSession, LogicalClient, cluster_status
from pot_impl.runtime.cluster import LocalCluster
from pot_impl.runtime.config import Address, Config, TransportSettings
from pot_impl.runtime.crypto import Ed25519Signer, KeyPair, client_id
from pot_impl.runtime.events import read_events
from pot_impl.runtime.ledger_app import REQUEST_TOO_LARGE, UNKNOWN_ACCOUNT
from pot_impl.runtime.load import load_keys
from pot_impl.runtime.store import int_key
from pot_impl.runtime.transport import FrameKind, frame, make_hello, pack_control
from tests.runtime.conftest import FAST_PROTOCOL, converged, statuses, submit, wait_until

TRANSPORT = TransportSettings(
    max_connections=48, max_connections_per_address=12, handshake_timeout_ms=1000, idle_timeout_ms=5000
)
"""Small caps and short timeouts, so an attack reaches them within seconds."""
ATTACKER_ADDRESSES = [f"127.0.0.{host}" for host in range(2, 10)]
LOAD_S = 2.5
LOAD_CLIENTS = 16
MIN_THROUGHPUT_RATIO = 0.5
RSS_BOUND_MB = 300
ROUNDS_PER_S = 20
RecordProperty = Callable[[str, object], None]


# ------------------------------------------------------------ the cluster and its honest load


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(
        tmp_path_factory.mktemp("hostile") / "cluster", 4, protocol=FAST_PROTOCOL, transport=TRANSPORT
    )
    cluster.create()
    cluster.start()
    yield cluster
    cluster.stop()


def config_of(cluster: LocalCluster) -> Config:
    assert cluster.config is not None
    return cluster.config


def throughput(cluster: LocalCluster) -> float:
    """Committed transactions per second of a closed-loop load of ``LOAD_CLIENTS`` for ``LOAD_S``."""
    return asyncio.run(cluster.load(LOAD_CLIENTS, duration_s=LOAD_S, retry_s=0.5)).throughput


def funded_seeds(cluster: LocalCluster, count: int) -> list[bytes]:
    """Seeds of ``count`` funded load accounts that the honest load does not use."""
    return [pair.seed for pair in load_keys(cluster.client_identity(), 2 * LOAD_CLIENTS + count)[-count:]]


@pytest.fixture(scope="module")
def baseline(cluster: LocalCluster) -> float:
    submit(cluster, 8)  # warm up: connections, caches, a first checkpoint
    return throughput(cluster)


def rss_mb(cluster: LocalCluster) -> dict[int, float]:
    sizes = {}
    for replica, process in cluster.processes.items():
        for line in Path(f"/proc/{process.pid}/status").read_text().split("\n"):
            if line.startswith("VmRSS:"):
                sizes[replica] = int(line.split()[1]) / 1024
    return sizes


def under_attack(
    cluster: LocalCluster,
    baseline: float,
    attack: Callable[[list[Address], float], None],
    record_property: RecordProperty,
) -> None:
    """Run ``attack`` in another process while the honest load runs; check throughput and memory."""
    addresses = [replica.address for replica in config_of(cluster).replicas]
    attacker = multiprocessing.get_context("fork").Process(target=attack, args=(addresses, LOAD_S + 1.0))
    attacker.start()
    try:
        time.sleep(0.5)  # the attack is under way before the honest clients connect
        during = throughput(cluster)
        memory = rss_mb(cluster)
    finally:
        attacker.join(timeout=30)
    ratio = during / baseline
    record_property("baseline_tx_per_s", round(baseline, 1))
    record_property("attack_tx_per_s", round(during, 1))
    record_property("throughput_ratio", round(ratio, 2))
    record_property("max_rss_mb", round(max(memory.values()), 1))
    assert attacker.exitcode == 0
    assert ratio >= MIN_THROUGHPUT_RATIO, f"{during:.0f} tx/s under attack against {baseline:.0f} without"
    assert max(memory.values()) < RSS_BOUND_MB, memory


# ------------------------------------------------------------ what an attacker sends


def connect_from(address: Address, source: str) -> socket.socket:
    return socket.create_connection((address.host, address.port), timeout=5, source_address=(source, 0))


def throwaway_client(seed: bytes | None = None) -> Ed25519Signer:
    pair = KeyPair.generate() if seed is None else KeyPair.from_seed(seed)
    return Ed25519Signer(client_principal(client_id(pair.public)), pair)


def hello(signer: Ed25519Signer, replica: int) -> bytes:
    return frame(FrameKind.HELLO, make_hello(signer.principal, replica, signer.sign))


def request_frame(signer: Ed25519Signer, operation: bytes, timestamp: int = 1) -> bytes:
    request = Request(signer.principal.partition(":")[2], timestamp, operation)
    return frame(FrameKind.MESSAGE, codec.encode(sign_message(signer, request)))


def paced(seconds: float) -> Iterator[int]:
    """Round numbers, ``ROUNDS_PER_S`` a second, for ``seconds``."""
    start = time.monotonic()
    rounds = 0
    while time.monotonic() - start < seconds:
        yield rounds
        rounds += 1
        time.sleep(max(0.0, start + rounds / ROUNDS_PER_S - time.monotonic()))


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send what the node still accepts; it closes abusive connections mid-stream."""
    with contextlib.suppress(OSError):
        sock.sendall(data)


def large_requests(
    addresses: list[Address], seconds: float, seed: bytes, largest: int, funded: list[bytes]
) -> None:
    """Eight 3 MiB requests to every replica from the key of ``seed`` (a 25 MB batch, unbounded),
    then four requests a second just under the limit (operations of ``largest`` bytes) from the
    funded keys of ``funded``: valid, so they are ordered, in batches that must still fit in
    frames. (At any higher rate they would simply use up the cluster's ordering capacity, as
    valid requests of funded accounts may.)"""
    huge = throwaway_client(seed)
    for replica, address in enumerate(addresses):
        with connect_from(address, ATTACKER_ADDRESSES[0]) as sock:
            send_quietly(sock, hello(huge, replica))
            for timestamp in range(1, 9):
                send_quietly(sock, request_frame(huge, b"x" * (3 << 20), timestamp))
    for rounds in paced(seconds):
        if rounds % (ROUNDS_PER_S // 4) == 0:
            signer = throwaway_client(funded[rounds // (ROUNDS_PER_S // 4) % len(funded)])
            with connect_from(addresses[0], ATTACKER_ADDRESSES[1]) as sock:
                send_quietly(sock, hello(signer, 0) + request_frame(signer, os.urandom(largest)))


def fresh_key_flood(addresses: list[Address], seconds: float) -> None:
    """Valid, signed, small requests from a fresh key each, 64 a round to every replica from the
    eight addresses in turn: the ledger has no account for any of them."""
    for rounds in paced(seconds):
        for replica, address in enumerate(addresses):
            with connect_from(address, ATTACKER_ADDRESSES[rounds % len(ATTACKER_ADDRESSES)]) as sock:
                signers = [throwaway_client() for _ in range(64)]
                send_quietly(
                    sock, hello(signers[0], replica) + b"".join(request_frame(s, b"op") for s in signers)
                )


def status_flood(addresses: list[Address], seconds: float) -> None:
    """Status requests without a hello, and with one from a fresh key per connection, far beyond
    the rate limit; the attacker never reads the answers."""
    query = frame(FrameKind.STATUS_REQUEST, pack_control({"clients": []}))
    for rounds in paced(seconds):
        for replica, address in enumerate(addresses):
            with connect_from(address, ATTACKER_ADDRESSES[rounds % len(ATTACKER_ADDRESSES)]) as sock:
                send_quietly(sock, (hello(throwaway_client(), replica) if rounds % 2 else b"") + query * 64)


def idle_connections(addresses: list[Address], seconds: float) -> None:
    """Connections that never say hello, from eight addresses, opened again as the replicas close
    them: more than the per-address and total caps of every replica."""
    held: list[socket.socket] = []
    for rounds in paced(seconds):
        for address in addresses:
            with contextlib.suppress(OSError):
                held.append(connect_from(address, ATTACKER_ADDRESSES[rounds % len(ATTACKER_ADDRESSES)]))
        while len(held) > 600:
            held.pop(0).close()
    for sock in held:
        sock.close()


def subscription_flood(addresses: list[Address], seconds: float) -> None:
    """Fresh keys subscribing to thousands of made-up client ids per connection, connections kept
    open so the subscriptions would stay."""
    held: list[socket.socket] = []
    ids = [secrets.token_hex(32) for _ in range(TRANSPORT.max_subscriptions_per_connection)]
    subscribe = frame(FrameKind.SUBSCRIBE, pack_control(ids))
    for rounds in paced(seconds):
        for replica, address in enumerate(addresses):
            with contextlib.suppress(OSError):
                sock = connect_from(address, ATTACKER_ADDRESSES[rounds % len(ATTACKER_ADDRESSES)])
                send_quietly(sock, hello(throwaway_client(), replica) + subscribe * 2)
                held.append(sock)
    for sock in held:
        sock.close()


# ------------------------------------------------------------ the attacks


def test_large_requests_are_refused_and_batches_fit_in_frames(
    cluster: LocalCluster, baseline: float, record_property: RecordProperty
) -> None:
    config = config_of(cluster)
    limit = config.protocol.max_request_bytes
    overhead = codec.request_size(Request("c" * 64, time.time_ns(), b"x" * limit, b"s" * 64)) - limit
    seed = os.urandom(32)
    views = {r["view"] for r in statuses(config).values() if isinstance(r, dict)}
    funded = funded_seeds(cluster, 16)
    attack = functools.partial(large_requests, seed=seed, largest=limit - overhead, funded=funded)
    under_attack(cluster, baseline, attack, record_property)

    # a request over the limit but within a client frame is refused with f + 1 signed replies
    async def oversized() -> Receipt:
        session = ClientSession(config, KeyPair.generate(), retry_s=0.3)
        await session.connect()
        request = LogicalClient(KeyPair.from_seed(funded[0])).request(b"x" * (limit + 1))
        outcome = await session.submit_request(request, timeout_s=5)
        await session.close()
        return codec.decode(outcome.result, Receipt)

    assert asyncio.run(oversized()).reason == REQUEST_TOO_LARGE
    huge = throwaway_client(seed).principal.partition(":")[2]
    reports = asyncio.run(cluster_status(config, clients=[huge]))
    for report in reports.values():
        assert isinstance(report, dict)
        assert report["client_timestamps"] == {}  # no 3 MiB request executed anywhere
        assert report["counters"]["frames_dropped"] >= 8
    assert {r["view"] for r in reports.values() if isinstance(r, dict)} == views  # no view change
    for replica in range(4):
        dropped = [e for e in read_events(cluster.event_log_path(replica)) if e["event"] == "dropped"]
        assert not [e for e in dropped if e.get("principal", "").startswith("replica:")]  # frames fit


def test_requests_of_keys_without_an_account_are_never_ordered(
    cluster: LocalCluster, baseline: float, record_property: RecordProperty
) -> None:
    config = config_of(cluster)
    before = {r: report for r, report in statuses(config).items() if isinstance(report, dict)}

    async def refused() -> Receipt:
        session = ClientSession(config, KeyPair.generate(), retry_s=0.3)
        await session.connect()
        outcome = await session.submit(b"op", timeout_s=5)
        await session.close()
        return codec.decode(outcome.result, Receipt)

    assert asyncio.run(refused()) == Receipt(0, UNKNOWN_ACCOUNT)  # f + 1 refusals, height 0: not ordered
    under_attack(cluster, baseline, fresh_key_flood, record_property)
    reports = statuses(config)
    for replica, report in reports.items():
        assert isinstance(report, dict)
        counters, earlier = report["counters"], before[replica]["counters"]
        assert counters["requests_unknown_sender"] > earlier["requests_unknown_sender"] + 100
        assert report["clients"] == before[replica]["clients"]  # none of those keys got ordered


def test_status_requests_need_a_hello_and_a_flood_costs_little(
    cluster: LocalCluster, baseline: float, record_property: RecordProperty
) -> None:
    with connect_from(config_of(cluster).replica(0).address, ATTACKER_ADDRESSES[0]) as sock:
        sock.sendall(frame(FrameKind.STATUS_REQUEST, pack_control({"clients": []})))
        sock.settimeout(1.0)
        with contextlib.suppress(TimeoutError):
            assert sock.recv(1) == b""  # no answer before a hello
    under_attack(cluster, baseline, status_flood, record_property)


def test_connections_beyond_the_caps_lock_nobody_out(
    cluster: LocalCluster, baseline: float, record_property: RecordProperty
) -> None:
    address = config_of(cluster).replica(1).address
    extra = 4
    cap = TRANSPORT.max_connections_per_address
    silent = [connect_from(address, ATTACKER_ADDRESSES[0]) for _ in range(cap + extra)]
    idle_client = connect_from(address, ATTACKER_ADDRESSES[1])
    idle_client.sendall(hello(throwaway_client(), 1))
    time.sleep(0.5)
    assert sum(1 for sock in silent if peer_closed(sock, 0.1)) >= extra  # refused beyond the cap
    time.sleep(TRANSPORT.handshake_timeout_ms / 1000 + 1.0)
    assert all(peer_closed(sock, 0.1) for sock in silent)  # the rest: no hello in time
    assert not peer_closed(idle_client, 0.1)
    assert peer_closed(idle_client, TRANSPORT.idle_timeout_ms / 1000)  # a silent client, later
    for sock in [*silent, idle_client]:
        sock.close()
    under_attack(cluster, baseline, idle_connections, record_property)


def peer_closed(sock: socket.socket, timeout_s: float) -> bool:
    sock.settimeout(timeout_s)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_subscriptions_are_capped(
    cluster: LocalCluster, baseline: float, record_property: RecordProperty
) -> None:
    under_attack(cluster, baseline, subscription_flood, record_property)
    for report in statuses(config_of(cluster)).values():
        assert isinstance(report, dict)
        assert report["reply_routes"] <= TRANSPORT.max_subscriptions


def test_every_replica_restarts_and_catches_up_after_the_attacks(cluster: LocalCluster) -> None:
    """Replica 3's store also gets an unreadable record and one larger than any frame (a record a
    frame's limit refused would stop a replica from restarting): both are read past."""
    config = config_of(cluster)
    for replica in range(4):
        cluster.kill(replica)
        if replica == 3:
            huge = PrePrepare(0, 1, b"d" * 32, (Request("c", 1, b"x" * (codec.MAX_FRAME_BYTES + 1)),), 0)
            append_to_log(cluster, replica, [b"\x93\x01 not a record", codec.encode(huge)])
        cluster.restart(replica)
        before = max(r["last_executed"] for r in statuses(config).values() if isinstance(r, dict))
        submit(cluster, 12)
        caught_up = functools.partial(converged, config, [0, 1, 2, 3], before + 1)
        wait_until(caught_up, 20, f"replica {replica} catches up")
    assert counter(config, 3, "records_skipped") == 1
    wait_until(lambda: counter(config, 3, "store_commits") > 0, 20, "the log rewritten without it is durable")
    cluster.kill(3)
    cluster.restart(3)
    assert counter(config, 3, "records_skipped") == 0


def append_to_log(cluster: LocalCluster, replica: int, values: list[bytes]) -> None:
    """Add raw records after the last one of ``replica``'s durable log (the replica is down)."""
    store = cluster.directory / "data" / f"replica{replica}" / "node.db"
    with contextlib.closing(sqlite3.connect(store)) as db:
        last = db.execute("SELECT max(key) FROM records WHERE kind = 'log'").fetchone()[0]
        start = int.from_bytes(last, "big") + 1
        rows = [("log", int_key(start + offset), value) for offset, value in enumerate(values)]
        db.executemany("INSERT INTO records VALUES (?, ?, ?)", rows)
        db.commit()


def counter(config: Config, replica: int, name: str) -> int:
    report = statuses(config)[replica]
    assert isinstance(report, dict)
    return int(report["counters"][name])
