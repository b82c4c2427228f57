"""Trace validation of the deterministic simulator's runs, next to the simulator's own checks.

The simulator (``pot_impl.sim``) runs the real sans-IO replicas over a seeded
lossy, duplicating, reordering network with crashes, partitions and Byzantine
behaviours. Its replicas emit the same protocol events as under the TCP
runtime; here they are stamped with the simulator's global dispatch order (a
total order consistent with causality, with no clock to trust) and checked
against the spec exactly like the logs of a real run. This is how the
mutation catalogue reaches bugs that need a fault schedule to show, in
milliseconds per run instead of seconds per real cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from conformance.trace.observed import Observed, RunLogs
from conformance.trace.validate import TraceReport, validate_run
from pot_impl import codec
from pot_impl.auth import sign_message
from pot_impl.byzantine import Behaviour, ByzantineContext, Output
from pot_impl.pbft.io import Broadcast, Effect, Emit, SendTo
from pot_impl.pbft.messages import PrePrepare, Request
from pot_impl.sim import checks
from pot_impl.sim.apps import RecordingApp, TrackedApp
from pot_impl.sim.scenarios import random_scenario, recording_operations
from pot_impl.sim.simulator import Crash, NetworkSettings, RunResult, Scenario, Simulation


class _StampedSimulation(Simulation):
    """The simulator, additionally recording every emitted event in global dispatch order, with
    optional Byzantine behaviours of our own (``ADVERSARIES``) in place of the simulator's."""

    def __init__(self, scenario: Scenario, behaviours: Mapping[int, Behaviour] | None = None) -> None:
        super().__init__(scenario, RecordingApp)
        self.timeline: list[tuple[int, Emit]] = []
        if behaviours:
            self._behaviours = {**self._behaviours, **behaviours}

    def _apply(self, replica: int, effects: list[Effect]) -> None:
        self.timeline.extend((replica, e) for e in effects if isinstance(e, Emit))
        super()._apply(replica, effects)


@dataclass(frozen=True)
class SimCheck:
    """One seeded simulation: the simulator's own violations and the trace validation report."""

    seed: int
    violations: tuple[str, ...]
    trace: TraceReport

    @property
    def ok(self) -> bool:
        return not self.violations and self.trace.conforms


def run_logs(
    scenario: Scenario, behaviours: Mapping[int, Behaviour] | None = None
) -> tuple[RunResult, RunLogs]:
    """Simulate ``scenario`` and return its result and the honest replicas' stamped events."""
    simulation = _StampedSimulation(scenario, behaviours)
    result = simulation.run()
    byzantine = frozenset(r for r, _ in scenario.byzantine)
    logs: dict[int, list[Observed]] = {r: [] for r in range(scenario.config.n) if r not in byzantine}
    for position, (replica, emit) in enumerate(simulation.timeline):
        if replica in byzantine:
            continue
        event = emit.event
        logs[replica].append(
            Observed(
                node=replica,
                kind=event.kind.value,
                view=event.view,
                seq=event.seq,
                digest=event.digest.hex(),
                peer=event.peer,
                message=event.message,
                reason=event.reason,
                time=float(position),
                source=f"sim seed {scenario.seed} event {position}",
            )
        )
    run = RunLogs(
        replicas=scenario.config.n,
        faulty=scenario.config.f,
        byzantine=byzantine,
        checkpoint_interval=scenario.config.checkpoint_interval,
        window=scenario.config.watermark_window,
        logs={r: tuple(events) for r, events in logs.items()},
    )
    return result, run


def _recorded_operations(result: RunResult, replica: int) -> list[bytes]:
    app = result.apps[replica]
    assert isinstance(app, TrackedApp) and isinstance(app.inner, RecordingApp)
    return [operation for _, operation, _ in app.inner.executed]


def crash_only(scenario: Scenario) -> Scenario:
    """The scenario with each Byzantine replica replaced by one that crashes for good when it would
    start misbehaving (at time 0, so a faulty primary forces a view change at once).

    With no Byzantine replica the spec's quorums count honest votes only, so the check is
    strictly sharper; and it avoids the spec's enumeration of every VIEW-CHANGE a Byzantine
    replica could forge, which grows as 2^(prepared certificates) over a long run.
    """
    crashed = tuple(Crash(replica, 0, None) for replica, _ in scenario.byzantine)
    return dataclasses.replace(scenario, byzantine=(), crashes=scenario.crashes + crashed)


