"""The PBFT replica, one protocol rule at a time, including every known pitfall from ANCHORS.md."""

from __future__ import annotations

import dataclasses

import pytest

from pot_impl import codec
from pot_impl.auth import client_principal
from pot_impl.pbft.certificates import NULL_DIGEST, plan_new_view, valid_new_view
from pot_impl.pbft.client import Client
from pot_impl.pbft.config import ReplicaConfig
from pot_impl.pbft.io import DURABLE_TYPES, CompactLog, Effect, EventKind, Persist, Timer, TimerKind
from pot_impl.pbft.messages import (
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ReplicaMessage,
    Reply,
    Request,
    ServiceState,
    StateRequest,
    StateResponse,
    ViewChange,
)
from pot_impl.pbft.quorums import commit_quorum, prepare_quorum
from tests.impl.harness import KEYS, VERIFIER, Cluster, replica_signer, signed, signed_request

SMALL = {"checkpoint_interval": 2, "watermark_window": 4, "batch_size": 1}


def pre_prepare(
    view: int, seq: int, requests: tuple[Request, ...], primary: int | None = None, n: int = 4
) -> PrePrepare:
    sender = view % n if primary is None else primary
    return signed(PrePrepare(view, seq, codec.batch_digest(requests), requests, sender))


def executed_ops(cluster: Cluster, replica: int) -> list[bytes]:
    return [op for _, op, _ in cluster.apps[replica].executed]


# ---------------------------------------------------------------- normal case


def test_normal_case_commits_executes_and_replies_on_every_replica() -> None:
    cluster = Cluster.build(4, **SMALL)
    request = signed_request("alice", 1, b"hello")
    cluster.submit(request)
    cluster.run()
    for r in range(4):
        assert executed_ops(cluster, r) == [b"hello"]
        assert cluster.replicas[r].last_executed == 1
    results = {(reply.replica, reply.result) for reply in cluster.replies}
    assert len(results) == 4 and len({result for _, result in results}) == 1


def test_batching_puts_many_requests_in_one_pre_prepare_and_flushes_on_timeout() -> None:
    cluster = Cluster.build(4, checkpoint_interval=2, watermark_window=4, batch_size=3)
    for t in range(1, 3):
        cluster.submit(signed_request(f"c{t}", 1, f"op{t}".encode()), to=[0])
    assert cluster.queue == []  # a partial batch waits for the batch timer
    cluster.flush_batches()
    pre_prepares = [m for _, m in cluster.queue if isinstance(m, PrePrepare)]
    assert {len(pp.batch) for pp in pre_prepares} == {2} and {pp.seq for pp in pre_prepares} == {1}
    cluster.run()
    for t in range(3, 6):
        cluster.submit(signed_request(f"c{t}", 1, f"op{t}".encode()), to=[0])
    batches = [m for _, m in cluster.queue if isinstance(m, PrePrepare)]
    assert {(pp.seq, len(pp.batch)) for pp in batches} == {(2, 3)}  # a full batch goes at once
    cluster.run()
    assert all(len(cluster.apps[r].executed) == 5 for r in range(4))


def test_execution_is_strictly_in_sequence_order() -> None:
    cluster = Cluster.build(4, **SMALL)
    held: list[tuple[int, ReplicaMessage | Request]] = []

    def hold_seq_one_at_3(destination: int, message: ReplicaMessage | Request) -> bool:
        if destination == 3 and isinstance(message, PrePrepare | Prepare | Commit) and message.seq == 1:
            held.append((destination, message))
            return False
        return True

    cluster.submit(signed_request("a", 1, b"first"), to=[0])
    cluster.submit(signed_request("b", 1, b"second"), to=[0])
    cluster.run(keep=hold_seq_one_at_3)
    assert 2 in cluster.replicas[3].committed and cluster.replicas[3].last_executed == 0
    cluster.queue.extend(held)
    cluster.run()
    assert [e.seq for e in cluster.events_of(3, EventKind.EXECUTED)] == [1, 2]
    assert executed_ops(cluster, 3) == executed_ops(cluster, 0) == [b"first", b"second"]


def test_client_requests_are_deduplicated_by_timestamp() -> None:
    cluster = Cluster.build(4, **SMALL)
    first = signed_request("alice", 5, b"pay")
    cluster.submit(first)
    cluster.run()
    cluster.replies.clear()
    cluster.submit(first)  # retransmission: answered again from the client table, not re-executed
    cluster.submit(signed_request("alice", 4, b"older"))  # older timestamp: ignored
    cluster.run()
    assert all(executed_ops(cluster, r) == [b"pay"] for r in range(4))
    assert {(r.replica, r.timestamp) for r in cluster.replies} == {(r, 5) for r in range(4)}


