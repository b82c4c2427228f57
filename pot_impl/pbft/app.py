"""The replicated application seen by the replica: PBFT orders opaque operations, the app executes them."""

from __future__ import annotations

from typing import Protocol


class Application(Protocol):
    """A deterministic state machine executed in sequence order by every replica.

    ``execute`` must be a pure function of the current state and its arguments
    (no clocks, randomness or I/O), so replicas that execute the same log
    reach byte-identical snapshots.
    """

    def execute(self, client: str, operation: bytes, height: int) -> bytes:
        """Apply ``client``'s operation at logical time ``height`` (the batch's sequence number);
        return the result bytes sent back in the reply. Must not raise on malformed operations:
        reject them in the result instead."""
        ...

    def snapshot(self) -> bytes:
        """Canonical bytes of the whole state (equal states give equal bytes)."""
        ...

    def restore(self, snapshot: bytes) -> None:
        """Replace the state by one previously returned by ``snapshot``."""
        ...
