"""The PoT ledger: accounts, stakes, training orders, claims, validations, challenges, settlement.

Execution is a pure function of the ordered log: ``apply`` reads only the
state, the sender, the transaction and the height, and answers proof
questions through the deterministic ``ProofChecker``. Every handler checks
everything first and mutates only once nothing can fail, so a rejected
transaction changes nothing (its receipt says why). The snapshot is the
canonical encoding of the state with every collection sorted by key, so
replicas that executed equal logs have byte-identical digests.

Value conservation: balances + stakes + escrow of open orders + bonds of open
disputes never change except by moving value between them (genesis fixes the
total).

With ``LedgerParams.dispute_steps = k > 0`` (the bisection dispute game of the
ledger specification, ``spec/dispute.py``) a REJECT or a challenge is not
adjudicated by re-executing its segment: it opens a dispute between trainer
and challenger that halves the disputed steps move by move (``Reveal``,
``Bisect``) until coordinators re-execute one step (``Supply``); a party that
lets its deadline pass loses (``Timeout``), and Finalize waits for the
order's disputes to end.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Mapping
from typing import Any

from pot_impl import codec
from pot_impl.encoded import EncodedRecords
from pot_impl.ledger.proofs import ProofChecker, StepRuling
from pot_impl.ledger.records import (
    AccountRecord,
    ChallengeRecord,
    ClaimRecord,
    CommittedOrder,
    DisputeOutcome,
    DisputeRecord,
    LedgerParams,
    LedgerSnapshot,
    OrderRecord,
    OrderStatus,
    VoteRecord,
)
from pot_impl.ledger.transactions import (
    NO_SEGMENT,
    TRANSACTION_TYPES,
    Bisect,
    Challenge,
    Claim,
    Finalize,
    Order,
    Receipt,
    Register,
    Reveal,
    Role,
    Supply,
    Timeout,
    Transaction,
    Validate,
    Verdict,
)

MAX_PUBLIC_KEY_BYTES = 64
DATA_ORDER_SEED_DOMAIN = b"pot-ledger/data-order-seed/v1\x00"


class Reason(enum.StrEnum):
    """Why a transaction was rejected (``OK`` when it was applied)."""

    OK = "ok"
    MALFORMED = "malformed-transaction"
    UNKNOWN_ACCOUNT = "unknown-account"
    ALREADY_REGISTERED = "already-registered"
    BAD_ROLE = "bad-role"
    BAD_PUBLIC_KEY = "bad-public-key"
    STAKE_TOO_LOW = "stake-too-low"
    INSUFFICIENT_FUNDS = "insufficient-funds"
    BAD_AMOUNT = "bad-amount"
    DEADLINE_NOT_IN_FUTURE = "deadline-not-in-future"
    UNKNOWN_ORDER = "unknown-order"
    ORDER_SETTLED = "order-settled"
    CLAIM_WINDOW_CLOSED = "claim-window-closed"
    NOT_A_TRAINER = "not-a-trainer"
    DUPLICATE_CLAIM = "duplicate-claim"
    NOT_A_VALIDATOR = "not-a-validator"
    UNKNOWN_CLAIM = "unknown-claim"
    DUPLICATE_VOTE = "duplicate-vote"
    BAD_SAMPLE = "bad-sample"
    BAD_EVIDENCE = "bad-evidence"
    SCORE_MISMATCH = "score-mismatch"
    UNKNOWN_VOTE = "unknown-vote"
    NOT_AN_ACCEPT = "not-an-accept"
    BAD_SEGMENT = "bad-segment"
    CHALLENGE_WINDOW_CLOSED = "challenge-window-closed"
    DUPLICATE_CHALLENGE = "duplicate-challenge"
    DEADLINE_NOT_REACHED = "deadline-not-reached"
    UNKNOWN_DISPUTE = "unknown-dispute"
    NOT_YOUR_MOVE = "not-your-move"
    MOVE_WINDOW_OPEN = "move-window-open"
    MOVE_WINDOW_CLOSED = "move-window-closed"
    DISPUTES_OPEN = "disputes-open"
    UNFIT_FOR_DISPUTES = "unfit-for-disputes"


DisputeKey = tuple[int, str, int, str]
"""(order, trainer, segment, challenger): one dispute per challenger and segment, ever."""

_RULED = {
    StepRuling.STEP_VALID: DisputeOutcome.STEP_VALID,
    StepRuling.FRAUD_PROVED: DisputeOutcome.FRAUD_PROVED,
    StepRuling.WRONG_STATE: DisputeOutcome.TRAINER_DEFAULTED,
}


class _Rejected(Exception):
    def __init__(self, reason: Reason) -> None:
        self.reason = reason


def _require(condition: bool, reason: Reason) -> None:
    if not condition:
        raise _Rejected(reason)


class Ledger:
    """The replicated PoT ledger; also a PBFT ``Application`` (``execute``/``snapshot``/``restore``)."""

    def __init__(self, params: LedgerParams, genesis: Mapping[str, int], checker: ProofChecker) -> None:
        if any(amount < 0 for amount in genesis.values()):
            raise ValueError("genesis balances must be non-negative")
        self._checker = checker
        self._genesis = LedgerSnapshot(
            params=params,
            height=0,
            accounts=tuple(AccountRecord(a, genesis[a], 0, int(Role.NONE), b"") for a in sorted(genesis)),
            orders=(),
            claims=(),
            votes=(),
            challenges=(),
            slashed=(),
        )
        self._load(self._genesis)

    def _load(self, snapshot: LedgerSnapshot) -> None:
        self.params = snapshot.params
        self._height = snapshot.height
        self._accounts = EncodedRecords((a.account, a) for a in snapshot.accounts)
        self._orders = EncodedRecords((o.order_id, o) for o in snapshot.orders)
        self._claims = EncodedRecords(((c.order_id, c.trainer), c) for c in snapshot.claims)
        self._votes = EncodedRecords(((v.order_id, v.trainer, v.validator), v) for v in snapshot.votes)
        self._challenges = EncodedRecords(
            ((c.order_id, c.trainer, c.validator, c.segment), c) for c in snapshot.challenges
        )
        self._slashed = set(snapshot.slashed)
        self._disputes = EncodedRecords((_dispute_key(d), d) for d in snapshot.disputes)

    # ------------------------------------------------------------ inspection

    @property
    def height(self) -> int:
        """Height of the last executed transaction."""
        return self._height

    @property
    def accounts(self) -> Mapping[str, AccountRecord]:
        return dict(self._accounts)

    @property
    def orders(self) -> Mapping[int, OrderRecord]:
        return dict(self._orders)

    @property
    def claims(self) -> Mapping[tuple[int, str], ClaimRecord]:
        return dict(self._claims)

    @property
    def votes(self) -> Mapping[tuple[int, str, str], VoteRecord]:
        return dict(self._votes)

    @property
    def challenges(self) -> Mapping[tuple[int, str, str, int], ChallengeRecord]:
        return dict(self._challenges)

    @property
    def disputes(self) -> Mapping[DisputeKey, DisputeRecord]:
        return dict(self._disputes)

    @property
    def slashed(self) -> frozenset[str]:
        """Accounts ever slashed."""
        return frozenset(self._slashed)

    def has_account(self, account: str) -> bool:
        """True iff ``account`` exists. Accounts exist from genesis on and no transaction creates
        one, so every transaction of a sender without one is refused (``unknown-account``)."""
        return account in self._accounts

    def balance(self, account: str) -> int:
        record = self._accounts.get(account)
        return record.balance if record else 0

    def total_value(self) -> int:
        """Balances + stakes + escrow + open disputes' bonds: constant under every transaction."""
        bonds = sum(d.bond for d in self._disputes.values() if d.outcome == DisputeOutcome.OPEN)
        return (
            sum(a.balance + a.stake for a in self._accounts.values())
            + sum(o.escrow for o in self._orders.values())
            + bonds
        )

    def state(self) -> LedgerSnapshot:
        """The whole state as one canonical value."""
        return LedgerSnapshot(
            params=self.params,
            height=self._height,
            accounts=tuple(self._accounts[k] for k in sorted(self._accounts)),
            orders=tuple(self._orders[k] for k in sorted(self._orders)),
            claims=tuple(self._claims[k] for k in sorted(self._claims)),
            votes=tuple(self._votes[k] for k in sorted(self._votes)),
            challenges=tuple(self._challenges[k] for k in sorted(self._challenges)),
            slashed=tuple(sorted(self._slashed)),
            disputes=tuple(self._disputes[k] for k in sorted(self._disputes)),
        )

    def digest(self) -> bytes:
        """SHA-256 of the canonical snapshot."""
        return hashlib.sha256(self.snapshot()).digest()

    # ------------------------------------------------------------ Application

    def snapshot(self) -> bytes:
        """``codec.encode(self.state())``, from the tables' kept encodings (``EncodedRecords``)."""
        tables: dict[str, EncodedRecords[Any, Any]] = {
            "accounts": self._accounts,
            "orders": self._orders,
            "claims": self._claims,
            "votes": self._votes,
            "challenges": self._challenges,
            "disputes": self._disputes,
        }
        values = {"params": self.params, "height": self._height, "slashed": tuple(sorted(self._slashed))}
        return codec.encode_fields(LedgerSnapshot, values, {name: t.encoded() for name, t in tables.items()})

    def restore(self, snapshot: bytes) -> None:
        self._load(codec.decode_unlimited(snapshot, LedgerSnapshot))

    def execute(self, client: str, operation: bytes, height: int) -> bytes:
        """Decode and apply one transaction; the result is the encoded ``Receipt``."""
        try:
            tx: Transaction = codec.decode(operation, TRANSACTION_TYPES)
        except codec.DecodeError:
            self._height = max(self._height, height)
            return codec.encode(Receipt(height, Reason.MALFORMED.value))
        return codec.encode(self.apply(client, tx, height))

    def apply(self, sender: str, tx: Transaction, height: int) -> Receipt:
        """Apply ``tx`` from ``sender`` at logical time ``height``, or reject it without effect."""
        self._height = max(self._height, height)
        try:
            created = self._dispatch(sender, tx)
        except _Rejected as rejected:
            return Receipt(height, rejected.reason.value)
        return Receipt(height, Reason.OK.value, created)

    def _dispatch(self, sender: str, tx: Transaction) -> int:
        if isinstance(tx, Register):
            self._register(sender, tx)
        elif isinstance(tx, Order):
            return self._order(sender, tx)
        elif isinstance(tx, Claim):
            self._claim(sender, tx)
        elif isinstance(tx, Validate):
            self._validate(sender, tx)
        elif isinstance(tx, Challenge):
            self._challenge(sender, tx)
        elif isinstance(tx, Reveal | Bisect | Supply | Timeout):
            self._dispute_move(sender, tx)
        else:
            self._finalize(tx)
        return -1

    # ------------------------------------------------------------ guards

    def _account(self, account: str) -> AccountRecord:
        record = self._accounts.get(account)
        _require(record is not None, Reason.UNKNOWN_ACCOUNT)
        assert record is not None
        return record

    def _has_role(self, account: str, role: Role, min_stake: int) -> bool:
        record = self._accounts.get(account)
        return record is not None and record.role == role and record.stake >= min_stake

    def _open_order(self, order_id: int) -> OrderRecord:
        order = self._orders.get(order_id)
        _require(order is not None, Reason.UNKNOWN_ORDER)
        assert order is not None
        _require(order.status == OrderStatus.OPEN, Reason.ORDER_SETTLED)
        return order

    def _claims_open(self, order_id: int) -> OrderRecord:
        order = self._open_order(order_id)
        _require(self._height < order.deadline, Reason.CLAIM_WINDOW_CLOSED)
        return order

    def _settlement_height(self, order: OrderRecord) -> int:
        return order.deadline + self.params.challenge_window

    def _fraud_proved(self, order: OrderRecord, claim: ClaimRecord, segment: int, evidence: bytes) -> bool:
        """The checker upholds ``evidence`` against the claim's proof root, for exactly ``segment``."""
        return self._checker.segment_of(evidence) == segment and self._checker.check_fraud_proof(
            committed_order(order), claim.proof_root, evidence
        )

    def _data_order_seed(self, order_id: int) -> bytes:
        """SHA-256 over the state digest at the moment the order executes (which holds the height)
        and the order id: fixed by the whole ordered log up to the order, so the client controls only
        its own transaction's bytes (which do not enter the hash) and a trainer nothing."""
        return hashlib.sha256(DATA_ORDER_SEED_DOMAIN + self.digest() + order_id.to_bytes(8, "big")).digest()

    # ------------------------------------------------------------ handlers

    def _register(self, sender: str, tx: Register) -> None:
        account = self._account(sender)
        _require(account.role == Role.NONE, Reason.ALREADY_REGISTERED)
        minimum = {
            Role.TRAINER: self.params.min_trainer_stake,
            Role.VALIDATOR: self.params.min_validator_stake,
        }
        _require(tx.role in minimum, Reason.BAD_ROLE)
        _require(0 < len(tx.public_key) <= MAX_PUBLIC_KEY_BYTES, Reason.BAD_PUBLIC_KEY)
        _require(tx.stake >= minimum[Role(tx.role)], Reason.STAKE_TOO_LOW)
        _require(account.balance >= tx.stake, Reason.INSUFFICIENT_FUNDS)
        self._accounts[sender] = dataclasses.replace(
            account,
            balance=account.balance - tx.stake,
            stake=account.stake + tx.stake,
            role=int(tx.role),
            public_key=tx.public_key,
        )

    def _order(self, sender: str, tx: Order) -> int:
        account = self._account(sender)
        _require(tx.bounty > 0 and tx.fee >= 0, Reason.BAD_AMOUNT)
        _require(tx.deadline > self._height, Reason.DEADLINE_NOT_IN_FUTURE)
        steps = self.params.dispute_steps
        _require(not steps or self._checker.fits_dispute_game(tx.task, steps), Reason.UNFIT_FOR_DISPUTES)
        escrow = tx.bounty + tx.fee
        _require(account.balance >= escrow, Reason.INSUFFICIENT_FUNDS)
        order_id = len(self._orders)
        seed = self._data_order_seed(order_id)
        self._accounts[sender] = dataclasses.replace(account, balance=account.balance - escrow)
        self._orders[order_id] = OrderRecord(
            order_id,
            sender,
            tx.task,
            tx.bounty,
            tx.fee,
            tx.deadline,
            escrow,
            int(OrderStatus.OPEN),
            "",
            -1,
            seed,
        )
        return order_id

    def _claim(self, sender: str, tx: Claim) -> None:
        _require(self._has_role(sender, Role.TRAINER, self.params.min_trainer_stake), Reason.NOT_A_TRAINER)
        self._claims_open(tx.order_id)
        _require((tx.order_id, sender) not in self._claims, Reason.DUPLICATE_CLAIM)
        _require(tx.claimed_score >= 0, Reason.BAD_AMOUNT)
        self._claims[(tx.order_id, sender)] = ClaimRecord(
            tx.order_id, sender, tx.model_commitment, tx.claimed_score, tx.proof_root
        )

    def _validate(self, sender: str, tx: Validate) -> None:
        _require(
            self._has_role(sender, Role.VALIDATOR, self.params.min_validator_stake), Reason.NOT_A_VALIDATOR
        )
        order = self._claims_open(tx.order_id)
        claim = self._claims.get((tx.order_id, tx.trainer))
        _require(claim is not None, Reason.UNKNOWN_CLAIM)
        assert claim is not None
        _require((tx.order_id, tx.trainer, sender) not in self._votes, Reason.DUPLICATE_VOTE)
        segments = self.params.segments
        _require(
            len(tx.sample) == self.params.sample_size
            and len(set(tx.sample)) == len(tx.sample)
            and all(0 <= s < segments for s in tx.sample),
            Reason.BAD_SAMPLE,
        )
        _require(tx.verdict in (Verdict.ACCEPT, Verdict.REJECT), Reason.BAD_EVIDENCE)
        if tx.verdict == Verdict.ACCEPT:
            _require(tx.evidence_segment == NO_SEGMENT and not tx.evidence, Reason.BAD_EVIDENCE)
            _require(tx.score == claim.claimed_score, Reason.SCORE_MISMATCH)
        else:
            _require(tx.evidence_segment in tx.sample, Reason.BAD_EVIDENCE)
        validator_key = self._accounts[sender].public_key
        _require(
            self._checker.check_sample(
                committed_order(order), claim.proof_root, validator_key, tx.sample, tx.seed_signature
            ),
            Reason.BAD_SAMPLE,
        )
        disputed = tx.verdict == Verdict.REJECT and self.params.dispute_steps > 0
        upheld = (
            tx.verdict == Verdict.REJECT
            and not disputed
            and self._fraud_proved(order, claim, tx.evidence_segment, tx.evidence)
        )
        verdict = int(tx.verdict)
        self._votes[(tx.order_id, tx.trainer, sender)] = VoteRecord(
            tx.order_id, tx.trainer, sender, verdict, tx.score, tx.sample, tx.evidence_segment, int(upheld)
        )
        if disputed:  # the REJECT's evidence is the game it opens, with the validator's stake at risk
            self._open_dispute((tx.order_id, tx.trainer, tx.evidence_segment, sender), bond=0)

    def _challenge(self, sender: str, tx: Challenge) -> None:
        self._account(sender)
        order = self._open_order(tx.order_id)
        _require(self._height < self._settlement_height(order), Reason.CHALLENGE_WINDOW_CLOSED)
        vote = self._votes.get((tx.order_id, tx.trainer, tx.validator))
        claim = self._claims.get((tx.order_id, tx.trainer))
        _require(vote is not None and claim is not None, Reason.UNKNOWN_VOTE)
        assert vote is not None and claim is not None
        _require(vote.verdict == Verdict.ACCEPT, Reason.NOT_AN_ACCEPT)
        _require(0 <= tx.segment < self.params.segments, Reason.BAD_SEGMENT)
        if self.params.dispute_steps:
            self._challenge_disputed(sender, tx, claim)
            return
        key = (tx.order_id, tx.trainer, tx.validator, tx.segment)
        # a challenge that failed does not close the segment: otherwise a challenger could file
        # worthless evidence first and so shield a faked segment from the genuine fraud proof
        earlier = self._challenges.get(key)
        _require(earlier is None or not earlier.upheld, Reason.DUPLICATE_CHALLENGE)
        upheld = self._fraud_proved(order, claim, tx.segment, tx.evidence)
        self._challenges[key] = ChallengeRecord(
            tx.order_id, tx.trainer, tx.validator, tx.segment, sender, int(upheld)
        )

    # ------------------------------------------------------------ the dispute game

    def _challenge_disputed(self, sender: str, tx: Challenge, claim: ClaimRecord) -> None:
        """A challenge bonds the challenger into a dispute of the segment; the game is the evidence,
        so a challenge carrying evidence of its own is refused."""
        _require(not tx.evidence, Reason.BAD_EVIDENCE)
        key = (tx.order_id, tx.trainer, tx.segment, sender)
        _require(key not in self._disputes, Reason.DUPLICATE_CHALLENGE)
        _require(tx.segment not in self.proved_segments(claim), Reason.DUPLICATE_CHALLENGE)
        account = self._accounts[sender]
        bond = self.params.dispute_bond
        _require(account.balance >= bond, Reason.INSUFFICIENT_FUNDS)
        self._accounts[sender] = dataclasses.replace(account, balance=account.balance - bond)
        self._open_dispute(key, bond)

    def _open_dispute(self, key: DisputeKey, bond: int) -> None:
        """A dispute over the whole segment: its start agreed, its end disputed; the trainer moves."""
        order_id, trainer, segment, challenger = key
        self._disputes[key] = DisputeRecord(
            order_id,
            trainer,
            segment,
            challenger,
            bond,
            lo=0,
            hi=self.params.dispute_steps,
            revealed=0,
            digest=b"",
            due=self._height + self.params.move_window,
            moves=0,
            outcome=int(DisputeOutcome.OPEN),
        )

    def _dispute_move(self, sender: str, tx: Reveal | Bisect | Supply | Timeout) -> None:
        """A move by the party whose turn it is, no later than its deadline; or a timeout once the
        deadline has passed. The trainer moves with one step left too: it supplies its state."""
        if isinstance(tx, Bisect | Timeout):
            key = (tx.order_id, tx.trainer, tx.segment, sender if isinstance(tx, Bisect) else tx.challenger)
        else:
            key = (tx.order_id, sender, tx.segment, tx.challenger)
        record = self._disputes.get(key)
        _require(record is not None and record.outcome == DisputeOutcome.OPEN, Reason.UNKNOWN_DISPUTE)
        assert record is not None
        if isinstance(tx, Timeout):
            _require(self._height > record.due, Reason.MOVE_WINDOW_OPEN)
            by_trainer = not record.revealed
            self._end_dispute(
                record,
                DisputeOutcome.TRAINER_DEFAULTED if by_trainer else DisputeOutcome.CHALLENGER_DEFAULTED,
            )
            return
        _require(self._height <= record.due, Reason.MOVE_WINDOW_CLOSED)
        due = self._height + self.params.move_window
        one_step_left = record.hi - record.lo <= 1
        midpoint = (record.lo + record.hi) // 2
        if isinstance(tx, Bisect) and record.revealed:
            _require(tx.agree in (0, 1), Reason.MALFORMED)
            lo, hi = (midpoint, record.hi) if tx.agree else (record.lo, midpoint)
            self._disputes[key] = dataclasses.replace(
                record, lo=lo, hi=hi, revealed=0, digest=b"", due=due, moves=record.moves + 1
            )
        elif isinstance(tx, Reveal) and not record.revealed and not one_step_left:
            digest = self._checker.step_digest(
                self._committed(record), self._proof_root(record), record.segment, midpoint, tx.opening
            )
            _require(digest is not None, Reason.BAD_EVIDENCE)
            assert digest is not None
            self._disputes[key] = dataclasses.replace(
                record, revealed=1, digest=digest, due=due, moves=record.moves + 1
            )
        elif isinstance(tx, Supply) and not record.revealed and one_step_left:
            ruling = self._checker.referee(
                self._committed(record),
                self._proof_root(record),
                record.segment,
                record.lo,
                tx.state,
                tx.opening,
            )
            _require(ruling is not None, Reason.BAD_EVIDENCE)
            assert ruling is not None
            self._end_dispute(dataclasses.replace(record, moves=record.moves + 1), _RULED[ruling])
        else:
            raise _Rejected(Reason.NOT_YOUR_MOVE)

    def _committed(self, record: DisputeRecord) -> bytes:
        return committed_order(self._orders[record.order_id])

    def _proof_root(self, record: DisputeRecord) -> bytes:
        return self._claims[(record.order_id, record.trainer)].proof_root

    def _end_dispute(self, record: DisputeRecord, outcome: DisputeOutcome) -> None:
        """The dispute ends with ``outcome``; its bond goes to the winner."""
        winner = record.challenger if outcome.trainer_lost else record.trainer
        self._credit(winner, record.bond)
        self._disputes[_dispute_key(record)] = dataclasses.replace(record, outcome=int(outcome))

    def _disputes_of(self, claim: ClaimRecord) -> list[DisputeRecord]:
        key = (claim.order_id, claim.trainer)
        return [d for k, d in sorted(self._disputes.items()) if k[:2] == key]

    # ------------------------------------------------------------ settlement

    def proved_segments(self, claim: ClaimRecord) -> frozenset[int]:
        """Segments of ``claim`` proved faked: upheld challenges and REJECTs whose evidence checked."""
        key = (claim.order_id, claim.trainer)
        from_challenges = {c.segment for k, c in self._challenges.items() if k[:2] == key and c.upheld}
        from_rejects = {
            v.evidence_segment for k, v in self._votes.items() if k[:2] == key and v.evidence_upheld
        }
        from_disputes = {
            d.segment for d in self._disputes_of(claim) if d.outcome == DisputeOutcome.FRAUD_PROVED
        }
        return frozenset(from_challenges | from_rejects | from_disputes)

    def _rejection_upheld(self, vote: VoteRecord) -> bool:
        """A REJECT's evidence checked or, with the dispute game, the trainer lost the dispute it opened."""
        if not self.params.dispute_steps:
            return bool(vote.evidence_upheld)
        record = self._disputes.get((vote.order_id, vote.trainer, vote.evidence_segment, vote.validator))
        return record is not None and DisputeOutcome(record.outcome).trainer_lost

    def _votes_on(self, claim: ClaimRecord) -> list[VoteRecord]:
        key = (claim.order_id, claim.trainer)
        return [v for k, v in sorted(self._votes.items()) if k[:2] == key]

    def _finalize(self, tx: Finalize) -> None:
        """Pay the best claim that has a validation quorum and no proved fraud (refund if none),
        slash the trainers of proved-fraudulent claims and the validators proved wrong (their whole
        stake goes to the order's client), and split the fee among the validators proved right."""
        order = self._open_order(tx.order_id)
        _require(self._height >= self._settlement_height(order), Reason.DEADLINE_NOT_REACHED)
        _require(
            all(
                d.order_id != tx.order_id or d.outcome != DisputeOutcome.OPEN for d in self._disputes.values()
            ),
            Reason.DISPUTES_OPEN,
        )
        claims = sorted(
            (c for (o, _), c in self._claims.items() if o == tx.order_id),
            key=lambda c: (-c.claimed_score, c.trainer),
        )
        winner: ClaimRecord | None = None
        to_slash: set[str] = set()
        right: set[str] = set()
        for claim in claims:
            proved = self.proved_segments(claim)
            votes = self._votes_on(claim)
            if proved or any(DisputeOutcome(d.outcome).trainer_lost for d in self._disputes_of(claim)):
                to_slash.add(claim.trainer)
            elif (
                winner is None
                and sum(v.verdict == Verdict.ACCEPT for v in votes) >= self.params.validation_quorum
            ):
                winner = claim
            for vote in votes:
                upheld = vote.verdict == Verdict.REJECT and self._rejection_upheld(vote)
                if _vote_proved_wrong(vote, proved, upheld):
                    to_slash.add(vote.validator)
                elif _vote_proved_right(vote, proved, upheld):
                    right.add(vote.validator)
        right -= to_slash
        self._settle(order, winner, sorted(to_slash), sorted(right))

    def _settle(
        self, order: OrderRecord, winner: ClaimRecord | None, slash: list[str], right: list[str]
    ) -> None:
        for account in slash:
            record = self._accounts[account]
            self._credit(order.client, record.stake)
            self._accounts[account] = dataclasses.replace(self._accounts[account], stake=0)
            self._slashed.add(account)
        self._credit(winner.trainer if winner else order.client, order.bounty)
        share = order.fee // len(right) if right else 0
        for validator in right:
            self._credit(validator, share)
        self._credit(order.client, order.fee - share * len(right))
        self._orders[order.order_id] = dataclasses.replace(
            order,
            escrow=0,
            status=int(OrderStatus.PAID if winner else OrderStatus.REFUNDED),
            winner=winner.trainer if winner else "",
            settled_at=self._height,
        )

    def _credit(self, account: str, amount: int) -> None:
        record = self._accounts[account]
        self._accounts[account] = dataclasses.replace(record, balance=record.balance + amount)


def committed_order(order: OrderRecord) -> bytes:
    """The order bytes the checker is asked about: the posted task with the ledger's seed."""
    return codec.encode(CommittedOrder(order.task, order.data_order_seed))


def _dispute_key(record: DisputeRecord) -> DisputeKey:
    return (record.order_id, record.trainer, record.segment, record.challenger)


def _vote_proved_wrong(vote: VoteRecord, proved: frozenset[int], upheld: bool) -> bool:
    """An ACCEPT whose own sample holds a proved-faked segment, or a REJECT not ``upheld``."""
    if vote.verdict == Verdict.ACCEPT:
        return not proved.isdisjoint(vote.sample)
    return not upheld


def _vote_proved_right(vote: VoteRecord, proved: frozenset[int], upheld: bool) -> bool:
    """An ACCEPT of a claim with no proved fraud, or a REJECT ``upheld``."""
    if vote.verdict == Verdict.ACCEPT:
        return not proved
    return upheld