def test_pending_requests_are_held_up_to_max_pending_requests_and_not_one_more() -> None:
    cluster = Cluster.build(4, **SMALL, max_pending_requests=3)
    backup = cluster.replicas[1]
    for client in ("a", "b", "c", "d"):
        cluster.submit(signed_request(client, 1), to=[1])
    assert [r.client for r in backup.pending_requests] == ["a", "b", "c"]
    assert cluster.rejections(1) == ["too many pending requests"]


def test_one_client_holds_at_most_max_pending_per_client_and_the_others_are_not_held_back() -> None:
    cluster = Cluster.build(4, **SMALL, max_pending_per_client=2)
    backup = cluster.replicas[1]
    for timestamp in (1, 2, 3):
        cluster.submit(signed_request("flood", timestamp), to=[1])
    cluster.submit(signed_request("other", 1), to=[1])
    assert [(r.client, r.timestamp) for r in backup.pending_requests] == [
        ("flood", 1),
        ("flood", 2),
        ("other", 1),
    ]
    assert cluster.rejections(1) == ["too many pending requests of this client"]


def test_a_clients_executed_requests_free_its_pending_share() -> None:
    cluster = Cluster.build(4, **SMALL, max_pending_per_client=1)
    cluster.submit(signed_request("alice", 1))
    cluster.run()
    cluster.submit(signed_request("alice", 2))
    cluster.run()
    assert {(r.replica, r.timestamp) for r in cluster.replies} >= {(r, 2) for r in range(4)}
    assert all("too many pending" not in reason for r in range(4) for reason in cluster.rejections(r))


def test_the_service_state_from_the_kept_client_encodings_is_its_canonical_encoding() -> None:
    cluster = Cluster.build(4, **SMALL)
    for timestamp in (1, 2):
        for client in ("carol", "alice", "bob", *(f"c{i}" for i in range(20))):
            cluster.submit(signed_request(client, timestamp, client.encode()))
            cluster.run()
        cluster.flush_batches()
        cluster.run()
        for replica in cluster.replicas:
            part = replica.normal_case
            table = tuple(replica.clients[c] for c in sorted(replica.clients))
            assert len(table) == 23 and {r.timestamp for r in table} == {timestamp}
            plain = codec.encode(ServiceState(cluster.apps[replica.id].snapshot(), table))
            assert part.encode_service_state() == plain


def test_a_request_ordered_twice_executes_once() -> None:
    cluster = Cluster.build(4, **SMALL)
    request = signed_request("alice", 1, b"once")
    for seq in (1, 2):
        pp = pre_prepare(0, seq, (request,))
        for r in range(1, 4):
            cluster.deliver(r, pp)
        cluster.absorb(0, cluster.replicas[0].deliver(pp))
    cluster.run()
    assert all(cluster.replicas[r].last_executed == 2 for r in range(4))
    assert all(executed_ops(cluster, r) == [b"once"] for r in range(4))


# ---------------------------------------------------------------- quorums and vote counting


@pytest.mark.parametrize("n", [4, 7])
def test_prepared_needs_exactly_2f_prepares_from_distinct_backups(n: int) -> None:
    cluster = Cluster.build(n, **SMALL)
    backup = cluster.replicas[1]
    f = cluster.config.f
    pp = pre_prepare(0, 1, (signed_request("a", 1),), n=n)
    cluster.deliver(1, pp)  # the backup adds its own prepare
    others = [r for r in range(2, n)]
    for count, sender in enumerate(others[: prepare_quorum(n, f) - 2], start=2):
        cluster.deliver(1, signed(Prepare(0, 1, pp.digest, sender)))
        assert count < prepare_quorum(n, f) and not backup.log[1].prepared
    assert not backup.log[1].prepared  # 2f - 1 prepares (own included): off by one
    cluster.deliver(1, signed(Prepare(0, 1, pp.digest, others[prepare_quorum(n, f) - 2])))
    assert backup.log[1].prepared
    assert prepare_quorum(n, f) == 2 * f


