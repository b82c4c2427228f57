"""PBFT replicating the PoT ledger: the combined model.

Composition argument (docs/spec.md, "Composition"): PBFT orders opaque
requests and each honest replica's ledger state is ``ledger.execute`` of the
transactions of the requests it executed, in order, from one genesis. The
ledger is a pure, deterministic function of that log, so

* the ledger state is *derived* from PBFT state (it adds no state and no
  interleaving: the combined model has exactly the PBFT model's states), and
* every ledger invariant becomes an invariant of the combined model by
  evaluating it on each honest replica's derived ledger state.

PBFT's ExecutedPrefix says honest logs are prefixes of one committed order,
so each honest ledger state is the ledger's state after a prefix of one
order of the submitted transactions; the ledger's own models check the
ledger over every such order, and this model checks the two together.

A request is a batch of ledger transactions (PBFT batches requests, C&L 5.1),
executed atomically in order; a null request executes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any

from model_checker.model import ConstantError, Model
from spec import pbft
from spec.ledger import (
    Claim,
    Finalize,
    LedgerParams,
    LedgerState,
    Order,
    Receipt,
    Register,
    Role,
    Tick,
    Tx,
    Validate,
    Verdict,
    apply,
    genesis,
    total_value,
)
from spec.ledger.properties import Honesty, LedgerPredicate, ledger_invariants

CLIENT, TRAINER, HONEST_VALIDATOR, BYZANTINE_VALIDATOR = 0, 1, 2, 3
"""Accounts of the training round the combined models replicate."""

PARAMS = LedgerParams(
    segments=2,
    sample_size=1,
    validators=2,
    byzantine_validators=1,
    min_trainer_stake=1,
    min_validator_stake=1,
    challenge_window=1,
)
HONESTY = Honesty(validators=frozenset({HONEST_VALIDATOR}), trainers=frozenset())
BOUNTY, FEE = 2, 2
"""The round's amounts by default (model constants ``bounty`` and ``fee``)."""


def round_genesis(bounty: int, fee: int) -> LedgerState:
    """Funds for the round: the client its order's escrow, each trainer and validator its stake."""
    return genesis(PARAMS, (bounty + fee, 1, 1, 1))


def training_round(bounty: int, fee: int) -> tuple[tuple[Tx, ...], ...]:
    """Client requests, one batch of transactions each: set-up and an order escrowing ``bounty +
    fee``; then a Byzantine trainer's claim faking segment 1, a Byzantine ACCEPT and an honest
    REJECT proving the fake, the clock reaching settlement, and Finalize; then a second Finalize (a
    retry that must not pay twice). In this order the fake is caught and the client refunded; PBFT
    may commit them in any order and the ledger rejects what comes too early."""
    return (
        (
            Register(TRAINER, Role.TRAINER, 1),
            Register(HONEST_VALIDATOR, Role.VALIDATOR, 1),
            Register(BYZANTINE_VALIDATOR, Role.VALIDATOR, 1),
            Order(CLIENT, bounty=bounty, fee=fee, deadline=1),
        ),
        (
            Claim(TRAINER, order=0, model=1, score=2, faked=frozenset({1})),
            Validate(BYZANTINE_VALIDATOR, 0, TRAINER, Verdict.ACCEPT, 2, frozenset({0})),
            Validate(HONEST_VALIDATOR, 0, TRAINER, Verdict.REJECT, 0, frozenset({1}), evidence=1),
            Tick(),
            Tick(),
            Finalize(0),
        ),
        (Finalize(0),),
    )


ROUND = training_round(BOUNTY, FEE)
GENESIS = round_genesis(BOUNTY, FEE)


class LedgerService:
    """The ledger as PBFT's ``Application``: request r runs the transactions ``batches[r - 1]``."""

    def __init__(self, batches: tuple[tuple[Tx, ...], ...], start: LedgerState, honesty: Honesty) -> None:
        self.batches = batches
        self.start = start
        self.state_after = lru_cache(maxsize=4096)(self._state_after)
        self.receipts = lru_cache(maxsize=4096)(self._receipts)
        supply = total_value(start)
        self.predicates = ledger_invariants(supply, honesty)

    def _run(self, state: LedgerState, request: int) -> tuple[LedgerState, tuple[Receipt, ...]]:
        receipts = []
        for tx in self.batches[request - 1] if request != pbft.NULL else ():
            state, receipt = apply(state, tx)
            receipts.append(receipt)
        return state, tuple(receipts)

    def _state_after(self, ops: pbft.Ops) -> LedgerState:
        """The ledger state of a replica that executed ``ops`` (cached: few distinct logs recur)."""
        if not ops:
            return self.start
        return self._run(self.state_after(ops[:-1]), ops[-1])[0]

    def _receipts(self, ops: pbft.Ops, request: int) -> tuple[Receipt, ...]:
        """The reply to ``request``: the receipts of its transactions where ``ops`` executed it."""
        position = ops.index(request)
        return self._run(self.state_after(ops[:position]), request)[1]

    def result(self, ops: pbft.Ops, request: int) -> Hashable:
        return self.receipts(ops, request)

    def on_log(self, holds: LedgerPredicate) -> Callable[[pbft.Ops], bool]:
        """A ledger invariant as a predicate on an executed log (cached: few distinct logs recur)."""

        @lru_cache(maxsize=4096)
        def on(ops: pbft.Ops) -> bool:
            return holds(self.state_after(ops))

        return on

    def application(self) -> pbft.Application:
        invariants = {name: self.on_log(holds) for name, holds in self.predicates.items()}
        return pbft.Application("pot-ledger", self.result, invariants)


def build(
    *, name: str = "combined", bounty: int = BOUNTY, fee: int = FEE, **constants: Any
) -> Model[pbft.State]:
    """The PBFT model whose requests are the training round's transaction batches.

    ``requests`` (how many of the round's batches clients send) must be at most ``len(ROUND)``;
    ``bounty`` and ``fee`` are the order's amounts.
    """
    requests = constants["requests"]
    if not 1 <= requests <= len(ROUND):
        raise ConstantError(f"combined models have 1..{len(ROUND)} requests, not {requests}")
    if bounty < 1 or fee < 0:
        raise ConstantError(f"combined models need bounty >= 1 and fee >= 0, not {bounty} and {fee}")
    service = LedgerService(training_round(bounty, fee)[:requests], round_genesis(bounty, fee), HONESTY)
    model = pbft.build(name=name, app=service.application(), **constants)
    return replace(model, constants={**model.constants, "bounty": bounty, "fee": fee})


CONSTANT_DOCS: Mapping[str, str] = {
    **pbft.CONSTANT_DOCS,
    "requests": f"client requests: the first `requests` of the {len(ROUND)} transaction batches of "
    "the training round (set-up and order; claim, votes and settlement; a retried Finalize)",
    "bounty": "the round's order escrows this bounty for the winning trainer",
    "fee": "the round's order escrows this fee for the validators proved right",
}
