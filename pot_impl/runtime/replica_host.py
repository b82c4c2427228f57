"""The one place where the runtime meets the core: builds the replica with the ledger and reports on it.

Keeping every use of the replica's API here means a change in the core
touches one runtime module, and the node stays a pure I/O driver.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from pot_impl.auth import Signer, Verifier
from pot_impl.ledger.ledger import Ledger
from pot_impl.pbft.io import DurableRecord, Effect, Input
from pot_impl.pbft.replica import Replica
from pot_impl.runtime.config import Config
from pot_impl.runtime.ledger_app import build_ledger, ledger_summary


class ReplicaHost:
    """A replica and the ledger it replicates."""

    def __init__(self, replica: Replica, ledger: Ledger) -> None:
        self.replica = replica
        self.ledger = ledger

    def handle(self, event: Input) -> list[Effect]:
        return self.replica.handle(event)

    def recover(self, records: Sequence[DurableRecord]) -> list[Effect]:
        return self.replica.recover(records)

    def view(self) -> int:
        return self.replica.view

    def status(self, clients: Sequence[str] = ()) -> dict[str, Any]:
        replica = self.replica
        table = replica.clients if clients else {}
        snapshot = self.ledger.snapshot()
        return {
            "view": replica.view,
            "view_active": replica.view_active,
            "primary": replica.primary,
            "last_executed": replica.last_executed,
            "stable_checkpoint": replica.stable_checkpoint,
            "stable_digest": replica.own_checkpoints.get(replica.stable_checkpoint, b"").hex(),
            "watermarks": [replica.low_watermark, replica.high_watermark],
            "pending_requests": len(replica.pending_requests),
            "view_change_streak": replica.view_change_streak,
            "clients": len(replica.clients),
            "client_timestamps": {c: table[c].timestamp for c in clients if c in table},
            "ledger": {
                "state_digest": hashlib.sha256(snapshot).hexdigest(),
                "snapshot_bytes": len(snapshot),
                **ledger_summary(self.ledger),
            },
        }


def build_replica(replica_id: int, config: Config, signer: Signer, verifier: Verifier) -> ReplicaHost:
    ledger = build_ledger(config.ledger.params, dict(config.ledger.genesis))
    return ReplicaHost(Replica(replica_id, config.protocol, signer, verifier, ledger), ledger)
