"""The application a node replicates: the PoT ledger with the training proof checker.

The proof checker re-executes training segments with PyTorch, but only
``Validate`` and ``Challenge`` transactions ask it anything. It is imported
on first use, so a node that only orders transfers and registrations starts
in a fraction of a second and does not carry torch's memory (16 replicas on
one small machine in the benchmark).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from pot_impl import codec
from pot_impl.ledger.ledger import Ledger, Reason
from pot_impl.ledger.proofs import ProofChecker, StepRuling
from pot_impl.ledger.records import DisputeOutcome, LedgerParams, OrderStatus
from pot_impl.ledger.transactions import Receipt

REQUEST_TOO_LARGE = "request-too-large"
"""The reason of the receipt a replica answers an oversized request with (it is never ordered)."""
UNKNOWN_ACCOUNT = Reason.UNKNOWN_ACCOUNT.value
"""The reason of the receipt a replica answers a request from a sender without an account with
(it is never ordered: the ledger would refuse it for that reason whatever came before it)."""


class LazyTrainingProofChecker:
    """``ProofChecker`` that loads ``TrainingProofChecker`` (and torch) when first asked."""

    def __init__(self) -> None:
        self._checker: ProofChecker | None = None

    def _load(self) -> ProofChecker:
        if self._checker is None:
            from pot_impl.training.proof_checker import TrainingProofChecker

            self._checker = TrainingProofChecker()
        return self._checker

    def check_sample(
        self,
        task: bytes,
        proof_root: bytes,
        validator_key: bytes,
        sample: tuple[int, ...],
        seed_signature: bytes,
    ) -> bool:
        return self._load().check_sample(task, proof_root, validator_key, sample, seed_signature)

    def check_fraud_proof(self, task: bytes, proof_root: bytes, evidence: bytes) -> bool:
        return self._load().check_fraud_proof(task, proof_root, evidence)

    def segment_of(self, evidence: bytes) -> int | None:
        return self._load().segment_of(evidence)

    def fits_dispute_game(self, task: bytes, steps: int) -> bool:
        return self._load().fits_dispute_game(task, steps)

    def step_digest(
        self, task: bytes, proof_root: bytes, segment: int, step: int, opening: bytes
    ) -> bytes | None:
        return self._load().step_digest(task, proof_root, segment, step, opening)

    def referee(
        self, task: bytes, proof_root: bytes, segment: int, step: int, state: bytes, opening: bytes
    ) -> StepRuling | None:
        return self._load().referee(task, proof_root, segment, step, state, opening)


def build_ledger(params: LedgerParams, genesis: Mapping[str, int]) -> Ledger:
    return Ledger(params, genesis, LazyTrainingProofChecker())


def ledger_summary(ledger: Ledger) -> dict[str, Any]:
    """A few numbers that let a user see the ledgers agree and move."""
    orders = Counter(OrderStatus(order.status).name.lower() for order in ledger.orders.values())
    return {
        "height": ledger.height,
        "accounts": len(ledger.accounts),
        "orders": dict(sorted(orders.items())),
        "claims": len(ledger.claims),
        "open_disputes": sum(d.outcome == DisputeOutcome.OPEN for d in ledger.disputes.values()),
        "total_value": ledger.total_value(),
    }


def refusal_result(reason: str) -> bytes:
    """The reply result for a request refused before ordering: a receipt at height 0 (no batch
    executed it) giving ``reason``, so a client reads it like any rejected transaction."""
    return codec.encode(Receipt(0, reason))
