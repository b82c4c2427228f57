"""Catch-up (C&L TOCS 5.2): a replica that reports with FETCH that it is behind gets the committed
batches it misses, each with the certificate it committed on, and executes them; forged
certificates are rejected and never executed."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from pot_impl import codec
from pot_impl.pbft.certificates import valid_committed_certificate
from pot_impl.pbft.io import DURABLE_TYPES, EventKind, Persist, SendTo, SetTimer, Timer, TimerKind
from pot_impl.pbft.messages import (
    CatchUp,
    Commit,
    CommittedCertificate,
    Fetch,
    PrePrepare,
    ReplicaMessage,
    Request,
    StateResponse,
)
from pot_impl.pbft.replica import Replica
from tests.impl.harness import VERIFIER, Cluster, signed, signed_request

SMALL = {"checkpoint_interval": 2, "watermark_window": 4, "batch_size": 1}
BYZANTINE = 0
LAGGING = 3


def executed_ops(cluster: Cluster, replica: int) -> list[bytes]:
    return [op for _, op, _ in cluster.apps[replica].executed]


def fire_view_change_timer(cluster: Cluster, replica: int) -> None:
    node = cluster.replicas[replica]
    cluster.absorb(replica, node.fire(Timer(TimerKind.VIEW_CHANGE, node.view)))


def silent_primary_commits_at_two(cluster: Cluster, requests: list[Request]) -> None:
    """Byzantine primary 0 orders ``requests`` but sends its PRE-PREPAREs and COMMITs only to replicas
    1 and 2, which commit (its COMMITs make their quorum) and execute, and it sends nothing else (no
    checkpoint: no stable checkpoint to fetch state from); replica 3 saw only the client's requests."""
    for request in requests:
        cluster.submit(request, to=[BYZANTINE, LAGGING])

    def byzantine_talks_to_one_and_two(destination: int, message: ReplicaMessage | Request) -> bool:
        if destination == LAGGING:
            return False
        if isinstance(message, Request) or message.replica != BYZANTINE:
            return True
        return destination in (1, 2) and isinstance(message, PrePrepare | Commit)

    cluster.run(keep=byzantine_talks_to_one_and_two)
    cluster.queue.clear()


def test_a_replica_left_out_by_a_silent_primary_catches_up_without_client_traffic() -> None:
    cluster = Cluster.build(4, checkpoint_interval=2, watermark_window=4, batch_size=1)
    requests = [signed_request("alice", 1, b"first"), signed_request("bob", 1, b"second")]
    silent_primary_commits_at_two(cluster, requests)
    assert executed_ops(cluster, 1) == executed_ops(cluster, 2) == [b"first", b"second"]
    assert all(cluster.replicas[r].stable_checkpoint == 0 for r in (1, 2, LAGGING))
    assert cluster.replicas[LAGGING].last_executed == 0 and cluster.replicas[LAGGING].pending_requests

    fire_view_change_timer(cluster, LAGGING)  # suspects the primary, alone: nobody joins
    cluster.run(down=frozenset({BYZANTINE}))

    lagging = cluster.replicas[LAGGING]
    assert lagging.view == 1 and not lagging.view_active  # still alone in its view change
    assert executed_ops(cluster, LAGGING) == executed_ops(cluster, 1) == executed_ops(cluster, 2)
    # Executing restarted the view-change timer (still running: the view change waits) at the base timeout.
    assert lagging.pending_requests == () and lagging.view_change_streak == 0
    restart = SetTimer(Timer(TimerKind.VIEW_CHANGE, 1), cluster.config.view_change_timeout_ms)
    assert cluster.timers[LAGGING][-1] == restart
    assert [e.seq for e in cluster.events_of(LAGGING, EventKind.CAUGHT_UP)] == [1, 2]
    assert cluster.apps[LAGGING].snapshot() == cluster.apps[1].snapshot()
    assert {r.replica for r in cluster.replies if r.result} >= {1, 2, LAGGING}
    # It checkpointed seq 2 after executing it: its vote completes the quorum at 1 and 2.
    assert [cluster.replicas[r].stable_checkpoint for r in (1, 2)] == [2, 2]


