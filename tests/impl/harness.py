"""A synchronous in-memory cluster for unit tests: messages queue up and are delivered on demand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pot_impl import codec
from pot_impl.auth import HmacKeyring, HmacSigner, client_principal, replica_principal, sign_message
from pot_impl.pbft.config import ReplicaConfig
from pot_impl.pbft.io import (
    Broadcast,
    CompactLog,
    Effect,
    Emit,
    EventKind,
    Persist,
    ProtocolEvent,
    ReplyToClient,
    SendTo,
    SetTimer,
)
from pot_impl.pbft.messages import Message, ReplicaMessage, Reply, Request
from pot_impl.pbft.replica import Replica
from pot_impl.sim.apps import RecordingApp

KEYS = HmacKeyring(b"unit-tests")
VERIFIER = KEYS.verifier()


def replica_signer(replica: int) -> HmacSigner:
    return KEYS.signer(replica_principal(replica))


def signed_request(client: str, timestamp: int, operation: bytes = b"op") -> Request:
    return sign_message(KEYS.signer(client_principal(client)), Request(client, timestamp, operation))


M = TypeVar("M", bound=ReplicaMessage | Reply)


def signed(message: M) -> M:
    """``message`` signed by the replica it names (any replica, Byzantine ones included)."""
    return sign_message(replica_signer(message.replica), message)


@dataclass
class Cluster:
    """n replicas whose outputs are queued as (destination, message) until delivered."""

    config: ReplicaConfig
    replicas: list[Replica] = field(default_factory=list)
    apps: list[RecordingApp] = field(default_factory=list)
    queue: list[tuple[int, ReplicaMessage | Request]] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    events: dict[int, list[ProtocolEvent]] = field(default_factory=dict)
    timers: dict[int, list[SetTimer]] = field(default_factory=dict)
    stores: dict[int, list[bytes]] = field(default_factory=dict)

    @classmethod
    def build(cls, n: int = 4, **settings: int) -> Cluster:
        cluster = cls(ReplicaConfig(n=n, **settings))
        for r in range(n):
            cluster.add(r)
        return cluster

    def add(self, r: int) -> Replica:
        app = RecordingApp()
        replica = Replica(r, self.config, replica_signer(r), VERIFIER, app)
        if r < len(self.replicas):
            self.replicas[r], self.apps[r] = replica, app
        else:
            self.replicas.append(replica)
            self.apps.append(app)
        return replica

    def absorb(self, source: int, effects: list[Effect]) -> list[Effect]:
        """Queue the sends of ``source``'s effects and record everything else."""
        for effect in effects:
            if isinstance(effect, Broadcast):
                self.queue.extend((r, effect.message) for r in range(self.config.n) if r != source)
            elif isinstance(effect, SendTo):
                self.queue.append((effect.replica, effect.message))
            elif isinstance(effect, ReplyToClient):
                self.replies.append(effect.reply)
            elif isinstance(effect, Emit):
                self.events.setdefault(source, []).append(effect.event)
            elif isinstance(effect, SetTimer):
                self.timers.setdefault(source, []).append(effect)
            elif isinstance(effect, Persist):
                self.stores.setdefault(source, []).append(codec.encode(effect.record))
            elif isinstance(effect, CompactLog):
                self.stores[source] = [codec.encode(r) for r in effect.records]
        return effects

    def deliver(self, destination: int, message: Message) -> list[Effect]:
        return self.absorb(destination, self.replicas[destination].deliver(message))

    def submit(self, request: Request, to: list[int] | None = None) -> None:
        for r in range(self.config.n) if to is None else to:
            self.absorb(r, self.replicas[r].submit(request))

    def run(
        self,
        keep: Callable[[int, ReplicaMessage | Request], bool] = lambda r, m: True,
        down: frozenset[int] = frozenset(),
        max_deliveries: int = 10_000,
    ) -> int:
        """Deliver queued messages (and whatever they cause) until quiet and return how many were
        delivered; ``keep`` drops messages, replicas in ``down`` receive nothing. Replicas that
        are still talking after ``max_deliveries`` fail the test (a message storm)."""
        delivered = 0
        while self.queue:
            destination, message = self.queue.pop(0)
            if destination in down or not keep(destination, message):
                continue
            assert delivered < max_deliveries, f"no quiet after {delivered} deliveries: a message storm"
            self.deliver(destination, message)
            delivered += 1
        return delivered

    def flush_batches(self) -> None:
        """Fire the primaries' pending batch timers."""
        for r, replica in enumerate(self.replicas):
            for set_timer in self.timers.pop(r, []):
                if set_timer.timer.kind.value == "batch":
                    self.absorb(r, replica.fire(set_timer.timer))

    def events_of(self, replica: int, kind: EventKind) -> list[ProtocolEvent]:
        return [e for e in self.events.get(replica, []) if e.kind is kind]

    def rejections(self, replica: int) -> list[str]:
        return [e.reason for e in self.events_of(replica, EventKind.REJECTED)]
