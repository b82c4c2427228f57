"""The node may compact a replica's log after any step, not only at stable checkpoints: it does
when views keep changing without a checkpoint (each view change adds megabytes to the log).
Recovering from ``durable_records()`` taken after any step must give back what the replica
executed, which this checks over simulated runs with Byzantine replicas, loss and crashes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pot_impl import codec
from pot_impl.auth import replica_principal
from pot_impl.pbft.io import DURABLE_TYPES, Effect
from pot_impl.pbft.replica import Replica
from pot_impl.sim.apps import RecordingApp
from pot_impl.sim.scenarios import random_scenario
from pot_impl.sim.simulator import Scenario, Simulation


class CompactedEveryStep(Simulation):
    """After each step of an honest replica, recovers a fresh replica from that replica's compacted
    records (through the codec, as the store holds them) and records any difference."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario, RecordingApp)
        self.divergences: list[str] = []
        self.recoveries = 0

    def _apply(self, replica: int, effects: list[Effect]) -> None:
        super()._apply(replica, effects)
        live = self.replicas.get(replica)
        if live is None or replica in {r for r, _ in self.scenario.byzantine}:
            return
        stored = [codec.encode(record) for record in live.durable_records()]
        signer = self.keys.signer(replica_principal(replica))
        fresh = Replica(replica, self.config, signer, self.verifier, RecordingApp())
        fresh.recover([codec.decode_unlimited(data, DURABLE_TYPES) for data in stored])
        self.recoveries += 1
        if (fresh.last_executed, fresh.service_state) != (live.last_executed, live.service_state):
            positions = f"executed {live.last_executed}, recovers {fresh.last_executed}"
            self.divergences.append(f"t={self.now} replica {replica}: {positions}")


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), faulty_primaries=st.booleans())
def test_recovering_from_a_log_compacted_after_any_step_loses_nothing(
    seed: int, faulty_primaries: bool
) -> None:
    simulation = CompactedEveryStep(random_scenario(seed, 4, faulty_primaries))
    simulation.run()
    assert simulation.recoveries > 0 and simulation.divergences == []
