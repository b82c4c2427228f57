"""The explicit state graph, kept compact, and what is built on it.

``explore(model)`` runs the breadth-first search and keeps every transition as
CSR arrays: state ids are BFS discovery order, ``indptr[i]:indptr[i+1]`` are
state ``i``'s out-edges, each with a target id and a label id (one id per
distinct ``(action, parameter values)``). That is 8 bytes per edge plus 8 per
state, no Python object per edge. States themselves are not stored: ``state``
and ``trace`` rebuild them by replaying the model along BFS parent links.

``transition_cover`` turns the graph into behaviours (paths from an initial
state) that together take every distinct transition ``(source state, action
label)`` at least once, the input conformance testing replays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Any, Generic

import numpy as np
import numpy.typing as npt

from model_checker.arrays import unique, unique_first
from model_checker.engine import Exploration, Explorer, fingerprint, label_of
from model_checker.model import Label, Model, S, SpecError
from model_checker.trace import Step, replay, successor_with

IntArray = npt.NDArray[np.int64]
Behaviour = list[tuple[Label | None, Any]]
"""A path from an initial state: ``[(None, s0), (label1, s1), ...]``."""


@dataclass(frozen=True)
class StateGraph(Generic[S]):
    """Reachable states (ids ``0..num_states-1`` in BFS order) and their labelled transitions."""

    model: Model[S]
    initial_ids: npt.NDArray[np.int32]
    indptr: IntArray
    """``indptr[i]:indptr[i + 1]`` indexes the out-edges of state ``i``."""
    targets: npt.NDArray[np.int32]
    """Target id per edge; ``-1`` where ``max_states`` dropped the target."""
    labels: npt.NDArray[np.int32]
    """Label id per edge; ``label(id)`` prints it."""
    label_keys: tuple[tuple[int, tuple[Any, ...]], ...]
    """Label id to ``(action index, parameter values)``."""
    fingerprints: npt.NDArray[np.int64]
    parents: npt.NDArray[np.int32]
    """BFS parent per state (``-1`` for initial states): shortest paths."""
    expanded: npt.NDArray[np.bool_]
    """False for states the constraint or a bound left unexpanded (they have no out-edges)."""
    depth: int
    complete: bool
    """No bound was hit: every reachable state is in the graph."""

    @classmethod
    def from_exploration(cls, exploration: Exploration[S]) -> StateGraph[S]:
        """Freeze the edges an ``Explorer(record_graph=True)`` run recorded."""
        graph = exploration.graph
        if graph is None or exploration.expanded is None:
            raise ValueError("the exploration did not record a graph")
        indptr = np.zeros(len(exploration.visited) + 1, dtype=np.int64)
        np.cumsum(graph.out_degree.view, out=indptr[1:])
        return cls(
            model=exploration.model,
            initial_ids=np.asarray(exploration.initial_ids, dtype=np.int32),
            indptr=indptr,
            targets=graph.targets.view.copy(),
            labels=graph.label_ids.view.copy(),
            label_keys=tuple(graph.label_keys),
            fingerprints=exploration.visited.fps_by_id.view.copy(),
            parents=exploration.visited.parents.view.copy(),
            expanded=exploration.expanded,
            depth=exploration.depth,
            complete=exploration.complete,
        )

    @property
    def num_states(self) -> int:
        return len(self.fingerprints)

    @property
    def num_edges(self) -> int:
        return len(self.targets)

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (states and edges)."""
        arrays = (self.indptr, self.targets, self.labels, self.fingerprints, self.parents, self.expanded)
        return sum(a.nbytes for a in arrays)

    @cached_property
    def sources(self) -> npt.NDArray[np.int32]:
        """Source id per edge (the CSR rows expanded)."""
        return np.repeat(np.arange(self.num_states, dtype=np.int32), np.diff(self.indptr))

    @cached_property
    def label_actions(self) -> IntArray:
        """Action index per label id."""
        return np.array([key[0] for key in self.label_keys], dtype=np.int64)

    def label(self, label_id: int) -> Label:
        """The printable label of a label id."""
        return label_of(self.model, self.label_keys[label_id])

    def out_edges(self, state_id: int) -> range:
        """Edge indices leaving ``state_id``."""
        return range(int(self.indptr[state_id]), int(self.indptr[state_id + 1]))

    def successors(self, state_id: int) -> list[tuple[Label, int]]:
        """``(label, target id)`` for every transition leaving ``state_id``."""
        return [(self.label(int(self.labels[e])), int(self.targets[e])) for e in self.out_edges(state_id)]

    @cached_property
    def distinct_transitions(self) -> int:
        """Number of distinct ``(source state, action label)`` pairs."""
        return len(_transition_keys(self)[0])

    @cached_property
    def tree_edges(self) -> IntArray:
        """Per state, the edge that discovered it (``-1`` for initial states): the BFS tree.

        Following tree edges from an initial state replays exactly the concrete states the
        search expanded, also under symmetry, where another edge into the same id reaches a
        different member of the orbit."""
        found = np.full(self.num_states, -1, dtype=np.int64)
        keep = np.flatnonzero(self.targets >= 0)
        targets = self.targets[keep]
        discovering = keep[self.parents[targets] == self.sources[keep]]
        _, first, _ = unique_first(self.targets[discovering])
        found[self.targets[discovering[first]]] = discovering[first]
        return found

    @cached_property
    def depths(self) -> IntArray:
        """BFS level per state (initial states 0)."""
        depths = np.zeros(self.num_states, dtype=np.int64)
        for state_id, parent in enumerate(self.parents.tolist()):  # ids are BFS order: parents first
            if parent >= 0:
                depths[state_id] = depths[parent] + 1
        return depths

    def path(self, state_id: int) -> list[int]:
        """A shortest path of state ids from an initial state to ``state_id``."""
        path = [state_id]
        while self.parents[path[-1]] >= 0:
            path.append(int(self.parents[path[-1]]))
        path.reverse()
        return path

    def edge_between(self, source: int, target: int) -> int:
        """The first edge index from ``source`` to ``target``."""
        edges = self.out_edges(source)
        hits = np.flatnonzero(self.targets[edges.start : edges.stop] == target)
        if len(hits) == 0:
            raise ValueError(f"no transition from state {source} to state {target}")
        return edges.start + int(hits[0])

    def trace(self, state_ids: Sequence[int], edges: Sequence[int] | None = None) -> list[Step[S]]:
        """Materialise the states along a path of ids (via the given edges, if any)."""
        if edges is None:
            edges = [self.edge_between(u, v) for u, v in pairwise(state_ids)]
        keys = [self.label_keys[int(self.labels[e])] for e in edges]
        return replay(self.model, [int(self.fingerprints[i]) for i in state_ids], keys)

    def state(self, state_id: int) -> S:
        """The state with this id (replayed along its shortest path)."""
        return self.trace(self.path(state_id))[-1].state

    def states(self) -> list[S]:
        """Every state, by id: each rebuilt from its parent along its tree edge, one expansion apiece."""
        initial = {int(self.fingerprints[i]): int(i) for i in self.initial_ids}
        states: list[Any] = [None] * self.num_states
        for state in self.model.init():
            state_id = initial.pop(fingerprint(self.model, state), None)
            if state_id is not None:
                states[state_id] = state
        for state_id, edge in enumerate(self.tree_edges.tolist()):
            if edge < 0:
                continue
            parent = states[int(self.parents[state_id])]
            key = self.label_keys[int(self.labels[edge])]
            step = successor_with(self.model, parent, int(self.fingerprints[state_id]), key)
            if step is None:
                raise SpecError(f"rebuilding state {state_id}: its tree edge no longer leads to it")
            states[state_id] = step.state
        return states


