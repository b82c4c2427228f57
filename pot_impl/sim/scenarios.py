"""Random but reproducible scenarios: one seed fixes the cluster, workload and every fault."""

from __future__ import annotations

import random

from pot_impl.byzantine import BEHAVIOURS
from pot_impl.pbft.config import ReplicaConfig
from pot_impl.sim.simulator import Crash, NetworkSettings, Partition, Scenario


def recording_operations(clients: int, per_client: int) -> tuple[tuple[bytes, ...], ...]:
    """Unique operations, so that executing one twice is visible."""
    return tuple(tuple(f"c{c}/op{k}".encode() for k in range(per_client)) for c in range(clients))


def random_scenario(
    seed: int,
    n: int,
    faulty_primaries: bool = False,
    operations: tuple[tuple[bytes, ...], ...] | None = None,
) -> Scenario:
    """A scenario with exactly f faulty replicas (Byzantine behaviours or permanent crashes), a lossy,
    duplicating, reordering network with one partition and one honest crash-restart until
    ``heal_at``; with ``faulty_primaries`` the faulty replicas are the primaries of views 0..f-1,
    so the cluster must get through f consecutive faulty primaries."""
    rng = random.Random(seed)
    config = ReplicaConfig(
        n=n,
        checkpoint_interval=rng.choice([2, 4]),
        watermark_window=rng.choice([8, 16]),
        batch_size=rng.choice([1, 3, 8]),
        batch_timeout_ms=rng.choice([2, 5]),
        view_change_timeout_ms=300,
        state_transfer_timeout_ms=150,
    )
    f = config.f
    faulty = list(range(f)) if faulty_primaries else rng.sample(range(n), f)
    byzantine: list[tuple[int, str]] = []
    crashes: list[Crash] = []
    heal_at = rng.randint(1500, 4000)
    # Faulty primaries must actually fail to lead; elsewhere any behaviour goes.
    kinds = ["silent", "equivocate", "crash"] if faulty_primaries else [*sorted(BEHAVIOURS), "crash"]
    for replica in faulty:
        kind = rng.choice(kinds)
        if kind == "crash":
            crashes.append(Crash(replica, rng.randint(0, heal_at), None))
        else:
            byzantine.append((replica, kind))
    honest = [r for r in range(n) if r not in faulty]
    partitions: list[Partition] = []
    if rng.random() < 0.5:
        isolated = frozenset(rng.sample(honest, rng.randint(1, max(1, f))))
        start = rng.randint(0, heal_at // 2)
        partitions.append(
            Partition(start, rng.randint(start + 1, heal_at), (isolated, frozenset(range(n)) - isolated))
        )
    if rng.random() < 0.5:
        victim = rng.choice(honest)
        at = rng.randint(0, heal_at - 1)
        crashes.append(Crash(victim, at, rng.randint(at + 1, heal_at)))
    network = NetworkSettings(
        min_delay=1,
        max_delay=rng.choice([5, 20]),
        loss=rng.choice([0.0, 0.02, 0.1]),
        duplicate=rng.choice([0.0, 0.05]),
    )
    clients = 3
    return Scenario(
        seed=seed,
        config=config,
        clients=clients,
        operations=operations or recording_operations(clients, rng.randint(6, 12)),
        byzantine=tuple(byzantine),
        crashes=tuple(crashes),
        partitions=tuple(partitions),
        network=network,
        heal_at=heal_at,
        end_at=120_000,
    )
