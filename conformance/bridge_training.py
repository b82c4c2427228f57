"""Real training behind the ledger bridge: orders, trainers (honest or faking), validators, challengers.

Every claim the ledger bridge posts comes from the real trainer
(``pot_impl.training.trainer.train``) or a real cheating trainer
(``conformance.adversaries.train_skipping_steps``) on a tiny CPU task, and
every vote or challenge carries what the real ``Validator`` produced. Runs,
audits and proof checks are deterministic functions of their inputs, so one
``TrainingWorld`` caches them for the whole process, keyed by the committed
order's digest: behaviours that reach the same ledger state when an order is
placed share its runs.

Runs train only committed orders: the task the client posted with the
data-order seed the ledger fixed (``committed``, read from the ledger's
``OrderRecord``). The client's one freedom is its task; the world's clients
use it (``choose_task``) to pick the initial-weights seed, knowing the seed
the ledger is about to fix (anyone can execute a transaction on a copy of the
replicated state), so that (1) faking segments does not move the final score,
which the spec takes as independent of the faked set, and (2) each
validator's fixed Ed25519 key derives, from the claims the replayed behaviour
makes, exactly the samples that behaviour needs. Samples are never chosen:
the ledger accepts only the sample derived from the validator's signature over
(order, proof root).
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey

from conformance.adversaries import inflate_score, train_skipping_steps
from pot_impl.ledger.proofs import StepRuling
from pot_impl.training.architectures import resolve_arch_params
from pot_impl.training.checkpoint import Checkpoint, CheckpointStore, encode_checkpoint
from pot_impl.training.datasets import DatasetCatalog, synthetic_dataset
from pot_impl.training.dispute import first_disagreement, trajectory
from pot_impl.training.environment import Environment
from pot_impl.training.evidence import committed_segment
from pot_impl.training.proof_checker import TrainingProofChecker
from pot_impl.training.reexecution import Reexecutor
from pot_impl.training.reproducible import NATIVE, RoundingLog
from pot_impl.training.sampling import draw_sample
from pot_impl.training.segments import SegmentLeaf
from pot_impl.training.task import (
    DatasetRef,
    OptimizerSpec,
    PreparedTask,
    ScheduleSpec,
    TrainingOrder,
    TrainingTask,
    committed_order,
    prepare_task,
)
from pot_impl.training.trainer import TrainingRun, train
from pot_impl.training.validator import Validator
from pot_impl.training.validator import Verdict as ValidatorVerdict

ENV = Environment("cpu", 1)
"""One pinned environment for trainers, validators and the ledger's checker (tier A, bit-exact)."""

SEGMENT_LENGTH = 2
FIRST_INIT_SEED = 5
TASK_TRIES = 256
"""Initial-weights seeds a client tries (``choose_task``); ledger-tiny needs about 6 on average."""


def _subsets(size: int) -> list[frozenset[int]]:
    return [frozenset(i for i in range(size) if mask >> i & 1) for mask in range(1 << size)]


def tiny_task(
    segments: int, init_seed: int = FIRST_INIT_SEED, dispute_steps: int = 0, numerics: str = NATIVE
) -> TrainingTask:
    """A two-layer MLP on synthetic blobs: a few milliseconds per segment on one CPU thread. With the
    dispute game, segments of ``dispute_steps`` steps whose leaves commit every step's digest."""
    segment_length = dispute_steps or SEGMENT_LENGTH
    params = {"examples": 96, "features": 8, "classes": 4, "seed": 11}
    return TrainingTask(
        architecture="mlp",
        arch_params=resolve_arch_params("mlp", {"hidden": 16, "depth": 1}),
        dataset=DatasetRef(synthetic_dataset("blobs", params).digest.hex(), "blobs", params),
        optimizer=OptimizerSpec("adam", 0.001),
        schedule=ScheduleSpec("constant", 0),
        batch_size=8,
        steps=segments * segment_length,
        segment_length=segment_length,
        init_seed=init_seed,
        eval_examples=16,
        step_digests=dispute_steps > 0,
        numerics=numerics,
    )


@dataclass(frozen=True)
class RunKey:
    """Which run: the committed order it trains (by digest), the faked segments, the claimed-score
    raise, and how many of each faked segment's last steps the trainer skipped."""

    order: bytes
    faked: frozenset[int]
    score_raise: int
    skipped: int = 1


