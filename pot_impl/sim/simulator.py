"""The deterministic simulator: replicas, clients, a lossy reordering network and a logical clock.

Everything random is drawn from one ``random.Random(scenario.seed)`` in a
fixed order, and events at equal times are ordered by insertion, so a run is
a pure function of its scenario. Messages cross the simulated wire as
canonical bytes (``pot_impl.codec``) and are decoded on arrival, exactly as
under the TCP runtime; frames that do not decode are dropped and counted.
Persistence is simulated too: each replica's ``Persist``/``CompactLog``
effects are applied to a byte store that survives crashes, and a restarted
replica is a fresh object that recovers from it.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from pot_impl import codec
from pot_impl.auth import HmacKeyring, client_principal, replica_principal
from pot_impl.byzantine import BEHAVIOURS, ByzantineContext, Output, RawSend
from pot_impl.pbft.app import Application
from pot_impl.pbft.client import Client
from pot_impl.pbft.config import ReplicaConfig
from pot_impl.pbft.io import (
    DURABLE_TYPES,
    Broadcast,
    CancelTimer,
    ClientRequestReceived,
    CompactLog,
    Effect,
    Emit,
    MessageReceived,
    Persist,
    ProtocolEvent,
    ReplyToClient,
    SendTo,
    SetTimer,
    Timer,
    TimerFired,
)
from pot_impl.pbft.messages import Reply, Request
from pot_impl.pbft.replica import Replica
from pot_impl.sim.apps import Position, TrackedApp


@dataclass(frozen=True)
class Crash:
    """Replica ``replica`` stops at ``at`` and restarts from its store at ``restart_at`` (never if None)."""

    replica: int
    at: int
    restart_at: int | None


@dataclass(frozen=True)
class Partition:
    """Between ``start`` and ``end`` replicas only reach replicas of their own group (clients reach all)."""

    start: int
    end: int
    groups: tuple[frozenset[int], ...]


@dataclass(frozen=True)
class NetworkSettings:
    """Delays are uniform in [min_delay, max_delay] ticks (so messages reorder); loss and duplication
    apply until the scenario heals."""

    min_delay: int = 1
    max_delay: int = 10
    loss: float = 0.0
    duplicate: float = 0.0


@dataclass(frozen=True)
class Scenario:
    """A complete, reproducible description of one run."""

    seed: int
    config: ReplicaConfig
    clients: int
    operations: tuple[tuple[bytes, ...], ...]
    """Per client, the operations it submits one after another."""
    byzantine: tuple[tuple[int, str], ...] = ()
    crashes: tuple[Crash, ...] = ()
    partitions: tuple[Partition, ...] = ()
    network: NetworkSettings = NetworkSettings()
    heal_at: int = 0
    end_at: int = 60_000
    client_timeout: int = 600
    think_time: int = 150
    """A client waits up to this long between receiving a result and sending its next request."""

    @property
    def faulty(self) -> frozenset[int]:
        """Replicas that count against f: Byzantine ones and those that crash for good."""
        return frozenset(r for r, _ in self.byzantine) | {
            c.replica for c in self.crashes if c.restart_at is None
        }


@dataclass
class NodeRecord:
    """What the simulator observed of one replica, across all its incarnations."""

    events: list[ProtocolEvent] = field(default_factory=list)
    history: dict[Position, bytes] = field(default_factory=dict)
    conflicts: list[Position] = field(default_factory=list)
    store: list[bytes] = field(default_factory=list)
    restarts: int = 0


@dataclass
class RunResult:
    scenario: Scenario
    replicas: dict[int, Replica | None]
    apps: dict[int, Application]
    nodes: dict[int, NodeRecord]
    completed: dict[str, list[bytes]]
    decode_errors: int
    finished_at: int

    @property
    def honest(self) -> list[int]:
        byzantine = {r for r, _ in self.scenario.byzantine}
        return [r for r in range(self.scenario.config.n) if r not in byzantine]


class Simulation:
    """Runs one scenario; ``app_factory`` builds a fresh application for each replica incarnation."""

    def __init__(self, scenario: Scenario, app_factory: Callable[[], Application]) -> None:
        self.scenario = scenario
        self.config = scenario.config
        self.rng = random.Random(scenario.seed)
        self.keys = HmacKeyring(f"sim-{scenario.seed}".encode())
        self.verifier = self.keys.verifier()
        self.app_factory = app_factory
        self.now = 0
        self._queue: list[tuple[int, int, tuple[object, ...]]] = []
        self._counter = 0
        self.nodes = {r: NodeRecord() for r in range(self.config.n)}
        self.replicas: dict[int, Replica | None] = {}
        self.apps: dict[int, Application] = {}
        self._incarnation = dict.fromkeys(range(self.config.n), 0)
        self._timer_tokens: dict[tuple[int, Timer], int] = {}
        self._behaviours = {r: BEHAVIOURS[name] for r, name in scenario.byzantine}
        self._byzantine_ctx = {
            r: ByzantineContext(
                r,
                self.config,
                self.keys.signer(replica_principal(r)),
                random.Random(scenario.seed * 1_000_003 + r),
                self._view_getter(r),
                [],
            )
            for r in self._behaviours
        }
        self.clients = {
            f"c{i}": Client(
                f"c{i}", self.config.n, self.keys.signer(client_principal(f"c{i}")), self.verifier
            )
            for i in range(scenario.clients)
        }
        self._next_op = dict.fromkeys(self.clients, 0)
        self.completed: dict[str, list[bytes]] = {c: [] for c in self.clients}
        self.decode_errors = 0

    def _view_getter(self, replica: int) -> Callable[[], int]:
        def view() -> int:
            node = self.replicas.get(replica)
            return node.view if node is not None else 0

        return view

    # ------------------------------------------------------------ scheduling

    def _schedule(self, at: int, *event: object) -> None:
        self._counter += 1
        heapq.heappush(self._queue, (at, self._counter, event))

    def _delay(self) -> int:
        net = self.scenario.network
        return self.rng.randint(net.min_delay, net.max_delay)

    def _faults_active(self) -> bool:
        return self.now < self.scenario.heal_at

    def _partitioned(self, a: int, b: int) -> bool:
        for partition in self.scenario.partitions:
            if partition.start <= self.now < partition.end:
                return not any(a in group and b in group for group in partition.groups)
        return False

    def _transmit(self, kind: str, destination: int | str, data: bytes, source: int | None) -> None:
        """Put a frame on the wire: maybe lost, maybe duplicated, always delayed."""
        if source is not None and isinstance(destination, int) and self._partitioned(source, destination):
            return
        copies = 1
        if self._faults_active():
            net = self.scenario.network
            if self.rng.random() < net.loss:
                return
            if self.rng.random() < net.duplicate:
                copies = 2
        for _ in range(copies):
            self._schedule(self.now + self._delay(), kind, destination, data)

    # ------------------------------------------------------------ running

    def run(self) -> RunResult:
        for r in range(self.config.n):
            self._start_replica(r, recover=False)
        for crash in self.scenario.crashes:
            self._schedule(crash.at, "crash", crash.replica)
            if crash.restart_at is not None:
                self._schedule(max(crash.restart_at, crash.at + 1), "restart", crash.replica)
        for client in self.clients:
            self._schedule(self.rng.randint(0, 20), "client-next", client)
        while self._queue:
            at, _, event = heapq.heappop(self._queue)
            if at > self.scenario.end_at:
                break
            self.now = at
            self._dispatch(event)
            if self._finished():
                break
        return RunResult(
            self.scenario,
            self.replicas,
            self.apps,
            self.nodes,
            self.completed,
            self.decode_errors,
            self.now,
        )

    def _finished(self) -> bool:
        return self.now >= self.scenario.heal_at and all(
            self._next_op[c] >= len(self.scenario.operations[i]) and self.clients[c].outstanding is None
            for i, c in enumerate(self.clients)
        )

    def _dispatch(self, event: tuple[object, ...]) -> None:
        kind = event[0]
        if kind == "replica-frame":
            self._deliver_frame(int(event[1]), bytes(event[2]))  # type: ignore[call-overload]
        elif kind == "client-request":
            replica, data = event[1], event[2]
            assert isinstance(replica, int) and isinstance(data, bytes)
            node = self.replicas.get(replica)
            if node is not None:
                self._apply(replica, node.handle(ClientRequestReceived(codec.decode(data, Request))))
        elif kind == "client-reply":
            client, data = event[1], event[2]
            assert isinstance(client, str) and isinstance(data, bytes)
            self._on_reply(client, codec.decode(data, Reply))
        elif kind == "timer":
            replica, timer, token = event[1], event[2], event[3]
            assert isinstance(replica, int) and isinstance(timer, Timer)
            node = self.replicas.get(replica)
            if node is not None and self._timer_tokens.get((replica, timer)) == token:
                del self._timer_tokens[(replica, timer)]
                self._apply(replica, node.handle(TimerFired(timer)))
        elif kind == "crash":
            self._crash(int(event[1]))  # type: ignore[call-overload]
        elif kind == "restart":
            self._start_replica(int(event[1]), recover=True)  # type: ignore[call-overload]
        elif kind == "client-next":
            self._client_next(str(event[1]))
        elif kind == "client-retry":
            client, timestamp = str(event[1]), event[2]
            outstanding = self.clients[client].outstanding
            if outstanding is not None and outstanding.timestamp == timestamp:
                self._send_request(client, outstanding)

    def _deliver_frame(self, replica: int, data: bytes) -> None:
        node = self.replicas.get(replica)
        if node is None:
            return
        try:
            message = codec.decode_message(data)
        except codec.DecodeError:
            self.decode_errors += 1
            return
        self._apply(replica, node.handle(MessageReceived(message)))

    # ------------------------------------------------------------ replicas

    def _start_replica(self, replica: int, recover: bool) -> None:
        if self.replicas.get(replica) is not None:
            return
        record = self.nodes[replica]
        app = TrackedApp(self.app_factory(), record.history, record.conflicts)
        node = Replica(replica, self.config, self.keys.signer(replica_principal(replica)), self.verifier, app)
        self.replicas[replica] = node
        self.apps[replica] = app
        self._incarnation[replica] += 1
        if recover:
            record.restarts += 1
            records = [codec.decode(data, DURABLE_TYPES) for data in record.store]
            self._apply(replica, node.recover(records))

    def _crash(self, replica: int) -> None:
        self.replicas[replica] = None
        self._timer_tokens = {k: v for k, v in self._timer_tokens.items() if k[0] != replica}

    def _apply(self, replica: int, effects: list[Effect]) -> None:
        behaviour = self._behaviours.get(replica)
        outputs: list[Output] = (
            list(effects) if behaviour is None else behaviour(self._byzantine_ctx[replica], effects)
        )
        record = self.nodes[replica]
        for effect in effects:
            # Storage and events are local: a Byzantine replica's own bookkeeping stays honest.
            if isinstance(effect, Persist):
                record.store.append(codec.encode(effect.record))
            elif isinstance(effect, CompactLog):
                record.store = [codec.encode(r) for r in effect.records]
            elif isinstance(effect, Emit):
                record.events.append(effect.event)
            elif isinstance(effect, SetTimer):
                token = self._counter + 1
                self._timer_tokens[(replica, effect.timer)] = token
                self._schedule(self.now + effect.delay_ms, "timer", replica, effect.timer, token)
            elif isinstance(effect, CancelTimer):
                self._timer_tokens.pop((replica, effect.timer), None)
        for output in outputs:
            if isinstance(output, Broadcast):
                data = codec.encode(output.message)
                for other in range(self.config.n):
                    if other != replica:
                        self._transmit("replica-frame", other, data, replica)
            elif isinstance(output, SendTo):
                self._transmit("replica-frame", output.replica, codec.encode(output.message), replica)
            elif isinstance(output, RawSend):
                self._transmit("replica-frame", output.replica, output.data, replica)
            elif isinstance(output, ReplyToClient):
                reply = self.keys.sign_as_sender(output.reply)
                self._transmit("client-reply", output.client, codec.encode(reply), None)

    # ------------------------------------------------------------ clients

    def _client_next(self, client: str) -> None:
        index = int(client[1:])
        ops = self.scenario.operations[index]
        if self._next_op[client] >= len(ops) or self.clients[client].outstanding is not None:
            return
        request = self.clients[client].request(ops[self._next_op[client]])
        self._next_op[client] += 1
        self._send_request(client, request)

    def _send_request(self, client: str, request: Request) -> None:
        data = codec.encode(request)
        for replica in range(self.config.n):
            self._transmit("client-request", replica, data, None)
        self._schedule(self.now + self.scenario.client_timeout, "client-retry", client, request.timestamp)

    def _on_reply(self, client: str, reply: Reply) -> None:
        result = self.clients[client].on_reply(reply)
        if result is not None:
            self.completed[client].append(result)
            self._schedule(self.now + self.rng.randint(0, self.scenario.think_time), "client-next", client)


def simulate(scenario: Scenario, app_factory: Callable[[], Application]) -> RunResult:
    """Run ``scenario`` to completion (or its end time)."""
    return Simulation(scenario, app_factory).run()
