"""The honest trainer: trains an order segment by segment and commits to every segment.

After each segment the trainer copies the checkpoint into one of two
preallocated snapshot buffers and a background thread hashes and writes it
to the content-addressed store (one pass over memory; SHA-256 and file writes
release the GIL), while training continues on the next segment. The Merkle
root over the leaves, the final model digest and the evaluated score form the
claim. The trainer then serves leaves and checkpoints to validators
(``ProofServer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import msgpack

from pot_impl.training.checkpoint import CHECKPOINT_DOMAIN, Checkpoint, CheckpointStore, model_digest
from pot_impl.training.environment import Environment, run_fingerprint
from pot_impl.training.merkle import MerkleTree
from pot_impl.training.segments import Claim, ProofFormatError, SegmentLeaf
from pot_impl.training.session import SegmentOutcome, TrainingSession
from pot_impl.training.task import PreparedTask, TrainingOrder
from pot_impl.training.tensor_codec import StreamBuffer


@dataclass(frozen=True)
class ProofServer:
    """What a trainer serves to validators: the committed leaves and the checkpoint store."""

    leaves: tuple[bytes, ...]
    store: CheckpointStore

    def fetch(self, digest: bytes) -> bytes:
        return self.store.fetch(digest)


@dataclass(frozen=True)
class TrainingRun:
    """A finished run: the claim to post and the proof material to serve."""

    claim: Claim
    leaves: tuple[SegmentLeaf, ...]
    server: ProofServer


def make_claim(
    order: TrainingOrder, leaves: Sequence[SegmentLeaf], final_model: bytes, score: int, env: Environment
) -> tuple[Claim, tuple[bytes, ...]]:
    """The claim over ``leaves`` and their encodings (shared by every trainer, honest or not)."""
    encoded = tuple(leaf.encode() for leaf in leaves)
    root = MerkleTree(encoded).root
    environment = run_fingerprint(env, order.task.numerics)
    return Claim(order.digest, root, len(leaves), final_model, score, environment), encoded


class BackgroundCheckpointWriter:
    """Hashes and stores checkpoints on a worker thread (or inline), from two reusable stream buffers.

    ``submit`` costs the main thread one copy of the checkpoint into a buffer
    that already holds the canonical headers; the worker then hashes and
    writes the buffer with two GIL-free calls (few GIL hand-overs, so no
    convoy with the training thread). It blocks only when the worker is two
    checkpoints behind.
    """

    def __init__(self, store: CheckpointStore, background: bool = True) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")
        self._background = background
        self._buffers: list[StreamBuffer | None] = [None, None]
        self._pending: list[Future[bytes] | None] = [None, None]
        self._next = 0

    def submit(self, checkpoint: Checkpoint) -> Future[bytes]:
        slot = self._next
        self._next ^= 1
        previous = self._pending[slot]
        if previous is not None:
            previous.result()
        buffer = self._buffers[slot]
        if buffer is None or not buffer.fits(checkpoint):
            buffer = self._buffers[slot] = StreamBuffer(checkpoint, CHECKPOINT_DOMAIN)
        data = buffer.fill(checkpoint)
        if self._background:
            future = self._executor.submit(self.store.put_bytes, data)
        else:
            future = Future()
            future.set_result(self.store.put_bytes(data))
        self._pending[slot] = future
        return future

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def train(
    order: TrainingOrder,
    prepared: PreparedTask,
    store: CheckpointStore,
    env: Environment,
    background_writes: bool = True,
) -> TrainingRun:
    """Train ``order`` honestly and commit to every segment. ``background_writes=False`` hashes and
    writes each checkpoint on the training thread (better when no spare core is free)."""
    session = TrainingSession(prepared, order.data_order_seed, env)
    writer = BackgroundCheckpointWriter(store, background_writes)
    pending: list[tuple[Future[bytes], SegmentOutcome]] = []
    try:
        for _ in range(order.task.segments):
            outcome = session.run_segment()
            pending.append((writer.submit(outcome.checkpoint), outcome))
        leaves = [
            SegmentLeaf(
                index,
                future.result(),
                outcome.batch_digest,
                outcome.losses,
                outcome.near_ties.encode(),
                outcome.step_digests,
            )
            for index, (future, outcome) in enumerate(pending)
        ]
    finally:
        writer.close()
    claim, encoded = make_claim(order, leaves, model_digest(session.checkpoint()), session.evaluate(), env)
    return TrainingRun(claim, tuple(leaves), ProofServer(encoded, store))


CLAIM_FILE = "claim.json"
LEAVES_FILE = "leaves.msgpack"
CHECKPOINT_DIR = "checkpoints"


def proof_store(directory: Path) -> CheckpointStore:
    """The checkpoint store inside a proof directory."""
    return CheckpointStore(directory / CHECKPOINT_DIR)


def save_proof(run: TrainingRun, directory: Path) -> None:
    """Persist the claim and leaves next to the run's checkpoints, so the trainer can keep serving."""
    (directory / CLAIM_FILE).write_bytes(run.claim.encode())
    (directory / LEAVES_FILE).write_bytes(msgpack.packb(list(run.server.leaves), use_bin_type=True))


def load_proof(directory: Path) -> tuple[Claim, ProofServer]:
    """The claim and proof server saved by ``save_proof``; raises ProofFormatError or OSError."""
    claim = Claim.decode((directory / CLAIM_FILE).read_bytes())
    try:
        leaves = msgpack.unpackb((directory / LEAVES_FILE).read_bytes(), raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise ProofFormatError(f"{directory / LEAVES_FILE}: {exc}") from None
    if not isinstance(leaves, list) or not all(isinstance(leaf, bytes) for leaf in leaves):
        raise ProofFormatError(f"{directory / LEAVES_FILE}: expected a list of leaves")
    return claim, ProofServer(tuple(leaves), proof_store(directory))
