"""Safety and liveness checks over a finished simulation run.

Each check returns human-readable violations (empty when it holds), so a
failing seed reports everything that went wrong at once.
"""

from __future__ import annotations

from collections.abc import Callable

from pot_impl.pbft.io import EventKind
from pot_impl.sim.simulator import RunResult


def agreement(result: RunResult) -> list[str]:
    """No two honest replicas execute different batches at one sequence number (C&L safety)."""
    chosen: dict[int, tuple[bytes, int]] = {}
    violations = []
    for replica in result.honest:
        for event in result.nodes[replica].events:
            if event.kind is not EventKind.EXECUTED:
                continue
            first = chosen.setdefault(event.seq, (event.digest, replica))
            if first[0] != event.digest:
                violations.append(
                    f"seq {event.seq}: replica {replica} executed a different batch than {first[1]}"
                )
    return violations


def in_order_execution(result: RunResult) -> list[str]:
    """Each honest replica executes sequence numbers one after another; it may skip ahead only by
    installing a certified checkpoint (state transfer) or by recovering from its own store."""
    violations = []
    for replica in result.honest:
        expected = 1
        for event in result.nodes[replica].events:
            if event.kind is EventKind.RECOVERED or (
                event.kind is EventKind.STATE_TRANSFER and event.reason == "installed"
            ):
                expected = event.seq + 1
            elif event.kind is EventKind.EXECUTED:
                if event.seq != expected:
                    violations.append(f"replica {replica} executed seq {event.seq}, expected {expected}")
                expected = event.seq + 1
    return violations


def no_rollback_on_recovery(result: RunResult) -> list[str]:
    """A restarted honest replica recovers at least everything it had executed before it crashed:
    committed requests survive a crash (DESIGN: a killed node loses no committed request), so
    execution never goes backwards."""
    violations = []
    for replica in result.honest:
        highest = 0
        for event in result.nodes[replica].events:
            if event.kind is EventKind.EXECUTED:
                highest = max(highest, event.seq)
            elif event.kind is EventKind.RECOVERED and event.seq < highest:
                violations.append(f"replica {replica} executed up to {highest} but recovered at {event.seq}")
    return violations


def identical_states(result: RunResult) -> list[str]:
    """Honest replicas have byte-identical application states after every operation both executed,
    and a recovered replica re-executes to exactly the states it had before."""
    violations: list[str] = []
    reference: dict[tuple[int, int], tuple[bytes, int]] = {}
    for replica in result.honest:
        node = result.nodes[replica]
        violations.extend(f"replica {replica} re-executed differently at {p}" for p in node.conflicts)
        for position, digest in node.history.items():
            first = reference.setdefault(position, (digest, replica))
            if first[0] != digest:
                violations.append(f"state after {position} differs between replicas {first[1]} and {replica}")
    return violations


def exactly_once(result: RunResult, operations_of: Callable[[int], list[bytes]]) -> list[str]:
    """No honest replica executes one operation twice (operations are unique in the workloads)."""
    violations = []
    for replica in result.honest:
        if result.replicas.get(replica) is None:
            continue
        ops = operations_of(replica)
        duplicates = {op for op in ops if ops.count(op) > 1}
        if duplicates:
            violations.append(f"replica {replica} executed {sorted(duplicates)[:3]} more than once")
    return violations


def progress(result: RunResult) -> list[str]:
    """After the faults heal, every client's every operation completes (f+1 matching replies)."""
    missing = [
        f"client c{i} completed {len(result.completed[f'c{i}'])}/{len(ops)}"
        for i, ops in enumerate(result.scenario.operations)
        if len(result.completed[f"c{i}"]) != len(ops)
    ]
    return [f"no progress by t={result.finished_at}: " + ", ".join(missing)] if missing else []


def all_safety(result: RunResult) -> list[str]:
    return (
        agreement(result)
        + in_order_execution(result)
        + no_rollback_on_recovery(result)
        + identical_states(result)
    )
