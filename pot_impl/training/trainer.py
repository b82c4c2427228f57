"""The honest trainer: trains an order segment by segment and commits to every segment.

Per segment it hashes the checkpoint in place (raw tensor bytes), stores it in
the content-addressed store, and records a leaf; the Merkle root over the
leaves, the final model digest and the evaluated score form the claim. The
trainer then serves leaves and checkpoints to validators (``ProofServer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pot_impl.training.checkpoint import CheckpointStore, checkpoint_digest, model_digest
from pot_impl.training.merkle import MerkleTree
from pot_impl.training.runtime import Environment
from pot_impl.training.segments import Claim, SegmentLeaf
from pot_impl.training.session import TrainingSession
from pot_impl.training.task import PreparedTask, TrainingOrder


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
    return Claim(order.digest, root, len(leaves), final_model, score, env.fingerprint), encoded


def train(
    order: TrainingOrder, prepared: PreparedTask, store: CheckpointStore, env: Environment
) -> TrainingRun:
    """Train ``order`` honestly and commit to every segment."""
    session = TrainingSession(prepared, order.data_order_seed, env)
    leaves: list[SegmentLeaf] = []
    for index in range(order.task.segments):
        outcome = session.run_segment()
        digest = store.put(outcome.checkpoint, checkpoint_digest(outcome.checkpoint))
        leaves.append(SegmentLeaf(index, digest, outcome.batch_digest, outcome.losses))
    final = session.checkpoint()
    claim, encoded = make_claim(order, leaves, model_digest(final), session.evaluate(), env)
    return TrainingRun(claim, tuple(leaves), ProofServer(encoded, store))