def test_duplicate_votes_from_one_sender_count_once() -> None:
    cluster = Cluster.build(7, **SMALL)
    backup = cluster.replicas[1]
    pp = pre_prepare(0, 1, (signed_request("a", 1),), n=7)
    cluster.deliver(1, pp)
    vote = signed(Prepare(0, 1, pp.digest, 2))
    for _ in range(5):
        cluster.deliver(1, vote)
    cluster.deliver(1, signed(Prepare(0, 1, b"\x01" * 32, 3)))  # 3 equivocates: only its first vote counts
    cluster.deliver(1, signed(Prepare(0, 1, pp.digest, 3)))
    assert backup.log[1].prepare_senders == {1, 2} and not backup.log[1].prepared
    cluster.deliver(1, signed(Prepare(0, 1, pp.digest, 5)))
    assert backup.log[1].prepare_senders == {1, 2, 5} and not backup.log[1].prepared
    cluster.deliver(1, signed(Prepare(0, 1, pp.digest, 4)))
    assert backup.log[1].prepared
    for _ in range(5):
        cluster.deliver(1, signed(Commit(0, 1, pp.digest, 2)))
    assert backup.log[1].commit_senders == {1, 2} and not backup.log[1].committed


def test_prepares_from_the_primary_are_not_counted() -> None:
    cluster = Cluster.build(4, **SMALL)
    pp = pre_prepare(0, 1, (signed_request("a", 1),))
    cluster.deliver(1, pp)
    cluster.deliver(1, signed(Prepare(0, 1, pp.digest, 0)))
    assert not cluster.replicas[1].log[1].prepared
    assert "the primary does not send prepares" in cluster.rejections(1)


@pytest.mark.parametrize("n", [4, 7])
def test_committed_needs_2f_plus_1_commits_not_2f(n: int) -> None:
    cluster = Cluster.build(n, **SMALL)
    f = cluster.config.f
    pp = pre_prepare(0, 1, (signed_request("a", 1),), n=n)
    cluster.deliver(1, pp)
    for sender in range(2, 2 * f + 1):
        cluster.deliver(1, signed(Prepare(0, 1, pp.digest, sender)))
    assert cluster.replicas[1].log[1].prepared  # own commit now counted
    for sender in range(2, 2 * f + 1):  # 2f commits in all: not enough
        cluster.deliver(1, signed(Commit(0, 1, pp.digest, sender)))
    assert not cluster.replicas[1].log[1].committed
    cluster.deliver(1, signed(Commit(0, 1, pp.digest, 0)))
    assert cluster.replicas[1].log[1].committed and cluster.replicas[1].last_executed == 1
    assert commit_quorum(n, f) == 2 * f + 1


# ---------------------------------------------------------------- what the core rejects


def test_pre_prepare_whose_digest_does_not_match_its_batch_is_rejected() -> None:
    cluster = Cluster.build(4, **SMALL)
    batch = (signed_request("a", 1),)
    forged = signed(PrePrepare(0, 1, codec.batch_digest(()), batch, 0))
    cluster.deliver(1, forged)
    assert 1 not in cluster.replicas[1].log and not cluster.queue
    assert any("digest" in reason for reason in cluster.rejections(1))


def test_second_pre_prepare_for_the_same_view_and_sequence_is_rejected() -> None:
    cluster = Cluster.build(4, **SMALL)
    first = pre_prepare(0, 1, (signed_request("a", 1),))
    second = pre_prepare(0, 1, (signed_request("b", 1),))
    cluster.deliver(1, first)
    cluster.queue.clear()
    cluster.deliver(1, second)
    assert cluster.replicas[1].log[1].digest == first.digest and not cluster.queue
    assert any("different pre-prepare" in reason for reason in cluster.rejections(1))


def test_null_request_is_accepted_only_inside_a_new_view() -> None:
    """C&L 4.4: a new primary fills gaps in O with null requests; in the normal case a PRE-PREPARE
    orders client requests, so a primary's empty batch, sent directly or buffered for a view not
    yet installed, is rejected and earns no PREPARE."""
    cluster = Cluster.build(4, **SMALL)
    cluster.deliver(1, pre_prepare(0, 1, ()))
    cluster.deliver(1, pre_prepare(1, 2, ()))  # view 1 not installed: buffered
    assert 1 not in cluster.replicas[1].log and not cluster.queue
    assert "null request outside a new-view" in cluster.rejections(1)
    view_changes = tuple(_view_change(1, r) for r in (1, 2, 3))
    cluster.deliver(1, signed(NewView(1, view_changes, (), 1)))  # empty O; the buffered one replays
    assert cluster.replicas[1].view == 1 and cluster.replicas[1].view_active
    assert (
        2 not in cluster.replicas[1].log
        and cluster.rejections(1).count("null request outside a new-view") == 2
    )
    cluster.deliver(1, pre_prepare(1, 1, (signed_request("a", 1),)))
    assert cluster.replicas[1].log[1].pre_prepared


