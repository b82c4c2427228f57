"""The ledger bridge: the ledger spec's actions as transactions on the real ``pot_impl`` ledger.

One stimulus per spec action (named in ``conformance.actions.LEDGER``, with the ledger handler
that takes the step) builds the signed participant's transaction; ``abstract`` maps the real ledger (plus the
trainers' proof material) back to a ``spec.ledger.LedgerState``. Every claim,
vote and challenge is backed by real training (``conformance.bridge_training``).

Correspondence (argued in docs/conformance.md):

* accounts: spec account ``i`` is the ledger account ``account_name(i)``
  (zero-padded, so names sort like the ids and tie-breaks agree);
* time: the spec's ``now`` is the ledger's height (the sequence number of the
  batch executing a transaction). ``Tick`` is a batch the ledger rejects as
  malformed, which still advances its height, as any executed batch does;
* a claim's ``faked`` set is the set of segments for which the ledger's own
  proof checker upholds the strongest evidence anyone can build (its
  ``score`` is read relative to the order's honest score: ``1`` is what an
  honest run scores, ``k`` claims ``k - 1`` basis points more); ``model`` is
  the claimant, as in the spec;
* an order is the task its client posted with the data-order seed the ledger
  fixed when it executed; the client picks its task's initial-weights seed
  (``TrainingWorld.choose_task``) so that the run it gets suits the behaviour;
* ``settlements`` is 1 for a settled order (the ledger has no counter; a
  second settlement would show as a balance difference).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from conformance import actions
from conformance.bridge_core import FieldDiff, Unrealizable, state_diff
from conformance.bridge_training import RunKey, TrainingWorld
from model_checker.model import Label, Model
from pot_impl import codec
from pot_impl.ledger import transactions as itx
from pot_impl.ledger.ledger import Ledger
from pot_impl.ledger.records import DisputeRecord
from pot_impl.ledger.records import LedgerParams as ImplParams
from pot_impl.ledger.transactions import Transaction
from pot_impl.training.task import encode_task
from spec import ledger as sl
from spec.dispute import Dispute, Outcome, Supplied
from spec.ledger.model import STAKE, Cast
from spec.ledger.participants import forgeries
from spec.quorum import validation_quorum

UNKNOWN_PROOF = -99
"""Put in a claim's abstract ``faked`` set when its proof root is no run any trainer produced."""


def account_name(index: int) -> str:
    """The ledger account of spec account ``index``."""
    return f"acct{index:03d}"


def account_index(name: str) -> int:
    return int(name.removeprefix("acct")) if name.startswith("acct") else -1


VOTES = ("HonestAccept", "HonestReject", "ByzantineAccept", "ByzantineReject")


class PlannedVote(NamedTuple):
    """A vote a replayed behaviour casts: by ``validator`` with ``sample``, on a claim of spec score
    ``score`` faking ``faked`` (with the dispute game, from steps ``forged_at``)."""

    validator: int
    score: int
    faked: frozenset[int]
    forged_at: tuple[int, ...]
    sample: frozenset[int]


Tx = tuple[str, Transaction | None] | None
"""(sender, transaction), where a None transaction is the Tick batch (malformed bytes); None for a
spec step the implementation takes by doing nothing."""


