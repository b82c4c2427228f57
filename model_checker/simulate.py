"""Simulation: seeded random walks for models too large to exhaust.

Each walk starts from a uniformly chosen initial state and takes uniformly
chosen successors (over all enabled action instances) for at most ``depth``
steps, checking invariants on every state and flagging deadlocks. The same
seed gives the same walks in every process, because successor order depends
only on the model (iteration order of plain values is hash-based, and their
hashes are process-stable). A simulation never proves anything: without a
violation its verdict is ``incomplete``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from model_checker.checker import CheckResult, PropertyResult, Status
from model_checker.engine import ActionCoverage, ActionFailure, fingerprint, label_at_failure
from model_checker.model import Label, Model, SpecError, check_plain
from model_checker.trace import Step, Trace


def simulate(
    model: Model[Any],
    *,
    runs: int,
    depth: int,
    seed: int = 0,
    invariants: Sequence[str] | None = None,
    deadlock: bool = True,
    stop_at_first: bool = True,
) -> CheckResult:
    """Run ``runs`` random walks of at most ``depth`` steps."""
    if runs < 1 or depth < 0:
        raise SpecError("simulation needs --simulate N >= 1 and --depth D >= 0")
    names = list(model.invariants) if invariants is None else list(invariants)
    missing = [n for n in names if n not in model.invariants]
    if missing:
        raise SpecError(
            f"model {model.name} has no invariant {', '.join(missing)}; "
            f"its invariants are {', '.join(model.invariants) or '(none)'}"
        )
    started = time.perf_counter()
    rng = random.Random(seed)
    initial = list(model.init())
    if not initial:
        raise SpecError(f"model {model.name} has no initial state")
    for index, state in enumerate(initial):
        check_plain(state, f"initial state {index}")
    coverage = [ActionCoverage(a.name) for a in model.actions]
    seen: set[int] = set()
    found: dict[str, Trace[Any]] = {}
    generated = len(initial)
    longest = 0
    checked = [(n, "invariant") for n in names] + ([("deadlock", "deadlock")] if deadlock else [])
    by_name = {c.name: c for c in coverage}
    for _ in range(runs):
        walk: list[Step[Any]] = [Step(None, rng.choice(initial))]
        while True:
            state = walk[-1].state
            fp = fingerprint(model, state)
            if fp not in seen:
                seen.add(fp)
                if walk[-1].label is not None:
                    by_name[walk[-1].label.action].new += 1
            for name in names:
                if name not in found and not _holds(model, name, walk):
                    found[name] = Trace(name, "invariant", tuple(walk))
            if len(walk) > depth or (stop_at_first and found):
                break
            options = _successors(model, walk, coverage)
            generated += len(options)
            if not options:
                if deadlock and "deadlock" not in found:
                    found["deadlock"] = Trace("deadlock", "deadlock", tuple(walk))
                break
            label, successor = options[rng.randrange(len(options))]
            check_plain(successor, f"successor by {label}")
            walk.append(Step(label, successor))
        longest = max(longest, len(walk))
        if stop_at_first and found:
            break
    results = []
    for name, kind in checked:
        trace = found.get(name)
        status: Status = "violated" if trace is not None else "unknown"
        results.append(PropertyResult(name, kind, status, trace))
    return CheckResult(
        model=model,
        mode="simulation",
        verdict="violation" if found else "incomplete",
        distinct_states=len(seen),
        generated_states=generated,
        depth=longest,
        seconds=time.perf_counter() - started,
        memory=None,
        collisions=None,
        properties=tuple(results),
        coverage=tuple(coverage),
        incomplete_reason=None
        if found
        else f"simulation ({runs} walks of at most {depth} steps, seed {seed})",
    )


def _holds(model: Model[Any], name: str, walk: list[Step[Any]]) -> bool:
    try:
        return bool(model.invariants[name](walk[-1].state))
    except Exception as exc:
        raise ActionFailure(
            f"invariant {name} raised {type(exc).__name__}: {exc}", walk[-1].state, None, list(walk)
        ) from exc


def _successors(
    model: Model[Any], walk: list[Step[Any]], coverage: list[ActionCoverage]
) -> list[tuple[Label, Any]]:
    state = walk[-1].state
    options: list[tuple[Label, Any]] = []
    for action, cov in zip(model.actions, coverage, strict=True):
        try:
            produced = [(action.label(values), successor) for values, successor in action.step(state)]
        except SpecError:
            raise
        except Exception as exc:
            raise ActionFailure(
                f"action {label_at_failure(action, exc)} raised {type(exc).__name__}: {exc}",
                state,
                None,
                list(walk),
            ) from exc
        if produced:
            cov.enabled += 1
            cov.generated += len(produced)
        options += produced
    return options
