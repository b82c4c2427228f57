"""Applications for simulated clusters, and the per-height digest history used to compare replicas."""

from __future__ import annotations

import hashlib

from pot_impl import codec
from pot_impl.pbft.app import Application
from pot_impl.pbft.messages import ClientRecord, ServiceState


class RecordingApp:
    """Records every executed operation in order, so exactly-once execution can be checked.

    The state is the list of (client, operation, height) executed; its snapshot
    reuses the ``ServiceState`` client-record encoding (operation as result).
    """

    def __init__(self) -> None:
        self.executed: list[tuple[str, bytes, int]] = []

    def execute(self, client: str, operation: bytes, height: int) -> bytes:
        self.executed.append((client, operation, height))
        return hashlib.sha256(operation + height.to_bytes(8, "big")).digest()[:8]

    def snapshot(self) -> bytes:
        records = tuple(ClientRecord(c, h, op) for c, op, h in self.executed)
        return codec.encode(ServiceState(b"recording-app", records))

    def restore(self, snapshot: bytes) -> None:
        state = codec.decode(snapshot, ServiceState)
        self.executed = [(r.client, r.result, r.timestamp) for r in state.clients]


Position = tuple[int, int]
"""(height, index of the operation within that height's batch)."""


class TrackedApp:
    """Wraps an application and remembers the digest of its state after each executed operation.

    The history lives outside the application's state (the simulator keeps it
    across restarts), so two replicas are compared at every position both
    executed, and a replica that re-executes after recovery is compared with
    its former self: a different digest at a known position is a conflict.
    """

    def __init__(self, inner: Application, history: dict[Position, bytes], conflicts: list[Position]) -> None:
        self.inner = inner
        self.history = history
        self.conflicts = conflicts
        self._position: Position = (-1, 0)

    def execute(self, client: str, operation: bytes, height: int) -> bytes:
        result = self.inner.execute(client, operation, height)
        index = self._position[1] + 1 if self._position[0] == height else 0
        self._position = (height, index)
        digest = hashlib.sha256(self.inner.snapshot()).digest()
        if self.history.setdefault(self._position, digest) != digest:
            self.conflicts.append(self._position)
        return result

    def snapshot(self) -> bytes:
        return self.inner.snapshot()

    def restore(self, snapshot: bytes) -> None:
        self.inner.restore(snapshot)