class LedgerBridge:
    """Drives a fresh ``pot_impl.ledger.Ledger`` (real proof checker) from ledger-model actions."""

    def __init__(self, model: Model[sl.LedgerState], world: TrainingWorld | None = None) -> None:
        self.model = model
        constants = model.constants
        self.cast = Cast.of_constants(constants)
        self.bounty: int = constants["bounty"]
        self.fee: int = constants["fee"]
        self.deadline: int = constants["deadline"]
        self.sample_size: int = constants["sample_size"]
        self.segments: int = constants["segments"]
        self.dispute_steps: int = constants.get("dispute_steps", 0)
        self.world = world or TrainingWorld(self.segments, self.dispute_steps)
        self.bug: sl.LedgerBug = constants["bug"]
        self._stimuli: Mapping[str, Callable[[dict[str, Any], sl.LedgerState], Tx]] = {
            action: getattr(self, row.stimulus.removeprefix("LedgerBridge."))
            for action, row in actions.LEDGER.items()
            if row.stimulus is not None
        }
        """The stimulus of each spec action, as ``conformance.actions.LEDGER`` names it."""
        self.ledger: Ledger | None = None
        self._initial: sl.LedgerState | None = None

    # ------------------------------------------------------------------ Bridge protocol

    def start(self, initial: sl.LedgerState, plan: Sequence[Label]) -> None:
        self._initial = initial
        self._roots: dict[bytes, RunKey] = {}
        self._keys = {v: self.world.validator_key(v) for v in self.cast.validators}
        self._wants = self._plan_samples(plan)
        params = initial.params
        impl_params = ImplParams(
            segments=params.segments,
            sample_size=params.sample_size,
            validation_quorum=validation_quorum(params.validators, params.byzantine_validators),
            min_trainer_stake=params.min_trainer_stake,
            min_validator_stake=params.min_validator_stake,
            challenge_window=params.challenge_window,
            dispute_steps=params.dispute_steps,
            move_window=params.move_window,
            dispute_bond=params.dispute_bond,
        )
        funds = {
            account_name(i): balance + stake
            for i, (balance, stake) in enumerate(zip(initial.balances, initial.stakes, strict=True))
        }
        self.ledger = Ledger(impl_params, funds, self.world.checker)
        for account, role in enumerate(initial.roles):
            if role is not sl.Role.NONE:
                self._submit(*self._registration(account, role), initial.now)

    def realizable(self, label: Label, state: sl.LedgerState) -> str | None:
        try:
            self._transaction(label, state)
        except Unrealizable as gap:
            return str(gap)
        return None

    def probe(self, state: sl.LedgerState) -> tuple[str, tuple[FieldDiff, ...]] | None:
        """Transactions the spec rejects here, submitted for real: a Finalize of every order, a
        challenge of every segment of every ACCEPT and every move in every dispute, wherever the
        spec's ``apply`` refuses them (a settled or unripe order, an unproved challenge, a move out
        of turn or past its deadline, a timeout before it). Rejected means no effect on the spec state.

        Transactions a Byzantine participant crafts go first, each judged alone and then undone, so
        that each is judged on the state the behaviour reached: challenges with evidence forged from
        every other segment and claim, REJECTs naming a segment outside the validator's sample, votes
        once the claim window has closed, and claims of a Byzantine trainer after the deadline. A
        crafted vote or claim must also be refused for the spec's reason (a slashed validator's vote
        is refused for its role, whatever else is wrong with it); a challenge need not, since the
        implementation records an unproved challenge where the spec refuses it."""
        crafted = self._crafted_votes_and_claims(state)
        for label in [*self._forged_challenges(state), *crafted]:
            expected = sl.apply(state, _spec_tx(label, state), self.bug)[1].reason
            if expected is sl.Reason.OK:
                continue
            saved = self._ledger.snapshot()
            step = self._transaction(label, state)
            assert step is not None
            reason = self._submit(step[0], step[1], state.now)
            diff = state_diff(self.model, state, self.abstract())
            self._ledger.restore(saved)
            if label in crafted and reason != receipt_name(expected):
                diff = (*diff, FieldDiff("receipt", receipt_name(expected), reason))
            if diff:
                return f"rejected by the spec: {label}", diff
        probes = [Label("Finalize", (("order", o),)) for o in range(len(state.orders))]
        probes += [
            Label(
                "Challenge",
                (
                    ("challenger", c),
                    ("order", v.order),
                    ("trainer", v.trainer),
                    ("validator", v.validator),
                    ("segment", s),
                ),
            )
            for c in self.cast.challengers
            for v in sorted(state.votes)
            if v.verdict is sl.Verdict.ACCEPT
            for s in range(self.segments)
        ]
        probes += [move for record in sorted(state.disputes) for move in _dispute_moves(record)]
        rejected = [label for label in probes if not sl.apply(state, _spec_tx(label, state), self.bug)[1].ok]
        for label in rejected:
            step = self._transaction(label, state)
            assert step is not None
            self._submit(step[0], step[1], state.now)
        diff = state_diff(self.model, state, self.abstract())
        if not diff:
            return None
        return "rejected by the spec: " + ", ".join(str(label) for label in rejected), diff

    def _forged_challenges(self, state: sl.LedgerState) -> list[Label]:
        """A challenge of every segment of every ACCEPT with evidence about every other segment and
        claim on the ledger (``spec.ledger.participants.forgeries``)."""
        return [
            Label(
                "ForgedChallenge",
                (
                    ("challenger", c),
                    ("order", v.order),
                    ("trainer", v.trainer),
                    ("validator", v.validator),
                    ("segment", s),
                    ("proof", proof),
                ),
            )
            for v in sorted(state.votes)
            if v.verdict is sl.Verdict.ACCEPT
            for s in range(self.segments)
            for proof in forgeries(state, (v.order, v.trainer, s), self.segments)
            for c in self.cast.challengers
        ]

    def _crafted_votes_and_claims(self, state: sl.LedgerState) -> list[Label]:
        """For each claim, each Byzantine validator that has not voted on it: an ACCEPT, and a REJECT
        naming each segment (with the sample its key derives, the only one it can sign); and for each
        order a Byzantine trainer has not claimed, a claim. The spec rejects those outside the claim
        window and REJECTs whose evidence is not in the sample; ``probe`` submits only those."""
        labels = []
        for claim in sorted(state.claims):
            voted = {v.validator for v in state.votes if (v.order, v.trainer) == (claim.order, claim.trainer)}
            run = self._posted_run(claim.order, account_name(claim.trainer))
            for validator in (v for v in self.cast.byzantine_validators if v not in voted):
                drawn, _ = self.world.sample(self._keys[validator], run, self.sample_size)
                vote: tuple[tuple[str, Any], ...] = (
                    ("validator", validator),
                    ("order", claim.order),
                    ("trainer", claim.trainer),
                    ("sample", frozenset(drawn)),
                )
                labels.append(Label("ByzantineAccept", vote))
                labels += [Label("ByzantineReject", (*vote, ("evidence", s))) for s in range(self.segments)]
        score = self.model.constants["byzantine_scores"][0]
        commitment = (("forged_at", (0,) * self.segments),) if self.dispute_steps else ()
        labels += [
            Label(
                "ByzantineClaim",
                (("trainer", t), ("order", o), ("score", score), ("faked", frozenset()), *commitment),
            )
            for t in self.cast.byzantine_trainers
            for o in range(len(state.orders))
            if sl.find_claim(state, o, t) is None
        ]
        return labels

    def stimulate(self, label: Label, state: sl.LedgerState) -> tuple[FieldDiff, ...]:
        step = self._transaction(label, state)
        if step is None:
            return ()
        sender, tx = step
        height = state.now + 1 if tx is None else state.now
        reason = self._submit(sender, tx, height)
        if tx is not None and reason != "ok":
            return (FieldDiff("receipt", "ok", reason),)
        return ()

    def abstract(self) -> sl.LedgerState:
        ledger = self._ledger
        initial = self._initial
        assert initial is not None
        accounts = [ledger.accounts[account_name(i)] for i in range(len(initial.balances))]
        orders = tuple(
            sl.OrderRecord(
                client=account_index(o.client),
                bounty=o.bounty,
                fee=o.fee,
                deadline=o.deadline,
                escrow=o.escrow,
                status=sl.OrderStatus(o.status),
                winner=account_index(o.winner) if o.winner else -1,
                settlements=0 if o.status == sl.OrderStatus.OPEN else 1,
                settled_at=o.settled_at,
            )
            for _, o in sorted(ledger.orders.items())
        )
        committed = {
            o.order_id: self.world.committed(o.task, o.data_order_seed) for o in ledger.orders.values()
        }
        claims = {
            key: self._abstract_claim(c.proof_root, c.claimed_score, committed[c.order_id])
            for key, c in ledger.claims.items()
        }
        forged_at = {key: self._abstract_forged_at(c.proof_root) for key, c in ledger.claims.items()}
        return sl.LedgerState(
            params=initial.params._replace(
                segments=ledger.params.segments,
                sample_size=ledger.params.sample_size,
                min_trainer_stake=ledger.params.min_trainer_stake,
                min_validator_stake=ledger.params.min_validator_stake,
                challenge_window=ledger.params.challenge_window,
                dispute_steps=ledger.params.dispute_steps,
                move_window=ledger.params.move_window,
                dispute_bond=ledger.params.dispute_bond,
            ),
            now=ledger.height,
            balances=tuple(a.balance for a in accounts),
            stakes=tuple(a.stake for a in accounts),
            roles=tuple(sl.Role(a.role) for a in accounts),
            orders=orders,
            claims=frozenset(
                sl.ClaimRecord(
                    order,
                    account_index(trainer),
                    account_index(trainer),
                    score,
                    faked,
                    forged_at[(order, trainer)],
                )
                for (order, trainer), (score, faked) in claims.items()
            ),
            votes=frozenset(
                sl.VoteRecord(
                    v.order_id,
                    account_index(v.trainer),
                    account_index(v.validator),
                    sl.Verdict(v.verdict),
                    self._score_label(v.score, committed[v.order_id]),
                    frozenset(v.sample),
                    v.evidence_segment,
                )
                for v in ledger.votes.values()
            ),
            challenges=frozenset(
                sl.ChallengeRecord(
                    c.order_id, account_index(c.trainer), c.segment, account_index(c.challenger)
                )
                for c in ledger.challenges.values()
                if c.upheld
            ),
            slashed=frozenset(account_index(a) for a in ledger.slashed),
            disputes=frozenset(
                Dispute(
                    d.order_id,
                    account_index(d.trainer),
                    d.segment,
                    account_index(d.challenger),
                    d.bond,
                    forged_at[(d.order_id, d.trainer)][d.segment],
                    d.lo,
                    d.hi,
                    bool(d.revealed),
                    d.due,
                    d.moves,
                    Outcome(d.outcome),
                )
                for d in ledger.disputes.values()
            ),
        )

    # ------------------------------------------------------------------ abstraction helpers

    @property
    def _ledger(self) -> Ledger:
        if self.ledger is None:
            raise RuntimeError("LedgerBridge.start was not called")
        return self.ledger

    def _score_label(self, score: int, order: bytes) -> int:
        """Spec scores count basis points above the (committed) order's honest score, starting at 1."""
        return score - self.world.honest_score(order) + 1

    def _abstract_forged_at(self, root: bytes) -> tuple[int, ...]:
        """With the dispute game, the first invalid committed step of each segment (0: none), as the
        world measures it against honest re-execution; without it, none."""
        if not self.dispute_steps:
            return ()
        run = self._roots.get(root)
        return (0,) * self.segments if run is None else self.world.forged_at(run)

    def _abstract_claim(self, root: bytes, score: int, order: bytes) -> tuple[int, frozenset[int]]:
        run = self._roots.get(root)
        faked = frozenset({UNKNOWN_PROOF}) if run is None else self.world.provable_segments(run)
        return self._score_label(score, order), faked

    # ------------------------------------------------------------------ stimuli

    def _transaction(self, label: Label, state: sl.LedgerState) -> Tx:
        stimulus = self._stimuli.get(label.action)
        if stimulus is None:
            raise Unrealizable(f"the ledger bridge has no stimulus for action {label.action}")
        return stimulus(dict(label.args), state)

    def _submit(self, sender: str, tx: Transaction | None, height: int) -> str:
        operation = b"" if tx is None else codec.encode(tx)
        receipt = codec.decode(self._ledger.execute(sender, operation, height), itx.Receipt)
        return receipt.reason

    def _registration(self, account: int, role: sl.Role) -> tuple[str, Transaction]:
        if role is sl.Role.VALIDATOR:
            public_key = bytes(self._keys[account].verify_key)
        else:
            public_key = account_name(account).encode().ljust(32, b"\0")
        return account_name(account), itx.Register(int(role), public_key, STAKE)

    def _place_order(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        """The client's task, chosen for the data-order seed the ledger will fix: the client executes
        its order on a copy of the ledger (the seed does not depend on the task) to learn it."""
        sender, index = account_name(args["client"]), len(state.orders)
        order = itx.Order(encode_task(self.world.task()), self.bounty, self.fee, self.deadline)
        copy = Ledger(self._ledger.params, {}, self.world.checker)
        copy.restore(self._ledger.snapshot())
        receipt = copy.apply(sender, order, state.now)
        if receipt.ok:
            seed = copy.orders[receipt.created_id].data_order_seed
            task = self.world.choose_task(seed, lambda digest: self._fits(index, digest))
            order = dataclasses.replace(order, task=encode_task(task))
        return sender, order

    def _order_digest(self, order: int) -> bytes:
        """The digest of order ``order`` as the ledger committed it (posted task, ledger's seed)."""
        record = self._ledger.orders.get(order)
        if record is None:
            raise Unrealizable(f"the ledger holds no order {order}")
        return self.world.committed(record.task, record.data_order_seed)

    def _posted_run(self, order: int, trainer: str) -> RunKey:
        """The run behind the claim the ledger holds for (order, trainer), found by its proof root."""
        claim = self._ledger.claims.get((order, trainer))
        run = None if claim is None else self._roots.get(claim.proof_root)
        if run is None:
            raise Unrealizable(f"the ledger holds no claim by {trainer} on order {order} from a known run")
        return run

    def _claim_tx(self, trainer: int, order: int, run: RunKey) -> Tx:
        claim = self.world.run(run).claim
        self._roots[claim.commitment] = run
        tx = itx.Claim(order, claim.final_model_digest, claim.score, claim.commitment)
        return account_name(trainer), tx

    def _honest_claim(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        trainer, order = args["trainer"], args["order"]
        rank = self.cast.honest_trainers.index(trainer)
        if rank:
            raise Unrealizable(
                "honest trainers of one order train the same model to the same score, but the spec "
                f"gives honest trainer {trainer} score {rank + 1}"
            )
        return self._claim_tx(trainer, order, RunKey(self._order_digest(order), frozenset(), 0))

    def _byzantine_run(
        self, order: bytes, score: int, faked: frozenset[int], forged_at: tuple[int, ...] = ()
    ) -> RunKey:
        """The run claiming spec score ``score`` with ``faked`` segments: fake them (with the dispute
        game, skipping each from its first invalid step ``forged_at`` on), then claim the wanted
        score; a claimed score the model does not reach is provable at the last segment."""
        firsts = {forged_at[s] for s in faked} if forged_at else set()
        if len(firsts) > 1:
            raise Unrealizable(
                f"the cheating trainer skips the same steps of every faked segment, not from {sorted(firsts)}"
            )
        skipped = self.dispute_steps - firsts.pop() + 1 if firsts else 1
        wanted = self.world.honest_score(order) + score - 1
        trained = self.world.run(RunKey(order, faked, 0, skipped)).claim.score
        if wanted != trained and self.segments - 1 not in faked:
            raise Unrealizable(
                f"claiming score {score} (model scores {trained - self.world.honest_score(order) + 1}) is a "
                f"lie a score fraud proof exposes at segment {self.segments - 1}, so segment "
                f"{self.segments - 1} would have to be in faked={sorted(faked)}"
            )
        return RunKey(order, faked, wanted - trained, skipped)

    def _byzantine_claim(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        order = args["order"]
        faked = frozenset(args["faked"])
        run = self._byzantine_run(self._order_digest(order), args["score"], faked, args.get("forged_at", ()))
        return self._claim_tx(args["trainer"], order, run)

    def _vote_context(
        self, args: dict[str, Any], sample: frozenset[int]
    ) -> tuple[RunKey, tuple[int, ...], bytes]:
        """The claim's run, and the sample and signature the validator's key derives for it."""
        run = self._posted_run(args["order"], account_name(args["trainer"]))
        drawn, signature = self.world.sample(self._keys[args["validator"]], run, self.sample_size)
        if frozenset(drawn) != sample:
            raise Unrealizable(
                f"validator {args['validator']}'s signature derives sample {sorted(drawn)}, "
                f"not {sorted(sample)}"
            )
        return run, drawn, signature

    def _honest_vote(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        """The real validator audits its sample (the spec's evidence segment first, so that of several
        faked segments it reports the one the spec names) and votes what it found."""
        run, drawn, signature = self._vote_context(args, frozenset(args["sample"]))
        evidence = args.get("evidence", sl.NO_SEGMENT)
        first = () if evidence == sl.NO_SEGMENT else (evidence,)
        verdict = self.world.audit(run, first + tuple(s for s in drawn if s != evidence))
        claimed = self.world.run(run).claim.score
        order, trainer = args["order"], account_name(args["trainer"])
        if verdict.accepted:
            assert verdict.score is not None
            tx = itx.Validate(order, trainer, itx.Verdict.ACCEPT, verdict.score, drawn, signature)
        elif verdict.evidence is not None and verdict.evidence_segment in drawn:
            tx = itx.Validate(
                order, trainer, itx.Verdict.REJECT, claimed, drawn, signature,
                verdict.evidence_segment, verdict.evidence,
            )  # fmt: skip
        else:
            raise Unrealizable(
                f"the real validator rejects the claim ({verdict.reason}) with no evidence inside its "
                f"sample {list(drawn)}, so it cannot post the vote the spec's honest validator posts"
            )
        return account_name(args["validator"]), tx

    def _tick(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        """A batch the ledger rejects as malformed: it still advances the height."""
        return account_name(0), None

    def _terminated(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        return None

    def _register_trainer(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        return self._registration(args["trainer"], sl.Role.TRAINER)

    def _register_validator(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        return self._registration(args["validator"], sl.Role.VALIDATOR)

    def _finalize(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        return account_name(state.orders[args["order"]].client), itx.Finalize(args["order"])

    def _byzantine_accept(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        return self._byzantine_vote(args, sl.Verdict.ACCEPT)

    def _byzantine_reject(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        return self._byzantine_vote(args, sl.Verdict.REJECT)

    def _byzantine_vote(self, args: dict[str, Any], verdict: sl.Verdict) -> Tx:
        """Whatever vote the validator can sign: an ACCEPT without looking, or a REJECT naming a sampled
        segment with the best evidence against it that anyone can build."""
        run, drawn, signature = self._vote_context(args, frozenset(args["sample"]))
        claimed = self.world.run(run).claim.score
        order, trainer = args["order"], account_name(args["trainer"])
        if verdict is sl.Verdict.ACCEPT:
            tx = itx.Validate(order, trainer, itx.Verdict.ACCEPT, claimed, drawn, signature)
        else:
            segment = args["evidence"]
            tx = itx.Validate(
                order, trainer, itx.Verdict.REJECT, claimed, drawn, signature,
                segment, self.world.evidence(run, segment),
            )  # fmt: skip
        return account_name(args["validator"]), tx

    def _challenge(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        """A fraud proof of the named segment; with the dispute game, no evidence: the game is."""
        order, trainer = args["order"], account_name(args["trainer"])
        run = self._posted_run(order, trainer)
        segment = args["segment"]
        evidence = b"" if self.dispute_steps else self.world.evidence(run, segment)
        tx = itx.Challenge(order, trainer, account_name(args["validator"]), segment, evidence)
        return account_name(args["challenger"]), tx

    # ------------------------------------------------------------------ the dispute game

    def _dispute(self, args: dict[str, Any]) -> tuple[DisputeRecord, RunKey]:
        """The ledger's record of the dispute the spec action names, and the disputed claim's run."""
        key = (
            args["order"],
            account_name(args["trainer"]),
            args["segment"],
            account_name(args["challenger"]),
        )
        record = self._ledger.disputes.get(key)
        if record is None:
            raise Unrealizable(f"the ledger holds no dispute {key}")
        return record, self._posted_run(args["order"], key[1])

    def _reveal(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        """The trainer opens its committed digest after the midpoint (honest or not: it committed it)."""
        record, run = self._dispute(args)
        opening = self.world.opening(run, record.segment)
        return record.trainer, itx.Reveal(record.order_id, record.segment, record.challenger, opening)

    def _honest_bisect(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        """The real honest challenger agrees exactly when the revealed digest is the one its own
        re-execution of the segment gives after the midpoint (whatever the spec's label says; a
        different choice shows as a state difference)."""
        record, run = self._dispute(args)
        honest = self.world.honest_trajectory(run, record.segment)
        agree = record.digest == honest[(record.lo + record.hi) // 2 - 1]
        return self._bisect(record, agree)

    def _byzantine_bisect(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        return self._bisect(self._dispute(args)[0], args["agree"])

    @staticmethod
    def _bisect(record: DisputeRecord, agree: bool) -> Tx:
        return record.challenger, itx.Bisect(record.order_id, record.trainer, record.segment, int(agree))

    def _supply(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        """The trainer's state after the agreed step, as it committed it; a forged one is the honest
        state one step further passed off as it (a preimage of the disputed digest it cannot build)."""
        record, run = self._dispute(args)
        forged = args["state"] is Supplied.FORGED
        supplied = self.world.supplied_state(run, record.segment, record.lo, forged)
        if forged and supplied == self.world.supplied_state(run, record.segment, record.lo):
            raise Unrealizable("one training step left the state unchanged: there is nothing to forge")
        opening = self.world.opening(run, record.segment)
        return record.trainer, itx.Supply(
            record.order_id, record.segment, record.challenger, supplied, opening
        )

    def _timeout(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        record, _ = self._dispute(args)
        return account_name(0), itx.Timeout(
            record.order_id, record.trainer, record.segment, record.challenger
        )

    def _forged_challenge(self, args: dict[str, Any], state: sl.LedgerState) -> Tx:
        """A challenge of (order, trainer, validator, segment) carrying the strongest evidence the
        challenger can build about ``proof``, another segment or another claim: a genuine fraud proof
        where that segment is faked, its committed data otherwise."""
        proof_order, proof_trainer, proof_segment = args["proof"]
        source = self._posted_run(proof_order, account_name(proof_trainer))
        tx = itx.Challenge(
            args["order"],
            account_name(args["trainer"]),
            account_name(args["validator"]),
            args["segment"],
            self.world.evidence(source, proof_segment),
        )
        return account_name(args["challenger"]), tx

    # ------------------------------------------------------------------ sample planning

    def _plan_samples(self, plan: Sequence[Label]) -> dict[int, list[PlannedVote]]:
        """For each order, the votes ``plan`` casts on it. An honest claim is score 1 with nothing
        faked."""
        claims: dict[tuple[int, int], tuple[int, frozenset[int], tuple[int, ...]]] = {}
        wants: dict[int, list[PlannedVote]] = {}
        for label in plan:
            args = dict(label.args)
            if label.action == "HonestClaim":
                claims[(args["order"], args["trainer"])] = (1, frozenset(), ())
            elif label.action == "ByzantineClaim":
                claim = (args["score"], frozenset(args["faked"]), args.get("forged_at", ()))
                claims[(args["order"], args["trainer"])] = claim
            elif label.action in VOTES and (args["order"], args["trainer"]) in claims:
                score, faked, forged_at = claims[(args["order"], args["trainer"])]
                wants.setdefault(args["order"], []).append(
                    PlannedVote(args["validator"], score, faked, forged_at, frozenset(args["sample"]))
                )
        return wants

    def _fits(self, index: int, order: bytes) -> bool:
        """Whether, were order ``index`` the committed ``order``, each validator's key would derive the
        sample the plan's vote needs from the claim the plan makes (claims that cannot be made on any
        order are left out: their steps are gaps whatever the task)."""
        for vote in self._wants.get(index, []):
            try:
                run = self._byzantine_run(order, vote.score, vote.faked, vote.forged_at)
            except Unrealizable:
                continue
            if (
                frozenset(self.world.sample(self._keys[vote.validator], run, self.sample_size)[0])
                != vote.sample
            ):
                return False
        return True


def _dispute_moves(record: Dispute) -> list[Label]:
    """Every move anyone can make in ``record``'s dispute: a timeout, a reveal, both bisections and
    both supplies."""
    key = (
        ("order", record.order),
        ("trainer", record.trainer),
        ("segment", record.segment),
        ("challenger", record.challenger),
    )
    return [
        Label("Timeout", key),
        Label("ByzantineReveal", key),
        *(Label("ByzantineBisect", (*key, ("agree", agree))) for agree in (False, True)),
        *(Label("ByzantineSupply", (*key, ("state", supplied))) for supplied in Supplied),
    ]


def _spec_tx(label: Label, state: sl.LedgerState) -> sl.Tx:
    """The spec transaction of a probe label (Finalize, a challenge, a Byzantine vote or claim, a
    dispute move)."""
    args = dict(label.args)
    if label.action == "Finalize":
        return sl.Finalize(args["order"])
    if label.action in ("Timeout", "ByzantineReveal", "ByzantineBisect", "ByzantineSupply"):
        key = (args["order"], args["trainer"], args["segment"], args["challenger"])
        if label.action == "Timeout":
            return sl.Timeout(key)
        if label.action == "ByzantineReveal":
            return sl.Reveal(key)
        if label.action == "ByzantineBisect":
            return sl.Bisect(key, args["agree"])
        return sl.Supply(key, args["state"])
    if label.action == "ByzantineClaim":
        trainer = args["trainer"]
        return sl.Claim(
            trainer, args["order"], trainer, args["score"], args["faked"], args.get("forged_at", ())
        )
    if label.action in ("ByzantineAccept", "ByzantineReject"):
        claim = sl.find_claim(state, args["order"], args["trainer"])
        assert claim is not None
        accept = label.action == "ByzantineAccept"
        return sl.Validate(
            args["validator"],
            args["order"],
            args["trainer"],
            sl.Verdict.ACCEPT if accept else sl.Verdict.REJECT,
            claim.score,
            args["sample"],
            sl.NO_SEGMENT if accept else args["evidence"],
        )
    return sl.Challenge(
        args["challenger"],
        args["order"],
        args["trainer"],
        args["validator"],
        args["segment"],
        args.get("proof"),
    )


def receipt_name(reason: sl.Reason) -> str:
    """The implementation's receipt for the spec's rejection ``reason`` (its name, dash-separated)."""
    return "bad-segment" if reason is sl.Reason.BAD_SEGMENTS else reason.name.lower().replace("_", "-")