def test_messages_for_another_view_are_not_counted() -> None:
    cluster = Cluster.build(4, **SMALL)
    pp = pre_prepare(0, 1, (signed_request("a", 1),))
    cluster.deliver(1, pp)
    cluster.deliver(1, signed(Prepare(1, 1, pp.digest, 2)))  # future view: buffered, not counted
    assert not cluster.replicas[1].log[1].prepared
    wrong_primary = signed(PrePrepare(0, 2, codec.batch_digest(()), (), 2))
    cluster.deliver(1, wrong_primary)
    assert 2 not in cluster.replicas[1].log


def test_a_commit_quorum_of_a_view_left_behind_still_commits() -> None:
    """COMMITs of a view the replica left count for a batch it prepared there (a quorum of one
    view's COMMITs proves the batch committed); other stale agreement messages are dropped."""
    cluster = Cluster.build(4, **SMALL)
    replica = cluster.replicas[1]
    pp = pre_prepare(0, 1, (signed_request("a", 1),))
    cluster.deliver(1, pp)
    cluster.deliver(1, signed(Prepare(0, 1, pp.digest, 2)))
    assert replica.log[1].prepared and not replica.log[1].committed
    cluster.absorb(1, replica.fire(Timer(TimerKind.VIEW_CHANGE, 0)))
    assert replica.view == 1 and not replica.view_active
    cluster.deliver(1, signed(Commit(0, 1, pp.digest, 0)))
    assert replica.last_executed == 0  # own COMMIT plus one: short of the quorum
    cluster.deliver(1, signed(Commit(0, 1, pp.digest, 2)))
    assert replica.last_executed == 1 and cluster.apps[1].executed[-1][0] == "a"
    committed = [e for e in cluster.events[1] if e.kind is EventKind.COMMITTED]
    assert [(e.view, e.seq) for e in committed] == [(0, 1)]  # stamped with the quorum's view
    cluster.deliver(1, signed(Prepare(0, 2, pp.digest, 2)))
    cluster.deliver(1, signed(Commit(0, 2, pp.digest, 2)))
    assert cluster.rejections(1).count("stale view 0 < 1") == 2


def test_watermarks_are_enforced() -> None:
    cluster = Cluster.build(4, **SMALL)  # window (0, 4]
    too_high = pre_prepare(0, 5, (signed_request("a", 1),))
    cluster.deliver(1, too_high)
    assert 5 not in cluster.replicas[1].log
    assert any("outside watermarks" in reason for reason in cluster.rejections(1))
    for t in range(1, 3):
        cluster.submit(signed_request("c", t), to=[0])
        cluster.run()
    assert all(r.stable_checkpoint == 2 and r.low_watermark == 2 for r in cluster.replicas)
    stale = pre_prepare(0, 2, (signed_request("z", 1),))
    cluster.deliver(1, stale)
    assert cluster.replicas[1].log.get(2) is None


def test_bad_signatures_are_rejected() -> None:
    cluster = Cluster.build(4, **SMALL)
    pp = pre_prepare(0, 1, (signed_request("a", 1),))
    cluster.deliver(1, pp)
    impostor = dataclasses.replace(Prepare(0, 1, pp.digest, 2), signature=replica_signer(3).sign(b"x"))
    cluster.deliver(1, impostor)
    assert cluster.replicas[1].log[1].prepare_senders == {1}
    assert "bad signature" in cluster.rejections(1)
    forged_client = dataclasses.replace(signed_request("b", 1), operation=b"tampered")
    cluster.deliver(2, pre_prepare(0, 1, (forged_client,)))
    assert 1 not in cluster.replicas[2].log


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_becomes_stable_at_2f_plus_1_not_f_plus_1_and_garbage_collects() -> None:
    cluster = Cluster.build(4, **SMALL)
    cluster.submit(signed_request("a", 1), to=[0])
    cluster.submit(signed_request("b", 1), to=[0])
    cluster.run(keep=lambda r, m: not isinstance(m, Checkpoint))
    replica = cluster.replicas[1]
    assert replica.last_executed == 2 and replica.stable_checkpoint == 0 and 1 in replica.log
    digest = replica.own_checkpoints[2]
    cluster.deliver(1, signed(Checkpoint(2, digest, 2)))  # own + 1 = f + 1
    assert replica.stable_checkpoint == 0
    cluster.deliver(1, signed(Checkpoint(2, b"\x00" * 32, 3)))  # a different digest does not combine
    assert replica.stable_checkpoint == 0
    cluster.deliver(1, signed(Checkpoint(2, digest, 0)))
    assert replica.stable_checkpoint == 2 and replica.high_watermark == 6
    assert not replica.log and not replica.committed and len(replica.stable_proof) == 3


