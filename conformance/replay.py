"""Mode 1: drive the implementation through every distinct transition of a model's state graph.

Two drivers, both comparing ``abstract(implementation)`` with the spec state after every step:

``walk`` (bridges that can ``fork``, i.e. PBFT): a depth-first search of the spec's state
graph that carries the implementation along. At each state it enumerates the spec's
transitions; each is applied to a fork of the implementation (copy-on-write, so one
implementation step per transition) and the abstraction must equal the spec successor. A
successor whose fingerprint is new is expanded next, with the fork that reached it. With
symmetry the fingerprint is the checker's (of the orbit representative), so exactly one
concrete member of each orbit is expanded, as the checker does: the walk covers the
symmetry-reduced (quotient) graph, whose transitions are (orbit, label) pairs, and steps
the implementation from the concrete state it is in, so labels never need permuting. That
is sound as far as the implementation is symmetric too (honest replicas that are primary of
no view differ only by name); ``ReplayReport.graph`` says which graph the figures count.

``replay`` (every bridge, e.g. the ledger, whose ``start`` reads the whole behaviour first):
the checker explores the model without symmetry and ``transition_cover`` returns behaviours
from the initial state that together take every distinct (source state, action label) pair;
each is replayed on a fresh implementation.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance.bridge_core import (
    Bridge,
    Divergence,
    FieldDiff,
    ForkableBridge,
    Gap,
    Unrealizable,
    crash_diff,
    probe_step,
    state_diff,
)
from model_checker.engine import fingerprint
from model_checker.graph import Behaviour, StateGraph, explore, transition_cover
from model_checker.model import Label, Model


@dataclass
class ReplayReport:
    """What one replay run established."""

    model: str
    transitions_total: int
    transitions_covered: int = 0
    behaviours: int = 0
    states: int = 0
    """States the walk expanded (one per orbit with symmetry)."""
    probed: int = 0
    """States in which the bridge's probes ran."""
    explore_seconds: float = 0.0
    """Of ``seconds``, the time the checker took to explore the model."""
    steps: int = 0
    divergences: list[Divergence] = field(default_factory=list)
    gaps: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(action, reason) of each step the bridge could not realise, with how often it came up."""
    seconds: float = 0.0
    out_of_budget: bool = False
    """Replay stopped at its time budget before every behaviour was replayed."""
    graph: str = "unreduced"
    """The state graph whose transitions are counted: ``unreduced``, or ``symmetry-reduced``."""
    complete: bool = True
    """Every transition of that graph was tried (false after a budget or first-divergence stop;
    ``walk``'s ``transitions_total`` then counts the transitions met so far)."""

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
    report = ReplayReport(model.name, transitions_total or 0, explore_seconds=time.perf_counter() - started)
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
            covered.add((fingerprint(model, behaviour[index - 1][1]), label))
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
    report.complete = report.behaviours == len(behaviours) and not (report.divergences and stop_at_first)
    report.seconds = time.perf_counter() - started
    return report


# --------------------------------------------------------------------------- graph walk

PIECES_PER_STATES = 256
"""The walk is cut at the first BFS level holding at least 1/256 of the states: one piece for the
states above it, and one per state of that level with its subtree (in ``default`` the largest
subtree then holds 3 % of the transitions), pieces a pool of workers shares out."""

PROBE_SHARE = 8
"""The bridge's probes run in one of every 8 BFS-tree leaves (by fingerprint, so the same in every
run): in every leaf they would cost about half as much again as all the transitions."""


@dataclass
class WalkPart:
    """What one piece of a walk established (what a worker process sends back)."""

    covered: int = 0
    steps: int = 0
    states: int = 0
    probed: int = 0
    gaps: Counter[tuple[str, str]] = field(default_factory=Counter)
    divergences: list[Divergence] = field(default_factory=list)
    finished: bool = True
    """The piece was walked to its end (not stopped by the budget or, with ``stop_at_first``, a
    divergence)."""


class GraphWalker:
    """Takes the transitions of a state graph's states on forks of a bridge's implementation.

    A piece of the walk starts at a state of the BFS tree, reached by replaying its tree path on
    spec and implementation, and goes depth first down the tree. At each state it expands, the
    spec's successors are recomputed in the checker's order, so successor ``k`` is out-edge
    ``k`` of the graph; each is applied to a fork of the implementation and compared. The fork
    that took a tree edge carries on below it; the others are dropped."""

    def __init__(
        self,
        graph: StateGraph[Any],
        bridge: ForkableBridge,
        *,
        stop_at_first: bool = True,
        deadline: float | None = None,
    ) -> None:
        self.graph, self.model, self.bridge = graph, graph.model, bridge
        self.stop_at_first, self.deadline = stop_at_first, deadline
        self.indptr: list[int] = graph.indptr.tolist()
        self.targets: list[int] = graph.targets.tolist()
        self.tree: list[int] = graph.tree_edges.tolist()
        fingerprints = graph.fingerprints.tolist()
        by_fingerprint = {fingerprint(self.model, s): s for s in self.model.init()}
        self.initial = {i: by_fingerprint[fingerprints[i]] for i in graph.initial_ids.tolist()}
        self.depths: list[int] = graph.depths.tolist()
        leaves = np.bincount(graph.parents[graph.parents >= 0], minlength=graph.num_states) == 0
        self.probed: list[bool] = (leaves & (graph.fingerprints % PROBE_SHARE == 0)).tolist()
        """Where the bridge's probes run: states with no child in the BFS tree (the ends of the
        tree's behaviours, as replay probes the end of each), one in ``PROBE_SHARE``."""
        sizes = np.bincount(graph.depths)
        wide = np.flatnonzero(sizes[1:] >= max(2, graph.num_states // PIECES_PER_STATES))
        self.cut = int(wide[0]) + 1 if len(wide) else len(sizes)
        """The BFS level whose states root the pieces below the top piece."""

    def pieces(self) -> list[int | None]:
        """The walk cut into pieces: ``None`` for the states above the cut level, then each state of
        that level, standing for its subtree."""
        return [None, *(i for i, depth in enumerate(self.depths) if depth == self.cut)]

    def run(self, piece: int | None) -> WalkPart:
        """Walk one piece of ``pieces()``."""
        part = WalkPart()
        stack: list[tuple[int, Any, ForkableBridge]] = []
        if piece is None:
            for root, initial in self.initial.items():
                self.bridge.start(initial, ())
                diff = state_diff(self.model, initial, self.bridge.abstract())
                if diff:
                    part.divergences.append(Divergence(0, "Init", diff, ("Init",)))
                    part.finished = False
                    return part
                stack.append((root, initial, self.bridge.fork()))
        else:
            reached = self._reach(piece)
            if reached is None:
                return part  # the top piece reports the step the implementation could not take
            stack.append((piece, *reached))
        while stack:
            if self.deadline is not None and time.time() > self.deadline:
                part.finished = False
                break
            source, state, impl = stack.pop()
            descend = piece is not None or self.depths[source] + 1 < self.cut
            stack += self._expand(source, state, impl, part, descend)
            if part.divergences and self.stop_at_first:
                part.finished = False
                break
        return part

    def _successors(self, state: Any) -> list[tuple[Label, Any]]:
        """The spec's transitions from ``state`` in the checker's order (its out-edge order)."""
        return [
            (action.label(values), successor)
            for action in self.model.actions
            for values, successor in list(action.step(state))
        ]

    def _reach(self, root: int) -> tuple[Any, ForkableBridge] | None:
        """Spec and implementation in ``root``'s state, by its tree path (None where the
        implementation cannot take it: the piece that expanded the path reports why)."""
        path = self.graph.path(root)
        state = self.initial[path[0]]
        self.bridge.start(state, ())
        for target in path[1:]:
            edge = self.tree[target]
            label, successor = self._successors(state)[edge - self.indptr[self.graph.parents[target]]]
            try:
                if self._step(self.bridge, label, state, successor):
                    return None
            except Exception:
                return None
            state = successor
        return state, self.bridge.fork()

    def _step(self, impl: ForkableBridge, label: Label, state: Any, successor: Any) -> tuple[FieldDiff, ...]:
        """Make ``impl`` take ``label`` from ``state``: how it differs from ``successor`` after."""
        return impl.stimulate(label, state) + state_diff(self.model, successor, impl.abstract())

    def _trace(self, state_id: int) -> list[str]:
        """The labels of the tree path to ``state_id``."""
        path = self.graph.path(state_id)[1:]
        return ["Init", *(str(self.graph.label(int(self.graph.labels[self.tree[v]]))) for v in path)]

    def _expand(
        self, source: int, state: Any, impl: ForkableBridge, part: WalkPart, descend: bool
    ) -> list[tuple[int, Any, ForkableBridge]]:
        successors = self._successors(state)
        first = self.indptr[source]
        if len(successors) != self.indptr[source + 1] - first:
            raise ValueError(
                f"state {source}'s successors differ from the explored ones: is the spec deterministic?"
            )
        part.states += 1
        children: list[tuple[int, Any, ForkableBridge]] = []
        covered: set[Label] = set()
        for index, (label, successor) in enumerate(successors):
            fork = impl.fork()
            part.steps += 1
            try:
                diff = self._step(fork, label, state, successor)
            except Unrealizable as gap:
                part.gaps[(label.action, str(gap))] += 1
                continue
            except Exception as error:  # whatever the implementation raises is a divergence
                diff = crash_diff(error)
            if diff and _took_another(fork, label, successor, successors):
                part.gaps[(label.action, ANOTHER_SUCCESSOR)] += 1
                continue
            if diff:
                trace = (*self._trace(source), str(label))
                part.divergences.append(Divergence(len(trace) - 1, str(label), diff, trace))
                if self.stop_at_first:
                    return []
                continue
            covered.add(label)
            edge = first + index
            target = self.targets[edge]
            if descend and self.tree[target] == edge:
                children.append((target, successor, fork))
        part.covered += len(covered)
        if self.probed[source]:
            part.probed += 1
            found = probe_step(impl, state, 0, ())
            if found is not None:
                path = self._trace(source)
                part.divergences.append(
                    dataclasses.replace(found, step=len(path) - 1, trace=(*path, found.action))
                )
        return children


ANOTHER_SUCCESSOR = (
    "the label has several successors (a Byzantine primary's NEW-VIEW names O, not the checkpoint "
    "its V certifies) and the stimulus realises another of them"
)


def _took_another(
    impl: ForkableBridge, label: Label, successor: Any, successors: list[tuple[Label, Any]]
) -> bool:
    """Whether ``impl`` took a spec step with ``label`` other than to ``successor``: not a divergence,
    but that successor is not reached (a gap)."""
    reached = impl.abstract()
    return any(lab == label and nxt != successor and nxt == reached for lab, nxt in successors)


_WALKER: GraphWalker | None = None
"""The walker a forked worker process inherits."""


def _run_piece(piece: int | None) -> WalkPart:
    assert _WALKER is not None
    return _WALKER.run(piece)


def walk(
    model: Model[Any],
    bridge: ForkableBridge,
    *,
    workers: int = 1,
    stop_at_first: bool = True,
    budget_s: float | None = None,
    progress: Callable[[ReplayReport], None] | None = None,
) -> ReplayReport:
    """Take every distinct transition of ``model``'s state graph (symmetry-reduced when the model
    declares a symmetry) on the implementation, one implementation step per transition; see the
    module doc. ``workers`` > 1 shares the pieces out to forked processes."""
    global _WALKER
    started = time.perf_counter()
    graph = explore(model)
    if not graph.complete:
        raise ValueError(f"model {model.name} has unexplored states; the walk needs a complete state graph")
    report = ReplayReport(
        model.name,
        graph.distinct_transitions,
        graph="unreduced" if model.symmetry is None else "symmetry-reduced",
        explore_seconds=time.perf_counter() - started,
    )
    deadline = None if budget_s is None else time.time() + budget_s - report.explore_seconds
    walker = GraphWalker(graph, bridge, stop_at_first=stop_at_first, deadline=deadline)
    pieces = walker.pieces()
    if workers > 1:
        _WALKER = walker  # what the forked workers inherit
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                finished = _gather(report, pool.imap_unordered(_run_piece, pieces), started, progress)
        finally:
            _WALKER = None
    else:
        finished = _gather(report, map(walker.run, pieces), started, progress)
    report.complete = finished == len(pieces)
    report.out_of_budget = not report.complete and not report.divergences
    report.seconds = time.perf_counter() - started
    return report


def _gather(
    report: ReplayReport,
    parts: Iterator[WalkPart],
    started: float,
    progress: Callable[[ReplayReport], None] | None,
) -> int:
    """Add each piece's figures to ``report`` until one stopped early; how many pieces finished."""
    finished = 0
    for part in parts:
        report.transitions_covered += part.covered
        report.steps += part.steps
        report.states += part.states
        report.probed += part.probed
        report.gaps.update(part.gaps)
        report.divergences += part.divergences
        report.seconds = time.perf_counter() - started
        if progress is not None:
            progress(report)
        if not part.finished:
            break
        finished += 1
    return finished
