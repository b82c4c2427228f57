"""The PBFT client: signs requests, sends them to the replicas, accepts a result on f+1 matching replies.

One ``ClientSession`` holds one TCP connection per replica and can carry many
logical clients (each an Ed25519 key, i.e. a client id), which is how the
benchmark generates load from a single process. A logical client has at most
one request outstanding, as in PBFT: its timestamps increase, and a replica
executes each (client, timestamp) once.

Requests go to the primary of the latest view seen in replies; if no result
arrives within ``retry_s``, the request is broadcast to all replicas (section
4.1 of Castro and Liskov), which also lets the backups detect a primary that
ignores it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pot_impl import codec
from pot_impl.auth import client_principal, replica_principal, sign_message
from pot_impl.pbft.messages import Reply, Request
from pot_impl.pbft.quorums import reply_quorum
from pot_impl.runtime.config import Config
from pot_impl.runtime.crypto import Ed25519Signer, Ed25519Verifier, KeyPair, client_id
from pot_impl.runtime.transport import (
    Connection,
    FrameKind,
    frame,
    make_hello,
    open_replies,
    pack_control,
    replies_signed,
    split_frame,
    unpack_control,
)


class SubmitTimeout(TimeoutError):
    """No f+1 matching replies arrived in time."""


class RequestTooLarge(ValueError):
    """The request exceeds the cluster's ``max_request_bytes``: the replicas would refuse it."""


@dataclass(frozen=True)
class Outcome:
    """An accepted result: ``result`` was vouched for by ``replicas`` (at least f+1)."""

    client: str
    timestamp: int
    result: bytes
    view: int
    replicas: tuple[int, ...]
    latency_s: float
    finished_at: float  # time.perf_counter() when the f+1-th matching reply arrived


@dataclass
class _Pending:
    request: Request
    started: float
    future: asyncio.Future[Outcome]
    votes: dict[tuple[bytes, int], set[int]] = field(default_factory=lambda: defaultdict(set))
    views: dict[int, int] = field(default_factory=dict)


class LogicalClient:
    """One client identity: its key and its last timestamp."""

    def __init__(self, pair: KeyPair) -> None:
        self.pair = pair
        self.id = client_id(pair.public)
        self.signer = Ed25519Signer(client_principal(self.id), pair)
        self.last_timestamp = 0

    def request(self, operation: bytes) -> Request:
        # wall-clock nanoseconds keep timestamps increasing across restarts of the client
        self.last_timestamp = max(self.last_timestamp + 1, time.time_ns())
        return sign_message(self.signer, Request(self.id, self.last_timestamp, operation))