def test_a_byzantine_replicas_far_future_checkpoints_hold_a_bounded_number_of_entries() -> None:
    """Each sender keeps votes for at most 2L/K + 2 sequence numbers; older ones go, and no empty
    entry is left behind for a sequence number nobody else voted for."""
    cluster = Cluster.build(4, **SMALL)
    replica = cluster.replicas[1]
    interval, window = cluster.config.checkpoint_interval, cluster.config.watermark_window
    for k in range(1, 201):
        cluster.deliver(1, signed(Checkpoint(k * interval, bytes([k % 256]) * 32, 3)))
    limit = 2 * window // interval + 2
    assert len(replica.checkpoint_votes) == limit
    assert all(votes.keys() == {3} for votes in replica.checkpoint_votes.values())


# ---------------------------------------------------------------- view change


def _silence_primary_and_time_out(cluster: Cluster, request: Request) -> None:
    cluster.submit(request, to=[1, 2, 3])
    cluster.run(down=frozenset({0}))
    for r in (1, 2, 3):
        cluster.absorb(r, cluster.replicas[r].fire(Timer(TimerKind.VIEW_CHANGE, 0)))
    cluster.run(down=frozenset({0}))


def test_view_change_replaces_a_silent_primary_and_executes_pending_requests() -> None:
    cluster = Cluster.build(4, **SMALL)
    _silence_primary_and_time_out(cluster, signed_request("a", 1, b"stuck"))
    for r in (1, 2, 3):
        assert cluster.replicas[r].view == 1 and cluster.replicas[r].view_active
        assert executed_ops(cluster, r) == [b"stuck"]
    assert cluster.events_of(1, EventKind.NEW_VIEW)


def test_a_backup_relays_its_pending_requests_to_the_new_primary() -> None:
    """The client reached only replica 2, which relayed the request to the silent primary 0; once
    view 1 is installed replica 2 relays it to primary 1, so it executes in view 1."""
    cluster = Cluster.build(4, **SMALL)
    cluster.submit(signed_request("a", 1, b"relayed"), to=[2])
    cluster.run(down=frozenset({0}))
    for r in (1, 2, 3):
        cluster.absorb(r, cluster.replicas[r].fire(Timer(TimerKind.VIEW_CHANGE, 0)))
    cluster.run(down=frozenset({0}))
    for r in (1, 2, 3):
        assert cluster.replicas[r].view == 1 and executed_ops(cluster, r) == [b"relayed"]


def test_messages_of_an_old_view_are_rejected_after_a_view_change() -> None:
    cluster = Cluster.build(4, **SMALL)
    _silence_primary_and_time_out(cluster, signed_request("a", 1, b"stuck"))
    old = pre_prepare(0, 2, (signed_request("b", 1),))
    cluster.deliver(2, old)
    cluster.deliver(2, signed(Commit(0, 2, old.digest, 3)))
    assert 2 not in cluster.replicas[2].log
    assert sum("stale view 0 < 1" in reason for reason in cluster.rejections(2)) == 2


def test_requests_executed_before_a_view_change_are_not_re_executed() -> None:
    cluster = Cluster.build(4, **SMALL)
    cluster.submit(signed_request("a", 1, b"before"))
    cluster.run()
    _silence_primary_and_time_out(cluster, signed_request("b", 1, b"after"))
    for r in (1, 2, 3):
        assert executed_ops(cluster, r) == [b"before", b"after"]


def test_view_change_carries_prepared_but_uncommitted_entries_in_p() -> None:
    cluster = Cluster.build(4, **SMALL)
    cluster.submit(signed_request("a", 1), to=[0])
    cluster.run(keep=lambda r, m: not isinstance(m, Commit))  # prepared everywhere, committed nowhere
    replica = cluster.replicas[1]
    assert replica.log[1].prepared and not replica.log[1].committed
    cluster.queue.clear()
    cluster.absorb(1, replica.fire(Timer(TimerKind.VIEW_CHANGE, 0)))
    view_changes = [m for _, m in cluster.queue if isinstance(m, ViewChange)]
    assert view_changes and [c.pre_prepare.seq for c in view_changes[0].prepared] == [1]


