"""New connections from one address are limited per second, so a peer cannot make a node accept,
evict and close connections as fast as it can open them; other addresses are unaffected."""

from __future__ import annotations

from typing import cast

from pot_impl.runtime.admission import InboundConnections, Reports
from pot_impl.runtime.config import TransportSettings
from pot_impl.runtime.transport import Connection

RATE = 5


class FakeConnection:
    """What ``InboundConnections`` reads of a connection."""

    def __init__(self, address: str) -> None:
        self.address, self.name, self.principal = address, f"peer<{address}>", None
        self.last_active = 0.0
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeReports:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def report(self, kind: str, connection: object, reason: str) -> None:
        self.reasons.append(reason)


def inbound(clock: list[float]) -> tuple[InboundConnections, FakeReports]:
    reports = FakeReports()
    transport = TransportSettings(new_connections_per_s_per_address=RATE)
    return InboundConnections(transport, cast(Reports, reports), lambda: clock[0]), reports


def test_new_connections_beyond_the_rate_are_refused_until_the_bucket_refills() -> None:
    clock = [100.0]
    connections, reports = inbound(clock)
    burst = [FakeConnection("10.0.0.1") for _ in range(RATE + 2)]
    for connection in burst:
        connections.admit(cast(Connection, connection))
    assert [c.closed for c in burst] == [False] * RATE + [True, True]
    assert reports.reasons == [f"more than {RATE} new connections a second from 10.0.0.1"] * 2
    other = FakeConnection("10.0.0.2")
    connections.admit(cast(Connection, other))
    assert not other.closed  # another address has a bucket of its own
    clock[0] += 1 / RATE
    later = FakeConnection("10.0.0.1")
    connections.admit(cast(Connection, later))
    assert not later.closed and connections.refused == 2