class TrainingWorld:
    """Committed orders, cached runs and their proof material, audits, fraud evidence, validator keys."""

    def __init__(self, segments: int, dispute_steps: int = 0, numerics: str = NATIVE) -> None:
        self.segments = segments
        self.dispute_steps = dispute_steps
        self.numerics = numerics
        self._root = Path(tempfile.mkdtemp(prefix="pot-conform-"))
        atexit.register(shutil.rmtree, self._root, True)
        self.store = CheckpointStore(self._root / "checkpoints")
        self.catalog = DatasetCatalog(None)
        self._orders: dict[bytes, tuple[TrainingOrder, PreparedTask]] = {}
        self._stable: dict[bytes, bool] = {}
        self._runs: dict[RunKey, TrainingRun] = {}
        self._audits: dict[tuple[RunKey, tuple[int, ...]], ValidatorVerdict] = {}
        self._evidence: dict[tuple[RunKey, int], bytes] = {}
        self._forged_at: dict[RunKey, tuple[int, ...]] = {}
        self._trajectories: dict[tuple[RunKey, int], list[bytes]] = {}
        self.auditor = Validator(SigningKey(b"\x00" * 32), 1, self.catalog, ENV)
        self.checker = MemoProofChecker(TrainingProofChecker(self.catalog, ENV))

    # ------------------------------------------------------------------ orders and runs

    def committed(self, task: bytes, data_order_seed: bytes) -> bytes:
        """The digest of the order a ledger committed (the posted task bytes and the seed the ledger
        fixed, as in its ``OrderRecord``); runs of it are keyed by this digest."""
        return self._add(committed_order(task, data_order_seed))

    def _add(self, order: TrainingOrder) -> bytes:
        if order.digest not in self._orders:
            self._orders[order.digest] = (order, prepare_task(order.task, self.catalog))
        return order.digest

    def order(self, digest: bytes) -> TrainingOrder:
        return self._orders[digest][0]

    def task(self, init_seed: int = FIRST_INIT_SEED) -> TrainingTask:
        """The world's tiny task with initial-weights seed ``init_seed``."""
        return tiny_task(self.segments, init_seed, self.dispute_steps, self.numerics)

    def choose_task(self, data_order_seed: bytes, fits: Callable[[bytes], bool]) -> TrainingTask:
        """The task a client posts when the ledger is about to fix ``data_order_seed``: the tiny task
        with the first initial-weights seed whose order is score-stable (every faked set leaves the
        score where honest training puts it, as the spec's abstraction assumes) and ``fits`` (given
        the order's digest; the replayed behaviour's samples). If none within ``TASK_TRIES`` does,
        the first score-stable one, else the first (the steps that then cannot be replayed are gaps,
        see ``LedgerBridge``)."""
        candidates = [
            TrainingOrder(self.task(FIRST_INIT_SEED + attempt), data_order_seed)
            for attempt in range(TASK_TRIES)
        ]
        stable = (order for order in candidates if self._score_is_stable(self._add(order)))
        fitting = next((order for order in stable if fits(order.digest)), None)
        if fitting is None:
            fitting = next((o for o in candidates if self._score_is_stable(self._add(o))), candidates[0])
        return fitting.task

    def _score_is_stable(self, order: bytes) -> bool:
        if order not in self._stable:
            scores = {
                self.run(RunKey(order, frozenset(faked), 0, skipped)).claim.score
                for faked in _subsets(self.segments)
                for skipped in self.skips()
            }
            self._stable[order] = len(scores) == 1
        return self._stable[order]

    def skips(self) -> range:
        """How many of a faked segment's last steps a cheating trainer may skip: with the dispute
        game, 1 to k (its first invalid step is any of the k); otherwise the last one."""
        return range(1, (self.dispute_steps or 1) + 1)

    def run(self, key: RunKey) -> TrainingRun:
        """The (cached) run: honest when nothing is faked, else steps skipped in the faked segments;
        a positive ``score_raise`` claims that many basis points above what the model scores."""
        if key not in self._runs:
            order, prepared = self._orders[key.order]
            if key.score_raise:
                base = self.run(dataclasses.replace(key, score_raise=0))
                self._runs[key] = inflate_score(order, base, ENV, key.score_raise)
            elif key.faked:
                self._runs[key] = train_skipping_steps(
                    order, prepared, self.store, ENV, key.faked, key.skipped
                )
            else:
                self._runs[key] = train(order, prepared, self.store, ENV, background_writes=False)
        return self._runs[key]

    def honest_score(self, order: bytes) -> int:
        """The score an honest run of the order reaches (the scale spec scores are read on)."""
        return self.run(RunKey(order, frozenset(), 0)).claim.score

    # ------------------------------------------------------------------ validators and challengers

    def audit(self, key: RunKey, segments: tuple[int, ...]) -> ValidatorVerdict:
        """The real validator's verdict after re-executing ``segments`` in that order, then the score."""
        cache_key = (key, segments)
        if cache_key not in self._audits:
            run = self.run(key)
            order = self.order(key.order).encode()
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
                run = self.run(key)
                self._evidence[cache_key] = committed_segment(run.claim, run.server, segment)
        return self._evidence[cache_key]

    def provable_segments(self, key: RunKey) -> frozenset[int]:
        """Segments for which the ledger's checker upholds the best evidence: the claim's faked set
        as the ledger can ever learn it (the abstraction of the commitment)."""
        run = self.run(key)
        order = self.order(key.order).encode()
        return frozenset(
            s
            for s in range(self.segments)
            if self.checker.segment_of(self.evidence(key, s)) == s
            and self.checker.check_fraud_proof(order, run.claim.commitment, self.evidence(key, s))
        )

    # ------------------------------------------------------------------ the dispute game

    def opening(self, key: RunKey, segment: int) -> bytes:
        """What the trainer opens its committed step digests of ``segment`` with (``Reveal``)."""
        run = self.run(key)
        return committed_segment(run.claim, run.server, segment, checkpoints=False)

    def honest_trajectory(self, key: RunKey, segment: int) -> list[bytes]:
        """The digests after each step of ``segment`` that honest re-execution from its committed
        start gives: what an honest challenger compares the revealed digests with (cached: the
        abstraction and every honest bisection ask for it)."""
        if (key, segment) not in self._trajectories:
            run = self.run(key)
            order, prepared = self._orders[key.order]
            replayer = Reexecutor(order, prepared, ENV)
            leaf = SegmentLeaf.decode(run.server.leaves[segment])
            first = segment * order.task.segment_length
            start = self._segment_start(run, replayer, segment)
            log = RoundingLog.decode(leaf.rounding)
            self._trajectories[key, segment] = trajectory(replayer, start, first, len(leaf.losses), log)
        return self._trajectories[key, segment]

    def forged_at(self, key: RunKey) -> tuple[int, ...]:
        """Per segment, the first committed step that is not an honest step from the committed
        start (0 for none): the claim's per-step commitment as the ledger specification sees it."""
        if key not in self._forged_at:
            committed = [SegmentLeaf.decode(leaf) for leaf in self.run(key).server.leaves]
            firsts = (
                first_disagreement([*leaf.steps, leaf.checkpoint_digest], self.honest_trajectory(key, index))
                for index, leaf in enumerate(committed)
            )
            self._forged_at[key] = tuple(0 if first is None else first + 1 for first in firsts)
        return self._forged_at[key]

    def supplied_state(self, key: RunKey, segment: int, step: int, forged: bool = False) -> bytes:
        """The encoded state a trainer supplies in a dispute as its state after ``step`` of
        ``segment``'s steps: the one it committed (a cheater's is its own: honest steps up to the
        first it skipped, then those weights with the step counted on, as ``train_skipping_steps``
        commits them); ``forged``, the honest state one step further passed off as that one."""
        run = self.run(key)
        order, prepared = self._orders[key.order]
        replayer = Reexecutor(order, prepared, ENV)
        first = segment * order.task.segment_length
        if forged:
            trained = step + 1
        elif segment in key.faked:
            trained = min(step, order.task.segment_length - key.skipped)
        else:
            trained = step
        replayer.restore_at(self._segment_start(run, replayer, segment), first)
        leaf = SegmentLeaf.decode(run.server.leaves[segment])
        replayer.session.run_steps(trained, RoundingLog.decode(leaf.rounding))
        replayer.session.step = first + step
        return encode_checkpoint(replayer.session.checkpoint())

    @staticmethod
    def _segment_start(run: TrainingRun, replayer: Reexecutor, segment: int) -> Checkpoint:
        if not segment:
            return replayer.initial
        return run.server.store.load(SegmentLeaf.decode(run.server.leaves[segment - 1]).checkpoint_digest)

    def sample(self, key: SigningKey, run: RunKey, size: int) -> tuple[tuple[int, ...], bytes]:
        """The sample a validator holding ``key`` draws for ``run``'s claim, and its signature."""
        claim = self.run(run).claim
        return draw_sample(key, claim.order_digest, claim.commitment, claim.segments, size)

    @staticmethod
    def validator_key(validator: int) -> SigningKey:
        """Validator ``validator``'s key: fixed, so that it cannot depend on any order (a validator may
        register before the orders it will sample; the orders' tasks are chosen to fit it instead)."""
        return SigningKey(hashlib.sha256(f"pot-conformance-validator-{validator}".encode()).digest())


