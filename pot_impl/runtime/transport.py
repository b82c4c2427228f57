"""Framed TCP connections: inbound connections with abuse accounting, outbound links that reconnect.

Every frame payload starts with one kind byte, so protocol messages (whose
bytes are the core's canonical encoding) and the runtime's own control
frames (hello, status) never need to be told apart by guessing:

* ``MESSAGE``: a signed PBFT or client message (``codec.decode_message``).
* ``HELLO``: the first frame on a connection, naming and authenticating the
  principal on the other side (``make_hello`` / ``check_hello``), so a node
  knows whether a request came from a client or was relayed by a replica
  and where to send a client's replies.
* ``SUBSCRIBE``: client ids whose replies the connection wants. Backups learn
  a request from the primary's pre-prepare, not from the client, so without
  it only the primary would know where to reply. Several connections may
  subscribe to one client: replies are public and signed, so a subscriber can
  eavesdrop but cannot divert them.
* ``STATUS_REQUEST`` / ``STATUS``: read-only introspection for ``pot status``.
* ``FRAGMENT``: part of a replica's message too large for one frame (``fragments.py``).
* ``REPLIES``: a replica's replies to one connection, encoded unsigned, under one signature
  (``make_replies``; ``open_replies`` and ``replies_signed`` on receipt). A batch executes a
  reply to every request in it, so a signature per reply would cost each replica one Ed25519
  signature per transaction and the client one check per reply; one per frame costs one per
  batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

import msgpack

from pot_impl.auth import Principal
from pot_impl.runtime.crypto import SIGNATURE_BYTES
from pot_impl.runtime.framing import AbuseCounter, DecodeResult, FrameDecoder, encode_frame

log = logging.getLogger(__name__)

HELLO_DOMAIN = b"pot-runtime/v1/hello\x00"
HELLO_MAX_SKEW_S = 300.0
REPLIES_DOMAIN = b"pot-runtime/v1/replies\x00"
REPLIES_FRAME_BYTES = 1 << 20
"""A replica's replies to one connection start a new frame past this many encoded bytes."""
WRITE_BUFFER_LIMIT = 32 * 1024 * 1024

Verify = Callable[[Principal, bytes, bytes], bool]
"""Checks a principal's signature over a payload (``Ed25519Verifier.check``)."""


class FrameKind(enum.IntEnum):
    MESSAGE = 0
    HELLO = 1
    STATUS_REQUEST = 2
    STATUS = 3
    SUBSCRIBE = 4
    REPLIES = 5
    FRAGMENT = 6


def frame(kind: FrameKind, body: bytes) -> bytes:
    """A complete wire frame (length prefix, kind byte, body)."""
    return encode_frame(bytes((kind,)) + body)


def split_frame(payload: bytes) -> tuple[FrameKind, bytes] | None:
    """The kind and body of a received frame payload, or None if the kind is unknown."""
    if not payload or payload[0] not in FrameKind._value2member_map_:
        return None
    return FrameKind(payload[0]), payload[1:]


