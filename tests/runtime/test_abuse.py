"""Hostile input over real TCP: bad frames are dropped and logged, abusers are cut off, the node lives on."""

from __future__ import annotations

import socket
from collections.abc import Callable

from conformance.trace.scenarios import hostile_frames
from pot_impl import codec
from pot_impl.auth import client_principal, sign_message
from pot_impl.pbft.messages import Request
from pot_impl.runtime.cluster import LocalCluster
from pot_impl.runtime.crypto import Ed25519Signer, KeyPair, client_id
from pot_impl.runtime.events import read_events
from pot_impl.runtime.framing import encode_frame
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
        for data in hostile_frames(0):
            sock.sendall(data)
        sock.sendall(encode_frame(b"\x7f") * limit)
        assert closed_by_peer(sock)
    with connect(cluster, 0) as sock:
        # an oversized frame is refused from its header alone: its body is skipped, never buffered
        sock.sendall((cluster.config.transport.max_frame_bytes + 1).to_bytes(4, "big") + b"\0" * 1000)
        wait_until(lambda: "oversized" in dropped_reasons(cluster), 10, "the oversized frame is logged")

    # the node is alive, still serves clients, and logged what it dropped and why
    result = submit(cluster.config, 4)
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
