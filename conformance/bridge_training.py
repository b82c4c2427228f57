"""Real training behind the ledger bridge: orders, trainers (honest or faking), validators, challengers.

Every claim the ledger bridge posts comes from the real trainer
(``pot_impl.training.trainer.train``) or a real cheating trainer
(``conformance.adversaries.train_skipping_steps``) on a tiny CPU task, and
every vote or challenge carries what the real ``Validator`` produced. Runs,
audits and proof checks are deterministic functions of their inputs, so one
``TrainingWorld`` caches them for the whole process: a replay of thousands of
behaviours trains each distinct (order, faked segments) once.

Samples are not chosen: the ledger accepts only the sample derived from the
validator's Ed25519 signature over (order, proof root). To replay a spec step
in which a validator samples given segments, the world looks ahead at the
behaviour and picks each validator's key (by trying key seeds) so that its
signature derives exactly the samples that behaviour needs.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey

from conformance.adversaries import inflate_score, train_skipping_steps
from pot_impl.training.architectures import resolve_arch_params
from pot_impl.training.checker import TrainingProofChecker
from pot_impl.training.checkpoint import CheckpointStore
from pot_impl.training.datasets import DatasetCatalog, synthetic_dataset
from pot_impl.training.evidence import FraudEvidence
from pot_impl.training.merkle import MerkleTree
from pot_impl.training.runtime import Environment
from pot_impl.training.sampling import draw_sample
from pot_impl.training.segments import SegmentLeaf
from pot_impl.training.task import (
    DatasetRef,
    OptimizerSpec,
    PreparedTask,
    ScheduleSpec,
    TrainingOrder,
    TrainingTask,
    prepare_task,
)
from pot_impl.training.trainer import TrainingRun, train
from pot_impl.training.validator import Validator
from pot_impl.training.validator import Verdict as ValidatorVerdict

ENV = Environment("cpu", 1)
"""One pinned environment for trainers, validators and the ledger's checker (tier A, bit-exact)."""

SEGMENT_LENGTH = 2
MAX_KEY_TRIES = 1 << 16
SEED_TRIES = 16


def _subsets(size: int) -> list[frozenset[int]]:
    return [frozenset(i for i in range(size) if mask >> i & 1) for mask in range(1 << size)]


def tiny_task(segments: int) -> TrainingTask:
    """A two-layer MLP on synthetic blobs: a few milliseconds per segment on one CPU thread."""
    params = {"examples": 96, "features": 8, "classes": 4, "seed": 11}
    return TrainingTask(
        architecture="mlp",
        arch_params=resolve_arch_params("mlp", {"hidden": 16, "depth": 1}),
        dataset=DatasetRef(synthetic_dataset("blobs", params).digest.hex(), "blobs", params),
        optimizer=OptimizerSpec("adam", 0.001),
        schedule=ScheduleSpec("constant", 0),
        batch_size=8,
        steps=segments * SEGMENT_LENGTH,
        segment_length=SEGMENT_LENGTH,
        init_seed=5,
        eval_examples=16,
    )


@dataclass(frozen=True)
class RunKey:
    """Which run: the client whose order it trains, the faked segments, and the claimed-score raise."""

    client: int
    faked: frozenset[int]
    score_raise: int


