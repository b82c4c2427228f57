"""The constants of a ledger model: one frozen ``LedgerModelConfig`` whose every field is a model
constant (``Model.constants`` is ``config.constants()``, documented in ``CONSTANT_DOCS``), and the
``Cast`` of accounts its participant counts describe."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from model_checker.model import ConstantError
from spec.ledger import LedgerBug

STAKE = 1
"""Stake every trainer and validator registers with (the minimum)."""


@dataclass(frozen=True)
class Cast:
    """Who takes part, as account ids: clients, then trainers, validators, challengers."""

    clients: tuple[int, ...]
    honest_trainers: tuple[int, ...]
    byzantine_trainers: tuple[int, ...]
    honest_validators: tuple[int, ...]
    byzantine_validators: tuple[int, ...]
    challengers: tuple[int, ...]

    @staticmethod
    def of(
        clients: int, honest_trainers: int, byzantine_trainers: int, honest_validators: int,
        byzantine_validators: int, challengers: int,
    ) -> Cast:  # fmt: skip
        sizes = (
            clients,
            honest_trainers,
            byzantine_trainers,
            honest_validators,
            byzantine_validators,
            challengers,
        )
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        groups = [tuple(range(start, start + size)) for start, size in zip(starts, sizes, strict=True)]
        return Cast(*groups)

    @staticmethod
    def of_constants(constants: Mapping[str, Any]) -> Cast:
        """The cast a ledger model's constants describe (its counts are named like the fields)."""
        return Cast.of(*(constants[group.name] for group in fields(Cast)))

    @property
    def trainers(self) -> tuple[int, ...]:
        return self.honest_trainers + self.byzantine_trainers

    @property
    def validators(self) -> tuple[int, ...]:
        return self.honest_validators + self.byzantine_validators

    @property
    def accounts(self) -> int:
        return len(self.clients + self.trainers + self.validators + self.challengers)


@dataclass(frozen=True)
class LedgerModelConfig:
    """The constants of one ledger model (see ``CONSTANT_DOCS``); every field is a model constant."""

    clients: int = 1
    honest_trainers: int = 1
    byzantine_trainers: int = 1
    honest_validators: int = 1
    byzantine_validators: int = 1
    challengers: int = 1
    segments: int = 2
    sample_size: int = 1
    byzantine_scores: tuple[int, ...] = (1, 2)
    bounty: int = 2
    fee: int = 2
    deadline: int = 1
    challenge_window: int = 1
    bug: LedgerBug = LedgerBug.NONE
    fair: tuple[str, ...] = ("Tick", "Finalize")
    symmetry: bool = False

    def __post_init__(self) -> None:
        counts = [getattr(self, group.name) for group in fields(Cast)]
        if min(counts) < 0 or min(self.bounty, self.fee, self.challenge_window) < 0 or self.deadline < 1:
            raise ConstantError("participant counts, amounts and windows must be >= 0, deadline >= 1")
        if not 1 <= self.sample_size <= self.segments:
            raise ConstantError(
                f"need 1 <= sample_size <= segments, got {self.sample_size} and {self.segments}"
            )

    def constants(self) -> dict[str, Any]:
        """Every field, by name: the model's ``constants``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


CONSTANT_DOCS = {
    "clients": "clients, each placing one order",
    "honest_trainers": "trainers that claim their true score (1, 2, ...) with no faked segment",
    "byzantine_trainers": "trainers that claim any score in byzantine_scores with any set of faked segments",
    "honest_validators": "validators that sample sample_size segments and vote what the sample shows",
    "byzantine_validators": "validators that submit any well-formed vote, or none (also the ledger's f)",
    "challengers": "accounts that may challenge any ACCEPT vote naming any segment",
    "segments": "S, training segments per claim",
    "sample_size": "q, segments each validator re-executes",
    "byzantine_scores": "scores a Byzantine trainer may claim",
    "bounty": "bounty each order escrows for the winning trainer",
    "fee": "fee each order escrows for the validators who were right",
    "deadline": "clock value at which claims and votes close",
    "challenge_window": "ticks after the deadline during which challenges are still accepted",
    "bug": "a planted protocol bug (spec.ledger.LedgerBug), or none (the protocol)",
    "fair": "actions under weak fairness (liveness)",
    "symmetry": "rename segments and interchangeable validators (safety only: use with --no-liveness)",
}
