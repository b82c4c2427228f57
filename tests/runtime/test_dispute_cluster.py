"""The bisection dispute game end to end: four replica processes over TCP, real training and a real
one-step referee in every replica, a cheating trainer proved wrong by one re-executed step.

The test's parties read the ledger the way a light client would without a query API: they replay
the transactions they ordered, at the heights the replicas' receipts give, on a local ledger, and
check that it is the very ledger the replicas hold (equal state digests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nacl.signing import SigningKey

from conformance.bridge_training import RunKey, TrainingWorld
from pot_impl import codec
from pot_impl.ledger.ledger import Ledger
from pot_impl.ledger.records import DisputeOutcome, LedgerParams, OrderStatus
from pot_impl.ledger.transactions import (
    Bisect,
    Claim,
    Finalize,
    Order,
    Receipt,
    Register,
    Reveal,
    Role,
    Supply,
    Transaction,
    Validate,
    Verdict,
)
from pot_impl.runtime.client import ClientSession, LogicalClient
from pot_impl.runtime.cluster import LocalCluster
from pot_impl.runtime.config import LedgerSettings
from pot_impl.runtime.crypto import KeyPair, client_id, read_key_pair
from pot_impl.training.environment import Environment
from pot_impl.training.proof_checker import TrainingProofChecker
from pot_impl.training.reproducible import REPRODUCIBLE
from pot_impl.training.task import encode_task
from pot_impl.training.validator import Validator
from tests.runtime.conftest import statuses

K, SEGMENTS, STAKE, BOND = 4, 2, 10, 5
PARAMS = LedgerParams(
    segments=SEGMENTS,
    sample_size=1,
    validation_quorum=1,
    min_trainer_stake=STAKE,
    min_validator_stake=STAKE,
    challenge_window=2,
    dispute_steps=K,
    move_window=8,
    dispute_bond=BOND,
)
SKIPPED = 2
"""The cheater skips the last two of each segment's four steps: the first invalid one is step 3."""


class Parties:
    """The client, a cheating trainer and an honest validator, each a logical client of one session,
    and the local ledger that replays what they ordered."""

    def __init__(self, session: ClientSession, keys: dict[str, KeyPair], genesis: dict[str, int]) -> None:
        self.session = session
        self.client, self.trainer, self.validator = (
            LogicalClient(keys[name]) for name in ("client", "trainer", "validator")
        )
        self.mirror = Ledger(PARAMS, genesis, TrainingProofChecker(env=Environment("cpu", 1)))

    async def order(self, who: LogicalClient, operation: Transaction | bytes) -> Receipt:
        """Order ``operation`` (raw bytes: a batch the ledger rejects, which moves its clock) as
        ``who`` and replay it locally at the height it executed; both must give the same receipt."""
        encoded = operation if isinstance(operation, bytes) else codec.encode(operation)
        outcome = await self.session.submit(encoded, who, timeout_s=60.0)
        receipt = codec.decode(outcome.result, Receipt)
        assert codec.decode(self.mirror.execute(who.id, encoded, receipt.height), Receipt) == receipt
        return receipt

    async def ok(self, who: LogicalClient, tx: Transaction) -> None:
        receipt = await self.order(who, tx)
        assert receipt.ok, (type(tx).__name__, receipt)


def run_game(cluster: LocalCluster, keys: dict[str, KeyPair], genesis: dict[str, int]) -> Ledger:
    async def play() -> Ledger:
        assert cluster.config is not None
        session = ClientSession(cluster.config, keys["client"])
        parties = Parties(session, keys, genesis)
        await session.connect(clients=[parties.client, parties.trainer, parties.validator])
        try:
            await dispute(parties)
        finally:
            await session.close()
        return parties.mirror

    return asyncio.run(play())


async def dispute(parties: Parties) -> None:
    """Register, order, a cheating claim, the validator's REJECT, the game to one step, Finalize."""
    world = TrainingWorld(SEGMENTS, K, REPRODUCIBLE)
    signing = SigningKey(b"\x07" * 32)
    await parties.ok(parties.trainer, Register(Role.TRAINER, b"\x01" * 32, STAKE))
    await parties.ok(parties.validator, Register(Role.VALIDATOR, bytes(signing.verify_key), STAKE))
    deadline = (await parties.order(parties.client, b"tick")).height + 5
    await parties.ok(parties.client, Order(encode_task(world.task()), 50, 6, deadline))
    record = parties.mirror.orders[0]
    run = RunKey(world.committed(record.task, record.data_order_seed), frozenset(range(SEGMENTS)), 0, SKIPPED)
    claim = world.run(run).claim
    await parties.ok(parties.trainer, Claim(0, claim.final_model_digest, claim.score, claim.commitment))

    validator = Validator(signing, PARAMS.sample_size, world.catalog, Environment("cpu", 2))
    verdict = validator.validate(world.order(run.order).encode(), claim, world.run(run).server)
    assert not verdict.accepted and verdict.evidence_segment is not None and verdict.evidence is not None
    segment = verdict.evidence_segment
    reject = Validate(
        0,
        parties.trainer.id,
        Verdict.REJECT,
        0,
        verdict.sample,
        verdict.seed_signature,
        segment,
        verdict.evidence,
    )
    await parties.ok(parties.validator, reject)

    key = (0, parties.trainer.id, segment, parties.validator.id)
    honest = world.honest_trajectory(run, segment)  # the validator's own re-execution
    opening = world.opening(run, segment)
    while (game := parties.mirror.disputes[key]).hi - game.lo > 1:
        await parties.ok(parties.trainer, Reveal(0, segment, parties.validator.id, opening))
        revealed = parties.mirror.disputes[key]
        agree = revealed.digest == honest[(revealed.lo + revealed.hi) // 2 - 1]
        await parties.ok(parties.validator, Bisect(0, parties.trainer.id, segment, int(agree)))
    assert (game.lo, game.hi) == (K - SKIPPED, K - SKIPPED + 1)  # the first skipped step
    supplied = world.supplied_state(run, segment, game.lo)
    await parties.ok(parties.trainer, Supply(0, segment, parties.validator.id, supplied, opening))
    assert parties.mirror.disputes[key].outcome == DisputeOutcome.FRAUD_PROVED

    while (await parties.order(parties.client, b"tick")).height < deadline + PARAMS.challenge_window:
        pass
    await parties.ok(parties.client, Finalize(0))


def test_a_skipped_step_is_proved_on_a_live_cluster_and_the_cheater_slashed(
    make_cluster: Callable[..., LocalCluster],
) -> None:
    keys = {"trainer": KeyPair.generate(), "validator": KeyPair.generate()}
    funded = tuple((client_id(pair.public), 100) for pair in keys.values())
    cluster = make_cluster(ledger=LedgerSettings(PARAMS, funded))
    keys["client"] = read_key_pair(cluster.client_key_path)
    assert cluster.config is not None
    genesis = dict(cluster.config.ledger.genesis)  # the cluster funds its client and load accounts too
    mirror = run_game(cluster, keys, genesis)

    trainer, validator = (client_id(keys[name].public) for name in ("trainer", "validator"))
    assert mirror.slashed == {trainer}
    assert mirror.orders[0].status == OrderStatus.REFUNDED
    assert mirror.balance(validator) == 100 - STAKE + 6  # the whole fee: the one validator proved right
    assert cluster.config is not None
    reports = [r for r in statuses(cluster.config).values() if isinstance(r, dict)]
    current = [r["ledger"] for r in reports if r["last_executed"] == mirror.height]
    assert {r["state_digest"] for r in current} == {mirror.digest().hex()}
    assert all(r["open_disputes"] == 0 for r in current)
