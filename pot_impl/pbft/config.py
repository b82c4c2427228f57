"""Replica configuration: cluster size and the protocol's tunable constants."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pot_impl.pbft.quorums import max_faulty, view_change_quorum


@dataclass(frozen=True)
class ReplicaConfig:
    """Constants every replica of one cluster must share.

    ``checkpoint_interval`` is K (a checkpoint after every K batches, i.e.
    sequence numbers); ``watermark_window`` is L (accept sequence numbers in
    (h, h + L] where h is the last stable checkpoint), a multiple of K.
    Durations are milliseconds (ticks in the simulator). ``max_request_bytes`` bounds
    one encoded request and ``max_batch_bytes`` the encoded requests of one batch: every
    message that carries batches is then bounded too (``new_view_bytes_bound``).
    ``max_pending_requests`` and ``max_pending_bytes`` bound the requests held unexecuted, and
    ``max_pending_per_client`` those of one client (a client has one request outstanding; more
    would let one account fill the others' share).
    """

    n: int
    checkpoint_interval: int = 4
    watermark_window: int = 16
    batch_size: int = 16
    batch_timeout_ms: int = 5
    view_change_timeout_ms: int = 400
    state_transfer_timeout_ms: int = 200
    max_pending_requests: int = 10_000
    max_pending_bytes: int = 64 * 1024 * 1024
    max_pending_per_client: int = 16
    max_request_bytes: int = 64 * 1024
    max_batch_bytes: int = 256 * 1024

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("a cluster needs at least one replica")
        if self.checkpoint_interval < 1 or self.watermark_window < self.checkpoint_interval:
            raise ValueError("need checkpoint_interval >= 1 and watermark_window >= checkpoint_interval")
        if self.watermark_window % self.checkpoint_interval:
            raise ValueError("watermark_window must be a multiple of checkpoint_interval")
        if self.batch_size < 1 or self.batch_timeout_ms < 0 or self.view_change_timeout_ms < 1:
            raise ValueError("batch_size and view_change_timeout_ms must be positive")
        if self.max_pending_per_client < 1:
            raise ValueError("max_pending_per_client must be positive")
        if not 1 <= self.max_request_bytes <= min(self.max_batch_bytes, self.max_pending_bytes):
            raise ValueError("need 1 <= max_request_bytes <= max_batch_bytes and max_pending_bytes")

    @property
    def f(self) -> int:
        """The number of Byzantine replicas tolerated."""
        return max_faulty(self.n)

    def primary(self, view: int) -> int:
        """The primary of ``view`` (v mod n)."""
        return view % self.n


SIGNED_OVERHEAD_BYTES = 160
"""At least the encoding of a prepare, commit or checkpoint (about 130 bytes with 64-byte
signatures and the widest integers), and of a pre-prepare's, certificate's, view-change's or
new-view's own fields beside the batches and messages it carries."""


def new_view_bytes_bound(config: ReplicaConfig) -> int:
    """The most bytes a valid NEW-VIEW can take, and so any VIEW-CHANGE or PRE-PREPARE.

    A NEW-VIEW holds n - f view-changes and at most L pre-prepares (O spans min-s + 1 .. max-s,
    and max-s <= min-s + L); a view-change holds at most n checkpoints (C) and L certificates (P),
    each a pre-prepare and fewer than n prepares. A certificate's batch is at most
    ``max_batch_bytes``: it needs 2f prepares, at least one from an honest backup, and honest
    backups refuse larger batches."""
    n, quorum, window = config.n, view_change_quorum(config.n, config.f), config.watermark_window
    overhead = SIGNED_OVERHEAD_BYTES
    certificate = config.max_batch_bytes + n * overhead
    view_change = overhead + n * overhead + window * certificate
    return overhead + quorum * view_change + window * (config.max_batch_bytes + overhead)


def largest_batch_bytes(config: ReplicaConfig, frame_bytes: int) -> int:
    """The largest ``max_batch_bytes`` at which ``config``'s NEW-VIEWs fit in ``frame_bytes`` (the
    bound is linear in it); 0 if none does."""
    one = replace(config, max_request_bytes=1, max_batch_bytes=1)
    per_byte = new_view_bytes_bound(replace(one, max_batch_bytes=2)) - new_view_bytes_bound(one)
    fixed = new_view_bytes_bound(one) - per_byte
    return max(0, (frame_bytes - fixed) // per_byte)
