"""The ledger models' actions: what each participant may submit, as the ledger executes it.

Each action is "a participant submits transaction X and the ledger executes
it"; the checker's interleaving of actions ranges over every total order PBFT
could commit. Participants are modelled by capability: an honest trainer
claims its true score with no faked segment, a Byzantine trainer claims any
score with any set of faked segments; an honest validator samples any q
segments and votes what that sample shows, a Byzantine validator submits any
well-formed vote (or none); the challenger names any segment of any ACCEPT vote,
with evidence about that segment or built from any other segment or claim.

With the dispute game (``dispute_steps``), each dispute's parties move by
capability too: an honest trainer reveals and supplies only states of its honest
trajectory, a Byzantine one any digest (``spec.dispute.Digest``); an honest
challenger (an honest validator defending its REJECT) agrees exactly with honest
digests, a Byzantine one (a challenger, a Byzantine validator) either way; anyone
times out a party past its deadline. Honest parties are timely: the clock does
not pass a deadline while an honest party still owes its move (the synchrony
every dispute game assumes; a party that can be starved of time cannot be
protected by any deadline).
Rejected transactions leave the ledger unchanged, so they are omitted as
successors (they would be stuttering steps); tests/spec/test_ledger.py checks
the rejections themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import chain, combinations, product
from typing import Any

from model_checker.model import Action
from spec.dispute import Dispute, Mover, Outcome, Supplied, honest_digest, max_moves, midpoint
from spec.ledger.config import STAKE, Cast, LedgerBug, LedgerModelConfig
from spec.ledger.properties import no_order_open
from spec.ledger.protocol import (
    Bisect,
    Challenge,
    Claim,
    Finalize,
    Order,
    Reason,
    Register,
    Reveal,
    Supply,
    Tick,
    Timeout,
    Tx,
    Validate,
    apply,
    challenges_open,
    claims_open,
    find_claim,
)
from spec.ledger.state import NO_SEGMENT, ClaimRecord, LedgerState, Role, Verdict

Steps = Iterator[tuple[tuple[Any, ...], LedgerState]]
"""An action's successors: (parameter values, state)."""

Evidence = Callable[[ClaimRecord, frozenset[int]], Iterable[int]]
"""The evidence a validator may name for a claim, given its sample."""


def subsets(items: range, sizes: Iterable[int]) -> list[frozenset[int]]:
    """Every subset of ``items`` whose size is in ``sizes``."""
    return [frozenset(c) for c in chain.from_iterable(combinations(items, k) for k in sizes)]


