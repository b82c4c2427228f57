"""One replica process: the sans-IO replica driven by asyncio, TCP, SQLite and the event log.

The node's loop is a pipeline of *steps*. A step takes what has arrived
(frames from every connection, timer firings) up to ``STEP_ITEMS``, decodes
and schema-checks the frames, checks every signature in them on a thread
pool (libsodium releases the GIL, so this runs in parallel and the event loop
stays free for I/O and timers), feeds the surviving inputs to the replica,
and performs the effects in write-ahead order: one SQLite transaction for all
``Persist``/``CompactLog`` effects of the step, then the event log flush, then
the sends, replies and timers. Nothing the replica said is sent before what it
depends on is durable.

A timer that expires while a step is running is queued behind the frames
that arrived before it, and is ignored if the replica re-armed or cancelled
it in the meantime: a backlog of already-received progress cannot trigger a
spurious view change.

Peers are admitted from the edge inward: connections are capped per address
and in total, must send their hello within a timeout, and clients are cut off
when idle; a client's frames are bounded by its own (small) limit, and its
status requests and subscriptions are rate-limited per key. Whatever is
refused is counted and logged at a bounded rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import signal
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pot_impl import codec
from pot_impl.auth import CLIENT_PREFIX, Principal, replica_principal, sender_of
from pot_impl.byzantine import BEHAVIOURS, Behaviour, ByzantineContext, RawSend
from pot_impl.pbft.io import (
    DURABLE_TYPES,
    Broadcast,
    CancelTimer,
    ClientRequestReceived,
    CompactLog,
    DurableRecord,
    Effect,
    Emit,
    Input,
    MessageReceived,
    Persist,
    ReplyToClient,
    SendTo,
    SetTimer,
    Timer,
    TimerFired,
)
from pot_impl.pbft.messages import (
    SIGNED_TYPES,
    Fetch,
    Message,
    NewView,
    PrePrepare,
    Reply,
    Request,
    StateRequest,
    StateResponse,
    ViewChange,
)
from pot_impl.runtime.admission import InboundConnections, Reports, from_replica, reserve_descriptors
from pot_impl.runtime.config import Config, ConfigError, NodeSettings
from pot_impl.runtime.crypto import Ed25519Signer, Ed25519Verifier, read_key_pair
from pot_impl.runtime.events import EventLog
from pot_impl.runtime.fragments import FRAGMENT_OVERHEAD, Reassembly, fragment
from pot_impl.runtime.ledger_app import REQUEST_TOO_LARGE, UNKNOWN_ACCOUNT
from pot_impl.runtime.limits import TokenBuckets
from pot_impl.runtime.replica_host import ReplicaHost, build_replica
from pot_impl.runtime.store import Store, WriteBatch, int_key
from pot_impl.runtime.transport import (
    Connection,
    FrameKind,
    PeerLink,
    ReplyRoutes,
    check_hello,
    frame,
    make_hello,
    make_replies,
    pack_control,
    split_frame,
    unpack_control,
)

log = logging.getLogger(__name__)

STEP_ITEMS = 512
"""Most inbox items one step processes, so timers and I/O get the loop between steps."""
STATE_REQUEST_INTERVAL_S = 0.1
HELLO_FRAME_BYTES = 4096
"""Largest first frame of an inbound connection (a hello is about 200 bytes)."""
STATUS_QUERY_CLIENTS = 1024
"""Most client ids one status request may ask about."""
CONTROL_KEYS = 10_000
"""Principals whose control-frame rate is remembered (least recently used forgotten)."""
STATUS_ANSWERS_PER_S = 100
"""Status answers per second for all principals together: keys cost nothing to make, so the
per-key limit alone would not bound a flood from fresh keys."""
REFUSALS_PER_S = 100
"""Signed refusals of requests from senders without an account, per second in all; beyond it such
requests are dropped and counted (each refusal costs a signature, and such keys cost nothing)."""
COMPACT_LOG_BYTES = 64 * 1024 * 1024
"""Log bytes written since the last compaction after which the node compacts (or twice what the
last compaction wrote, if more): the store stays bounded when no checkpoint becomes stable."""
MAX_COMMITS_IN_FLIGHT = 2
"""Steps whose commit may still be running while the next one is computed."""
VERIFIED_CACHE_ENTRIES = 100_000
"""Signatures remembered as checked: a few hundred full batches of small requests."""
VERIFIED_CACHE_BYTES = 32 * 1024 * 1024
"""And at most this many bytes of what they sign, whatever the requests' size."""
LOG_KIND = "log"


