"""Hypothesis explores delivery orders, losses, timeouts and a Byzantine replica's forged messages;
honest replicas must never disagree. Failures shrink to a minimal schedule."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pot_impl import codec
from pot_impl.pbft.io import EventKind, Timer, TimerKind
from pot_impl.pbft.messages import Commit, Prepare, PrePrepare, ReplicaMessage, ViewChange
from tests.impl.harness import Cluster, signed, signed_request

HONEST = (0, 1, 2)
BYZANTINE = 3


def forged(data: st.DataObject, cluster: Cluster) -> ReplicaMessage:
    """Anything replica 3 can sign: conflicting pre-prepares (when it is primary), votes for any
    digest seen so far or made up, and view-changes for any view."""
    views = sorted({r.view for r in cluster.replicas[:3]} | {0, 1, 3})
    view = data.draw(st.sampled_from(views))
    seq = data.draw(st.integers(1, 4))
    requests = [signed_request(f"c{i}", 1, f"op{i}".encode()) for i in range(3)]
    digests = [codec.batch_digest(()), b"\x07" * 32] + [
        m.digest for _, m in cluster.queue if isinstance(m, PrePrepare | Prepare | Commit)
    ]
    kind = data.draw(st.sampled_from(["pre-prepare", "prepare", "commit", "view-change"]))
    if kind == "pre-prepare":
        batch = tuple(data.draw(st.lists(st.sampled_from(requests), max_size=2, unique=True)))
        return signed(PrePrepare(view, seq, codec.batch_digest(batch), batch, BYZANTINE))
    if kind == "view-change":
        return signed(ViewChange(view + 1, 0, (), (), BYZANTINE))
    digest = data.draw(st.sampled_from(digests))
    vote = Prepare if kind == "prepare" else Commit
    return signed(vote(view, seq, digest, BYZANTINE))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_honest_replicas_agree_under_any_schedule(data: st.DataObject) -> None:
    """After the schedule, delivering what is queued must fall quiet (``cluster.run`` fails on a
    message storm), and the honest replicas agree and execute each request once."""
    cluster = Cluster.build(4, checkpoint_interval=2, watermark_window=4, batch_size=1)
    submitted = 0
    for _ in range(data.draw(st.integers(10, 80))):
        action = data.draw(
            st.sampled_from(["deliver", "deliver", "deliver", "drop", "timeout", "forge", "submit"])
        )
        if action == "submit" and submitted < 3:
            request = signed_request(f"c{submitted}", 1, f"op{submitted}".encode())
            submitted += 1
            cluster.submit(request, to=list(HONEST))
        elif action in ("deliver", "drop") and cluster.queue:
            destination, message = cluster.queue.pop(data.draw(st.integers(0, len(cluster.queue) - 1)))
            if action == "deliver" and destination != BYZANTINE:
                cluster.deliver(destination, message)
        elif action == "timeout":
            replica = data.draw(st.sampled_from(HONEST))
            cluster.absorb(
                replica,
                cluster.replicas[replica].fire(Timer(TimerKind.VIEW_CHANGE, cluster.replicas[replica].view)),
            )
        elif action == "forge":
            cluster.deliver(data.draw(st.sampled_from(HONEST)), forged(data, cluster))
    cluster.run(keep=lambda destination, _: destination != BYZANTINE)
    executed: dict[int, bytes] = {}
    for replica in HONEST:
        for event in cluster.events_of(replica, EventKind.EXECUTED):
            assert executed.setdefault(event.seq, event.digest) == event.digest, f"seq {event.seq} diverged"
    histories = [[op for _, op, _ in cluster.apps[r].executed] for r in HONEST]
    for history in histories:
        assert len(history) == len(set(history))  # exactly once
        longest = max(histories, key=len)
        assert history == longest[: len(history)]  # prefix consistency
