"""Mode 1: replay behaviours that cover every distinct transition of a model's state graph.

The checker explores the model (without symmetry reduction: a behaviour must
be a sequence of concrete states, and every concrete transition is one the
implementation must be able to take) and ``transition_cover`` returns
behaviours that together take every distinct (source state, action label)
pair. Each is replayed on a fresh implementation through the bridge, and
``abstract(implementation)`` is compared with the spec state after every step.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.bridge_core import Bridge, Divergence, Gap, Unrealizable, crash_diff, probe_step, state_diff
from model_checker.graph import Behaviour, explore, transition_cover
from model_checker.model import Label, Model


@dataclass
class ReplayReport:
    """What one replay run established."""

    model: str
    transitions_total: int
    transitions_covered: int = 0
    behaviours: int = 0
    steps: int = 0
    divergences: list[Divergence] = field(default_factory=list)
    gaps: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(action, reason) of each step the bridge could not realise, with how often it came up."""
    seconds: float = 0.0
    out_of_budget: bool = False
    """Replay stopped at its time budget before every behaviour was replayed."""

    @property
    def conforms(self) -> bool:
        return not self.divergences

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0


def without_symmetry(model: Model[Any]) -> Model[Any]:
    """The same model with symmetry reduction off, so behaviours are concrete and complete."""
    return dataclasses.replace(model, symmetry=None)


def cover(model: Model[Any]) -> tuple[list[Behaviour], int]:
    """Behaviours covering every distinct transition of ``model`` (no symmetry), and how many there are."""
    graph = explore(without_symmetry(model))
    if not graph.complete:
        raise ValueError(f"model {model.name} has unexplored states; replay needs a complete state graph")
    return transition_cover(graph), graph.distinct_transitions


def run_behaviour(
    model: Model[Any], bridge: Bridge, behaviour: Behaviour
) -> tuple[int, Divergence | Gap | None]:
    """Replay one behaviour: how many steps matched, and the first divergence or gap (or None).

    The bridge's probes run in the behaviour's last state (every step in stateful mode): a
    transition cover ends behaviours in many states, and probing every prefix would replay the
    same prefixes' probes over and over."""
    labels: list[Label] = [label for label, _ in behaviour[1:] if label is not None]
    initial = behaviour[0][1]
    bridge.start(initial, labels)
    trace: list[str] = ["Init"]
    diff = state_diff(model, initial, bridge.abstract())
    if diff:
        return 0, Divergence(0, "Init", diff, tuple(trace))
    for index in range(1, len(behaviour)):
        label, state = behaviour[index]
        before = behaviour[index - 1][1]
        assert label is not None
        trace.append(str(label))
        try:
            diff = bridge.stimulate(label, before) + state_diff(model, state, bridge.abstract())
        except Unrealizable as gap:
            return index - 1, Gap(str(label), str(gap))
        except Exception as error:  # whatever the implementation raises is a divergence
            diff = crash_diff(error)
        if diff:
            return index - 1, Divergence(index, str(label), diff, tuple(trace))
    last = len(behaviour) - 1
    return last, probe_step(bridge, behaviour[last][1], last, trace)


def replay(
    model: Model[Any],
    bridge: Bridge,
    *,
    behaviours: Sequence[Behaviour] | None = None,
    transitions_total: int | None = None,
    stop_at_first: bool = True,
    budget_s: float | None = None,
    progress: Callable[[ReplayReport], None] | None = None,
) -> ReplayReport:
    """Replay ``behaviours`` (default: a transition cover of ``model``) through ``bridge``, stopping
    at the first divergence (``stop_at_first``) or once ``budget_s`` seconds have passed."""
    started = time.perf_counter()
    if behaviours is None:
        behaviours, transitions_total = cover(model)
    report = ReplayReport(model.name, transitions_total or 0)
    covered: set[tuple[int, Label]] = set()
    for behaviour in behaviours:
        if budget_s is not None and time.perf_counter() - started > budget_s:
            report.out_of_budget = True
            break
        taken, outcome = run_behaviour(model, bridge, behaviour)
        report.behaviours += 1
        report.steps += taken
        for index in range(1, taken + 1):
            label = behaviour[index][0]
            assert label is not None
            covered.add((hash(behaviour[index - 1][1]), label))
        if isinstance(outcome, Gap):
            report.gaps[(outcome.action.split("(")[0], outcome.reason)] += 1
        elif isinstance(outcome, Divergence):
            report.divergences.append(outcome)
            if stop_at_first:
                break
        if progress is not None:
            report.transitions_covered = len(covered)
            progress(report)
    report.transitions_covered = len(covered)
    report.seconds = time.perf_counter() - started
    return report