def test_caught_up_batches_survive_a_restart() -> None:
    cluster = Cluster.build(4, **SMALL)
    silent_primary_commits_at_two(cluster, [signed_request("alice", 1, b"only")])
    fire_view_change_timer(cluster, LAGGING)
    cluster.run(down=frozenset({BYZANTINE}))
    assert executed_ops(cluster, LAGGING) == [b"only"]
    before = cluster.replicas[LAGGING]

    records = [codec.decode(data, DURABLE_TYPES) for data in cluster.stores[LAGGING]]
    restarted = cluster.add(LAGGING)
    cluster.absorb(LAGGING, restarted.recover(records))
    assert restarted.last_executed == 1 and executed_ops(cluster, LAGGING) == [b"only"]
    assert restarted.service_state == before.service_state
    assert (restarted.view, restarted.view_active) == (1, False)


def test_a_fetch_from_below_the_stable_checkpoint_gets_the_state_then_the_batches_above() -> None:
    cluster = Cluster.build(4, **SMALL)
    for t in range(1, 6):
        cluster.submit(signed_request("c", t, f"op{t}".encode()), to=[0])
        cluster.run(down=frozenset({LAGGING}))
    assert all(cluster.replicas[r].stable_checkpoint == 4 for r in range(3))
    assert cluster.replicas[LAGGING].last_executed == 0

    fire_view_change_timer(cluster, LAGGING)
    fetch = next(m for _, m in cluster.queue if isinstance(m, Fetch))
    assert fetch.last_executed == 0
    answer = [e.message for e in cluster.replicas[1].deliver(fetch) if isinstance(e, SendTo)]
    assert [type(m) for m in answer] == [StateResponse, CatchUp]
    state, batch = answer
    assert isinstance(state, StateResponse) and state.stable.seq == 4
    assert isinstance(batch, CatchUp) and batch.certificate.pre_prepare.seq == 5
    cluster.run()
    assert [e.seq for e in cluster.events_of(LAGGING, EventKind.STATE_TRANSFER)] == [4]
    assert [e.seq for e in cluster.events_of(LAGGING, EventKind.EXECUTED)] == [5]
    assert cluster.replicas[LAGGING].last_executed == 5
    assert executed_ops(cluster, LAGGING) == executed_ops(cluster, 1)
    assert cluster.replicas[LAGGING].service_state == cluster.replicas[1].service_state


def valid_certificate(
    seq: int, requests: tuple[Request, ...], view: int = 0, n: int = 4
) -> CommittedCertificate:
    digest = codec.batch_digest(requests)
    pp = signed(PrePrepare(view, seq, digest, requests, view % n))
    commits = tuple(signed(Commit(view, seq, digest, r)) for r in range(3))
    return CommittedCertificate(pp, commits)


def fresh_replica(replica: int = LAGGING) -> tuple[Cluster, Replica]:
    cluster = Cluster.build(4, **SMALL)
    return cluster, cluster.replicas[replica]


def test_certificates_are_adopted_in_any_order_and_executed_in_sequence_order() -> None:
    cluster, _ = fresh_replica()
    first, second = signed_request("a", 1, b"first"), signed_request("b", 1, b"second")
    for certificate in (valid_certificate(2, (second,)), valid_certificate(1, (first,))):
        assert valid_committed_certificate(cluster.config, VERIFIER, certificate)
        cluster.deliver(LAGGING, signed(CatchUp(certificate, 1)))
    assert executed_ops(cluster, LAGGING) == [b"first", b"second"]
    assert [e.seq for e in cluster.events_of(LAGGING, EventKind.EXECUTED)] == [1, 2]
    assert not cluster.rejections(LAGGING)


