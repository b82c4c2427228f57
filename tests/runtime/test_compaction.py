"""The node may compact a replica's log after any step, not only at stable checkpoints: it does
when views keep changing without a checkpoint (each view change adds megabytes to the log).
Recovering from ``durable_records()`` taken after any step must give back what the replica
executed, which this checks over simulated runs with Byzantine replicas, loss and crashes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pot_impl import codec
from pot_impl.pbft.io import DURABLE_TYPES, DurableRecord, Effect
from pot_impl.pbft.replica import Replica
from pot_impl.sim.scenarios import random_scenario
from tests.impl.recovery import RecoveryChecked


class CompactedEveryStep(RecoveryChecked):
    """After each step of an honest replica, recovers a fresh replica from that replica's compacted
    records (through the codec, as the store holds them) and records any difference."""

    def stored_records(self, replica: int, live: Replica, effects: list[Effect]) -> list[DurableRecord]:
        stored = [codec.encode(record) for record in live.durable_records()]
        return [codec.decode_unlimited(data, DURABLE_TYPES) for data in stored]


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), faulty_primaries=st.booleans())
def test_recovering_from_a_log_compacted_after_any_step_loses_nothing(
    seed: int, faulty_primaries: bool
) -> None:
    simulation = CompactedEveryStep(random_scenario(seed, 4, faulty_primaries))
    simulation.run()
    assert simulation.recoveries > 0 and simulation.divergences == []
