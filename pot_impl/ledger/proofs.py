"""The seam between the ledger and the proof-of-training machinery.

The ledger stores tasks, claims and evidence as opaque canonical bytes and
asks a ``ProofChecker`` the only two questions whose answers depend on real
training. The ``task`` argument is the committed order,
``codec.encode(CommittedOrder(posted task bytes, data-order seed))``: the seed is
the one the ledger derived from its own state when the order executed (see
``Ledger._data_order_seed``), never one the client or a trainer supplied.
Every coordinator must reach the same answer from the same bytes, so an
implementation must be deterministic (tier-A re-execution in the pinned
environment).
"""

from __future__ import annotations

from typing import Protocol


class ProofChecker(Protocol):
    """Decides training-proof questions for the ledger, deterministically."""

    def check_sample(
        self,
        task: bytes,
        proof_root: bytes,
        validator_key: bytes,
        sample: tuple[int, ...],
        seed_signature: bytes,
    ) -> bool:
        """True iff ``sample`` is the segment sample derived from the validator's signature
        ``seed_signature`` over (order, proof root), so a validator cannot pick its sample freely."""
        ...

    def check_fraud_proof(self, task: bytes, proof_root: bytes, evidence: bytes) -> bool:
        """True iff ``evidence`` proves that a segment committed under ``proof_root`` was not
        produced by honest training of ``task`` (re-executing that one segment)."""
        ...

    def segment_of(self, evidence: bytes) -> int | None:
        """The segment index that ``evidence`` is about (None if it does not decode). The ledger
        upholds a fraud proof only for the segment the transaction names, so a valid proof about
        one segment cannot be used to slash a validator that sampled another."""
        ...