Outgoing = SendTo | Broadcast | ReplyToClient | RawSend
"""What a step puts on the wire once it is durable (a Byzantine replica's garbled frames included)."""


@dataclass(frozen=True)
class _Arrived:
    connection: Connection
    payload: bytes


@dataclass(frozen=True)
class _Expired:
    timer: Timer
    generation: int


@dataclass
class NodeCounters:
    """What the benchmark reads back through ``pot status``."""

    frames_in: int = 0
    frames_dropped: int = 0
    requests_refused: int = 0
    requests_unknown_sender: int = 0
    records_skipped: int = 0
    log_compactions: int = 0
    messages_out: int = 0
    frames_out: int = 0
    pool_verifications: int = 0
    messages_fragmented: int = 0
    messages_reassembled: int = 0
    store_commits: int = 0
    steps: int = 0


def signed_parts(message: Message) -> Iterator[Message]:
    """``message`` and every signed message nested in it, all of which the core will check."""
    yield message
    if isinstance(message, PrePrepare):
        yield from message.batch
    elif isinstance(message, ViewChange):
        yield from message.checkpoint_proof
        for certificate in message.prepared:
            yield from signed_parts(certificate.pre_prepare)
            yield from certificate.prepares
    elif isinstance(message, NewView):
        for view_change in message.view_changes:
            yield from signed_parts(view_change)
        for pre_prepare in message.pre_prepares:
            yield from signed_parts(pre_prepare)
    elif isinstance(message, StateResponse):
        yield from message.stable.proof


SignatureJob = tuple[Principal, bytes, bytes]


def signature_job(part: Message) -> SignatureJob:
    return sender_of(part), codec.signing_payload(part), part.signature


class CheckedMessages:
    """Messages (signature included) whose signatures checked: the most recent, at most ``capacity``
    of them and ``capacity_bytes`` of their signed payloads.

    A request travels in its client's frame, then in the pre-prepare, then in view-changes and
    new-views; recognising an equal message skips re-encoding its signing payload and re-checking."""

    def __init__(self, capacity: int, capacity_bytes: int) -> None:
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        self._seen: OrderedDict[Message, int] = OrderedDict()
        self._bytes = 0

    def __contains__(self, message: Message) -> bool:
        return message in self._seen

    def add(self, message: Message, size: int) -> None:
        if message in self._seen:
            return
        self._seen[message] = size
        self._bytes += size
        while len(self._seen) > self.capacity or self._bytes > self.capacity_bytes:
            self._bytes -= self._seen.popitem(last=False)[1]