def test_view_change_timeout_doubles_for_consecutive_view_changes() -> None:
    cluster = Cluster.build(4, **SMALL)
    replica = cluster.replicas[0]  # primary of none of the views 1..3, so no new-view of its own
    cluster.absorb(0, replica.submit(signed_request("a", 1)))
    delays = []
    for view in range(3):
        cluster.timers.pop(0, None)
        cluster.absorb(0, replica.fire(Timer(TimerKind.VIEW_CHANGE, view)))
        for sender in (2, 3):  # others are changing view too, but no new-view ever comes
            cluster.deliver(0, _view_change(view + 1, sender))
        set_timers = [
            t for t in cluster.timers.get(0, []) if t.timer == Timer(TimerKind.VIEW_CHANGE, view + 1)
        ]
        delays.append(set_timers[-1].delay_ms)
        cluster.absorb(0, replica.fire(Timer(TimerKind.VIEW_CHANGE, view + 1)))  # re-sends its view-change
    base = cluster.config.view_change_timeout_ms
    assert delays == [2 * base, 4 * base, 8 * base]


def _view_change(new_view: int, sender: int, prepared: tuple[PreparedCertificate, ...] = ()) -> ViewChange:
    return signed(ViewChange(new_view, 0, (), prepared, sender))


def test_replica_joins_on_f_plus_1_higher_view_changes_but_not_on_f() -> None:
    cluster = Cluster.build(4, **SMALL)
    replica = cluster.replicas[3]
    cluster.deliver(3, _view_change(2, 1))
    assert replica.view == 0 and replica.view_active
    cluster.deliver(3, _view_change(3, 2))
    assert replica.view == 2 and not replica.view_active  # the smallest view in the set


def _certificate(view: int, seq: int, requests: tuple[Request, ...], n: int = 4) -> PreparedCertificate:
    pp = pre_prepare(view, seq, requests, n=n)
    backups = [r for r in range(n) if r != view % n][:2]
    return PreparedCertificate(pp, tuple(signed(Prepare(view, seq, pp.digest, r)) for r in backups))


def test_new_view_picks_the_highest_view_prepared_entry_and_fills_gaps_with_null_requests() -> None:
    old = _certificate(0, 1, (signed_request("a", 1, b"old"),))
    newer = _certificate(1, 1, (signed_request("b", 1, b"new"),))
    later = _certificate(1, 3, (signed_request("c", 1),))
    view_changes = (_view_change(2, 0, (old,)), _view_change(2, 1, (newer, later)), _view_change(2, 3))
    plan = plan_new_view(view_changes)
    assert [(seq, digest) for seq, digest, _ in plan.proposals] == [
        (1, newer.pre_prepare.digest),
        (2, NULL_DIGEST),
        (3, later.pre_prepare.digest),
    ]
    config = ReplicaConfig(n=4, **SMALL)
    good = signed(NewView(2, view_changes, tuple(pre_prepare(2, s, b) for s, _, b in plan.proposals), 2))
    assert valid_new_view(config, VERIFIER, good) is not None
    lowest_view = signed(
        NewView(2, view_changes, (pre_prepare(2, 1, old.pre_prepare.batch), *good.pre_prepares[1:]), 2)
    )
    no_null_fill = signed(NewView(2, view_changes, (good.pre_prepares[0], good.pre_prepares[2]), 2))
    cluster = Cluster.build(4, **SMALL)
    for bad in (lowest_view, no_null_fill):
        assert valid_new_view(config, VERIFIER, bad) is None
        cluster.deliver(3, bad)
        assert cluster.replicas[3].view == 0 and "invalid V or O does not match V" in cluster.rejections(3)
    cluster.deliver(3, good)
    assert cluster.replicas[3].view == 2 and cluster.replicas[3].log[2].digest == NULL_DIGEST


def test_agreement_messages_of_a_view_not_yet_installed_are_taken_when_it_is() -> None:
    """A PRE-PREPARE and a PREPARE of view 2 that overtake its NEW-VIEW are kept, not dropped:
    the network does not resend them, so the replica prepares the batch once it enters view 2."""
    cluster = Cluster.build(4, **SMALL)
    replica = cluster.replicas[3]
    pp = pre_prepare(2, 1, (signed_request("a", 1),))
    cluster.deliver(3, pp)
    cluster.deliver(3, signed(Prepare(2, 1, pp.digest, 1)))
    assert replica.view == 0 and 1 not in replica.log
    view_changes = (_view_change(2, 0), _view_change(2, 1), _view_change(2, 3))
    cluster.deliver(3, signed(NewView(2, view_changes, (), 2)))
    assert replica.view == 2 and replica.view_active
    assert replica.log[1].digest == pp.digest and replica.log[1].prepared


