"""Replica configuration: cluster size and the protocol's tunable constants."""

from __future__ import annotations

from dataclasses import dataclass

from pot_impl.pbft.quorums import max_faulty


@dataclass(frozen=True)
class ReplicaConfig:
    """Constants every replica of one cluster must share.

    ``checkpoint_interval`` is K (a checkpoint after every K batches, i.e.
    sequence numbers); ``watermark_window`` is L (accept sequence numbers in
    (h, h + L] where h is the last stable checkpoint), a multiple of K.
    Durations are milliseconds (ticks in the simulator).
    """

    n: int
    checkpoint_interval: int = 4
    watermark_window: int = 16
    batch_size: int = 16
    batch_timeout_ms: int = 5
    view_change_timeout_ms: int = 400
    state_transfer_timeout_ms: int = 200
    max_pending_requests: int = 10_000

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("a cluster needs at least one replica")
        if self.checkpoint_interval < 1 or self.watermark_window < self.checkpoint_interval:
            raise ValueError("need checkpoint_interval >= 1 and watermark_window >= checkpoint_interval")
        if self.watermark_window % self.checkpoint_interval:
            raise ValueError("watermark_window must be a multiple of checkpoint_interval")
        if self.batch_size < 1 or self.batch_timeout_ms < 0 or self.view_change_timeout_ms < 1:
            raise ValueError("batch_size and view_change_timeout_ms must be positive")

    @property
    def f(self) -> int:
        """The number of Byzantine replicas tolerated."""
        return max_faulty(self.n)

    def primary(self, view: int) -> int:
        """The primary of ``view`` (v mod n)."""
        return view % self.n