class TrainingWorld:
    """Orders, cached runs and their proof material, audits, fraud evidence and validator keys."""

    def __init__(self, segments: int) -> None:
        self.segments = segments
        self.task = tiny_task(segments)
        self._root = Path(tempfile.mkdtemp(prefix="pot-conform-"))
        atexit.register(shutil.rmtree, self._root, True)
        self.store = CheckpointStore(self._root / "checkpoints")
        self.catalog = DatasetCatalog(None)
        self._prepared: PreparedTask | None = None
        self._orders: dict[int, TrainingOrder] = {}
        self._runs: dict[RunKey, TrainingRun] = {}
        self._audits: dict[tuple[RunKey, tuple[int, ...]], ValidatorVerdict] = {}
        self._evidence: dict[tuple[RunKey, int], bytes] = {}
        self._keys: dict[tuple[int, frozenset[tuple[bytes, bytes, tuple[int, ...]]]], SigningKey] = {}
        self.auditor = Validator(SigningKey(b"\x00" * 32), 1, self.catalog, ENV)
        self.checker = MemoProofChecker(TrainingProofChecker(self.catalog, ENV))

    # ------------------------------------------------------------------ orders and runs

    def order(self, client: int) -> TrainingOrder:
        """Client ``client``'s order: the shared tiny task with a data-order seed of its own.

        The spec takes a claim's score and its faked segments as independent choices; on real
        training, skipping steps moves the final model. Among the first few seeds, the first on
        which every faked set leaves the score where honest training puts it is chosen, so that
        the abstraction holds; if none does, the first seed is used (and the claims whose score
        moved are gaps, see ``LedgerBridge``)."""
        if client not in self._orders:
            candidates = [
                TrainingOrder(
                    self.task, hashlib.sha256(f"pot-conformance-order-{client}-{attempt}".encode()).digest()
                )
                for attempt in range(SEED_TRIES)
            ]
            self._orders[client] = next((o for o in candidates if self._score_is_stable(o)), candidates[0])
        return self._orders[client]

    def _score_is_stable(self, order: TrainingOrder) -> bool:
        scores = {self._train(order, frozenset(faked)).claim.score for faked in _subsets(self.segments)}
        return len(scores) == 1

    def _train(self, order: TrainingOrder, faked: frozenset[int]) -> TrainingRun:
        if self._prepared is None:
            self._prepared = prepare_task(self.task, self.catalog)
        if faked:
            return train_skipping_steps(order, self._prepared, self.store, ENV, faked)
        return train(order, self._prepared, self.store, ENV, background_writes=False)

    def run(self, key: RunKey) -> TrainingRun:
        """The (cached) run: honest when nothing is faked, else steps skipped in the faked segments;
        a positive ``score_raise`` claims that many basis points above what the model scores."""
        if key not in self._runs:
            order = self.order(key.client)
            if key.score_raise:
                base = self.run(RunKey(key.client, key.faked, 0))
                self._runs[key] = inflate_score(order, base, ENV, key.score_raise)
            else:
                self._runs[key] = self._train(order, key.faked)
        return self._runs[key]

    def honest_score(self, client: int) -> int:
        """The score an honest run of ``client``'s order reaches (the scale spec scores are read on)."""
        return self.run(RunKey(client, frozenset(), 0)).claim.score

    # ------------------------------------------------------------------ validators and challengers

    def audit(self, key: RunKey, segments: tuple[int, ...]) -> ValidatorVerdict:
        """The real validator's verdict after re-executing ``segments`` in that order, then the score."""
        cache_key = (key, segments)
        if cache_key not in self._audits:
            run = self.run(key)
            order = self.order(key.client).encode()
            self._audits[cache_key] = self.auditor.audit(order, run.claim, run.server, segments)
        return self._audits[cache_key]

    def evidence(self, key: RunKey, segment: int) -> bytes:
        """The strongest fraud evidence anyone can build against ``segment`` of a run: what the
        validator's re-execution found, if it accuses that segment, else the committed data of
        the segment as it stands (which the checker will not uphold)."""
        cache_key = (key, segment)
        if cache_key not in self._evidence:
            verdict = self.audit(key, (segment,))
            if not verdict.accepted and verdict.evidence is not None and verdict.evidence_segment == segment:
                self._evidence[cache_key] = verdict.evidence
            else:
                self._evidence[cache_key] = self._committed_segment(self.run(key), segment)
        return self._evidence[cache_key]

    def _committed_segment(self, run: TrainingRun, index: int) -> bytes:
        leaves = list(run.server.leaves)
        tree = MerkleTree(leaves)
        previous = SegmentLeaf.decode(leaves[index - 1]) if index else None
        return FraudEvidence(
            "segment",
            run.claim.encode(),
            index,
            leaves[index],
            tuple(tree.inclusion_path(index)),
            leaves[index - 1] if index else None,
            tuple(tree.inclusion_path(index - 1)) if index else (),
            None if previous is None else run.server.fetch(previous.checkpoint_digest),
            run.server.fetch(SegmentLeaf.decode(leaves[index]).checkpoint_digest),
        ).encode()

    def provable_segments(self, key: RunKey) -> frozenset[int]:
        """Segments for which the ledger's checker upholds the best evidence: the claim's faked set
        as the ledger can ever learn it (the abstraction of the commitment)."""
        run = self.run(key)
        order = self.order(key.client).encode()
        return frozenset(
            s
            for s in range(self.segments)
            if self.checker.segment_of(self.evidence(key, s)) == s
            and self.checker.check_fraud_proof(order, run.claim.commitment, self.evidence(key, s))
        )

    def sample(self, key: SigningKey, run: RunKey, size: int) -> tuple[tuple[int, ...], bytes]:
        """The sample a validator holding ``key`` draws for ``run``'s claim, and its signature."""
        claim = self.run(run).claim
        return draw_sample(key, claim.order_digest, claim.commitment, claim.segments, size)

    def validator_key(
        self, validator: int, wants: Iterable[tuple[RunKey, tuple[int, ...]]], size: int
    ) -> SigningKey:
        """A key for ``validator`` whose signatures derive each wanted sample from each run's claim.

        Tries key seeds in a fixed order, so the choice is deterministic; with no wants it is the
        first seed. Raises ``LookupError`` if no seed within the budget fits (the wants conflict)."""
        wanted = sorted(set(wants), key=repr)
        claims = frozenset(
            (self.run(run).claim.order_digest, self.run(run).claim.commitment, sample)
            for run, sample in wanted
        )
        cache_key = (validator, claims)
        if cache_key not in self._keys:
            for attempt in range(MAX_KEY_TRIES):
                seed = hashlib.sha256(f"pot-conformance-validator-{validator}-{attempt}".encode()).digest()
                key = SigningKey(seed)
                if all(self.sample(key, run, size)[0] == sample for run, sample in wanted):
                    self._keys[cache_key] = key
                    break
            else:
                raise LookupError(f"no key for validator {validator} derives the samples {wanted}")
        return self._keys[cache_key]


