"""Hostile input over real TCP: bad frames are dropped and logged, abusers are cut off, the node lives on."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.trace.scenarios import hostile_frames
from pot_impl import codec
from pot_impl.auth import client_principal, sign_message
from pot_impl.pbft.messages import Request
from pot_impl.runtime.admission import REPORTS_PER_S
from pot_impl.runtime.cluster import LocalCluster
from pot_impl.runtime.config import load_config
from pot_impl.runtime.crypto import Ed25519Signer, KeyPair, client_id
from pot_impl.runtime.events import read_events
from pot_impl.runtime.framing import encode_frame
from pot_impl.runtime.node import Node
from pot_impl.runtime.transport import FrameKind, frame
from tests.runtime.conftest import statuses, submit, wait_until

MakeCluster = Callable[..., LocalCluster]


def connect(cluster: LocalCluster, replica: int) -> socket.socket:
    assert cluster.config is not None
    address = cluster.config.replica(replica).address
    return socket.create_connection((address.host, address.port), timeout=5)


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_bad_frames_are_dropped_and_logged_and_abuse_closes_the_connection(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(4)
    assert cluster.config is not None
    limit = cluster.config.transport.abuse_limit
    with connect(cluster, 0) as sock:
        for data in hostile_frames(0, client_id(cluster.client_identity().public)):
            sock.sendall(data)
        wait_until(lambda: "bad signature" in dropped_reasons(cluster), 10, "the hostile frames are logged")
        sock.sendall(encode_frame(b"\x7f") * limit)
        assert closed_by_peer(sock)
    time.sleep(1.1)  # a new second: the flood above used up this one's dropped-frame events
    with connect(cluster, 0) as sock:
        # an oversized frame is refused from its header alone: its body is skipped, never buffered
        sock.sendall((cluster.config.transport.max_frame_bytes + 1).to_bytes(4, "big") + b"\0" * 1000)
        wait_until(lambda: "oversized" in dropped_reasons(cluster), 10, "the oversized frame is logged")

    # the node is alive, still serves clients, and logged what it dropped and why
    result = submit(cluster, 4)
    assert result.timeouts == 0 and len(result.outcomes) == 4
    report = statuses(cluster.config)[0]
    assert isinstance(report, dict) and report["counters"]["frames_dropped"] >= limit
    reasons = dropped_reasons(cluster)
    for expected in ("unknown frame kind", "malformed", "bad signature", "HELLO frame not expected"):
        assert expected in reasons
    assert any(e["event"] == "connection-closed" for e in read_events(cluster.event_log_path(0)))


def dropped_reasons(cluster: LocalCluster) -> str:
    events = read_events(cluster.event_log_path(0))
    return " | ".join(e.get("reason", "") for e in events if e["event"] == "dropped")


def test_frames_before_hello_are_refused(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(4)
    assert cluster.config is not None
    pair = KeyPair.generate()
    me = client_id(pair.public)
    request = sign_message(Ed25519Signer(client_principal(me), pair), Request(me, 1, b"x"))
    with connect(cluster, 1) as sock:
        sock.sendall(frame(FrameKind.MESSAGE, codec.encode(request)) * cluster.config.transport.abuse_limit)
        assert closed_by_peer(sock)
    report = statuses(cluster.config)[1]
    assert isinstance(report, dict) and report["pending_requests"] == 0


def test_a_flood_of_bad_frames_writes_a_bounded_number_of_lines(make_cluster: MakeCluster) -> None:
    """Every dropped frame is counted, but at most ``REPORTS_PER_S`` a second get their own event
    and log line; one summary a second carries the count of the others."""
    cluster = make_cluster(4)
    assert cluster.config is not None
    limit = cluster.config.transport.abuse_limit
    connections = 25
    for _ in range(connections):
        with connect(cluster, 2) as sock:
            sock.sendall(encode_frame(b"\x7f") * limit)
            assert closed_by_peer(sock)
    expected = connections * limit

    def counted() -> int:
        dropped = [e for e in read_events(cluster.event_log_path(2)) if e["event"] == "dropped"]
        return sum(e.get("count", 1) for e in dropped)

    wait_until(lambda: counted() == expected, 10, "every dropped frame is accounted for")
    events = [e for e in read_events(cluster.event_log_path(2)) if e["event"] == "dropped"]
    assert len(events) <= REPORTS_PER_S * (1 + events[-1]["t"] - events[0]["t"]) + 3  # + summaries
    report = statuses(cluster.config)[2]
    assert isinstance(report, dict) and report["counters"]["frames_dropped"] == expected
    warnings = (cluster.directory / "logs" / "replica2.log").read_text().count("WARNING")
    assert warnings <= len(events) + connections  # + one connection-closed line per connection


def test_event_loop_errors_are_logged_at_a_bounded_rate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """asyncio reports a failing accept (out of file descriptors) through the loop's exception
    handler, about once a second per listening socket and for every other failing callback: one
    line each at a bounded rate, no traceback for an OS error."""
    cluster = LocalCluster(tmp_path / "c", 4)
    cluster.create()
    config = load_config(cluster.node_config_path(0))
    error = OSError(errno.EMFILE, "Too many open files")

    async def run() -> None:
        node = Node(config)
        await node.start()
        loop = asyncio.get_running_loop()
        for _ in range(1000):
            loop.call_exception_handler(
                {"message": "socket.accept() out of system resource", "exception": error}
            )
        await asyncio.sleep(1.2)
        await node.stop()

    with caplog.at_level(logging.ERROR):
        asyncio.run(run())
    lines = [r for r in caplog.records if "out of system resource" in r.getMessage()]
    assert len(lines) == REPORTS_PER_S + 1 and f"{1000 - REPORTS_PER_S} more" in lines[-1].getMessage()
    assert all(record.exc_info is None for record in lines)
