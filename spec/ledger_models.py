"""The ledger checked on its own: every order in which PBFT could commit what participants submit.

Each action is "a participant submits transaction X and the ledger executes
it"; the checker's interleaving of actions ranges over every total order PBFT
could commit. Participants are modelled by capability: an honest trainer
claims its true score with no faked segment, a Byzantine trainer claims any
score with any set of faked segments; an honest validator samples any q
segments and votes what that sample shows, a Byzantine validator submits any
well-formed vote (or none); the challenger names any segment of any ACCEPT vote.
Rejected transactions leave the ledger unchanged, so they are omitted as
successors (they would be stuttering steps); tests/spec/test_ledger.py checks
the rejections themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, combinations, permutations
from typing import Any

from model_checker.model import Action, Model, leads_to, weak_fairness
from spec.ledger import (
    NO_SEGMENT,
    Challenge,
    Claim,
    ClaimRecord,
    Finalize,
    LedgerBug,
    LedgerParams,
    LedgerState,
    Order,
    Reason,
    Register,
    Role,
    Tick,
    Tx,
    Validate,
    Verdict,
    apply,
    challenges_open,
    claims_open,
    find_claim,
    genesis,
    total_value,
)
from spec.ledger_properties import Honesty, ledger_invariants, no_order_open, some_order_open

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

    @property
    def trainers(self) -> tuple[int, ...]:
        return self.honest_trainers + self.byzantine_trainers

    @property
    def validators(self) -> tuple[int, ...]:
        return self.honest_validators + self.byzantine_validators

    @property
    def accounts(self) -> int:
        return len(self.clients + self.trainers + self.validators + self.challengers)


def subsets(items: range, sizes: Iterable[int]) -> list[frozenset[int]]:
    """Every subset of ``items`` whose size is in ``sizes``."""
    return [frozenset(c) for c in chain.from_iterable(combinations(items, k) for k in sizes)]


def build_ledger_model(
    name: str = "ledger",
    clients: int = 1,
    honest_trainers: int = 1,
    byzantine_trainers: int = 1,
    honest_validators: int = 1,
    byzantine_validators: int = 1,
    challengers: int = 1,
    segments: int = 2,
    sample_size: int = 1,
    byzantine_scores: tuple[int, ...] = (1, 2),
    bounty: int = 2,
    fee: int = 2,
    deadline: int = 1,
    challenge_window: int = 1,
    bug: LedgerBug = LedgerBug.NONE,
    fair: tuple[str, ...] = ("Tick", "Finalize"),
    symmetry: bool = True,
) -> Model[LedgerState]:
    """The ledger model for one cast.

    ``bug`` plants a protocol bug; ``fair`` names the weakly fair actions.
    """
    cast = Cast.of(
        clients, honest_trainers, byzantine_trainers, honest_validators, byzantine_validators, challengers
    )
    params = LedgerParams(
        segments=segments,
        sample_size=sample_size,
        validators=len(cast.validators),
        byzantine_validators=byzantine_validators,
        min_trainer_stake=STAKE,
        min_validator_stake=STAKE,
        challenge_window=challenge_window,
    )
    funds = [bounty + fee] * len(cast.clients) + [STAKE] * (len(cast.trainers) + len(cast.validators))
    start = genesis(params, funds + [0] * len(cast.challengers))
    honesty = Honesty(frozenset(cast.honest_validators), frozenset(cast.honest_trainers))
    samples = subsets(range(segments), [sample_size])
    fakes = subsets(range(segments), range(segments + 1))
    horizon = deadline + challenge_window

    def submit(state: LedgerState, tx: Tx) -> LedgerState | None:
        successor, receipt = apply(state, tx, bug)
        return successor if receipt.ok else None

    def enabled(
        state: LedgerState, witnesses: Iterable[tuple[tuple[Any, ...], Tx]]
    ) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        for values, tx in witnesses:
            successor = submit(state, tx)
            if successor is not None:
                yield values, successor

    def tick(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        if state.now < horizon:
            yield from enabled(state, [((), Tick())])

    def register(role: Role, accounts: tuple[int, ...]) -> Callable[[LedgerState], Iterable[Any]]:
        return lambda state: enabled(state, (((a,), Register(a, role, STAKE)) for a in accounts))

    def place_order(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        placed = {o.client for o in state.orders}
        fresh = (c for c in cast.clients if c not in placed)
        return enabled(state, (((c,), Order(c, bounty, fee, deadline)) for c in fresh))

    def claimable(state: LedgerState) -> list[int]:
        """Orders still taking claims and votes (participants read the ledger before submitting)."""
        return [o for o in range(len(state.orders)) if claims_open(state, o) is Reason.OK]

    def unvoted(state: LedgerState, validators: tuple[int, ...]) -> Iterator[tuple[ClaimRecord, int]]:
        """(claim, validator) pairs still open for that validator's one vote."""
        open_orders = claimable(state)
        voted = {(v.order, v.trainer, v.validator) for v in state.votes}
        for claim in state.claims:
            if claim.order in open_orders:
                for v in validators:
                    if (claim.order, claim.trainer, v) not in voted:
                        yield claim, v

    def honest_claim(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        return enabled(
            state,
            (
                ((t, o), Claim(t, o, t, honest_score(t), frozenset()))
                for t in cast.honest_trainers
                for o in claimable(state)
            ),
        )

    def honest_score(trainer: int) -> int:
        """Honest trainers' true scores: 1, 2, ... in account order (so ranks differ)."""
        return 1 + cast.honest_trainers.index(trainer)

    def byzantine_claim(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        return enabled(
            state,
            (
                ((t, o, score, faked), Claim(t, o, t, score, faked))
                for t in cast.byzantine_trainers
                for o in claimable(state)
                if find_claim(state, o, t) is None
                for score in byzantine_scores
                for faked in fakes
            ),
        )

    def honest_validate(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        def votes() -> Iterator[tuple[tuple[Any, ...], Tx]]:
            for claim, v in unvoted(state, cast.honest_validators):
                for sample in samples:
                    hits = sorted(sample & claim.faked)
                    verdict = Verdict.REJECT if hits else Verdict.ACCEPT
                    for evidence in hits or [NO_SEGMENT]:
                        tx = Validate(v, claim.order, claim.trainer, verdict, claim.score, sample, evidence)
                        yield (v, claim.order, claim.trainer, sample, evidence), tx

        return enabled(state, votes())

    def byzantine_validate(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        def votes() -> Iterator[tuple[tuple[Any, ...], Tx]]:
            for claim, v in unvoted(state, cast.byzantine_validators):
                for sample in samples:
                    for evidence in [NO_SEGMENT, *sorted(sample)]:
                        verdict = Verdict.ACCEPT if evidence == NO_SEGMENT else Verdict.REJECT
                        tx = Validate(v, claim.order, claim.trainer, verdict, claim.score, sample, evidence)
                        yield (v, claim.order, claim.trainer, verdict, sample, evidence), tx

        return enabled(state, votes())

    def challenge(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        return enabled(
            state,
            (
                ((c, v.order, v.trainer, v.validator, s), Challenge(c, v.order, v.trainer, v.validator, s))
                for c in cast.challengers
                for v in state.votes
                if v.verdict is Verdict.ACCEPT and challenges_open(state, v.order) is Reason.OK
                for s in range(segments)
            ),
        )  # fmt: skip

    def finalize(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        return enabled(state, (((o,), Finalize(o)) for o in range(len(state.orders))))

    actions = (
        Action("Tick", tick),
        Action("RegisterTrainer", register(Role.TRAINER, cast.trainers), ("trainer",)),
        Action("RegisterValidator", register(Role.VALIDATOR, cast.validators), ("validator",)),
        Action("PlaceOrder", place_order, ("client",)),
        Action("HonestClaim", honest_claim, ("trainer", "order")),
        Action("ByzantineClaim", byzantine_claim, ("trainer", "order", "score", "faked")),
        Action("HonestValidate", honest_validate, ("validator", "order", "trainer", "sample", "evidence")),
        Action(
            "ByzantineValidate",
            byzantine_validate,
            ("validator", "order", "trainer", "verdict", "sample", "evidence"),
        ),
        Action("Challenge", challenge, ("challenger", "order", "trainer", "validator", "segment")),
        Action("Finalize", finalize, ("order",)),
    )
    return Model(
        name=name,
        init=lambda: [start],
        actions=actions,
        invariants=ledger_invariants(total_value(start), honesty),
        properties=(
            leads_to(
                "EveryOrderEventuallyFinalized",
                some_order_open,
                no_order_open,
                "Every order is eventually paid or refunded (issue 4; PoT design: Finalize after deadline).",
            ),
        ),
        fairness=tuple(weak_fairness(action) for action in fair),
        symmetry=validator_symmetry(cast.honest_validators, cast.byzantine_validators) if symmetry else None,
        constants={
            "cast": cast,
            "segments": segments,
            "sample_size": sample_size,
            "byzantine_scores": byzantine_scores,
            "deadline": deadline,
            "challenge_window": challenge_window,
            "bug": bug,
        },
        doc=__doc__ or "",
    )


def _relabel(state: LedgerState, mapping: dict[int, int]) -> tuple[Any, ...]:
    """An orderable encoding of ``state`` with validator accounts renamed by ``mapping``."""

    def acct(a: int) -> int:
        return mapping.get(a, a)

    def permuted(values: tuple[Any, ...]) -> tuple[Any, ...]:
        out = list(values)
        for old, new in mapping.items():
            out[new] = values[old]
        return tuple(out)

    votes = sorted(
        (v.order, v.trainer, acct(v.validator), v.verdict, v.score, tuple(sorted(v.sample)), v.evidence)
        for v in state.votes
    )
    challenges = sorted(
        (c.order, c.trainer, acct(c.validator), c.segment, c.challenger, c.upheld) for c in state.challenges
    )
    return (
        permuted(state.balances),
        permuted(state.stakes),
        permuted(state.roles),
        tuple(votes),
        tuple(challenges),
        tuple(sorted(acct(a) for a in state.slashed)),
    )


def validator_symmetry(
    *groups: tuple[int, ...],
) -> Callable[[LedgerState], Hashable] | None:
    """SYMMETRY over accounts that are interchangeable within each group (e.g. the honest validators).

    Sound for the ledger invariants: within a group the accounts start with equal funds, have the same
    capabilities and play the same role in every invariant, so renaming them maps behaviours to
    behaviours and violations to violations. Returns None when no group has two members.
    """
    movable = [g for g in groups if len(g) > 1]
    if not movable:
        return None
    mappings: list[dict[int, int]] = [{}]
    for group in movable:
        mappings = [
            {**m, **dict(zip(group, perm, strict=True))} for m in mappings for perm in permutations(group)
        ]

    def canonical(state: LedgerState) -> Hashable:
        rest = (state.now, state.orders, state.claims)
        return (rest, min(_relabel(state, m) for m in mappings))

    return canonical