def explore(model: Model[S], *, max_states: int | None = None, max_depth: int | None = None) -> StateGraph[S]:
    """Explore ``model`` breadth-first and return its state graph (invariants are not checked)."""
    exploration = Explorer(
        model,
        invariants=[],
        deadlock=False,
        max_states=max_states,
        max_depth=max_depth,
        stop_at_first=False,
        record_graph=True,
    ).run()
    return StateGraph.from_exploration(exploration)


def _transition_keys(graph: StateGraph[Any]) -> tuple[IntArray, IntArray]:
    """One representative edge per distinct ``(source, label)``, sorted by source then label."""
    keep = np.flatnonzero(graph.targets >= 0)
    keys = graph.sources[keep].astype(np.int64) * max(len(graph.label_keys), 1) + graph.labels[keep]
    unique_keys, first, _ = unique_first(keys)
    return unique_keys, keep[first]


def transition_cover(model_or_graph: Model[S] | StateGraph[S]) -> list[Behaviour]:
    """Behaviours from initial states that together take every distinct transition.

    Greedy: take the shallowest source with an uncovered transition, walk the
    BFS-tree path to it, take the transition, and keep extending the walk
    along uncovered transitions of the state reached; repeat. Every transition
    is covered by construction; behaviours start with ``(None, initial state)``.

    With symmetry a state id stands for an orbit, and a non-tree edge reaches a member of
    the target's orbit other than the one whose labels the graph recorded, so walks are not
    extended there: each behaviour is then a tree path and one transition.
    """
    graph = model_or_graph if isinstance(model_or_graph, StateGraph) else explore(model_or_graph)
    _, edges = _transition_keys(graph)
    sources = graph.sources[edges]
    uncovered = np.ones(len(edges), dtype=bool)
    # edges are sorted by source: first[s]..first[s+1] are s's distinct transitions
    first = np.searchsorted(sources, np.arange(graph.num_states + 1))
    cursor = first[:-1].copy()

    def next_uncovered(state: int) -> int | None:
        while cursor[state] < first[state + 1] and not uncovered[cursor[state]]:
            cursor[state] += 1
        return int(cursor[state]) if cursor[state] < first[state + 1] else None

    def mark(edge: int) -> None:
        source, label = int(graph.sources[edge]), int(graph.labels[edge])
        own_labels = graph.labels[edges[first[source] : first[source + 1]]]  # sorted
        position = first[source] + np.searchsorted(own_labels, label)
        uncovered[position] = False

    behaviours: list[Behaviour] = []
    for source in unique(sources).tolist():
        while (slot := next_uncovered(source)) is not None:
            ids = graph.path(source)
            walk = [graph.edge_between(u, v) for u, v in pairwise(ids)]
            for edge in walk:
                mark(edge)
            current: int | None = slot
            while current is not None:
                uncovered[current] = False
                edge = int(edges[current])
                walk.append(edge)
                ids.append(int(graph.targets[edge]))
                extend = graph.model.symmetry is None or graph.tree_edges[ids[-1]] == edge
                current = next_uncovered(ids[-1]) if extend else None
            behaviours.append([(step.label, step.state) for step in graph.trace(ids, walk)])
    return behaviours