class Node:
    """A replica process. ``start`` opens the store, recovers, listens and connects to peers."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings: NodeSettings = config.require_node()
        self.id = self.settings.id
        pair = read_key_pair(self.settings.key_file)
        if pair.public != config.replica(self.id).public_key:
            raise ValueError(
                f"node.key_file: {self.settings.key_file} does not hold the key of replica {self.id} "
                "listed in [[replicas]]"
            )
        self.signer = Ed25519Signer(replica_principal(self.id), pair)
        replica_keys = [r.public_key for r in config.replicas]
        self.verifier = Ed25519Verifier(replica_keys, VERIFIED_CACHE_ENTRIES, VERIFIED_CACHE_BYTES)
        transport = config.transport
        reserve_descriptors(transport)
        # The store first: its lock keeps a second node off this replica's event log too.
        self.store = Store(self.settings.data_dir / "node.db", self.settings.sync)
        try:
            self.events = EventLog(self.settings.event_log, self.id)
        except OSError as exc:
            self.store.close()
            where = f"node.event_log: cannot open {self.settings.event_log}"
            raise ConfigError(f"{where} ({exc.strerror})") from None
        self.host: ReplicaHost = build_replica(self.id, config, self.signer, self.verifier)
        byzantine = self.settings.byzantine
        self._byzantine = None if byzantine is None else self._behaviour(byzantine)
        self.counters = NodeCounters()
        self._pool = ThreadPoolExecutor(config.transport.verify_threads, thread_name_prefix="verify")
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="store")
        self._durable_in_flight: deque[asyncio.Future[bool]] = deque()
        self.fatal: BaseException | None = None
        self._inbox: deque[_Arrived | _Expired] = deque()
        self._wake = asyncio.Event()
        self._timers: dict[Timer, tuple[int, asyncio.TimerHandle]] = {}
        self._timer_generation = 0
        self._checked = CheckedMessages(VERIFIED_CACHE_ENTRIES, VERIFIED_CACHE_BYTES)
        self._state_requests: dict[tuple[type, int], float] = {}
        self._reassembly: dict[Connection, Reassembly] = {}
        # a replica's message may be larger than a frame (fragments.py), and so may one field of it
        largest = transport.max_message_bytes
        self._replica_limits = codec.Limits(total=largest, field=largest)
        self._routes = ReplyRoutes(
            transport.max_subscriptions_per_connection,
            transport.max_subscriptions_per_key,
            transport.max_subscriptions,
        )
        rate = transport.control_frames_per_s
        self._control = TokenBuckets(rate, 2 * rate, CONTROL_KEYS)
        self._status_answers = TokenBuckets(STATUS_ANSWERS_PER_S, STATUS_ANSWERS_PER_S, 1)
        self._refusals = TokenBuckets(REFUSALS_PER_S, REFUSALS_PER_S, 1)
        # a client frame holds one request (plus the kind byte) or a control frame
        request_frame = config.protocol.max_request_bytes + 1
        self._client_frame_bytes = max(transport.max_client_frame_bytes, request_frame)
        self._reports = Reports(self.id, self.events, self._wake.set)
        self._inbound = InboundConnections(transport, self._reports)
        self._links: dict[int, PeerLink] = {}
        self._server: asyncio.Server | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        self._log_key = 0
        self._log_bytes = 0
        self._compacted_bytes = 0
        self._stopped = asyncio.Event()
        self.started_at = time.time()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._reports.loop_exception)
        records, skipped = self._load_log()
        own = self.config.listen_address()
        self._server = await loop.create_server(self._new_inbound, own.host, own.port, reuse_address=True)
        for replica in self.config.replicas:
            if replica.id == self.id:
                continue
            link = PeerLink(
                replica.id,
                replica.address.host,
                replica.address.port,
                hello=functools.partial(make_hello, self.signer.principal, replica.id, self.signer.sign),
                queue_frames=self.config.transport.send_queue_frames,
                make_connection=functools.partial(
                    self._new_connection, f"out-{replica.id}", replica_principal(replica.id)
                ),
            )
            link.start()
            self._links[replica.id] = link
        self.events.emit("started", view=self.host.view(), records=len(records))
        self._perform(self.host.recover(records), compact=skipped > 0)
        self._pump_task = loop.create_task(self._pump(), name="pump")
        self._sweep_task = loop.create_task(self._inbound.sweep(), name="sweep")

    async def run_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopped.set)
        await self.start()
        pump = self._pump_task
        assert pump is not None
        stop = loop.create_task(self._stopped.wait())
        await asyncio.wait({pump, stop}, return_when=asyncio.FIRST_COMPLETED)
        if pump.done():
            pump.result()  # a crashed pump is a bug: surface it
        await self.stop()
        if self.fatal is not None:
            raise self.fatal

    async def stop(self) -> None:
        for task in (self._pump_task, self._sweep_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for link in self._links.values():
            await link.close()
        if self._server is not None:
            self._server.close()
        for connection in self._inbound:
            connection.close()
        for _, handle in self._timers.values():
            handle.cancel()
        await asyncio.gather(*self._durable_in_flight, return_exceptions=True)
        self._store_thread.shutdown(wait=True)
        self._pool.shutdown(wait=True)
        self.events.emit("stopped", view=self.host.view())
        self.events.close()
        self.store.close()

    # ------------------------------------------------------------ inbound

    def _new_connection(self, name: str, peer: Principal) -> Connection:
        return Connection(
            name,
            self.config.transport.max_frame_bytes,
            self.config.transport.abuse_limit,
            on_frames=self._on_frames,
            on_abuse=self._dropped,
            on_closed=self._on_closed,
            principal=peer,
        )

    def _new_inbound(self) -> Connection:
        return Connection(
            "in",
            HELLO_FRAME_BYTES,
            self.config.transport.abuse_limit,
            on_frames=self._on_frames,
            on_abuse=self._dropped,
            on_closed=self._on_closed,
            on_opened=self._inbound.admit,
        )

    def _on_frames(self, connection: Connection, payloads: list[bytes]) -> None:
        self.counters.frames_in += len(payloads)
        for payload in payloads:
            parts = split_frame(payload)
            if parts is None:
                connection.report_abuse("unknown frame kind")
                continue
            kind, body = parts
            if kind is FrameKind.MESSAGE and connection.principal is not None:
                self._inbox.append(_Arrived(connection, body))
            elif kind is FrameKind.FRAGMENT and from_replica(connection):
                self._reassemble(connection, body)
            elif kind is FrameKind.HELLO and connection.principal is None:
                self._accept_hello(connection, body)
            elif kind is FrameKind.STATUS_REQUEST:
                if self._control_allowed(connection, kind):
                    self._answer_status(connection, body)
            elif kind is FrameKind.SUBSCRIBE:
                if self._control_allowed(connection, kind):
                    self._subscribe(connection, body)
            else:
                connection.report_abuse(f"{kind.name} frame not expected now")
        if self._inbox:
            self._wake.set()

    def _reassemble(self, connection: Connection, body: bytes) -> None:
        reassembly = self._reassembly.get(connection)
        if reassembly is None:
            reassembly = self._reassembly[connection] = Reassembly(self.config.transport.max_message_bytes)
        try:
            payload = reassembly.add(body)
        except ValueError as exc:
            connection.report_abuse(f"fragment refused: {exc}")
            return
        if payload is not None:
            self.counters.messages_reassembled += 1
            self._inbox.append(_Arrived(connection, payload))

    def _control_allowed(self, connection: Connection, kind: FrameKind) -> bool:
        """Status requests and subscriptions cost the node work and memory: only after a hello,
        and at most ``transport.control_frames_per_s`` per principal (a burst of twice that)."""
        if connection.principal is None:
            connection.report_abuse(f"{kind.name} frame before the hello")
            return False
        if not self._control.allow(connection.principal, time.monotonic()):
            rate = self.config.transport.control_frames_per_s
            connection.report_abuse(f"{kind.name} over the rate limit of {rate} per second")
            return False
        return True

    def _answer_status(self, connection: Connection, body: bytes) -> None:
        try:
            query = unpack_control(body, self._client_frame_bytes)
        except ValueError as exc:
            connection.report_abuse(str(exc))
            return
        clients = query.get("clients", []) if isinstance(query, dict) else []
        if not isinstance(clients, list) or not all(isinstance(c, str) for c in clients):
            connection.report_abuse("status query: clients must be a list of client ids")
            return
        if len(clients) > STATUS_QUERY_CLIENTS:
            connection.report_abuse(f"status query: more than {STATUS_QUERY_CLIENTS} client ids")
            return
        if not self._status_answers.allow(None, time.monotonic()):
            self._dropped(connection, f"status request over the {STATUS_ANSWERS_PER_S} answers a second")
            return
        connection.send(frame(FrameKind.STATUS, pack_control(self.status(clients))))

    def _accept_hello(self, connection: Connection, body: bytes) -> None:
        try:
            connection.principal = check_hello(body, self.id, self.verifier.check, HELLO_FRAME_BYTES)
        except ValueError as exc:
            connection.report_abuse(f"bad hello: {exc}")
            return
        if from_replica(connection):
            connection.set_frame_limit(self.config.transport.max_frame_bytes)
            return
        connection.set_frame_limit(self._client_frame_bytes)
        kind, _, name = connection.principal.partition(":")
        if kind + ":" == CLIENT_PREFIX:
            self._routes.add(name, connection)

    def _subscribe(self, connection: Connection, body: bytes) -> None:
        try:
            clients = unpack_control(body, self._client_frame_bytes)
        except ValueError as exc:
            connection.report_abuse(str(exc))
            return
        if not isinstance(clients, list) or not all(isinstance(c, str) for c in clients):
            connection.report_abuse("subscribe frame must be a list of client ids")
            return
        for client in clients:
            refused = self._routes.add(client, connection)
            if refused:
                connection.report_abuse(f"subscription refused: {refused}")
                return

    def _dropped(self, connection: Connection, reason: str) -> None:
        """A frame from ``connection`` was dropped (it was malformed, unexpected or over a limit)."""
        self.counters.frames_dropped += 1
        self._reports.report("dropped", connection, reason)

    def _on_closed(self, connection: Connection) -> None:
        if connection.abuse.exhausted:
            self._reports.report("connection-closed", connection, "abuse limit reached")
        self._routes.forget(connection)
        self._inbound.forget(connection)
        self._reassembly.pop(connection, None)

    # ------------------------------------------------------------ the pump

    async def _pump(self) -> None:
        while True:
            if not self._inbox:
                self._wake.clear()
                await self._wake.wait()
            await self._bound_commits_in_flight()
            items = [self._inbox.popleft() for _ in range(min(STEP_ITEMS, len(self._inbox)))]
            inputs = await self._admit(items)
            effects: list[Effect] = []
            for item in inputs:
                effects += self.host.handle(item)
            self._perform(effects)
            self.counters.steps += 1

    async def _bound_commits_in_flight(self) -> None:
        in_flight = self._durable_in_flight
        while True:
            while in_flight and in_flight[0].done():
                in_flight.popleft()
            if len(in_flight) < MAX_COMMITS_IN_FLIGHT:
                return
            await asyncio.wait({in_flight[0]})

    async def _admit(self, items: Sequence[_Arrived | _Expired]) -> list[Input]:
        """Decode frames and check their signatures off-loop; the inputs that survive, in arrival order."""
        decoded: list[tuple[int, Connection, Message, list[Message]]] = []
        ready: dict[int, Input] = {}
        for index, item in enumerate(items):
            if isinstance(item, _Expired):
                current = self._timers.get(item.timer)
                if current is not None and current[0] == item.generation:
                    del self._timers[item.timer]
                    ready[index] = TimerFired(item.timer)
                continue
            limits = self._replica_limits if from_replica(item.connection) else codec.NETWORK_LIMITS
            try:
                message = codec.decode(item.payload, SIGNED_TYPES, limits)
            except codec.DecodeError as exc:
                item.connection.report_abuse(f"malformed message: {exc}")
                continue
            if isinstance(message, Request) and not self.host.admits(message.client):
                self._refuse_unknown_sender(item.connection, message)
                continue
            unchecked = [part for part in signed_parts(message) if part not in self._checked]
            decoded.append((index, item.connection, message, unchecked))
        parts = [part for *_, unchecked in decoded for part in unchecked]
        jobs = [signature_job(part) for part in parts]
        for part, job, good in zip(parts, jobs, await self._check_signatures(jobs), strict=True):
            if good:
                self.verifier.remember(*job)
                self._checked.add(part, len(job[1]))
        for index, connection, message, _ in decoded:
            if message not in self._checked:
                connection.report_abuse(f"bad signature on {type(message).__name__} by {sender_of(message)}")
                continue
            admitted = self._as_input(connection, message)
            if admitted is not None:
                ready[index] = admitted
        return [ready[index] for index in sorted(ready)]

    async def _check_signatures(self, jobs: list[SignatureJob]) -> list[bool]:
        if not jobs:
            return []
        self.counters.pool_verifications += len(jobs)
        workers = self.config.transport.verify_threads
        size = max(16, -(-len(jobs) // workers))
        chunks = [jobs[start : start + size] for start in range(0, len(jobs), size)]
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(self._pool, self._check_chunk, chunk) for chunk in chunks)
        )
        return [good for chunk in results for good in chunk]

    def _check_chunk(self, jobs: list[SignatureJob]) -> list[bool]:
        return [self.verifier.check(*job) for job in jobs]

    def _as_input(self, connection: Connection, message: Message) -> Input | None:
        if isinstance(message, Reply):
            connection.report_abuse("replicas do not accept replies")
            return None
        if isinstance(message, Request) and not from_replica(connection):
            size = codec.request_size(message)
            if size > self.config.protocol.max_request_bytes:
                self._refuse_request(connection, message, size)
                return None
            self._routes.add(message.client, connection)
            return ClientRequestReceived(message)
        if isinstance(message, StateRequest | Fetch) and not self._state_request_allowed(message):
            name = type(message).__name__
            self._dropped(connection, f"{name} from replica {message.replica} over the rate limit")
            return None
        return MessageReceived(message)

    def _refuse_request(self, connection: Connection, request: Request, size: int) -> None:
        """Answer an oversized request with a signed refusal instead of ordering it (its signature
        has been checked, so nobody obtains refusals for another client's requests); sending
        such requests still counts against the connection's abuse allowance."""
        self.counters.requests_refused += 1
        self._send_refusal(connection, request, REQUEST_TOO_LARGE)
        limit = self.config.protocol.max_request_bytes
        connection.report_abuse(f"request of {size} bytes refused: over protocol.max_request_bytes ({limit})")

    def _refuse_unknown_sender(self, connection: Connection, request: Request) -> None:
        """A request from a sender the ledger has no account for is never ordered (``admits``), nor
        its signature checked: a client is told so in a refusal (signed, at most ``REFUSALS_PER_S``
        a second in all, since such keys cost nothing to make); a replica's relay is dropped."""
        self.counters.requests_unknown_sender += 1
        if from_replica(connection) or not self._refusals.allow(None, time.monotonic()):
            self._dropped(connection, f"request from {request.client[:16]}..., which has no account")
            return
        self._send_refusal(connection, request, UNKNOWN_ACCOUNT)

    def _send_refusal(self, connection: Connection, request: Request, reason: str) -> None:
        """Tell ``request``'s client it is not ordered, and why, in a reply of its own."""
        self._send_replies(connection, [codec.encode(self.host.refusal(request, reason))])

    def _state_request_allowed(self, request: StateRequest | Fetch) -> bool:
        """Each answer ships a whole snapshot (or, to a fetch, up to a watermark window of committed
        batches), so a Byzantine replica must not make us send them in a loop; an honest one retries
        no faster than its state-transfer or view-change timer anyway."""
        now = time.monotonic()
        key = (type(request), request.replica)
        if now - self._state_requests.get(key, -STATE_REQUEST_INTERVAL_S) < STATE_REQUEST_INTERVAL_S:
            return False
        self._state_requests[key] = now
        return True

    # ------------------------------------------------------------ effects

    def _behaviour(self, name: str) -> tuple[Behaviour, ByzantineContext]:
        """The Byzantine behaviour ``node.byzantine`` names, and what it may use (seeded by replica)."""
        replica = self.host.replica
        rng = random.Random(self.id)
        context = ByzantineContext(self.id, replica.config, self.signer, rng, lambda: replica.view, [])
        return BEHAVIOURS[name], context

    def _perform(self, effects: Sequence[Effect], compact: bool = False) -> None:
        """Perform effects write-ahead: timers now; records and events to the store thread; sends
        once they are durable. The store thread commits steps in order, so sends keep their order,
        and the loop handles the next step while the previous one is being fsynced.

        The log is also compacted (to the replica's ``durable_records``) when ``compact`` is set or
        it has grown past ``COMPACT_LOG_BYTES`` since the last compaction without a stable
        checkpoint: views that keep changing would otherwise fill the disk."""
        outgoing: list[Outgoing] = []
        batch = WriteBatch()
        for effect in effects:
            if isinstance(effect, Persist):
                self._append_record(batch, effect.record)
            elif isinstance(effect, CompactLog):
                self._compact(batch, effect.records)
            elif isinstance(effect, Emit):
                self.events.protocol(effect.event)
            elif isinstance(effect, SetTimer):
                self._arm(effect.timer, effect.delay_ms)
            elif isinstance(effect, CancelTimer):
                entry = self._timers.pop(effect.timer, None)
                if entry is not None:
                    entry[1].cancel()
            elif self._byzantine is None:
                outgoing.append(effect)
        if self._byzantine is not None:
            behaviour, context = self._byzantine
            outgoing += [o for o in behaviour(context, list(effects)) if isinstance(o, Outgoing)]
        if compact or self._log_bytes > max(COMPACT_LOG_BYTES, 2 * self._compacted_bytes):
            self._compact(batch, self.host.durable_records())
            self.counters.log_compactions += 1
        future = asyncio.get_running_loop().run_in_executor(
            self._store_thread, self._make_durable, batch, self.events.take()
        )
        self._durable_in_flight.append(future)
        future.add_done_callback(functools.partial(self._after_durable, outgoing))

    def _make_durable(self, batch: WriteBatch, lines: list[str]) -> bool:
        """On the store thread: commit the step's records, then append its events."""
        if batch:
            self.store.commit(batch)
        self.events.write(lines)
        return bool(batch)

    def _after_durable(self, outgoing: list[Outgoing], done: asyncio.Future[bool]) -> None:
        """On the loop, once the step is durable: send what depended on it."""
        if done.cancelled():
            return
        failure = done.exception()
        if failure is not None:
            log.error("node %d: cannot persist, stopping: %s", self.id, failure)
            self.fatal = failure
            self._stopped.set()
            return
        self.counters.store_commits += done.result()
        self._send(outgoing)

    def _append_record(self, batch: WriteBatch, record: DurableRecord) -> None:
        value = codec.encode(record)
        batch.put(LOG_KIND, int_key(self._log_key), value)
        self._log_key += 1
        self._log_bytes += len(value)

    def _compact(self, batch: WriteBatch, records: Sequence[DurableRecord]) -> None:
        """Replace the whole log by ``records``."""
        batch.prune(LOG_KIND, int_key(self._log_key))
        self._log_bytes = 0
        for record in records:
            self._append_record(batch, record)
        self._compacted_bytes = self._log_bytes

    def _load_log(self) -> tuple[list[DurableRecord], int]:
        """The durable log, in order, and how many records were skipped. A record that does not
        decode (damaged on disk) is reported and skipped rather than stopping the node: it
        recovers from the others and fetches what it lost from its peers, like a replica that
        lags behind."""
        rows = self.store.scan(LOG_KIND)
        if rows:
            self._log_key = int.from_bytes(rows[-1][0], "big") + 1
        records: list[DurableRecord] = []
        for key, value in rows:
            self._log_bytes += len(value)
            try:
                records.append(codec.decode_unlimited(value, DURABLE_TYPES))
            except codec.DecodeError as exc:
                self.counters.records_skipped += 1
                where = f"{self.store.path}: log record {int.from_bytes(key, 'big')} of {len(value)} bytes"
                self._reports.report("dropped", None, f"{where} is unreadable and was skipped ({exc})")
        self._compacted_bytes = self._log_bytes
        return records, self.counters.records_skipped

    def _send(self, outgoing: Sequence[Outgoing]) -> None:
        encoded: dict[int, list[bytes]] = {}
        replies: dict[Connection, list[bytes]] = {}

        def wire(message: Any) -> list[bytes]:
            key = id(message)
            if key not in encoded:
                encoded[key] = self._frames(codec.encode(message))
            return encoded[key]

        for effect in outgoing:
            self.counters.messages_out += 1
            if isinstance(effect, Broadcast):
                for link in self._links.values():
                    self._send_frames(link, wire(effect.message))
            elif isinstance(effect, SendTo | RawSend):
                target = self._links.get(effect.replica)
                if target is not None:
                    data = wire(effect.message) if isinstance(effect, SendTo) else self._frames(effect.data)
                    self._send_frames(target, data)
            else:
                reply = codec.encode(effect.reply)
                for connection in self._routes.connections(effect.client):
                    replies.setdefault(connection, []).append(reply)
        for connection, encoded_replies in replies.items():
            self._send_replies(connection, encoded_replies)

    def _frames(self, message: bytes) -> list[bytes]:
        """The frames that carry an encoded message to a replica: one, or its fragments if it is
        larger than a frame."""
        limit = self.config.transport.max_frame_bytes - 1
        if len(message) <= limit:
            return [frame(FrameKind.MESSAGE, message)]
        self.counters.messages_fragmented += 1
        return [frame(FrameKind.FRAGMENT, body) for body in fragment(message, limit - FRAGMENT_OVERHEAD)]

    def _send_frames(self, link: PeerLink, frames: list[bytes]) -> None:
        for data in frames:
            link.send(data)
        self.counters.frames_out += len(frames)

    def _send_replies(self, connection: Connection, replies: Sequence[bytes]) -> None:
        """Send ``replies`` to ``connection`` under one signature per frame."""
        for body in make_replies(self.id, replies, self.signer.sign):
            connection.send(frame(FrameKind.REPLIES, body))
            self.counters.frames_out += 1

    def _arm(self, timer: Timer, delay_ms: int) -> None:
        previous = self._timers.pop(timer, None)
        if previous is not None:
            previous[1].cancel()
        self._timer_generation += 1
        generation = self._timer_generation
        handle = asyncio.get_running_loop().call_later(delay_ms / 1000.0, self._expire, timer, generation)
        self._timers[timer] = (generation, handle)

    def _expire(self, timer: Timer, generation: int) -> None:
        self._inbox.append(_Expired(timer, generation))
        self._wake.set()

    # ------------------------------------------------------------ introspection

    def status(self, clients: Sequence[str] = ()) -> dict[str, Any]:
        """What ``pot status`` shows and the benchmark reads: protocol position and counters, and the
        last executed timestamp of each of ``clients`` (to check that a request was executed)."""
        return {
            "id": self.id,
            "uptime_s": round(time.time() - self.started_at, 3),
            **self.host.status(clients),
            "counters": {
                **vars(self.counters),
                "connections_refused": self._inbound.refused,
                "connections_timed_out": self._inbound.timed_out,
            },
            "verifier": {"checks": self.verifier.checks, "cache_hits": self.verifier.cache_hits},
            "links": {str(t): {"sent": k.sent, "dropped": k.dropped} for t, k in self._links.items()},
            "reply_routes": len(self._routes),
        }
