"""Mode 2: hypothesis stateful testing whose rules are the spec's enabled actions.

One generic rule draws an index into the labels the spec enables in the
current spec state (those the bridge can realise), takes that step in the
spec and, through the bridge, in the implementation, and compares. A
divergence fails the example; hypothesis shrinks it to a minimal scenario,
and the failure message is that scenario as a numbered spec trace with the
field-by-field diff.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from conformance.bridge_core import Bridge, Divergence, Unrealizable, crash_diff, probe_step, state_diff
from model_checker.fingerprint import fingerprint as fingerprint_value
from model_checker.model import Label, Model


@dataclass
class StatefulReport:
    """What a stateful run established."""

    model: str
    examples: int
    steps: int = 0
    transitions: set[tuple[int, Label]] = field(default_factory=set)
    """Distinct (source state fingerprint, label) pairs taken."""
    divergence: Divergence | None = None
    failure: str = ""
    """The shrunk scenario as hypothesis reported it (spec trace and diff)."""
    gaps: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def conforms(self) -> bool:
        return self.divergence is None and not self.failure


class DivergenceFound(AssertionError):
    """Raised inside the state machine so hypothesis shrinks it; carries the divergence."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(_scenario(divergence))
        self.divergence = divergence


def _scenario(divergence: Divergence) -> str:
    lines = ["spec trace:"]
    lines += [f"  {number:3}: {label}" for number, label in enumerate(divergence.trace)]
    return "\n".join([*lines, divergence.describe()])


def enabled(model: Model[Any], state: Any) -> list[tuple[Label, Any]]:
    """Every (label, successor) the spec enables in ``state``, in the model's action order."""
    return [
        (action.label(values), successor)
        for action in model.actions
        for values, successor in action.step(state)
    ]


def machine_for(model: Model[Any], bridge: Bridge, report: StatefulReport) -> type[RuleBasedStateMachine]:
    """A state machine class stepping ``model`` and the implementation behind ``bridge`` together."""
    initial = next(iter(model.init()))

    class SpecDriven(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.state = initial
            self.trace: list[str] = ["Init"]
            self.stuck = False
            bridge.start(initial, ())
            diff = state_diff(model, initial, bridge.abstract())
            if diff:
                self._diverged(Divergence(0, "Init", diff, tuple(self.trace)))

        def _diverged(self, divergence: Divergence) -> None:
            report.divergence = divergence
            raise DivergenceFound(divergence)

        @rule(data=st.data())
        def step(self, data: st.DataObject) -> None:
            """Take one enabled spec step in both; once stuck (a gap, or no step enabled) do nothing."""
            if self.stuck:
                return
            choices = [
                (label, nxt)
                for label, nxt in enabled(model, self.state)
                if bridge.realizable(label, self.state) is None
            ]
            if not choices:
                self.stuck = True
                return
            label, successor = choices[data.draw(st.integers(0, len(choices) - 1), label="action")]
            self.trace.append(str(label))
            try:
                answered = bridge.stimulate(label, self.state)
                successor = _taken(
                    successor, [nxt for lab, nxt in choices if lab == label], bridge.abstract()
                )
                diff = answered + state_diff(model, successor, bridge.abstract())
            except Unrealizable as gap:
                report.gaps[(label.action, str(gap))] += 1
                self.stuck = True
                return
            except Exception as error:  # whatever the implementation raises is a divergence
                diff = crash_diff(error)
            if diff:
                self._diverged(Divergence(len(self.trace) - 1, str(label), diff, tuple(self.trace)))
            probed = probe_step(bridge, successor, len(self.trace) - 1, self.trace)
            if probed is not None:
                self._diverged(probed)
            report.steps += 1
            report.transitions.add((fingerprint_value(self.state), label))
            self.state = successor

    return SpecDriven


def _taken(drawn: Any, alike: list[Any], reached: Any) -> Any:
    """The successor the step took: labels name steps, but one label can have several successors
    (a Byzantine primary's NEW-VIEW names O, not the checkpoint its V certifies), and the
    implementation may take any of them; ``drawn`` when it took none."""
    return reached if reached in alike else drawn


def stateful_check(
    model: Model[Any], bridge: Bridge, *, examples: int = 50, steps: int = 40, seed_value: int = 0
) -> StatefulReport:
    """Run ``examples`` random scenarios of up to ``steps`` spec steps each (deterministic per seed)."""
    started = time.perf_counter()
    report = StatefulReport(model.name, examples)
    machine = machine_for(model, bridge, report)
    config = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )

    try:
        run_state_machine_as_test(seed(seed_value)(machine), settings=config)
    except DivergenceFound as found:
        report.divergence = found.divergence
        report.failure = str(found)
    except Flaky as flaky:
        report.failure = f"the implementation behaved differently on re-running a scenario: {flaky}"
    report.seconds = time.perf_counter() - started
    return report