def test_view_change_with_forged_prepared_certificate_is_rejected() -> None:
    cluster = Cluster.build(4, **SMALL)
    pp = pre_prepare(0, 1, (signed_request("a", 1),))
    forged = PreparedCertificate(pp, (signed(Prepare(0, 1, pp.digest, 2)),) * 2)  # one sender twice
    cluster.deliver(3, _view_change(1, 2, (forged,)))
    assert "invalid C or P set" in cluster.rejections(3)
    assert cluster.replicas[3].view_change_senders == {}


def test_lost_new_view_is_resent_to_a_replica_that_repeats_its_view_change() -> None:
    cluster = Cluster.build(4, **SMALL)
    cluster.submit(signed_request("a", 1), to=[1, 2, 3])
    cluster.run(down=frozenset({0}))
    for r in (1, 2, 3):
        cluster.absorb(r, cluster.replicas[r].fire(Timer(TimerKind.VIEW_CHANGE, 0)))
    cluster.run(down=frozenset({0}), keep=lambda r, m: not (r == 3 and isinstance(m, NewView)))
    assert cluster.replicas[3].view == 1 and not cluster.replicas[3].view_active
    cluster.absorb(3, cluster.replicas[3].fire(Timer(TimerKind.VIEW_CHANGE, 1)))
    cluster.run(down=frozenset({0}))
    assert cluster.replicas[3].view_active and cluster.replicas[3].last_executed == 1


def test_replicas_in_one_view_change_do_not_answer_each_others_superseded_view_changes() -> None:
    """Replicas 0 and 1 both moved from view 1 to view 2 (whose primary, 2, is silent). Each one's
    VIEW-CHANGE(1) reaches the other late; answering it with view-changes the other again finds
    stale fed back forever. They must fall quiet, each holding the other's latest view-change."""
    cluster = Cluster.build(4, **SMALL)
    for r in (0, 1):
        cluster.absorb(r, cluster.replicas[r].fire(Timer(TimerKind.VIEW_CHANGE, 0)))
    held_back = list(cluster.queue)
    cluster.queue.clear()
    for r in (0, 1):
        for sender in (2, 3):
            cluster.deliver(r, _view_change(2, sender))
    assert [cluster.replicas[r].view for r in (0, 1)] == [2, 2]
    cluster.queue[:0] = held_back  # the view-changes for view 1 arrive first, and late
    between = frozenset({0, 1})
    cluster.run(keep=lambda r, m: r in between and isinstance(m, ViewChange), max_deliveries=20)
    for r, other in ((0, 1), (1, 0)):
        assert other in cluster.replicas[r].view_change_senders[2]


# ---------------------------------------------------------------- state transfer and recovery


def _advance_without(cluster: Cluster, lagging: int, requests: int) -> None:
    for t in range(1, requests + 1):
        cluster.submit(signed_request("c", t), to=[0])
        cluster.run(down=frozenset({lagging}))


def test_state_transfer_brings_a_lagging_replica_to_a_verified_checkpoint() -> None:
    cluster = Cluster.build(4, **SMALL)
    _advance_without(cluster, 3, 6)
    lagging = cluster.replicas[3]
    assert lagging.last_executed == 0 and cluster.replicas[0].stable_checkpoint == 6
    for sender in (0, 1, 2):
        cluster.deliver(3, signed(Checkpoint(6, cluster.replicas[sender].own_checkpoints[6], sender)))
    requests = [m for _, m in cluster.queue if isinstance(m, StateRequest)]
    assert requests and requests[0].seq == 6  # beyond the high watermark: asked at once
    genuine = cluster.replicas[0].stable_snapshot
    tampered = dataclasses.replace(genuine, snapshot=genuine.snapshot + b"x")
    cluster.deliver(3, signed(StateResponse(tampered, 0)))
    assert lagging.last_executed == 0
    assert "snapshot does not match a valid checkpoint certificate" in cluster.rejections(3)
    cluster.run()
    assert lagging.last_executed == 6 and lagging.stable_checkpoint == 6
    assert cluster.apps[3].executed == cluster.apps[0].executed


