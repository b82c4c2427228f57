"""Byzantine replicas: an honest replica's outputs, rewritten by a behaviour.

One set, used by the simulator and by a replica process configured with ``node.byzantine``
(``pot cluster up --byzantine``): both keep the replica's own bookkeeping (its store, timers and
events) honest and send what the behaviour makes of its sends.

A Byzantine replica can send anything it can sign with its own key and
nothing else (it cannot forge other replicas' or clients' signatures). Each
behaviour keeps the replica's honest state machine running underneath, so
it stays "plausible" while misbehaving in one specific way:

* ``silent``: sends nothing at all (a crash that never recovers).
* ``equivocate``: as primary, sends conflicting pre-prepares for one (view, seq)
  to the two halves of the cluster.
* ``double-vote``: repeats each prepare/commit and adds a conflicting vote for a
  made-up digest.
* ``stale-view-change``: broadcasts view-changes for views already left, view-changes
  that omit its prepared certificates, forged certificates and old pre-prepares.
* ``garble``: garbles some of its frames on the wire (malformed input).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from pot_impl import codec
from pot_impl.auth import Signer, sign_message
from pot_impl.pbft.config import ReplicaConfig
from pot_impl.pbft.io import Broadcast, Effect, SendTo
from pot_impl.pbft.messages import (
    Checkpoint,
    Commit,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ReplicaMessage,
    ViewChange,
)


@dataclass(frozen=True)
class RawSend:
    """Bytes put on the wire to replica ``replica`` as they are (possibly not a valid encoding)."""

    replica: int
    data: bytes


Output = Effect | RawSend


@dataclass
class ByzantineContext:
    """What a behaviour may use: its own identity and key, the cluster constants, seeded randomness,
    and the view its honest core is in."""

    replica: int
    config: ReplicaConfig
    signer: Signer
    rng: random.Random
    view: Callable[[], int]
    sent: list[ReplicaMessage]

    def others(self) -> list[int]:
        return [r for r in range(self.config.n) if r != self.replica]


Behaviour = Callable[[ByzantineContext, list[Effect]], list[Output]]


def _fake_digest(ctx: ByzantineContext) -> bytes:
    return hashlib.sha256(ctx.rng.randbytes(16)).digest()


def silent(ctx: ByzantineContext, effects: list[Effect]) -> list[Output]:
    return []


def equivocate(ctx: ByzantineContext, effects: list[Effect]) -> list[Output]:
    out: list[Output] = []
    for effect in effects:
        if (
            not (isinstance(effect, Broadcast) and isinstance(effect.message, PrePrepare))
            or not effect.message.batch
        ):
            out.append(effect)
            continue
        pp = effect.message
        other_batch = pp.batch[::-1] if len(pp.batch) > 1 else ()
        forged = sign_message(
            ctx.signer, PrePrepare(pp.view, pp.seq, codec.batch_digest(other_batch), other_batch, ctx.replica)
        )
        others = ctx.others()
        half = len(others) // 2
        out.extend(SendTo(r, pp) for r in others[:half])
        out.extend(SendTo(r, forged) for r in others[half:])
    return out


def double_vote(ctx: ByzantineContext, effects: list[Effect]) -> list[Output]:
    out: list[Output] = []
    for effect in effects:
        out.append(effect)
        if isinstance(effect, Broadcast) and isinstance(effect.message, Prepare | Commit):
            vote = effect.message
            out.append(Broadcast(vote))
            conflicting = sign_message(
                ctx.signer, dataclasses.replace(vote, digest=_fake_digest(ctx), signature=b"")
            )
            out.append(Broadcast(conflicting))
    return out


def stale_view_change(ctx: ByzantineContext, effects: list[Effect]) -> list[Output]:
    out: list[Output] = list(effects)
    for effect in effects:
        if isinstance(effect, Broadcast | SendTo) and isinstance(
            effect.message, PrePrepare | Prepare | Checkpoint
        ):
            ctx.sent.append(effect.message)
    if not any(isinstance(e, Broadcast) for e in effects) or ctx.rng.random() > 0.3:
        return out
    view = ctx.view()
    omitting = ViewChange(view + 1, 0, (), (), ctx.replica)
    stale = ViewChange(max(view - 1, 0), 0, (), (), ctx.replica)
    out.extend(Broadcast(sign_message(ctx.signer, vc)) for vc in (omitting, stale))
    if ctx.sent:
        old = ctx.rng.choice(ctx.sent)
        out.append(Broadcast(old))
        if isinstance(old, PrePrepare):
            fake_prepares = tuple(
                sign_message(ctx.signer, Prepare(old.view, old.seq, old.digest, ctx.replica))
                for _ in range(2 * ctx.config.f)
            )
            forged = ViewChange(view + 1, 0, (), (PreparedCertificate(old, fake_prepares),), ctx.replica)
            out.append(Broadcast(sign_message(ctx.signer, forged)))
    del ctx.sent[:-64]
    return out


def garble(ctx: ByzantineContext, effects: list[Effect]) -> list[Output]:
    out: list[Output] = []
    for effect in effects:
        if (
            isinstance(effect, Broadcast)
            and not isinstance(effect.message, PrePrepare)
            and ctx.rng.random() < 0.5
        ):
            data = bytearray(codec.encode(effect.message))
            position = ctx.rng.randrange(len(data))
            data[position] ^= 1 + ctx.rng.randrange(255)
            out.extend(RawSend(r, bytes(data)) for r in ctx.others())
        else:
            out.append(effect)
    return out


BEHAVIOURS: dict[str, Behaviour] = {
    "silent": silent,
    "equivocate": equivocate,
    "double-vote": double_vote,
    "stale-view-change": stale_view_change,
    "garble": garble,
}
