"""Admission control by size: requests and batches are bounded so that every message that carries
batches fits in a frame, whatever clients send, and a replica reads back what it stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pot_impl import codec
from pot_impl.pbft.config import ReplicaConfig, largest_batch_bytes, new_view_bytes_bound
from pot_impl.pbft.io import EventKind
from pot_impl.pbft.messages import (
    Checkpoint,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    Request,
    StableSnapshot,
    ViewChange,
)
from pot_impl.pbft.quorums import view_change_quorum
from pot_impl.runtime.config import ConfigError, parse_config, protocol_config
from pot_impl.runtime.transport import Connection, ReplyRoutes
from tests.impl.harness import Cluster, signed, signed_request
from tests.runtime.test_config import sample_document

LIMITS = {"batch_size": 16, "max_request_bytes": 4096, "max_batch_bytes": 10_000}
WIDEST = 2**64 - 1
"""The widest integer the codec encodes (9 bytes)."""


@given(
    client=st.text(max_size=300),
    timestamp=st.integers(codec.INT_MIN, codec.INT_MAX),
    operation=st.binary(max_size=70_000),
    signature=st.binary(max_size=300),
)
def test_request_size_is_the_length_of_the_encoding(
    client: str, timestamp: int, operation: bytes, signature: bytes
) -> None:
    request = Request(client, timestamp, operation, signature)
    assert codec.request_size(request) == len(codec.encode(request))


def test_the_primary_cuts_batches_by_bytes() -> None:
    cluster = Cluster.build(4, **LIMITS)
    for timestamp in range(8):
        cluster.submit(signed_request(f"client{timestamp}", 1, b"x" * 3000), to=[0])
    cluster.flush_batches()
    batches = [m for _, m in cluster.queue if isinstance(m, PrePrepare)]
    sizes = {m.seq: sum(codec.request_size(r) for r in m.batch) for m in batches}
    assert max(sizes.values()) <= LIMITS["max_batch_bytes"] and len(sizes) == 3
    cluster.run()
    assert all(replica.last_executed == 3 for replica in cluster.replicas)


def test_small_requests_are_not_held_back_behind_large_ones() -> None:
    """Requests pile up while the primary's window is full; the next batch passes over a large
    request that no longer fits and takes the small ones behind it."""
    cluster = Cluster.build(4, **LIMITS, checkpoint_interval=1, watermark_window=1)
    cluster.submit(signed_request("first", 1), to=[0])
    cluster.flush_batches()  # seq 1 is proposed; the window is full until it is stable
    large = [signed_request(f"large{i}", 1, b"x" * 3800) for i in range(3)]
    small = [signed_request(f"small{i}", 1) for i in range(5)]
    for request in large + small:
        cluster.submit(request, to=[0])
    cluster.run()
    cluster.flush_batches()
    cluster.run()
    heights = {client: height for client, _, height in cluster.apps[1].executed}
    assert [heights[r.client] for r in large + small] == [2, 2, 3, 2, 2, 2, 2, 2]


def test_an_oversized_request_is_rejected_before_ordering() -> None:
    cluster = Cluster.build(4, **LIMITS)
    cluster.submit(signed_request("big", 1, b"x" * 5000), to=[0])
    cluster.flush_batches()
    assert cluster.queue == [] and cluster.replicas[0].pending_requests == ()
    assert "exceeds max_request_bytes" in cluster.rejections(0)[0]


def test_pending_requests_are_bounded_in_bytes() -> None:
    cluster = Cluster.build(4, **LIMITS, max_pending_bytes=8000)
    for client in ("a", "b", "c"):
        cluster.submit(signed_request(client, 1, b"x" * 3000), to=[1])  # a backup: they wait there
    assert len(cluster.replicas[1].pending_requests) == 2
    assert "exceed max_pending_bytes" in cluster.rejections(1)[0]


def test_backups_refuse_a_batch_over_the_byte_limit() -> None:
    cluster = Cluster.build(4, **LIMITS)
    batch = tuple(signed_request(f"c{i}", 1, b"x" * 3000) for i in range(4))
    cluster.deliver(1, signed(PrePrepare(0, 1, codec.batch_digest(batch), batch, 0)))
    assert cluster.queue == [] and not cluster.events_of(1, EventKind.PRE_PREPARED)
    assert "exceeds max_batch_bytes" in cluster.rejections(1)[0]


def request_of_size(size: int) -> Request:
    """A request (64-character client id, widest timestamp, 64-byte signature) encoded in ``size``
    bytes, for 300 < size < 65,000 (its operation then has a 3-byte length prefix)."""
    empty = Request("c" * 64, WIDEST, b"", b"s" * 64)
    request = Request("c" * 64, WIDEST, b"x" * (size - codec.request_size(empty) - 1), b"s" * 64)
    assert codec.request_size(request) == size
    return request


def widest_new_view(config: ReplicaConfig) -> NewView:
    """A NEW-VIEW as large as one can be and still be valid: widest integers, batches of exactly
    ``max_batch_bytes``, full P sets, n - 1 prepares per certificate and n checkpoints per proof."""
    signature = b"s" * 64
    digest = b"d" * 32
    full, rest = divmod(config.max_batch_bytes, config.max_request_bytes)
    batch = (request_of_size(config.max_request_bytes),) * full + (request_of_size(rest),)
    pre_prepare = PrePrepare(WIDEST, WIDEST, digest, batch, WIDEST, signature)
    prepare = Prepare(WIDEST, WIDEST, digest, WIDEST, signature)
    certificate = PreparedCertificate(pre_prepare, (prepare,) * (config.n - 1))
    checkpoints = (Checkpoint(WIDEST, digest, WIDEST, signature),) * config.n
    window = config.watermark_window
    view_change = ViewChange(WIDEST, WIDEST, checkpoints, (certificate,) * window, WIDEST, signature)
    quorum = view_change_quorum(config.n, config.f)
    return NewView(WIDEST, (view_change,) * quorum, (pre_prepare,) * window, WIDEST, signature)


@pytest.mark.parametrize("n", [4, 7])
def test_the_widest_new_view_is_within_the_bound(n: int) -> None:
    config = ReplicaConfig(n=n, checkpoint_interval=2, watermark_window=4, **LIMITS)
    assert len(codec.encode(widest_new_view(config))) <= new_view_bytes_bound(config)


@pytest.mark.parametrize("n", [4, 7, 10, 16])
def test_derived_byte_limits_keep_a_new_view_within_a_frame(n: int) -> None:
    protocol = protocol_config(n, {}, codec.MAX_FRAME_BYTES)
    assert protocol.max_batch_bytes == 4 * protocol.max_request_bytes >= 16 * 1024
    assert new_view_bytes_bound(protocol) <= codec.MAX_FRAME_BYTES
    assert protocol.max_batch_bytes <= largest_batch_bytes(protocol, codec.MAX_FRAME_BYTES)


@pytest.mark.parametrize(
    ("protocol", "field"),
    [
        ({"max_batch_bytes": 1 << 20}, "protocol.max_batch_bytes"),
        ({"max_batch_bytes": 8192, "max_request_bytes": 9000}, "protocol.max_request_bytes"),
        ({"watermark_window": 1 << 16}, "protocol.watermark_window"),
    ],
)
def test_byte_limits_that_could_outgrow_a_frame_are_config_errors(
    tmp_path: Path, protocol: dict[str, Any], field: str
) -> None:
    document = sample_document(tmp_path)
    document["protocol"].update(protocol)
    with pytest.raises(ConfigError, match=f"^{field}:"):
        parse_config(document, tmp_path)


def test_a_stored_state_larger_than_a_frame_reads_back() -> None:
    record = StableSnapshot(16, b"s" * (codec.MAX_FRAME_BYTES + 1), ())
    data = codec.encode(record)
    with pytest.raises(codec.DecodeError, match="exceed the limit"):
        codec.decode(data, StableSnapshot)
    assert codec.decode_unlimited(data, StableSnapshot) == record


@pytest.mark.parametrize(
    ("data", "problem"),
    [(b"\x95\x01", "truncated"), (b"\x91\x01\x02", "trailing bytes"), (b"\xc1", "not msgpack")],
)
def test_undecodable_input_says_what_is_wrong(data: bytes, problem: str) -> None:
    with pytest.raises(codec.DecodeError, match=problem):
        codec.decode(data, Request)


def test_the_hello_decides_how_large_later_frames_may_be() -> None:
    """A replica's hello and first pre-prepare often share one read: the pre-prepare must be judged
    by the replica limit, not by the small limit for a first frame."""
    delivered: list[bytes] = []
    dropped: list[str] = []

    def on_frames(connection: Connection, payloads: list[bytes]) -> None:
        for payload in payloads:
            if connection.principal is None and payload == b"hello":
                connection.principal = "replica:1"
                connection.set_frame_limit(1 << 20)
            delivered.append(payload)

    connection = Connection(
        "in", 16, 8, on_frames, lambda _c, reason: dropped.append(reason), lambda _c: None
    )
    large = b"p" * 1000
    connection.data_received(b"".join(len(p).to_bytes(4, "big") + p for p in (b"hello", large)))
    assert delivered == [b"hello", large] and dropped == []


def test_subscriptions_are_bounded_per_connection_per_principal_and_in_total() -> None:
    routes = ReplyRoutes(per_connection=2, per_principal=3, total=4)

    def connection(principal: str) -> Connection:
        return Connection("in", 16, 8, lambda *_: None, lambda *_: None, lambda _c: None, principal=principal)

    first, second, other = connection("client:a"), connection("client:a"), connection("client:b")
    assert [routes.add(c, first) for c in ("x", "y", "x")] == ["", "", ""]
    assert "on one connection" in routes.add("z", first)
    assert routes.add("z", second) == ""
    assert "by client:a" in routes.add("w", second)
    assert routes.add("w", other) == ""
    assert "its limit" in routes.add("v", other)
    routes.forget(first)
    assert routes.add("v", other) == "" and routes.connections("x") == ()
