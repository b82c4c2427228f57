"""Crash consistency: a replica recovered from its store must stand behind everything it sent.

The replica's contract (``pot_impl.pbft.io``) is write-ahead: what a message depends on is
durable before the message leaves. So a replica that crashes right after any send and recovers
from its store must still hold the state each message it signed announced: the PRE-PREPARE,
PREPARE or COMMIT it sent is in its log (or in a view it has left, or below its stable
checkpoint), the VIEW-CHANGE or NEW-VIEW it sent is its view change, its CHECKPOINT is its own
state, its REPLY is in its client table. A recovered replica that has forgotten one of them can
send the opposite next (equivocation, or a request executed twice), which the spec never does:
in the spec a replica's messages and its local state change in one atomic step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pot_impl.pbft.io import (
    Broadcast,
    CompactLog,
    DurableRecord,
    Effect,
    Persist,
    ReplyToClient,
    SendTo,
)
from pot_impl.pbft.messages import (
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    ReplicaMessage,
    Reply,
    Request,
    ViewChange,
)
from pot_impl.pbft.replica import Replica

Signed = ReplicaMessage | Reply
"""What a replica signs and sends: protocol messages and replies to clients."""


def forgotten(recovered: Replica, sent: Iterable[Signed]) -> list[Signed]:
    """The messages of ``sent`` (signed by ``recovered``'s id) its recovered state does not stand behind."""
    return [message for message in sent if not _stands_behind(recovered, message)]


def _stands_behind(replica: Replica, message: Signed) -> bool:
    if isinstance(message, Reply):
        record = replica.clients.get(message.client)
        return record is not None and record.timestamp >= message.timestamp
    if isinstance(message, Checkpoint):
        own = replica.own_checkpoints.get(message.seq)
        return message.seq <= replica.stable_checkpoint or own == message.state_digest
    if isinstance(message, ViewChange):
        view = message.new_view
        held = replica.id in replica.view_change_senders.get(view, frozenset())
        return view < replica.view or (view == replica.view and (replica.view_active or held))
    if isinstance(message, NewView):
        return message.view < replica.view or (message.view == replica.view and replica.view_active)
    if isinstance(message, PrePrepare | Prepare | Commit):
        return _stands_behind_agreement(replica, message)
    return True  # state transfer and catch-up messages announce nothing about the sender's state


def _stands_behind_agreement(replica: Replica, message: PrePrepare | Prepare | Commit) -> bool:
    """A view it has left, a seq its stable checkpoint covers, or the same entry in its log."""
    if message.view < replica.view or message.seq <= replica.stable_checkpoint:
        return True
    committed = replica.committed.get(message.seq)
    if committed is not None and (committed.view, committed.digest) == (message.view, message.digest):
        return True
    entry = replica.log.get(message.seq)
    if entry is None or (entry.view, entry.digest) != (message.view, message.digest):
        return False
    if isinstance(message, Prepare):
        return replica.id in entry.prepare_senders
    if isinstance(message, Commit):
        return replica.id in entry.commit_senders
    return True


def crash_points(
    replica: int, store: Sequence[DurableRecord], effects: Sequence[Effect]
) -> list[tuple[tuple[DurableRecord, ...], list[Signed]]]:
    """Where a crash inside one step can leave the replica: for each store the step's effects pass
    through while sending, that store and what the replica had sent (in this step) when it last held
    it. The host performs effects in order, so a crash after any effect leaves exactly its prefix done."""
    points: list[tuple[tuple[DurableRecord, ...], list[Signed]]] = []
    current, sent = list(store), list[Signed]()
    stored = True
    """Whether ``current`` is the store of the last point (no durable effect since)."""
    for effect in effects:
        if isinstance(effect, Persist | CompactLog):
            current = [*current, effect.record] if isinstance(effect, Persist) else list(effect.records)
            stored = False
            continue
        message = _signed_by(replica, effect)
        if message is None:
            continue
        sent.append(message)
        if stored and points:
            points[-1] = (points[-1][0], list(sent))
        else:
            points.append((tuple(current), list(sent)))
            stored = True
    return points


def _signed_by(replica: int, effect: Effect) -> Signed | None:
    """The message ``effect`` sends if ``replica`` signed it (not a forwarded one, not a request)."""
    if isinstance(effect, ReplyToClient):
        return effect.reply
    if isinstance(effect, Broadcast | SendTo) and not isinstance(effect.message, Request):
        return effect.message if effect.message.replica == replica else None
    return None