def test_certificates_executed_already_or_outside_the_window_are_ignored() -> None:
    cluster, replica = fresh_replica()
    cluster.deliver(LAGGING, signed(CatchUp(valid_certificate(1, (signed_request("a", 1),)), 1)))
    assert replica.last_executed == 1
    ignored = [
        valid_certificate(1, (signed_request("z", 9),)),
        valid_certificate(6, (signed_request("b", 1),)),
    ]
    for certificate in ignored:  # seq 1 executed; seq 6 above the high watermark 4
        effects = cluster.deliver(LAGGING, signed(CatchUp(certificate, 2)))
        assert not any(isinstance(e, Persist) for e in effects)
    assert replica.last_executed == 1 and 6 not in replica.committed
    assert not cluster.rejections(LAGGING)


A = TypeVar("A", PrePrepare, Commit)


def _resign(message: A, **changes: Any) -> A:
    return signed(dataclasses.replace(message, signature=b"", **changes))


@st.composite
def forged_certificates(draw: st.DrawFn) -> CommittedCertificate:
    """A valid certificate for seq 1 with one defect a Byzantine sender might try."""
    certificate = valid_certificate(1, (signed_request("a", 1, b"paid"),))
    pp, commits = certificate.pre_prepare, list(certificate.commits)
    at = draw(st.integers(0, len(commits) - 1))
    defect = draw(
        st.sampled_from(
            [
                "digest",
                "sender",
                "view",
                "commit-digest",
                "seq",
                "duplicate",
                "unknown",
                "bad-signature",
                "pp-signature",
                "short",
            ]
        )
    )
    other_digest = codec.batch_digest((signed_request("a", 1, b"stolen"),))
    if defect == "digest":  # the pre-prepare names a digest that is not its batch's, and so do the commits
        pp = _resign(pp, digest=other_digest)
        commits = [_resign(c, digest=other_digest) for c in commits]
    elif defect == "sender":  # not the primary of view 0
        pp = _resign(pp, replica=draw(st.integers(1, 3)))
    elif defect == "view":  # a commit of another view
        commits[at] = _resign(commits[at], view=draw(st.integers(1, 5)))
    elif defect == "commit-digest":
        commits[at] = _resign(commits[at], digest=other_digest)
    elif defect == "seq":
        commits[at] = _resign(commits[at], seq=draw(st.integers(2, 4)))
    elif defect == "duplicate":  # one replica counted twice
        commits[at] = commits[(at + 1) % len(commits)]
    elif defect == "unknown":
        commits[at] = _resign(commits[at], replica=draw(st.integers(4, 9)))
    elif defect == "bad-signature":
        commits[at] = dataclasses.replace(commits[at], signature=bytes(len(commits[at].signature)))
    elif defect == "pp-signature":
        pp = dataclasses.replace(pp, signature=draw(st.binary(min_size=1, max_size=64)))
    else:  # fewer than 2f+1 commits
        commits = commits[: draw(st.integers(0, len(commits) - 1))]
    return CommittedCertificate(pp, tuple(commits))


@settings(max_examples=150, deadline=None)
@given(forged_certificates(), st.integers(0, 3))
def test_forged_certificates_are_rejected_and_never_executed(
    certificate: CommittedCertificate, sender: int
) -> None:
    cluster, replica = fresh_replica()
    assert not valid_committed_certificate(cluster.config, VERIFIER, certificate)
    sender = sender if sender != LAGGING else 0
    effects = cluster.deliver(LAGGING, signed(CatchUp(certificate, sender)))
    assert cluster.rejections(LAGGING) == ["invalid committed certificate"]
    assert not any(isinstance(e, Persist) for e in effects)
    assert replica.last_executed == 0 and replica.committed == {} and cluster.apps[LAGGING].executed == []
    assert not cluster.events_of(LAGGING, EventKind.CAUGHT_UP)
