"""A simulation that checks crash recovery after every step: what a replica stored brings back
what it executed."""

from __future__ import annotations

from pot_impl.auth import replica_principal
from pot_impl.pbft.io import DurableRecord, Effect
from pot_impl.pbft.replica import Replica
from pot_impl.sim.apps import RecordingApp
from pot_impl.sim.simulator import Scenario, Simulation


class RecoveryChecked(Simulation):
    """After each step of an honest replica that ``stored_records`` answers for, recovers a fresh
    replica from those records and records where it differs from the live one in what it
    executed: a crash at that instant would have lost those executions."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario, RecordingApp)
        self.divergences: list[str] = []
        self.recoveries = 0

    def stored_records(
        self, replica: int, live: Replica, effects: list[Effect]
    ) -> list[DurableRecord] | None:
        """What a restart after this step would recover from; None when the step is not checked."""
        raise NotImplementedError

    def _apply(self, replica: int, effects: list[Effect]) -> None:
        super()._apply(replica, effects)
        live = self.replicas.get(replica)
        if live is None or replica in {r for r, _ in self.scenario.byzantine}:
            return
        records = self.stored_records(replica, live, effects)
        if records is None:
            return
        signer = self.keys.signer(replica_principal(replica))
        fresh = Replica(replica, self.config, signer, self.verifier, RecordingApp())
        fresh.recover(records)
        self.recoveries += 1
        if (fresh.last_executed, fresh.service_state) != (live.last_executed, live.service_state):
            positions = f"executed {live.last_executed}, recovers {fresh.last_executed}"
            self.divergences.append(f"t={self.now} replica {replica}: {positions}")
