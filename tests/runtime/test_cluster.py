"""Real replica processes on 127.0.0.1: agreement, progress, and no lost commits under crashes and faults.

Each test checks the same three things after its faults heal: every accepted
result was vouched for by f+1 replicas, the replicas converge on one executed
prefix with byte-identical ledgers, and the per-replica event logs never
executed two different batches at one sequence number.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pot_impl import codec
from pot_impl.ledger.transactions import Receipt
from pot_impl.runtime.cluster import LocalCluster
from pot_impl.runtime.config import Config, TransportSettings
from pot_impl.runtime.events import read_events
from pot_impl.runtime.faults import LinkPolicy
from pot_impl.runtime.load import LoadResult
from tests.runtime.conftest import FAST_PROTOCOL, converged, statuses, submit, wait_until

MakeCluster = Callable[..., LocalCluster]


def config_of(cluster: LocalCluster) -> Config:
    assert cluster.config is not None
    return cluster.config


def assert_all_accepted(result: LoadResult, requests: int, config: Config) -> None:
    assert result.timeouts == 0
    assert len(result.outcomes) == requests
    assert all(len(outcome.replicas) >= config.f + 1 for outcome in result.outcomes)


def committed_height(result: LoadResult) -> int:
    """The highest sequence number at which an accepted request executed (its receipt's height)."""
    return max(codec.decode(outcome.result, Receipt).height for outcome in result.outcomes)


def executed_batches(path: Path) -> dict[int, set[str]]:
    """Sequence number -> digests this replica ever logged as executed (across restarts)."""
    executed: dict[int, set[str]] = {}
    for event in read_events(path):
        if event["event"] == "executed":
            executed.setdefault(event["seq"], set()).add(event["digest"])
    return executed


def assert_logs_agree(cluster: LocalCluster, replicas: list[int]) -> None:
    merged: dict[int, set[str]] = {}
    for replica in replicas:
        for seq, digests in executed_batches(cluster.event_log_path(replica)).items():
            merged.setdefault(seq, set()).update(digests)
    assert merged, "no replica executed anything"
    conflicts = {seq: digests for seq, digests in merged.items() if len(digests) > 1}
    assert conflicts == {}


def assert_converged(
    cluster: LocalCluster, replicas: list[int], at_least: int, timeout_s: float = 30.0
) -> None:
    """Wait until ``replicas`` agree. A replica that lost a message catches up only at the next
    stable checkpoint (PBFT does not retransmit), so keep a trickle of requests flowing meanwhile."""
    config = config_of(cluster)

    def settled() -> bool:
        if converged(config, replicas, at_least):
            return True
        assert_all_accepted(submit(cluster, 4, clients=4), 4, config)
        return False

    wait_until(settled, timeout_s, f"replicas {replicas} converge")
    assert_logs_agree(cluster, replicas)


def assert_message_events_name_their_batches(cluster: LocalCluster, replicas: list[int]) -> None:
    """Every logged ``sent``/``received`` agreement message carries the digest that the
    ``pre-prepared``/``committed`` events (of any replica, all honest here) name for its (view, seq)."""
    logs = [read_events(cluster.event_log_path(replica)) for replica in replicas]
    chosen: dict[tuple[int, int], set[str]] = {}
    for event in (e for log in logs for e in log if e["event"] in ("pre-prepared", "committed")):
        chosen.setdefault((event["view"], event["seq"]), set()).add(event["digest"])
    messages = [
        e
        for log in logs
        for e in log
        if e["event"] in ("sent", "received") and e["message"] in ("PrePrepare", "Prepare", "Commit")
    ]
    assert messages and all(len(digests) == 1 for digests in chosen.values())
    assert [e for e in messages if {e["digest"]} != chosen.get((e["message_view"], e["seq"]))] == []
    assert all(e["sender"] == (e["node"] if e["event"] == "sent" else e["peer"]) for e in messages)


def test_requests_commit_everywhere_with_identical_ledgers(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(4)
    config = config_of(cluster)
    result = submit(cluster, 40, clients=8)
    assert_all_accepted(result, 40, config)
    assert_converged(cluster, [0, 1, 2, 3], committed_height(result))
    assert_message_events_name_their_batches(cluster, [0, 1, 2, 3])
    reports = statuses(config)
    assert all(isinstance(r, dict) and r["view"] == 0 for r in reports.values())


def test_kill9_of_primary_and_backup_loses_no_committed_request(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(4)
    config = config_of(cluster)
    before = submit(cluster, 24)
    assert_all_accepted(before, 24, config)
    cluster.kill(0)  # SIGKILL the primary: the others must change view and go on
    during = submit(cluster, 16)
    assert_all_accepted(during, 16, config)
    cluster.restart(0)
    cluster.kill(2)  # and a backup, while the old primary recovers from its SQLite log
    cluster.restart(2)
    after = submit(cluster, 16)
    assert_all_accepted(after, 16, config)
    height = max(committed_height(r) for r in (before, during, after))
    assert_converged(cluster, [0, 1, 2, 3], height)
    reports = statuses(config)
    assert all(isinstance(r, dict) and r["view"] >= 1 for r in reports.values())


def test_partitioned_replica_catches_up_after_healing(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(4, proxied=True)
    config = config_of(cluster)
    assert cluster.network is not None
    cluster.network.partition(3)
    cut_off = submit(cluster, 40, clients=8)
    assert_all_accepted(cut_off, 40, config)
    stuck = statuses(config)[3]
    assert isinstance(stuck, dict) and stuck["last_executed"] == 0
    cluster.network.heal()
    healed = submit(cluster, 16)
    assert_all_accepted(healed, 16, config)
    assert_converged(cluster, [0, 1, 2, 3], committed_height(healed))


def test_progress_through_lossy_duplicating_reordering_links(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(4, proxied=True, fault_seed=7)
    config = config_of(cluster)
    assert cluster.network is not None
    cluster.network.set_all(LinkPolicy(drop=0.02, duplicate=0.1, delay_s=0.001, jitter_s=0.01))
    result = submit(cluster, 30, clients=6)
    assert_all_accepted(result, 30, config)
    stats = cluster.network.stats.values()
    assert sum(s.duplicated for s in stats) > 0 and sum(s.forwarded for s in stats) > 0
    cluster.network.heal()
    assert_converged(cluster, [0, 1, 2, 3], committed_height(result))


def test_equivocating_primary_is_replaced_and_honest_replicas_agree(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(4, byzantine={0: "equivocate"})
    config = config_of(cluster)
    result = submit(cluster, 20, clients=4)
    assert_all_accepted(result, 20, config)
    assert_converged(cluster, [1, 2, 3], committed_height(result))
    honest = [statuses(config)[r] for r in (1, 2, 3)]
    assert all(isinstance(r, dict) and r["view"] >= 1 for r in honest)
    # the primary really equivocated: honest backups accepted different batches for one (view 0, seq)
    accepted: dict[int, set[str]] = {}
    for replica in (1, 2, 3):
        for event in read_events(cluster.event_log_path(replica)):
            if event["event"] == "pre-prepared" and event["view"] == 0:
                accepted.setdefault(event["seq"], set()).add(event["digest"])
    assert any(len(digests) > 1 for digests in accepted.values())


def test_silent_backup_does_not_stop_the_others(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(4, byzantine={3: "silent"})
    config = config_of(cluster)
    result = submit(cluster, 20)
    assert_all_accepted(result, 20, config)
    assert all(3 not in outcome.replicas for outcome in result.outcomes)
    assert_converged(cluster, [0, 1, 2], committed_height(result))


def test_a_replica_cut_off_fetches_a_state_larger_than_a_frame(make_cluster: MakeCluster) -> None:
    """The state a lagging replica fetches outgrows the frame limit; it travels in fragments."""
    frame_bytes = 48 * 1024
    protocol = {**FAST_PROTOCOL, "watermark_window": 2, "checkpoint_interval": 2}
    transport = TransportSettings(max_frame_bytes=frame_bytes)
    cluster = make_cluster(4, proxied=True, protocol=protocol, transport=transport)
    config = config_of(cluster)
    assert cluster.network is not None
    cluster.network.partition(3)
    cut_off = submit(cluster, 600, clients=600, timeout_s=60.0)
    assert_all_accepted(cut_off, 600, config)
    cluster.network.heal()
    healed = submit(cluster, 16)
    assert_all_accepted(healed, 16, config)
    assert_converged(cluster, [0, 1, 2, 3], committed_height(healed))
    reports = statuses(config)
    lagging = reports[3]
    assert isinstance(lagging, dict) and lagging["counters"]["messages_reassembled"] >= 1
