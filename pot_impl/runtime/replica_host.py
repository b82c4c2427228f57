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
from pot_impl.pbft.certificates import state_digest
from pot_impl.pbft.io import DurableRecord, Effect, Input
from pot_impl.pbft.messages import Reply, Request
from pot_impl.pbft.replica import Replica
from pot_impl.runtime.config import Config
from pot_impl.runtime.ledger_app import build_ledger, ledger_summary, refusal_result


class ReplicaHost:
    """A replica and the ledger it replicates."""

    def __init__(self, replica: Replica, ledger: Ledger) -> None:
        self.replica = replica
        self.ledger = ledger
        self._ledger_status: tuple[int, dict[str, Any]] = (-1, {})
        self._stable_digest: tuple[int, str] = (-1, "")

    def handle(self, event: Input) -> list[Effect]:
        return self.replica.handle(event)

    def recover(self, records: Sequence[DurableRecord]) -> list[Effect]:
        return self.replica.recover(records)

    def durable_records(self) -> tuple[DurableRecord, ...]:
        return self.replica.durable_records()

    def view(self) -> int:
        return self.replica.view

    def admits(self, client: str) -> bool:
        """Whether a request of ``client`` may be ordered: only if the ledger knows its account.
        No transaction creates an account, so the ledger refuses every transaction of a sender
        without one, whatever is ordered before it; ordering them would let keys made for the
        purpose spend the cluster's capacity for nothing."""
        return self.ledger.has_account(client)

    def refusal(self, request: Request, reason: str) -> Reply:
        """A reply (unsigned, as the replica's own) refusing ``request`` unordered: every replica
        refuses it with the same result, so its client gets f + 1 matching refusals."""
        replica = self.replica
        return Reply(replica.view, request.timestamp, request.client, replica.id, refusal_result(reason))

    def status(self, clients: Sequence[str] = ()) -> dict[str, Any]:
        replica = self.replica
        table = replica.clients if clients else {}
        return {
            "view": replica.view,
            "view_active": replica.view_active,
            "primary": replica.primary,
            "last_executed": replica.last_executed,
            "stable_checkpoint": replica.stable_checkpoint,
            "stable_digest": self._stable_digest_hex(),
            "watermarks": [replica.low_watermark, replica.high_watermark],
            "pending_requests": len(replica.pending_requests),
            "view_change_streak": replica.view_change_streak,
            "clients": len(replica.clients),
            "client_timestamps": {c: table[c].timestamp for c in clients if c in table},
            "ledger": self._ledger_report(),
        }

    def _stable_digest_hex(self) -> str:
        """The stable checkpoint's state digest, hashed once per checkpoint."""
        seq, digest = self._stable_digest
        if seq != self.replica.stable_checkpoint:
            stable = self.replica.stable_snapshot
            seq, digest = stable.seq, state_digest(stable.snapshot).hex()
            self._stable_digest = (seq, digest)
        return digest

    def _ledger_report(self) -> dict[str, Any]:
        """The ledger part of the status, which encodes the whole ledger: computed once per executed
        batch, however many status requests arrive."""
        executed, report = self._ledger_status
        if executed != self.replica.last_executed:
            snapshot = self.ledger.snapshot()
            report = {
                "state_digest": hashlib.sha256(snapshot).hexdigest(),
                "snapshot_bytes": len(snapshot),
                **ledger_summary(self.ledger),
            }
            self._ledger_status = (self.replica.last_executed, report)
        return report


def build_replica(replica_id: int, config: Config, signer: Signer, verifier: Verifier) -> ReplicaHost:
    ledger = build_ledger(config.ledger.params, dict(config.ledger.genesis))
    return ReplicaHost(Replica(replica_id, config.protocol, signer, verifier, ledger), ledger)
