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

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from functools import partial
from itertools import chain, combinations, permutations
from typing import Any

from model_checker.model import Action, ConstantError, Model, ModelSpec, leads_to, weak_fairness
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
    symmetry: bool = False,
) -> Model[LedgerState]:
    """The ledger model for one cast (constants documented in CONSTANT_DOCS)."""
    counts = (
        clients,
        honest_trainers,
        byzantine_trainers,
        honest_validators,
        byzantine_validators,
        challengers,
    )
    if min(counts) < 0 or min(bounty, fee, challenge_window) < 0 or deadline < 1:
        raise ConstantError(
            f"model {name}: participant counts, amounts and windows must be >= 0, deadline >= 1"
        )
    if not 1 <= sample_size <= segments:
        raise ConstantError(
            f"model {name}: need 1 <= sample_size <= segments, got {sample_size} and {segments}"
        )
    cast = Cast.of(*counts)
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

    def enabled(
        state: LedgerState, witnesses: Iterable[tuple[tuple[Any, ...], Tx]]
    ) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        """The witnesses whose transaction the ledger accepts, with the state it leads to."""
        for values, tx in witnesses:
            successor, receipt = apply(state, tx, bug)
            if receipt.reason is Reason.OK:
                yield values, successor

    def tick(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        if state.now < horizon:
            yield from enabled(state, [((), Tick())])

    def register(
        role: Role, accounts: tuple[int, ...]
    ) -> Callable[[LedgerState], Iterator[tuple[tuple[Any, ...], LedgerState]]]:
        def step(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
            fresh = (a for a in accounts if state.roles[a] is Role.NONE)
            return enabled(state, (((a,), Register(a, role, STAKE)) for a in fresh))

        return step

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

    def vote(
        validators: tuple[int, ...],
        verdict: Verdict,
        evidence_for: Callable[[ClaimRecord, frozenset[int]], Iterable[int]],
    ) -> Callable[[LedgerState], Iterator[tuple[tuple[Any, ...], LedgerState]]]:
        """A vote family: each of ``validators`` votes ``verdict`` on an open claim, with every sample
        and every piece of evidence ``evidence_for(claim, sample)`` allows."""
        rejecting = verdict is Verdict.REJECT

        def step(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
            def witnesses() -> Iterator[tuple[tuple[Any, ...], Tx]]:
                for claim, v in unvoted(state, validators):
                    for sample in samples:
                        for evidence in evidence_for(claim, sample):
                            tx = Validate(
                                v, claim.order, claim.trainer, verdict, claim.score, sample, evidence
                            )
                            yield (
                                (v, claim.order, claim.trainer, sample, *([evidence] if rejecting else [])),
                                tx,
                            )

            return enabled(state, witnesses())

        return step

    def misses_fake(claim: ClaimRecord, sample: frozenset[int]) -> list[int]:
        return [NO_SEGMENT] if sample.isdisjoint(claim.faked) else []

    def fakes_hit(claim: ClaimRecord, sample: frozenset[int]) -> list[int]:
        return sorted(sample & claim.faked)

    def challenge(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        upheld = {(ch.order, ch.trainer, ch.segment) for ch in state.challenges}
        return enabled(
            state,
            (
                ((c, v.order, v.trainer, v.validator, s), Challenge(c, v.order, v.trainer, v.validator, s))
                for v in state.votes
                if v.verdict is Verdict.ACCEPT and challenges_open(state, v.order) is Reason.OK
                for s in range(segments)
                if (v.order, v.trainer, s) not in upheld
                for c in cast.challengers
            ),
        )  # fmt: skip

    def finalize(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        return enabled(state, (((o,), Finalize(o)) for o in range(len(state.orders))))

    def terminated(state: LedgerState) -> Iterator[tuple[tuple[Any, ...], LedgerState]]:
        """TLA+'s ``Terminating``: stutter once the clock is done and every order is settled.

        Only this end is a legitimate final state; an order stuck open is reported as a deadlock.
        """
        if state.now == horizon and no_order_open(state):
            yield (), state

    actions = (
        Action("Tick", tick),
        Action("RegisterTrainer", register(Role.TRAINER, cast.trainers), ("trainer",)),
        Action("RegisterValidator", register(Role.VALIDATOR, cast.validators), ("validator",)),
        Action("PlaceOrder", place_order, ("client",)),
        Action("HonestClaim", honest_claim, ("trainer", "order")),
        Action("ByzantineClaim", byzantine_claim, ("trainer", "order", "score", "faked")),
        Action(
            "HonestAccept",
            vote(cast.honest_validators, Verdict.ACCEPT, misses_fake),
            ("validator", "order", "trainer", "sample"),
        ),
        Action(
            "HonestReject",
            vote(cast.honest_validators, Verdict.REJECT, fakes_hit),
            ("validator", "order", "trainer", "sample", "evidence"),
        ),
        Action(
            "ByzantineAccept",
            vote(cast.byzantine_validators, Verdict.ACCEPT, lambda claim, sample: [NO_SEGMENT]),
            ("validator", "order", "trainer", "sample"),
        ),
        Action(
            "ByzantineReject",
            vote(cast.byzantine_validators, Verdict.REJECT, lambda claim, sample: sorted(sample)),
            ("validator", "order", "trainer", "sample", "evidence"),
        ),
        Action("Challenge", challenge, ("challenger", "order", "trainer", "validator", "segment")),
        Action("Finalize", finalize, ("order",)),
        Action("Terminated", terminated),
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
                "Every order is eventually paid or refunded (PoT design: Finalize after deadline).",
            ),
        ),
        fairness=tuple(weak_fairness(action) for action in fair),
        symmetry=ledger_symmetry(segments, cast.accounts, [cast.honest_validators, cast.byzantine_validators])
        if symmetry
        else None,
        constants={
            "clients": clients,
            "honest_trainers": honest_trainers,
            "byzantine_trainers": byzantine_trainers,
            "honest_validators": honest_validators,
            "byzantine_validators": byzantine_validators,
            "challengers": challengers,
            "segments": segments,
            "sample_size": sample_size,
            "byzantine_scores": byzantine_scores,
            "bounty": bounty,
            "fee": fee,
            "deadline": deadline,
            "challenge_window": challenge_window,
            "bug": bug,
            "fair": fair,
            "symmetry": symmetry,
        },
        doc=__doc__ or "",
    )


def ledger_symmetry(
    segments: int, accounts: int, groups: Iterable[tuple[int, ...]]
) -> Callable[[LedgerState], Hashable]:
    """SYMMETRY: segment ids are interchangeable, and so are the validators within each group.

    Sound for every ledger invariant: nothing in the protocol tells one segment
    from another (samples, fakes, evidence and challenges are all just ids),
    and the validators of one group (e.g. the honest ones) start with equal
    funds and have the same capabilities and the same role in every invariant;
    so renaming maps behaviours to behaviours and violations to violations.

    A validator appears in the state only through its own balance, stake,
    role, slashed flag and votes (no record names another validator), so the
    state is a fixed part plus, per group, a multiset of validator profiles.
    The canonical form sorts each group's profiles, for each renaming of the
    segments, and takes the least: an exact orbit representative without
    enumerating validator permutations.
    """
    group_list = [tuple(g) for g in groups]
    grouped = {a for g in group_list for a in g}
    fixed = tuple(a for a in range(accounts) if a not in grouped)
    # index NO_SEGMENT (-1) maps to itself through the trailing entry
    renamings = [(*perm, NO_SEGMENT) for perm in permutations(range(segments))]

    def encode(state: LedgerState, rename: tuple[int, ...]) -> tuple[Any, ...]:
        def segs(items: frozenset[int]) -> tuple[int, ...]:
            return tuple(sorted(rename[s] for s in items))

        votes_of: dict[int, list[tuple[Any, ...]]] = {}
        for v in state.votes:
            votes_of.setdefault(v.validator, []).append(
                (v.order, v.trainer, v.verdict, v.score, segs(v.sample), rename[v.evidence])
            )

        def profile(a: int) -> tuple[Any, ...]:
            votes = tuple(sorted(votes_of.get(a, ())))
            return (state.balances[a], state.stakes[a], state.roles[a], a in state.slashed, votes)

        return (
            tuple(sorted((c.order, c.trainer, c.model, c.score, segs(c.faked)) for c in state.claims)),
            tuple(sorted((c.order, c.trainer, rename[c.segment], c.challenger) for c in state.challenges)),
            tuple(tuple(sorted(profile(a) for a in group)) for group in group_list),
        )

    def canonical(state: LedgerState) -> Hashable:
        fixed_part = tuple(
            (state.balances[a], state.stakes[a], state.roles[a], a in state.slashed) for a in fixed
        )
        return (state.now, state.orders, fixed_part, min(encode(state, r) for r in renamings))

    return canonical


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


def _spec(name: str, doc: str, **overrides: Any) -> ModelSpec:
    defaults = {
        "clients": 1,
        "honest_trainers": 1,
        "byzantine_trainers": 1,
        "honest_validators": 1,
        "byzantine_validators": 1,
        "challengers": 1,
        "segments": 2,
        "sample_size": 1,
        "byzantine_scores": (1, 2),
        "bounty": 2,
        "fee": 2,
        "deadline": 1,
        "challenge_window": 1,
        "bug": LedgerBug.NONE,
        "fair": ("Tick", "Finalize"),
        "symmetry": False,
    }
    return ModelSpec(
        name=name,
        build=partial(build_ledger_model, name),
        defaults={**defaults, **overrides},
        doc=doc,
        constant_docs=CONSTANT_DOCS,
    )


LEDGER_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "ledger-tiny",
            "PoT ledger alone: one order, one Byzantine trainer, one honest and one Byzantine validator",
            honest_trainers=0,
            byzantine_scores=(1,),
        ),
        _spec(
            "ledger",
            "PoT ledger alone: one order, an honest and a Byzantine trainer, "
            "two honest and one Byzantine validator (quorum 2 of 3), a challenger",
            honest_validators=2,
        ),
        _spec(
            "ledger-two-orders",
            "PoT ledger alone, for benchmarks: ledger-tiny's cast with two clients and orders, so a "
            "validator slashed on one order is locked out of the other",
            clients=2,
            honest_trainers=0,
            byzantine_scores=(1,),
        ),
    )
}
"""The ledger's named models, merged into spec.models.MODELS."""