class MemoProofChecker:
    """The real ``TrainingProofChecker``, memoised: its answers are a deterministic function of the
    bytes it is given (the ``ProofChecker`` contract), so caching changes nothing but time."""

    def __init__(self, inner: TrainingProofChecker) -> None:
        self.inner = inner
        self._samples: dict[bytes, bool] = {}
        self._proofs: dict[bytes, bool] = {}
        self._digests: dict[bytes, bytes | None] = {}
        self._rulings: dict[bytes, StepRuling | None] = {}

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

    def fits_dispute_game(self, task: bytes, steps: int) -> bool:
        return self.inner.fits_dispute_game(task, steps)

    def step_digest(
        self, task: bytes, proof_root: bytes, segment: int, step: int, opening: bytes
    ) -> bytes | None:
        key = self._key(task, proof_root, (segment, step), opening)
        if key not in self._digests:
            self._digests[key] = self.inner.step_digest(task, proof_root, segment, step, opening)
        return self._digests[key]

    def referee(
        self, task: bytes, proof_root: bytes, segment: int, step: int, state: bytes, opening: bytes
    ) -> StepRuling | None:
        key = self._key(task, proof_root, (segment, step), state, opening)
        if key not in self._rulings:
            self._rulings[key] = self.inner.referee(task, proof_root, segment, step, state, opening)
        return self._rulings[key]
