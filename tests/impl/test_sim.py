"""Seeded simulations: safety, exactly-once execution, identical states and progress after faults heal.

Every scenario is generated from its seed; a failure message names the seed,
and ``simulate(random_scenario(seed, n, ...), ...)`` reproduces it exactly.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from pot_impl import codec
from pot_impl.ledger.ledger import Ledger
from pot_impl.ledger.records import LedgerParams
from pot_impl.ledger.standin import StandInProofChecker, derive_sample, fraud_evidence, seed_signature
from pot_impl.ledger.transactions import (
    Challenge,
    Claim,
    Finalize,
    Order,
    Register,
    Role,
    Transaction,
    Validate,
    Verdict,
)
from pot_impl.pbft.io import EventKind, ProtocolEvent
from pot_impl.sim import checks
from pot_impl.sim.apps import RecordingApp, TrackedApp
from pot_impl.sim.scenarios import random_scenario
from pot_impl.sim.simulator import RunResult, simulate


def recorded_operations(result: RunResult, replica: int) -> list[bytes]:
    app = result.apps[replica]
    assert isinstance(app, TrackedApp) and isinstance(app.inner, RecordingApp)
    return [op for _, op, _ in app.inner.executed]


def verify_run(result: RunResult) -> list[str]:
    seed, n = result.scenario.seed, result.scenario.config.n
    violations = (
        checks.all_safety(result)
        + checks.exactly_once(result, lambda r: recorded_operations(result, r))
        + checks.progress(result)
    )
    return [f"n={n} seed={seed}: {v}" for v in violations]


def caught_up(result: RunResult) -> tuple[list[str], int]:
    """Violations of "a caught-up event is immediately followed by the executed event of that batch"
    at honest replicas, and how many caught-up events there were."""
    violations: list[str] = []
    count = 0
    for r in result.honest:
        steps = [e for e in result.nodes[r].events if e.kind in (EventKind.CAUGHT_UP, EventKind.EXECUTED)]
        for event, following in itertools.pairwise(steps):
            if event.kind is EventKind.CAUGHT_UP and (following.kind, following.seq, following.digest) != (
                EventKind.EXECUTED,
                event.seq,
                event.digest,
            ):
                violations.append(f"replica {r}: caught-up seq {event.seq} not executed next")
        count += sum(e.kind is EventKind.CAUGHT_UP for e in steps)
        if steps and steps[-1].kind is EventKind.CAUGHT_UP:
            violations.append(f"replica {r}: caught-up seq {steps[-1].seq} never executed")
    return violations, count


def sweep(n: int, seeds: range) -> tuple[list[str], int, int]:
    """Run the seeds (odd ones with faulty primaries in views 0..f-1); return violations, how many
    runs went through at least one view change and how many batches executed on fetched
    certificates (catch-up)."""
    violations: list[str] = []
    with_view_change = fetched = 0
    for seed in seeds:
        result = simulate(random_scenario(seed, n, faulty_primaries=seed % 2 == 1), RecordingApp)
        violations.extend(verify_run(result))
        with_view_change += any(
            e.kind is EventKind.NEW_VIEW for r in result.honest for e in result.nodes[r].events
        )
        wrong, count = caught_up(result)
        violations.extend(f"n={n} seed={seed}: {v}" for v in wrong)
        fetched += count
    return violations, with_view_change, fetched


@pytest.mark.parametrize(("n", "seeds"), [(4, range(0, 20)), (7, range(0, 8)), (10, range(0, 4))])
def test_seed_sweep_is_safe_and_live(n: int, seeds: range) -> None:
    violations, with_view_change, fetched = sweep(n, seeds)
    assert violations == []
    assert with_view_change >= len(seeds) // 2  # the faulty-primary half must force view changes
    if n == 4:
        assert fetched > 0  # lossy runs leave replicas behind, and they catch up (24 batches in 10 runs)


@pytest.mark.slow
@pytest.mark.parametrize("first_seed", range(1000, 1200, 50))
@pytest.mark.parametrize("n", [4, 7, 10])
def test_hundreds_of_seeds_are_safe_and_live(n: int, first_seed: int) -> None:
    violations, _, _ = sweep(n, range(first_seed, first_seed + 50))
    assert violations == []


def test_a_run_is_reproducible_from_its_seed() -> None:
    scenario = random_scenario(7, 4, faulty_primaries=True)
    first, second = simulate(scenario, RecordingApp), simulate(scenario, RecordingApp)
    assert first.finished_at == second.finished_at
    for r in range(4):
        assert first.nodes[r].events == second.nodes[r].events
        assert first.nodes[r].history == second.nodes[r].history


def test_faulty_primaries_in_consecutive_views_are_replaced() -> None:
    scenario = random_scenario(3, 7, faulty_primaries=True)
    scenario = dataclasses.replace(
        scenario, byzantine=((0, "silent"), (1, "equivocate")), crashes=(), partitions=()
    )
    result = simulate(scenario, RecordingApp)
    assert verify_run(result) == []
    honest_views = {replica.view for r in result.honest if (replica := result.replicas[r]) is not None}
    assert min(honest_views) >= 2  # views 0 and 1 had faulty primaries


AGREEMENT_MESSAGES = frozenset({"PrePrepare", "Prepare", "Commit"})
MESSAGE_EVENTS = (EventKind.SENT, EventKind.RECEIVED)


def message_event_violations(result: RunResult) -> tuple[list[str], int]:
    """Check that honest replicas' ``sent``/``received`` events name their messages well enough for
    trace validation: each has a type and digest; an agreement message's (view, seq, digest) agrees
    with what its honest sender pre-prepared/committed there; each receipt from an honest sender
    pairs with a send of the same message. Return the violations and how many events were checked
    against a ``pre-prepared``/``committed`` digest."""
    violations: list[str] = []
    matched = 0
    honest = set(result.honest)
    chosen = {
        replica: {
            (e.view, e.seq): e.digest
            for e in result.nodes[replica].events
            if e.kind in (EventKind.PRE_PREPARED, EventKind.COMMITTED)
        }
        for replica in result.honest
    }
    sent: set[tuple[int, str, int, int, bytes, int]] = set()
    received: list[tuple[int, ProtocolEvent]] = []
    for replica in result.honest:
        for e in result.nodes[replica].events:
            if e.kind not in MESSAGE_EVENTS:
                continue
            if not e.digest or not e.message or (e.message != "Request" and e.sender < 0):
                violations.append(f"replica {replica}: {e.kind} {e.message} lacks digest, type or sender")
            if e.kind is EventKind.SENT:
                sent.add((e.sender, e.message, e.message_view, e.seq, e.digest, e.peer))
            elif e.sender != e.peer:
                violations.append(f"replica {replica}: received {e.message} from {e.peer} names {e.sender}")
            elif e.sender in honest:
                received.append((replica, e))
            if e.message not in AGREEMENT_MESSAGES:
                continue
            if min(e.message_view, e.seq) < 0:
                violations.append(f"replica {replica}: {e.kind} {e.message} lacks its view or seq")
            if e.sender not in honest:
                continue
            known = chosen[e.sender].get((e.message_view, e.seq))
            if known is not None:
                matched += 1
                if known != e.digest:
                    violations.append(
                        f"replica {replica}: {e.kind} {e.message} ({e.message_view}, {e.seq}) digest "
                        f"differs from what replica {e.sender} pre-prepared/committed there"
                    )
    for replica, e in received:
        key = (e.sender, e.message, e.message_view, e.seq, e.digest)
        if not {(*key, replica), (*key, -1)} & sent:
            violations.append(f"replica {replica} received a {e.message} {key} that was never sent")
    return violations, matched


@pytest.mark.parametrize("seed", range(4))
def test_message_events_identify_messages_consistently_with_agreement_events(seed: int) -> None:
    result = simulate(random_scenario(seed, 4, faulty_primaries=True), RecordingApp)
    violations, matched = message_event_violations(result)
    assert violations == []
    assert matched >= 3 * result.scenario.config.n  # agreement traffic was actually checked


# ---------------------------------------------------------------- the ledger on top of PBFT

PARAMS = LedgerParams(
    segments=8,
    sample_size=3,
    validation_quorum=2,
    min_trainer_stake=5,
    min_validator_stake=10,
    challenge_window=4,
)
TASK, GOOD, FAKE = b"task", b"good-root", b"fake-root"
GENESIS = {f"c{i}": 1_000 for i in range(6)}


def ledger_factory() -> Ledger:
    return Ledger(
        PARAMS, GENESIS, StandInProofChecker(PARAMS.segments, PARAMS.sample_size, {FAKE: frozenset(range(6))})
    )


def _vote(validator: str, trainer: str, root: bytes, verdict: Verdict) -> Validate:
    signature = seed_signature(validator.encode(), TASK, root)
    sample = derive_sample(signature, PARAMS.segments, PARAMS.sample_size)
    if verdict == Verdict.ACCEPT:
        return Validate(0, trainer, verdict, 90, sample, signature)
    return Validate(0, trainer, verdict, 0, sample, signature, sample[0], fraud_evidence(sample[0]))


def ledger_workload() -> tuple[tuple[bytes, ...], ...]:
    """c0 orders and keeps finalizing, c1 trains honestly, c2 fakes, c3/c4 validate, c5 challenges."""
    scripts: list[list[Transaction]] = [
        [Order(TASK, 100, 40, 12), *[Finalize(0)] * 8],
        [Register(Role.TRAINER, b"k1", 5), Claim(0, b"model", 90, GOOD)],
        [Register(Role.TRAINER, b"k2", 5), Claim(0, b"fake", 95, FAKE)],
        [
            Register(Role.VALIDATOR, b"c3", 10),
            _vote("c3", "c1", GOOD, Verdict.ACCEPT),
            _vote("c3", "c2", FAKE, Verdict.ACCEPT),
        ],
        [
            Register(Role.VALIDATOR, b"c4", 10),
            _vote("c4", "c1", GOOD, Verdict.ACCEPT),
            _vote("c4", "c2", FAKE, Verdict.REJECT),
        ],
        [*(Challenge(0, "c2", "c3", s, fraud_evidence(s)) for s in range(8))],
    ]
    return tuple(tuple(codec.encode(tx) for tx in script) for script in scripts)


@pytest.mark.parametrize(("n", "seed"), [(4, 1), (4, 2), (4, 3), (7, 4)])
def test_honest_replicas_hold_byte_identical_ledgers(n: int, seed: int) -> None:
    scenario = random_scenario(seed, n, faulty_primaries=seed % 2 == 1, operations=ledger_workload())
    scenario = dataclasses.replace(scenario, clients=6)
    result = simulate(scenario, ledger_factory)
    assert checks.all_safety(result) + checks.progress(result) == []
    finals: dict[int, set[bytes]] = {}
    for r in result.honest:
        replica, app = result.replicas[r], result.apps[r]
        if replica is None:
            continue
        assert isinstance(app, TrackedApp) and isinstance(app.inner, Ledger)
        assert app.inner.total_value() == sum(GENESIS.values())
        finals.setdefault(replica.last_executed, set()).add(app.inner.digest())
    assert all(len(digests) == 1 for digests in finals.values())
    assert len(result.completed["c0"]) == 9


def test_malformed_frames_from_a_garbling_replica_are_dropped() -> None:
    scenario = random_scenario(11, 4)
    scenario = dataclasses.replace(scenario, byzantine=((2, "garble"),), crashes=())
    result = simulate(scenario, RecordingApp)
    assert verify_run(result) == [] and result.decode_errors > 0


def test_unique_operations_make_duplicates_visible() -> None:
    """The exactly-once check would notice a double execution (guards against a vacuous check)."""
    result = simulate(random_scenario(5, 4), RecordingApp)
    app = result.apps[0]
    assert isinstance(app, TrackedApp) and isinstance(app.inner, RecordingApp)
    app.inner.executed.append(app.inner.executed[0])
    assert checks.exactly_once(result, lambda r: recorded_operations(result, r)) != []