def _checked(seed: int, result: RunResult, run: RunLogs) -> SimCheck:
    """The simulator's safety, exactly-once and progress checks, and trace validation."""
    violations = (
        checks.all_safety(result)
        + checks.exactly_once(result, lambda r: _recorded_operations(result, r))
        + checks.progress(result)
    )
    return SimCheck(seed, tuple(violations), validate_run(run))


def check_seed(seed: int, replicas: int = 4, faulty_primaries: bool | None = None) -> SimCheck:
    """Run the crash-only version of ``random_scenario(seed)`` (odd seeds with faulty primaries
    unless told) and check it both ways: the simulator's safety, exactly-once and progress
    checks, and trace validation."""
    faulty = seed % 2 == 1 if faulty_primaries is None else faulty_primaries
    return _checked(seed, *run_logs(crash_only(random_scenario(seed, replicas, faulty_primaries=faulty))))


def _reversed_batch(pp: PrePrepare) -> tuple[Request, ...] | None:
    """Another non-empty batch of the same requests, or None for a single request."""
    return pp.batch[::-1] if len(pp.batch) > 1 else None


def double_propose(ctx: ByzantineContext, effects: list[Effect]) -> list[Output]:
    """A primary that follows each PRE-PREPARE with a second one, for the same view and sequence
    number, ordering the same requests differently (so its digest differs)."""
    out: list[Output] = []
    for effect in effects:
        out.append(effect)
        if isinstance(effect, Broadcast) and isinstance(effect.message, PrePrepare):
            pp = effect.message
            batch = _reversed_batch(pp)
            if batch is not None:
                second = PrePrepare(pp.view, pp.seq, codec.batch_digest(batch), batch, ctx.replica)
                out.append(Broadcast(sign_message(ctx.signer, second)))
    return out


def mislabel(ctx: ByzantineContext, effects: list[Effect]) -> list[Output]:
    """A primary that sends the last backup its batch reordered but under the original digest."""
    out: list[Output] = []
    for effect in effects:
        if isinstance(effect, Broadcast) and isinstance(effect.message, PrePrepare):
            pp = effect.message
            batch = _reversed_batch(pp)
            if batch is not None:
                *others, last = ctx.others()
                forged = sign_message(ctx.signer, dataclasses.replace(pp, batch=batch, signature=b""))
                out.extend(SendTo(r, pp) for r in others)
                out.append(SendTo(last, forged))
                continue
        out.append(effect)
    return out


def repeat_request(ctx: ByzantineContext, effects: list[Effect]) -> list[Output]:
    """A primary that orders the first request of each batch a second time, in the same batch
    (validly signed by its client, so honest backups accept the batch)."""
    out: list[Output] = []
    for effect in effects:
        if isinstance(effect, Broadcast) and isinstance(effect.message, PrePrepare) and effect.message.batch:
            pp = effect.message
            batch = (*pp.batch, pp.batch[0])
            repeated = PrePrepare(pp.view, pp.seq, codec.batch_digest(batch), batch, ctx.replica)
            out.append(Broadcast(sign_message(ctx.signer, repeated)))
            continue
        out.append(effect)
    return out


ADVERSARIES: Mapping[str, Behaviour] = {
    "double-propose": double_propose,
    "mislabel": mislabel,
    "repeat-request": repeat_request,
}
"""Byzantine primaries the simulator lacks, each the stimulus one check needs to be exercised: a
second PRE-PREPARE for a taken (view, seq); a PRE-PREPARE whose digest is not its batch's; a
request ordered twice (what the client-timestamp check of C&L 4.1 must turn into a no-op)."""


def check_adversary(seed: int, adversary: str) -> SimCheck:
    """A fault-free run of ``random_scenario(seed)`` in which replica 0, the first primary, is the
    named adversary (batches of up to 3 requests, so each can be reordered)."""
    base = random_scenario(seed, 4, faulty_primaries=True)
    scenario = dataclasses.replace(
        base,
        config=dataclasses.replace(base.config, batch_size=3, batch_timeout_ms=10),
        byzantine=((0, "silent"),),
        crashes=(),
        partitions=(),
        network=NetworkSettings(min_delay=1, max_delay=base.network.max_delay),
        operations=recording_operations(3, 6),
    )
    return _checked(seed, *run_logs(scenario, {0: ADVERSARIES[adversary]}))
