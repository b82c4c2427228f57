"""The Byzantine behaviours (one set, for the simulator and for a replica process) rewrite only what
they claim to, and what they send is validly signed by the Byzantine replica alone."""

from __future__ import annotations

import random

from pot_impl import codec
from pot_impl.auth import client_principal, replica_principal, sign_message, verify_message
from pot_impl.byzantine import BEHAVIOURS, ByzantineContext, RawSend
from pot_impl.pbft.config import ReplicaConfig
from pot_impl.pbft.io import Broadcast, CancelTimer, Effect, Persist, ReplyToClient, SendTo, Timer, TimerKind
from pot_impl.pbft.messages import Commit, Prepare, PrePrepare, Reply, Request
from pot_impl.runtime.config import BYZANTINE_BEHAVIOURS
from pot_impl.runtime.crypto import Ed25519Signer, Ed25519Verifier, KeyPair, client_id

REPLICAS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(4)]
CLIENT = KeyPair.from_seed(bytes([9]) * 32)
PRIMARY = Ed25519Signer(replica_principal(0), REPLICAS[0])
VERIFIER = Ed25519Verifier([pair.public for pair in REPLICAS])


def context() -> ByzantineContext:
    return ByzantineContext(0, ReplicaConfig(n=4), PRIMARY, random.Random(0), lambda: 0, [])


def pre_prepare(requests: int) -> PrePrepare:
    me = client_id(CLIENT.public)
    signer = Ed25519Signer(client_principal(me), CLIENT)
    batch = tuple(sign_message(signer, Request(me, t, b"op")) for t in range(1, requests + 1))
    return sign_message(PRIMARY, PrePrepare(0, 1, codec.batch_digest(batch), batch, 0))


def test_a_replica_process_offers_every_behaviour_of_the_simulator() -> None:
    assert set(BYZANTINE_BEHAVIOURS) == set(BEHAVIOURS)


def test_equivocating_primary_sends_two_valid_conflicting_pre_prepares() -> None:
    honest = pre_prepare(3)
    timer = CancelTimer(Timer(TimerKind.BATCH, 0))
    outputs = BEHAVIOURS["equivocate"](context(), [Persist(honest), Broadcast(honest), timer])
    sends = [e for e in outputs if isinstance(e, SendTo)]
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
    assert BEHAVIOURS["equivocate"](context(), effects) == effects


def test_silent_replica_sends_nothing() -> None:
    honest = pre_prepare(1)
    reply = ReplyToClient("c", Reply(0, 1, "c", 0, b"r"))
    effects: list[Effect] = [Broadcast(honest), SendTo(1, honest), reply]
    assert BEHAVIOURS["silent"](context(), effects) == []


def test_a_double_voter_adds_a_conflicting_vote_signed_by_itself() -> None:
    commit = sign_message(PRIMARY, Commit(0, 1, b"d" * 32, 0))
    outputs = BEHAVIOURS["double-vote"](context(), [Broadcast(commit)])
    votes = [o.message for o in outputs if isinstance(o, Broadcast)]
    assert votes[:2] == [commit, commit] and len(votes) == 3
    assert isinstance(votes[2], Commit) and votes[2].digest != commit.digest
    assert verify_message(VERIFIER, votes[2])


def test_garbled_frames_go_to_every_other_replica_and_never_decode_as_the_original() -> None:
    prepare = sign_message(PRIMARY, Prepare(0, 1, b"d" * 32, 0))
    outputs = BEHAVIOURS["garble"](context(), [Broadcast(prepare)] * 20)
    raw = [o for o in outputs if isinstance(o, RawSend)]
    assert raw and {o.replica for o in raw} == {1, 2, 3}
    assert all(o.data != codec.encode(prepare) for o in raw)