def test_recovery_from_the_durable_log_restores_state_and_continues() -> None:
    cluster = Cluster.build(4, **SMALL)
    for t in range(1, 4):
        cluster.submit(signed_request("c", t, f"op{t}".encode()), to=[0])
        cluster.run()
    before = cluster.replicas[2]
    records = [codec.decode(data, DURABLE_TYPES) for data in cluster.stores[2]]
    restarted = cluster.add(2)
    cluster.absorb(2, restarted.recover(records))
    assert (restarted.view, restarted.last_executed, restarted.stable_checkpoint) == (
        before.view,
        before.last_executed,
        before.stable_checkpoint,
    )
    assert executed_ops(cluster, 2)[-1:] == [b"op3"]
    assert restarted.service_state == before.service_state
    cluster.submit(signed_request("c", 4, b"op4"), to=[0])
    cluster.run()
    assert restarted.last_executed == 4 and executed_ops(cluster, 2)[-1] == b"op4"


def test_recovery_in_the_middle_of_a_view_change_resumes_it_without_a_different_view_change() -> None:
    cluster = Cluster.build(4, **SMALL)
    cluster.submit(signed_request("a", 1), to=[0])
    cluster.run(keep=lambda r, m: not isinstance(m, Commit))
    cluster.absorb(1, cluster.replicas[1].fire(Timer(TimerKind.VIEW_CHANGE, 0)))
    sent = cluster.replicas[1].view_change_senders
    original = next(m for _, m in cluster.queue if isinstance(m, ViewChange) and m.replica == 1)
    records = [codec.decode(data, DURABLE_TYPES) for data in cluster.stores[1]]
    cluster.queue.clear()
    restarted = cluster.add(1)
    cluster.absorb(1, restarted.recover(records))
    assert restarted.view == 1 and not restarted.view_active and restarted.view_change_senders == sent
    resent = [m for _, m in cluster.queue if isinstance(m, ViewChange)]
    assert resent and set(resent) == {original}  # the very message sent before the crash


def test_a_replica_restarted_holding_f_plus_1_higher_view_changes_joins_at_once() -> None:
    """A crash between storing the f + 1-th higher VIEW-CHANGE and storing its own (the records of
    one step are written one by one) leaves that joining to recovery, not to a timer."""
    cluster = Cluster.build(4, **SMALL)
    records = [_view_change(1, 2), _view_change(1, 3)]
    restarted = cluster.add(0)
    cluster.absorb(0, restarted.recover(records))
    assert restarted.view == 1 and not restarted.view_active
    sent = {(to, m.replica) for to, m in cluster.queue if isinstance(m, ViewChange) and m.new_view == 1}
    assert sent == {(1, 0), (2, 0), (3, 0)}  # its own VIEW-CHANGE, to every other replica


# ---------------------------------------------------------------- host contract and client


def test_durable_effects_precede_every_send_in_each_step() -> None:
    cluster = Cluster.build(4, **SMALL)
    steps: list[list[object]] = []
    original = cluster.absorb

    def recording_absorb(source: int, effects: list[Effect]) -> list[Effect]:
        steps.append(list(effects))
        return original(source, effects)

    cluster.absorb = recording_absorb  # type: ignore[method-assign]
    for t in range(1, 5):
        cluster.submit(signed_request("c", t), to=[0])
        cluster.run()
    assert any(any(isinstance(e, CompactLog) for e in step) for step in steps)
    for step in steps:
        kinds = [isinstance(e, Persist | CompactLog) for e in step]
        assert kinds == sorted(kinds, reverse=True)  # all durable effects first


def test_client_accepts_a_result_on_f_plus_1_matching_replies_from_distinct_replicas() -> None:
    client = Client("alice", 4, KEYS.signer(client_principal("alice")), VERIFIER)
    request = client.request(b"op")
    with pytest.raises(RuntimeError):
        client.request(b"second")  # one outstanding request at a time

    def reply(replica: int, result: bytes) -> Reply:
        return signed(Reply(0, request.timestamp, "alice", replica, result))

    assert client.on_reply(reply(1, b"yes")) is None
    assert client.on_reply(reply(1, b"yes")) is None  # the same replica twice counts once
    assert client.on_reply(reply(2, b"no")) is None  # a different result does not match
    forged = dataclasses.replace(reply(3, b"yes"), signature=b"bad")
    assert client.on_reply(forged) is None
    assert client.on_reply(reply(3, b"yes")) == b"yes"
    assert client.outstanding is None
