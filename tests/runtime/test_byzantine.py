"""The Byzantine behaviours rewrite only what they claim to, and produce validly signed messages."""

from __future__ import annotations

from pot_impl import codec
from pot_impl.auth import client_principal, replica_principal, sign_message, verify_message
from pot_impl.pbft.io import Broadcast, CancelTimer, Effect, Persist, ReplyToClient, SendTo, Timer, TimerKind
from pot_impl.pbft.messages import Prepare, PrePrepare, Reply, Request
from pot_impl.runtime.byzantine import corrupt
from pot_impl.runtime.crypto import Ed25519Signer, Ed25519Verifier, KeyPair, client_id

REPLICAS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(4)]
CLIENT = KeyPair.from_seed(bytes([9]) * 32)
PRIMARY = Ed25519Signer(replica_principal(0), REPLICAS[0])
VERIFIER = Ed25519Verifier([pair.public for pair in REPLICAS])


def pre_prepare(requests: int) -> PrePrepare:
    me = client_id(CLIENT.public)
    signer = Ed25519Signer(client_principal(me), CLIENT)
    batch = tuple(sign_message(signer, Request(me, t, b"op")) for t in range(1, requests + 1))
    return sign_message(PRIMARY, PrePrepare(0, 1, codec.batch_digest(batch), batch, 0))


def test_equivocating_primary_sends_two_valid_conflicting_pre_prepares() -> None:
    honest = pre_prepare(3)
    timer = CancelTimer(Timer(TimerKind.BATCH, 0))
    effects = corrupt("equivocate", [Persist(honest), Broadcast(honest), timer], PRIMARY, 4, 0)
    assert effects[0] == Persist(honest) and effects[-1] == timer
    sends = [e for e in effects if isinstance(e, SendTo)]
    assert sorted(e.replica for e in sends) == [1, 2, 3]
    sent = {e.message for e in sends}
    assert len(sent) == 2 and honest in sent
    for message in sent:
        assert isinstance(message, PrePrepare) and (message.view, message.seq) == (0, 1)
        assert verify_message(VERIFIER, message)
        assert message.digest == codec.batch_digest(message.batch)


def test_equivocation_needs_a_batch_and_leaves_other_messages_alone() -> None:
    empty = pre_prepare(0)
    prepare = sign_message(PRIMARY, Prepare(0, 1, b"d" * 32, 0))
    effects: list[Effect] = [Broadcast(empty), Broadcast(prepare)]
    assert list(corrupt("equivocate", effects, PRIMARY, 4, 0)) == effects


def test_silent_replica_sends_nothing_but_still_persists() -> None:
    honest = pre_prepare(1)
    reply = ReplyToClient("c", Reply(0, 1, "c", 0, b"r"))
    effects: list[Effect] = [Persist(honest), Broadcast(honest), SendTo(1, honest), reply]
    assert list(corrupt("silent", effects, PRIMARY, 4, 0)) == [Persist(honest)]
    assert list(corrupt(None, effects, PRIMARY, 4, 0)) == effects