class ClientSession:
    """Connections to every replica of one cluster, shared by any number of logical clients."""

    def __init__(self, config: Config, identity: KeyPair, retry_s: float = 1.0) -> None:
        self.config = config
        self.identity = LogicalClient(identity)
        self.retry_s = retry_s
        self.verifier = Ed25519Verifier([r.public_key for r in config.replicas])
        self._connections: dict[int, Connection] = {}
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._status_waiters: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.view = 0

    async def connect(
        self,
        replicas: list[int] | None = None,
        timeout_s: float = 5.0,
        clients: Sequence[LogicalClient] = (),
    ) -> None:
        """Connect to ``replicas`` (default all), subscribe to the replies of ``clients`` and learn
        the current view; unreachable replicas are skipped, not fatal."""
        targets = range(self.config.n) if replicas is None else replicas
        await asyncio.gather(*(self._connect(r, timeout_s) for r in targets))
        if clients:
            subscribe = frame(FrameKind.SUBSCRIBE, pack_control([c.id for c in clients]))
            for connection in self._connections.values():
                connection.send(subscribe)
        await self._learn_view(min(timeout_s, 1.0))

    async def _learn_view(self, timeout_s: float) -> None:
        """Start from the highest view that f+1 replicas report (so at least one honest replica is
        there): without it a new client would first address view 0's primary, which may be long
        dead, and wait a retry interval on every first request."""
        replicas = self.connected
        reports = await asyncio.gather(*(self.status(r, timeout_s) for r in replicas), return_exceptions=True)
        views = sorted((r["view"] for r in reports if isinstance(r, dict)), reverse=True)
        quorum = reply_quorum(self.config.n, self.config.f)
        if len(views) >= quorum:
            self.view = max(self.view, int(views[quorum - 1]))

    async def _connect(self, replica: int, timeout_s: float) -> None:
        address = self.config.replica(replica).address
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    functools.partial(self._new_connection, replica), address.host, address.port
                ),
                timeout_s,
            )
            principal = self.identity.signer.principal
            connection.send(frame(FrameKind.HELLO, make_hello(principal, replica, self.identity.signer.sign)))
            self._connections[replica] = connection

    def _new_connection(self, replica: int) -> Connection:
        return Connection(
            f"replica-{replica}",
            self.config.transport.max_frame_bytes,
            self.config.transport.abuse_limit,
            on_frames=functools.partial(self._on_frames, replica),
            on_abuse=lambda _connection, _reason: None,
            on_closed=functools.partial(self._on_closed, replica),
            principal=replica_principal(replica),
        )

    def _on_closed(self, replica: int, connection: Connection) -> None:
        if self._connections.get(replica) is connection:
            del self._connections[replica]

    @property
    def connected(self) -> list[int]:
        return sorted(self._connections)

    async def close(self) -> None:
        for connection in list(self._connections.values()):
            connection.close()
        self._connections.clear()
        await asyncio.sleep(0)

    # ------------------------------------------------------------ requests

    async def submit(
        self, operation: bytes, client: LogicalClient | None = None, timeout_s: float = 10.0
    ) -> Outcome:
        """Order ``operation`` as ``client`` (default: the session's identity); f+1 matching replies."""
        return await self.submit_request(self.request(operation, client), timeout_s)

    def request(self, operation: bytes, client: LogicalClient | None = None) -> Request:
        """A signed request of ``operation`` by ``client`` (default: the session's identity); raises
        ``RequestTooLarge`` for one the replicas would refuse for its size."""
        request = (client or self.identity).request(operation)
        size, limit = codec.request_size(request), self.config.protocol.max_request_bytes
        if size > limit:
            limit_name = f"the cluster's protocol.max_request_bytes ({limit})"
            raise RequestTooLarge(f"request of {size} bytes exceeds {limit_name}")
        return request

    async def submit_request(self, request: Request, timeout_s: float = 10.0) -> Outcome:
        """Order ``request``: f+1 matching replies."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        pending = _Pending(request, time.perf_counter(), future)
        self._pending[(request.client, request.timestamp)] = pending
        data = frame(FrameKind.MESSAGE, codec.encode(request))
        try:
            if not self._send_to(self.config.protocol.primary(self.view), data):
                self._broadcast(data)  # the primary we know of is unreachable: let the backups act
            deadline = time.monotonic() + timeout_s
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    quorum = reply_quorum(self.config.n, self.config.f)
                    raise SubmitTimeout(f"no {quorum} matching replies within {timeout_s} s")
                with contextlib.suppress(asyncio.TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(future), min(self.retry_s, remaining))
                self._broadcast(data)
        finally:
            del self._pending[(request.client, request.timestamp)]

    def _send_to(self, replica: int, data: bytes) -> bool:
        connection = self._connections.get(replica)
        return connection is not None and connection.send(data)

    def _broadcast(self, data: bytes) -> None:
        for replica in range(self.config.n):
            self._send_to(replica, data)

    def _on_frames(self, replica: int, connection: Connection, payloads: list[bytes]) -> None:
        for payload in payloads:
            parts = split_frame(payload)
            if parts is None:
                continue
            kind, body = parts
            if kind is FrameKind.REPLIES:
                self.receive_replies(replica, body)
            elif kind is FrameKind.STATUS:
                waiter = self._status_waiters.pop(replica, None)
                if waiter is not None and not waiter.done():
                    try:
                        waiter.set_result(unpack_control(body, self.config.transport.max_frame_bytes))
                    except ValueError as exc:
                        waiter.set_exception(exc)

    def receive_replies(self, replica: int, body: bytes) -> None:
        """Count the replies of one REPLIES frame towards their requests' quorums. The frame's one
        signature is checked only if a reply in it is still awaited: most frames of a batch
        arrive after f + 1 others have already decided every request in them."""
        try:
            sender, encoded = open_replies(body, self.config.transport.max_frame_bytes)
            replies = [codec.decode(reply, Reply) for reply in encoded]
        except (ValueError, codec.DecodeError):
            return
        awaited = [
            (reply, pending)
            for reply in replies
            if reply.replica == sender == replica
            and (pending := self._pending.get((reply.client, reply.timestamp))) is not None
            and not pending.future.done()
        ]
        if awaited and replies_signed(body, replica_principal(replica), self.verifier.check):
            for reply, pending in awaited:
                self._vote(replica, reply, pending)

    def _vote(self, replica: int, reply: Reply, pending: _Pending) -> None:
        if pending.future.done():
            return
        voters = pending.votes[(reply.result, reply.timestamp)]
        voters.add(replica)
        pending.views[replica] = reply.view
        if len(voters) >= reply_quorum(self.config.n, self.config.f):
            self.view = max(self.view, max(pending.views[r] for r in voters))
            now = time.perf_counter()
            pending.future.set_result(
                Outcome(
                    reply.client,
                    reply.timestamp,
                    reply.result,
                    reply.view,
                    tuple(sorted(voters)),
                    now - pending.started,
                    now,
                )
            )

    # ------------------------------------------------------------ status

    async def status(
        self, replica: int, timeout_s: float = 3.0, clients: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The status report of one replica, with the last executed timestamps of ``clients``;
        raises TimeoutError or ConnectionError."""
        connection = self._connections.get(replica)
        if connection is None:
            raise ConnectionError(f"replica {replica} is not connected")
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._status_waiters[replica] = waiter
        connection.send(frame(FrameKind.STATUS_REQUEST, pack_control({"clients": list(clients)})))
        return await asyncio.wait_for(waiter, timeout_s)


async def cluster_status(
    config: Config, timeout_s: float = 3.0, clients: Sequence[str] = ()
) -> dict[int, dict[str, Any] | str]:
    """Every replica's status report (see ``ClientSession.status``), or why it could not be had."""
    session = ClientSession(config, KeyPair.generate())
    await session.connect(timeout_s=timeout_s)
    reports: dict[int, dict[str, Any] | str] = {}
    for replica in range(config.n):
        try:
            reports[replica] = await session.status(replica, timeout_s, clients)
        except ConnectionError as exc:
            reports[replica] = f"unreachable ({exc})"
        except TimeoutError:
            reports[replica] = "no answer within timeout"
    await session.close()
    return reports
