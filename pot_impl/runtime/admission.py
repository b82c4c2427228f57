"""The edge of a node: which inbound connections it keeps, and how it reports what it refuses.

``Reports`` writes ``dropped`` and ``connection-closed`` events and warning lines
at a bounded rate (a flood of bad input must not become a flood of log), and
handles the errors asyncio reports itself. ``InboundConnections`` keeps
inbound connections within the caps and rates of ``TransportSettings`` and closes those
whose hello is overdue or that stay silent too long; ``reserve_descriptors``
makes sure the cap, not the open-file limit, is what refuses them.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from pot_impl.auth import REPLICA_PREFIX
from pot_impl.runtime.config import ConfigError, TransportSettings
from pot_impl.runtime.events import EventLog
from pot_impl.runtime.limits import BoundedReport, TokenBuckets
from pot_impl.runtime.transport import Connection

log = logging.getLogger(__name__)

REPORTS_PER_S = 10
"""Reports (events and log lines) written per second and kind; the rest are counted."""
SWEEP_INTERVAL_S = 1.0
"""How often handshake and idle timeouts are checked."""
DESCRIPTORS_BESIDE_CONNECTIONS = 64
"""Files a node holds beside its inbound connections: peer links, store, logs, thread pipes."""


def from_replica(connection: Connection) -> bool:
    return (connection.principal or "").startswith(REPLICA_PREFIX)


def reserve_descriptors(transport: TransportSettings) -> None:
    """Raise the soft limit on open files to what ``max_connections`` needs, if it is lower (within
    the hard limit), so the connection cap is what refuses connections, never a failing ``accept``."""
    needed = transport.max_connections + DESCRIPTORS_BESIDE_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise ConfigError(
                f"transport.max_connections: needs about {needed} open files, but this process may "
                f"open {hard} (ulimit -n); lower it or raise the limit"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class Reports:
    """Events and warnings about refused input, at most ``REPORTS_PER_S`` a second of each kind;
    beyond that, one summary a second (``peer`` ``"*"``, ``count``, the first reason held back)."""

    def __init__(self, node_id: int, events: EventLog, flush: Callable[[], None]) -> None:
        self.node_id = node_id
        self.events = events
        self._flush = flush  # gets the event lines written even if nothing else happens
        self._kinds = {kind: BoundedReport(REPORTS_PER_S, 1.0) for kind in ("dropped", "connection-closed")}
        self._loop_errors = BoundedReport(REPORTS_PER_S, 1.0)

    def report(self, kind: str, connection: Connection | None, reason: str) -> None:
        """A ``dropped`` or ``connection-closed`` event about ``connection`` (None: the store)."""
        peer = connection.name if connection is not None else "store"
        principal = connection.principal if connection is not None else None

        def write() -> None:
            self.events.emit(kind, peer=peer, principal=principal, reason=reason)
            log.warning("node %d: %s %s: %s", self.node_id, kind, peer, reason)
            self._flush()

        def summarize(count: int, first: str) -> None:
            held_back = f"{count} more held back in the last second, the first: {first}"
            self.events.emit(kind, peer="*", count=count, reason=held_back)
            log.warning("node %d: %s: %s", self.node_id, kind, held_back)
            self._flush()

        _bounded(self._kinds[kind], f"{peer}: {reason}", write, summarize)

    def loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The event loop's exception handler, for errors asyncio reports outside our code (e.g.
        accept failing when out of file descriptors, which it retries every second): one line
        each at a bounded rate; a traceback only for what is not an OS error, since that is a bug."""
        message = str(context.get("message", "unexpected error"))
        error = context.get("exception")

        def write() -> None:
            trace = error if isinstance(error, BaseException) and not isinstance(error, OSError) else None
            detail = f" ({error!r})" if error else ""
            log.error("node %d: %s%s", self.node_id, message, detail, exc_info=trace)

        def summarize(count: int, first: str) -> None:
            held_back = f"{count} more event-loop errors in the last second, the first: {first}"
            log.error("node %d: %s", self.node_id, held_back)

        _bounded(self._loop_errors, message, write, summarize)


def _bounded(
    report: BoundedReport, reason: str, write: Callable[[], None], summarize: Callable[[int, str], None]
) -> None:
    """``write`` now if ``report`` lets it through; else count it, and ``summarize`` once the
    interval is over."""
    if report.admit(time.monotonic(), reason):
        write()
    elif report.held_back == 1:
        loop = asyncio.get_running_loop()
        loop.call_later(report.interval_s, lambda: summarize(*report.take_held_back()))


ADDRESSES_REMEMBERED = 4096
"""Addresses whose rate of new connections is tracked (the least recently seen is forgotten)."""


class InboundConnections:
    """The connections peers opened to this node, within ``max_connections`` in all,
    ``max_connections_per_address`` from one address, and ``new_connections_per_s_per_address``
    new ones a second from one address (so a peer cannot make the node accept, evict and close
    connections as fast as it can open them)."""

    def __init__(
        self, transport: TransportSettings, reports: Reports, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.transport = transport
        self.reports = reports
        self.clock = clock
        self._open: dict[Connection, None] = {}
        self._per_address: Counter[str] = Counter()
        rate = transport.new_connections_per_s_per_address
        self._arrivals = TokenBuckets(rate, rate, ADDRESSES_REMEMBERED)
        self.refused = 0
        self.timed_out = 0

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._open))

    def admit(self, connection: Connection) -> None:
        """Keep a new connection within the caps. At the total cap, the connection silent longest
        among those not from a replica makes room (a peer still owing its hello first of all; a
        client that gets replies is not silent), so idle or half-open connections cannot lock
        clients and replicas out."""
        transport = self.transport
        if not self._arrivals.allow(connection.address, self.clock()):
            rate = transport.new_connections_per_s_per_address
            self._refuse(connection, f"more than {rate} new connections a second from {connection.address}")
            return
        if self._per_address[connection.address] >= transport.max_connections_per_address:
            cap = transport.max_connections_per_address
            self._refuse(connection, f"{cap} connections from {connection.address} already")
            return
        if len(self._open) >= transport.max_connections:
            evictable = [c for c in self._open if not from_replica(c)]
            if not evictable:
                self._refuse(connection, f"{transport.max_connections} connections already")
                return
            oldest = min(evictable, key=lambda c: (c.principal is not None, c.last_active))
            self._refuse(oldest, "closed to make room for a new connection")
        self._open[connection] = None
        self._per_address[connection.address] += 1

    def forget(self, connection: Connection) -> None:
        """``connection`` is closed (or being closed)."""
        if connection in self._open:
            del self._open[connection]
            self._per_address[connection.address] -= 1
            if not self._per_address[connection.address]:
                del self._per_address[connection.address]

    def _refuse(self, connection: Connection, reason: str) -> None:
        self.refused += 1
        self.reports.report("connection-closed", connection, reason)
        self.forget(connection)
        connection.close()

    async def sweep(self) -> None:
        """Close connections whose hello is overdue, and client connections silent both ways for
        too long (a replica's may legitimately be quiet)."""
        handshake_s = self.transport.handshake_timeout_ms / 1000
        idle_s = self.transport.idle_timeout_ms / 1000
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            now = time.monotonic()
            for connection in list(self._open):
                if connection.principal is None and now - connection.opened_at > handshake_s:
                    reason = f"no hello within {handshake_s:g} s"
                elif not from_replica(connection) and now - connection.last_active > idle_s:
                    reason = f"idle for {idle_s:g} s"
                else:
                    continue
                self.timed_out += 1
                self.reports.report("connection-closed", connection, reason)
                connection.close()