class MemoProofChecker:
    """The real ``TrainingProofChecker``, memoised: its answers are a deterministic function of the
    bytes it is given (the ``ProofChecker`` contract), so caching changes nothing but time."""

    def __init__(self, inner: TrainingProofChecker) -> None:
        self.inner = inner
        self._samples: dict[bytes, bool] = {}
        self._proofs: dict[bytes, bool] = {}

    @staticmethod
    def _key(*parts: bytes | Sequence[int]) -> bytes:
        digest = hashlib.sha256()
        for part in parts:
            data = part if isinstance(part, bytes) else repr(tuple(part)).encode()
            digest.update(len(data).to_bytes(8, "big") + data)
        return digest.digest()

    def check_sample(
        self,
        task: bytes,
        proof_root: bytes,
        validator_key: bytes,
        sample: tuple[int, ...],
        seed_signature: bytes,
    ) -> bool:
        key = self._key(task, proof_root, validator_key, sample, seed_signature)
        if key not in self._samples:
            self._samples[key] = self.inner.check_sample(
                task, proof_root, validator_key, sample, seed_signature
            )
        return self._samples[key]

    def check_fraud_proof(self, task: bytes, proof_root: bytes, evidence: bytes) -> bool:
        key = self._key(task, proof_root, evidence)
        if key not in self._proofs:
            self._proofs[key] = self.inner.check_fraud_proof(task, proof_root, evidence)
        return self._proofs[key]

    def segment_of(self, evidence: bytes) -> int | None:
        return self.inner.segment_of(evidence)