class LedgerParticipants:
    """The submissions of one cast (``config``), each a step function of the ledger state."""

    def __init__(self, config: LedgerModelConfig) -> None:
        self.config = config
        self.cast = Cast.of_constants(config.constants())
        self.samples = subsets(range(config.segments), [config.sample_size])
        self.fakes = subsets(range(config.segments), range(config.segments + 1))
        self.horizon = config.deadline + config.challenge_window
        if config.dispute_steps:
            self.horizon += max_moves(config.dispute_steps) * config.move_window

    def enabled(self, state: LedgerState, witnesses: Iterable[tuple[tuple[Any, ...], Tx]]) -> Steps:
        """The witnesses whose transaction the ledger accepts, with the state it leads to."""
        for values, tx in witnesses:
            successor, receipt = apply(state, tx, self.config.bug)
            if receipt.reason is Reason.OK:
                yield values, successor

    def claimable(self, state: LedgerState) -> list[int]:
        """Orders still taking claims and votes (participants read the ledger before submitting)."""
        return [o for o in range(len(state.orders)) if claims_open(state, o) is Reason.OK]

    def unvoted(self, state: LedgerState, validators: tuple[int, ...]) -> Iterator[tuple[ClaimRecord, int]]:
        """(claim, validator) pairs still open for that validator's one vote."""
        open_orders = self.claimable(state)
        voted = {(v.order, v.trainer, v.validator) for v in state.votes}
        for claim in state.claims:
            if claim.order in open_orders:
                for v in validators:
                    if (claim.order, claim.trainer, v) not in voted:
                        yield claim, v

    def honest_score(self, trainer: int) -> int:
        """Honest trainers' true scores: 1, 2, ... in account order (so ranks differ)."""
        return 1 + self.cast.honest_trainers.index(trainer)

    # ----------------------------------------------------------------- actions

    def tick(self, state: LedgerState) -> Steps:
        if state.now < self.horizon and not any(self.owes_move_now(d, state.now) for d in state.disputes):
            yield from self.enabled(state, [((), Tick())])

    def honest_mover(self, record: Dispute) -> bool:
        if record.mover is Mover.TRAINER:
            return record.trainer in self.cast.honest_trainers
        return record.challenger in self.cast.honest_validators

    def owes_move_now(self, record: Dispute, now: int) -> bool:
        """An honest party's move is due at ``now``: the clock waits for it."""
        return record.outcome is Outcome.OPEN and record.due == now and self.honest_mover(record)

    def to_move(self, state: LedgerState, mover: Mover, honest: bool) -> Iterator[Dispute]:
        """The open disputes in which an (``honest`` or not) ``mover`` is to move."""
        for record in sorted(state.disputes):
            if (
                record.outcome is Outcome.OPEN
                and record.mover is mover
                and self.honest_mover(record) == honest
            ):
                yield record

    def reveal(self, honest: bool) -> Callable[[LedgerState], Steps]:
        """The trainer reveals its committed digest after the midpoint (the only one it can prove)."""

        def step(state: LedgerState) -> Steps:
            disputes = self.to_move(state, Mover.TRAINER, honest)
            return self.enabled(state, ((d.key, Reveal(d.key)) for d in disputes if not d.one_step_left))

        return step

    def bisect(self, honest: bool) -> Callable[[LedgerState], Steps]:
        """An honest challenger agrees exactly with the digests its own re-execution gives; a
        Byzantine one either way."""
        off_by_one = self.config.bug is LedgerBug.MIDPOINT_OFF_BY_ONE

        def choices(record: Dispute) -> list[bool]:
            if honest:
                return [honest_digest(record, midpoint(record.lo, record.hi, off_by_one))]
            return [False, True]

        def step(state: LedgerState) -> Steps:
            disputes = self.to_move(state, Mover.CHALLENGER, honest)
            return self.enabled(
                state, (((*d.key, agree), Bisect(d.key, agree)) for d in disputes for agree in choices(d))
            )

        return step

    def supply(self, honest: bool) -> Callable[[LedgerState], Steps]:
        """With one step left, an honest trainer supplies its committed state; a Byzantine one that or a
        forged predecessor of the disputed digest."""
        states = [Supplied.COMMITTED] if honest else list(Supplied)

        def step(state: LedgerState) -> Steps:
            disputes = [d for d in self.to_move(state, Mover.TRAINER, honest) if d.one_step_left]
            return self.enabled(state, (((*d.key, s), Supply(d.key, s)) for d in disputes for s in states))

        return step

    def timeout(self, state: LedgerState) -> Steps:
        return self.enabled(state, ((record.key, Timeout(record.key)) for record in sorted(state.disputes)))

    def register(self, role: Role, accounts: tuple[int, ...]) -> Callable[[LedgerState], Steps]:
        """Each of ``accounts`` not yet registered registers as ``role`` with the minimum stake."""

        def step(state: LedgerState) -> Steps:
            fresh = (a for a in accounts if state.roles[a] is Role.NONE)
            return self.enabled(state, (((a,), Register(a, role, STAKE)) for a in fresh))

        return step

    def place_order(self, state: LedgerState) -> Steps:
        placed = {o.client for o in state.orders}
        fresh = (c for c in self.cast.clients if c not in placed)
        c = self.config
        return self.enabled(state, (((k,), Order(k, c.bounty, c.fee, c.deadline)) for k in fresh))

    def honest_claim(self, state: LedgerState) -> Steps:
        return self.enabled(
            state,
            (
                ((t, o), Claim(t, o, t, self.honest_score(t), frozenset(), *self.commitments(frozenset())))
                for t in self.cast.honest_trainers
                for o in self.claimable(state)
            ),
        )

    def byzantine_claim(self, state: LedgerState) -> Steps:
        return self.enabled(
            state,
            (
                (
                    (t, o, score, faked, *([forged_at] if forged_at else [])),
                    Claim(t, o, t, score, faked, forged_at),
                )
                for t in self.cast.byzantine_trainers
                for o in self.claimable(state)
                if find_claim(state, o, t) is None
                for score in self.config.byzantine_scores
                for faked in self.fakes
                for forged_at in self.commitments(faked)
            ),
        )

    def commitments(self, faked: frozenset[int]) -> list[tuple[int, ...]]:
        """The per-step commitments of a claim faking ``faked``: with the dispute game, any first
        invalid step in each faked segment; without it, none."""
        steps = self.config.dispute_steps
        if not steps:
            return [()]
        choices = [range(1, steps + 1) if s in faked else [0] for s in range(self.config.segments)]
        return [tuple(choice) for choice in product(*choices)]

    def vote(
        self, validators: tuple[int, ...], verdict: Verdict, evidence_for: Evidence
    ) -> Callable[[LedgerState], Steps]:
        """A vote family: each of ``validators`` votes ``verdict`` on an open claim, with every sample
        and every piece of evidence ``evidence_for(claim, sample)`` allows."""
        rejecting = verdict is Verdict.REJECT

        def step(state: LedgerState) -> Steps:
            def witnesses() -> Iterator[tuple[tuple[Any, ...], Tx]]:
                for claim, v in self.unvoted(state, validators):
                    for sample in self.samples:
                        for evidence in evidence_for(claim, sample):
                            tx = Validate(
                                v, claim.order, claim.trainer, verdict, claim.score, sample, evidence
                            )
                            yield (
                                (v, claim.order, claim.trainer, sample, *([evidence] if rejecting else [])),
                                tx,
                            )

            return self.enabled(state, witnesses())

        return step

    def challenge(self, state: LedgerState) -> Steps:
        upheld = {(ch.order, ch.trainer, ch.segment) for ch in state.challenges}
        return self.enabled(
            state,
            (
                ((c, v.order, v.trainer, v.validator, s), Challenge(c, v.order, v.trainer, v.validator, s))
                for v in state.votes
                if v.verdict is Verdict.ACCEPT and challenges_open(state, v.order) is Reason.OK
                for s in range(self.config.segments)
                if (v.order, v.trainer, s) not in upheld
                for c in self.cast.challengers
            ),
        )  # fmt: skip

    def forged_challenge(self, state: LedgerState) -> Steps:
        """A challenge whose evidence the challenger built from other material than the segment it
        names: a re-execution of another segment of the same claim, or of any segment of another
        claim (a genuine fraud proof reused to frame an honest trainer). The protocol rejects every
        one; a ledger that upholds one slashes on no proof."""
        upheld = {(ch.order, ch.trainer, ch.segment) for ch in state.challenges}
        return self.enabled(
            state,
            (
                ((c, o, t, v.validator, s, proof), Challenge(c, o, t, v.validator, s, proof))
                for v in sorted(state.votes)
                if v.verdict is Verdict.ACCEPT and challenges_open(state, v.order) is Reason.OK
                for o, t in [(v.order, v.trainer)]
                for s in range(self.config.segments)
                if (o, t, s) not in upheld
                for proof in forgeries(state, (o, t, s), self.config.segments)
                for c in self.cast.challengers
            ),
        )  # fmt: skip

    def finalize(self, state: LedgerState) -> Steps:
        return self.enabled(state, (((o,), Finalize(o)) for o in range(len(state.orders))))

    def terminated(self, state: LedgerState) -> Steps:
        """TLA+'s ``Terminating``: stutter once the clock is done and every order is settled.

        Only this end is a legitimate final state; an order stuck open is reported as a deadlock.
        """
        if state.now == self.horizon and no_order_open(state):
            yield (), state

    def actions(self) -> tuple[Action[LedgerState], ...]:
        """Next: one action per kind of submission, then ``Terminated``."""
        cast = self.cast
        return (
            Action("Tick", self.tick),
            Action("RegisterTrainer", self.register(Role.TRAINER, cast.trainers), ("trainer",)),
            Action("RegisterValidator", self.register(Role.VALIDATOR, cast.validators), ("validator",)),
            Action("PlaceOrder", self.place_order, ("client",)),
            Action("HonestClaim", self.honest_claim, ("trainer", "order")),
            Action(
                "ByzantineClaim",
                self.byzantine_claim,
                ("trainer", "order", "score", "faked", *(["forged_at"] if self.config.dispute_steps else [])),
            ),
            Action(
                "HonestAccept",
                self.vote(cast.honest_validators, Verdict.ACCEPT, misses_fake),
                ("validator", "order", "trainer", "sample"),
            ),
            Action(
                "HonestReject",
                self.vote(cast.honest_validators, Verdict.REJECT, fakes_hit),
                ("validator", "order", "trainer", "sample", "evidence"),
            ),
            Action(
                "ByzantineAccept",
                self.vote(cast.byzantine_validators, Verdict.ACCEPT, lambda claim, sample: [NO_SEGMENT]),
                ("validator", "order", "trainer", "sample"),
            ),
            Action(
                "ByzantineReject",
                self.vote(cast.byzantine_validators, Verdict.REJECT, lambda claim, sample: sorted(sample)),
                ("validator", "order", "trainer", "sample", "evidence"),
            ),
            Action("Challenge", self.challenge, ("challenger", "order", "trainer", "validator", "segment")),
            Action(
                "ForgedChallenge",
                self.forged_challenge,
                ("challenger", "order", "trainer", "validator", "segment", "proof"),
            ),
            *(self.dispute_actions() if self.config.dispute_steps else ()),
            Action("Finalize", self.finalize, ("order",)),
            Action("Terminated", self.terminated),
        )

    def dispute_actions(self) -> tuple[Action[LedgerState], ...]:
        """The moves of the dispute game, honest and Byzantine, and the timeout."""
        key = ("order", "trainer", "segment", "challenger")
        return (
            Action("HonestReveal", self.reveal(honest=True), key),
            Action("ByzantineReveal", self.reveal(honest=False), key),
            Action("HonestBisect", self.bisect(honest=True), (*key, "agree")),
            Action("ByzantineBisect", self.bisect(honest=False), (*key, "agree")),
            Action("HonestSupply", self.supply(honest=True), (*key, "state")),
            Action("ByzantineSupply", self.supply(honest=False), (*key, "state")),
            Action("Timeout", self.timeout, key),
        )


def forgeries(state: LedgerState, named: tuple[int, int, int], segments: int) -> list[tuple[int, int, int]]:
    """Every (order, trainer, segment) of a claim on the ledger but ``named``: what a challenger can
    build evidence from besides a re-execution of the very segment it names."""
    return [
        (c.order, c.trainer, s)
        for c in sorted(state.claims)
        for s in range(segments)
        if (c.order, c.trainer, s) != named
    ]


def misses_fake(claim: ClaimRecord, sample: frozenset[int]) -> list[int]:
    """An honest ACCEPT: the sample hit no faked segment (evidence: none)."""
    return [NO_SEGMENT] if sample.isdisjoint(claim.faked) else []


def fakes_hit(claim: ClaimRecord, sample: frozenset[int]) -> list[int]:
    """An honest REJECT: any faked segment the sample hit."""
    return sorted(sample & claim.faked)
