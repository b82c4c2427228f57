"""The constants of a ledger model: one frozen ``LedgerModelConfig`` whose every field is a model
constant (``Model.constants`` is ``config.constants()``, documented in ``CONSTANT_DOCS``), the
``Cast`` of accounts its participant counts describe, and the planted bugs (``LedgerBug``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any

from model_checker.model import ConstantError


class LedgerBug(IntEnum):
    """Planted protocol bugs (spec variants that the checker must catch); NONE is the protocol."""

    NONE = 0
    FINALIZE_IGNORES_CHALLENGES = 1
    SLASH_ON_UNPROVED_CHALLENGE = 2
    PAY_BEFORE_DEADLINE = 3
    FINALIZE_TWICE = 4
    FINALIZE_NEEDS_ALL_VOTES = 5
    CHALLENGE_ACCEPTS_FOREIGN_EVIDENCE = 6
    REFEREE_TRUSTS_SUPPLIED_STATE = 7
    MIDPOINT_OFF_BY_ONE = 8
    DEADLINE_NOT_ENFORCED = 9


STAKE = 1
"""Stake every trainer and validator registers with (the minimum)."""


@dataclass(frozen=True)
class Cast:
    """Who takes part, as account ids: clients, then trainers, validators, challengers.

    Ids follow that order; an account that holds two roles (``client_validates``,
    ``trainer_challenges``) appears in both groups under one id, so the implementation's bookkeeping
    for one account in two roles (a stake slashed to itself, a refund and a reward on one balance) is
    exercised too.
    """

    clients: tuple[int, ...]
    honest_trainers: tuple[int, ...]
    byzantine_trainers: tuple[int, ...]
    honest_validators: tuple[int, ...]
    byzantine_validators: tuple[int, ...]
    challengers: tuple[int, ...]

    @staticmethod
    def of(
        clients: int, honest_trainers: int, byzantine_trainers: int, honest_validators: int,
        byzantine_validators: int, challengers: int, *, client_validates: bool = False,
        trainer_challenges: bool = False,
    ) -> Cast:  # fmt: skip
        """The cast of these counts: disjoint id ranges, except that with ``client_validates`` the
        last validator is the first client's account, and with ``trainer_challenges`` the first
        challenger is the last trainer's account (the Byzantine ones, when there are any)."""
        sizes = (
            clients,
            honest_trainers,
            byzantine_trainers,
            honest_validators,
            byzantine_validators,
            challengers,
        )
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        groups = [list(range(start, start + size)) for start, size in zip(starts, sizes, strict=True)]
        alias: dict[int, int] = {}
        validators, trainers = groups[3] + groups[4], groups[1] + groups[2]
        if client_validates:
            alias[validators[-1]] = groups[0][0]
        if trainer_challenges:
            alias[groups[5][0]] = trainers[-1]
        used = sorted({alias.get(a, a) for group in groups for a in group})
        renumber = {old: new for new, old in enumerate(used)}
        return Cast(*(tuple(renumber[alias.get(a, a)] for a in group) for group in groups))

    @staticmethod
    def of_constants(constants: Mapping[str, Any]) -> Cast:
        """The cast a ledger model's constants describe (its counts are named like the fields)."""
        return Cast.of(
            *(constants[group.name] for group in fields(Cast)),
            client_validates=constants.get("client_validates", False),
            trainer_challenges=constants.get("trainer_challenges", False),
        )

    @property
    def trainers(self) -> tuple[int, ...]:
        return self.honest_trainers + self.byzantine_trainers

    @property
    def validators(self) -> tuple[int, ...]:
        return self.honest_validators + self.byzantine_validators

    @property
    def accounts(self) -> int:
        return len(set(self.clients + self.trainers + self.validators + self.challengers))

    @property
    def shared(self) -> frozenset[int]:
        """Accounts that hold more than one role."""
        every = self.clients + self.trainers + self.validators + self.challengers
        return frozenset(a for a in every if every.count(a) > 1)

    def funds(self, escrow: int, stake: int, bond: int = 0) -> list[int]:
        """Genesis balances: each account holds the sum of its roles' needs (a client the escrow of
        its order, a trainer or validator its stake, a challenger one dispute's bond), so value is
        conserved."""
        balances = [0] * self.accounts
        for account in self.clients:
            balances[account] += escrow
        for account in self.trainers + self.validators:
            balances[account] += stake
        for account in self.challengers:
            balances[account] += bond
        return balances


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
    client_validates: bool = False
    trainer_challenges: bool = False
    dispute_steps: int = 0
    move_window: int = 1
    dispute_bond: int = 1

    def __post_init__(self) -> None:
        counts = [getattr(self, group.name) for group in fields(Cast)]
        if min(counts) < 0 or min(self.bounty, self.fee, self.challenge_window) < 0 or self.deadline < 1:
            raise ConstantError("participant counts, amounts and windows must be >= 0, deadline >= 1")
        validators = self.honest_validators + self.byzantine_validators
        trainers = self.honest_trainers + self.byzantine_trainers
        if self.client_validates and not (self.clients and validators):
            raise ConstantError("client_validates needs a client and a validator")
        if self.trainer_challenges and not (self.challengers and trainers):
            raise ConstantError("trainer_challenges needs a trainer and a challenger")
        if min(self.dispute_steps, self.move_window, self.dispute_bond) < 0:
            raise ConstantError("dispute_steps, move_window and dispute_bond must be >= 0")
        if self.dispute_steps and self.symmetry:
            raise ConstantError("symmetry does not rename disputes: use it with dispute_steps=0")
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
    "challengers": "accounts that may challenge any ACCEPT vote naming any segment, with any evidence",
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
    "client_validates": "the first client's account is also the last validator (Byzantine if any): "
    "it votes on claims on its own order, and a slash of its stake pays itself",
    "trainer_challenges": "the first challenger's account is also the last trainer (Byzantine if any): "
    "a competitor that challenges votes on rival claims with any evidence",
    "dispute_steps": "k, optimizer steps per segment: a challenge or a REJECT opens a bisection dispute "
    "settled by re-executing one step (spec.dispute); 0: re-execute the whole segment at once",
    "move_window": "clock ticks each party of a dispute has for a move (with dispute_steps)",
    "dispute_bond": "what a challenger escrows per dispute, paid to the trainer if it loses "
    "(with dispute_steps; each challenger is funded with one bond)",
}