def pack_control(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def unpack_control(body: bytes, max_bytes: int) -> Any:
    """Decode a control frame body; raises ValueError on anything malformed."""
    try:
        return msgpack.unpackb(body, raw=False, max_bin_len=max_bytes, max_str_len=max_bytes)
    except Exception as exc:  # msgpack raises several unrelated types on malformed input
        raise ValueError(f"malformed control frame: {exc}") from None


def hello_payload(principal: Principal, receiver: int, timestamp: float) -> bytes:
    return HELLO_DOMAIN + pack_control([principal, receiver, timestamp])


def make_hello(principal: Principal, receiver: int, sign: Callable[[bytes], bytes]) -> bytes:
    """The hello frame body a connector sends to replica ``receiver``."""
    now = time.time()
    return pack_control([principal, receiver, now, sign(hello_payload(principal, receiver, now))])


def check_hello(body: bytes, receiver: int, verify: Verify, max_bytes: int) -> Principal:
    """The authenticated principal of a hello frame; raises ValueError saying why it is refused."""
    fields = unpack_control(body, max_bytes)
    if not (isinstance(fields, list) and len(fields) == 4):
        raise ValueError("hello must be [principal, receiver, time, signature]")
    principal, addressed_to, timestamp, signature = fields
    if not (isinstance(principal, str) and isinstance(signature, bytes) and isinstance(timestamp, float)):
        raise ValueError("hello fields have the wrong types")
    if addressed_to != receiver:
        raise ValueError(f"hello addressed to replica {addressed_to}")
    if abs(time.time() - timestamp) > HELLO_MAX_SKEW_S:
        raise ValueError("hello timestamp is stale")
    if not verify(principal, hello_payload(principal, receiver, timestamp), signature):
        raise ValueError(f"hello signature of {principal} does not verify")
    return principal


def _replies_payload(packed: bytes) -> bytes:
    return REPLIES_DOMAIN + hashlib.sha256(packed).digest()


def make_replies(replica: int, replies: Sequence[bytes], sign: Callable[[bytes], bytes]) -> list[bytes]:
    """REPLIES frame bodies carrying ``replies`` (encoded, unsigned) from ``replica``: each is its
    signature over the domain and a digest of the rest, then ``[replica, [reply, ...]]``."""
    bodies: list[bytes] = []
    start, size = 0, 0
    for end, reply in enumerate(replies, 1):
        size += len(reply)
        if size >= REPLIES_FRAME_BYTES or end == len(replies):
            packed = pack_control([replica, list(replies[start:end])])
            bodies.append(sign(_replies_payload(packed)) + packed)
            start, size = end, 0
    return bodies


def open_replies(body: bytes, max_bytes: int) -> tuple[int, list[bytes]]:
    """The sender and the encoded replies of a REPLIES frame body, before its signature is checked
    (a client checks it only if one of the replies still matters); raises ValueError if malformed."""
    fields = unpack_control(body[SIGNATURE_BYTES:], max_bytes)
    if not (
        isinstance(fields, list)
        and len(fields) == 2
        and isinstance(fields[0], int)
        and isinstance(fields[1], list)
        and all(isinstance(reply, bytes) for reply in fields[1])
    ):
        raise ValueError("replies must be [replica, [reply, ...]]")
    return fields[0], fields[1]


def replies_signed(body: bytes, principal: Principal, verify: Verify) -> bool:
    """True iff the REPLIES frame body carries ``principal``'s signature over its replies."""
    return verify(principal, _replies_payload(body[SIGNATURE_BYTES:]), body[:SIGNATURE_BYTES])


class Connection(asyncio.Protocol):
    """One TCP connection that carries frames both ways and counts the peer's bad frames.

    ``on_frames`` gets every complete frame payload of a read in one call, so
    the node can process (and verify signatures) in batches. ``principal`` is
    the peer, when known in advance (we connected to it). Until it is known,
    frames are handed over one at a time: the hello decides how large the
    peer's later frames may be (``set_frame_limit``).
    """

    def __init__(
        self,
        name: str,
        max_frame_bytes: int,
        abuse_limit: int,
        on_frames: Callable[[Connection, list[bytes]], None],
        on_abuse: Callable[[Connection, str], None],
        on_closed: Callable[[Connection], None],
        on_opened: Callable[[Connection], None] | None = None,
        principal: Principal | None = None,
    ) -> None:
        self.name = name
        self.address = ""
        self.principal = principal
        self.subscriptions: set[str] = set()
        self.abuse = AbuseCounter(abuse_limit)
        self.opened_at = time.monotonic()
        self.last_active = self.opened_at  # when a frame last went either way
        self._decoder = FrameDecoder(max_frame_bytes)
        self._on_frames = on_frames
        self._on_abuse = on_abuse
        self._on_closed = on_closed
        self._on_opened = on_opened
        self._transport: asyncio.Transport | None = None
        self._lost = asyncio.Event()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if peer:
            self.address = str(peer[0])
            self.name = f"{self.name}<{peer[0]}:{peer[1]}>"
        if self._on_opened is not None:
            self._on_opened(self)

    def set_frame_limit(self, max_frame_bytes: int) -> None:
        """Frames after the current one may be up to ``max_frame_bytes`` long."""
        self._decoder.max_frame_bytes = max_frame_bytes

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        while self.principal is None and not self.closed:
            result = self._decoder.feed(data, max_frames=1)
            data = b""
            self._deliver(result)
            if not result.frames:
                return
        if not self.closed:
            self._deliver(self._decoder.feed(data))

    def _deliver(self, result: DecodeResult) -> None:
        for length in result.oversized:
            self.report_abuse(f"oversized frame of {length} bytes")
        if result.frames and not self.closed:
            self._on_frames(self, result.frames)

    def report_abuse(self, reason: str) -> None:
        """Drop-and-log a bad frame; close the connection once the peer has used up its allowance."""
        self._on_abuse(self, reason)
        if self.abuse.record() and not self.closed:
            self.close()

    def send(self, data: bytes) -> bool:
        """Queue a complete frame; False (frame dropped) when closed or the peer is not reading."""
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            return False
        transport.write(data)
        self.last_active = time.monotonic()
        return True

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()
        self.closed = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._lost.set()
        self._on_closed(self)

    async def wait_closed(self) -> None:
        await self._lost.wait()


class ReplyRoutes:
    """Client id to the connections that receive its replies.

    Each subscription costs about 400 bytes, so they are bounded per connection, per principal
    (the key that opened the connections) and in total."""

    def __init__(self, per_connection: int, per_principal: int, total: int) -> None:
        self.per_connection = per_connection
        self.per_principal = per_principal
        self.total = total
        self._routes: dict[str, set[Connection]] = {}
        self._by_principal: Counter[Principal | None] = Counter()
        self._count = 0

    def add(self, client: str, connection: Connection) -> str:
        """Route ``client``'s replies to ``connection`` too; "" when done (or already so), else
        which limit refused it."""
        if client in connection.subscriptions:
            return ""
        if len(connection.subscriptions) >= self.per_connection:
            return f"more than {self.per_connection} subscriptions on one connection"
        if self._by_principal[connection.principal] >= self.per_principal:
            return f"more than {self.per_principal} subscriptions by {connection.principal}"
        if self._count >= self.total:
            return f"the node holds {self.total} subscriptions, its limit"
        connection.subscriptions.add(client)
        self._routes.setdefault(client, set()).add(connection)
        self._by_principal[connection.principal] += 1
        self._count += 1
        return ""

    def forget(self, connection: Connection) -> None:
        for client in connection.subscriptions:
            routes = self._routes.get(client)
            if routes is not None:
                routes.discard(connection)
                if not routes:
                    del self._routes[client]
        self._count -= len(connection.subscriptions)
        self._by_principal[connection.principal] -= len(connection.subscriptions)
        if self._by_principal[connection.principal] <= 0:
            del self._by_principal[connection.principal]
        connection.subscriptions.clear()

    def connections(self, client: str) -> tuple[Connection, ...]:
        return tuple(self._routes.get(client, ()))

    def __len__(self) -> int:
        return len(self._routes)


class PeerLink:
    """The outbound connection to one replica: reconnects with backoff, buffers while down.

    Frames queued while the link is down are bounded in number and, like a live connection's
    write buffer, in bytes (oldest dropped first): PBFT tolerates message loss, and an unbounded
    queue to a dead peer would exhaust memory (a fragment alone may be 16 MiB).
    """

    def __init__(
        self,
        target: int,
        host: str,
        port: int,
        hello: Callable[[], bytes],
        queue_frames: int,
        make_connection: Callable[[], Connection],
    ) -> None:
        self.target = target
        self.host = host
        self.port = port
        self._hello = hello
        self._queue: deque[bytes] = deque()
        self._queue_frames = queue_frames
        self._queued_bytes = 0
        self._make_connection = make_connection
        self._connection: Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.sent = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"link-{self.target}")

    def send(self, data: bytes) -> None:
        connection = self._connection
        if connection is not None and not connection.closed:
            if connection.send(data):
                self.sent += 1
            else:
                self.dropped += 1
            return
        self._queue.append(data)
        self._queued_bytes += len(data)
        while len(self._queue) > self._queue_frames or self._queued_bytes > WRITE_BUFFER_LIMIT:
            self._queued_bytes -= len(self._queue.popleft())
            self.dropped += 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.02
        while True:
            try:
                _, connection = await loop.create_connection(self._make_connection, self.host, self.port)
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
                continue
            backoff = 0.02
            connection.send(frame(FrameKind.HELLO, self._hello()))
            while self._queue:
                connection.send(self._queue.popleft())
            self._queued_bytes = 0
            self._connection = connection
            await connection.wait_closed()
            self._connection = None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            self._connection.close()
