"""Liveness: temporal properties under weak and strong fairness, on the state graph.

Semantics are TLA+'s. A behaviour may stutter, so besides the graph's cycles a
behaviour can end by staying in one state forever; it is fair when every
fairness condition holds on it:

* ``WF(A)``: A is taken infinitely often, or infinitely often disabled;
* ``SF(A)``: A is taken infinitely often, or eventually never enabled.

"Enabled" and "taken" refer to ``<<A>>_vars``: self-loops (stuttering steps of
A) neither enable nor take A. Per-instance fairness is one condition per
label (action plus parameter values); otherwise one for the whole family.

Each property is reduced to "a reachable fair SCC inside a region, with an
acceptance condition":

======================  =================================================  ==========
property                region (states the cycle must stay in)             acceptance
======================  =================================================  ==========
``<>P``                 ~P states reachable from ~P initial states in ~P   any
``[]<>P``               ~P states                                          any
``P ~> Q``              ~Q states reachable inside ~Q from a P /\\ ~Q state  any
``<>[]P``               all states                                         has a ~P state
======================  =================================================  ==========

The fair SCCs of a region are found by Streett-style refinement: decompose
into SCCs (scipy, vectorised); an SCC where some WF(A) is enabled in every
state yet A is never taken inside it is dropped whole (no sub-cycle can do
better); where some SF(A) is enabled somewhere but never taken inside, the
A-enabled states are dropped and the rest is decomposed again. What survives
is exactly the union of fair cycles, and the cycle that visits all of an SCC
(the most edges, and for WF the most chances to be disabled) witnesses it.
A single state (an SCC of size one, or a deadlock) is a stuttering cycle and
goes through the same test, so it is fair exactly when no fair action is
enabled there.

The counterexample is a lasso: a shortest path (BFS) to the nearest fair
accepting SCC, then a cycle in it that visits, in turn, an edge or state
discharging each fairness obligation (and a ~P state for ``<>[]P``) and
returns to the entry state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Generic, Protocol

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from model_checker.arrays import member, unique, unique_counts, unique_first
from model_checker.checker import PropertyResult, Status
from model_checker.engine import Exploration
from model_checker.graph import StateGraph
from model_checker.model import Model, Predicate, Property, S, SpecError
from model_checker.trace import Trace

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Obligations:
    """The fairness conditions instantiated on one graph.

    Obligation ``k`` is strong when ``strong[k]``. ``edge``/``edge_ob`` list
    every (non-stuttering edge, obligation it discharges) pair; ``enabled_state``/
    ``enabled_ob`` every (state, obligation enabled there) pair, without repeats.
    """

    strong: BoolArray
    names: tuple[str, ...]
    edge: IntArray
    edge_ob: IntArray
    enabled_state: IntArray
    enabled_ob: IntArray

    @property
    def count(self) -> int:
        return len(self.strong)


def obligations_of(graph: StateGraph[Any]) -> Obligations:
    """Instantiate the model's fairness declarations on the graph's labels."""
    model = graph.model
    action_index = {action.name: i for i, action in enumerate(model.actions)}
    strong: list[bool] = []
    names: list[str] = []
    pair_label: list[npt.NDArray[np.int64]] = []
    pair_ob: list[npt.NDArray[np.int64]] = []
    for fair in model.fairness:
        labels = np.flatnonzero(graph.label_actions == action_index[fair.action])
        if fair.when is not None:
            admitted = [fair.admits(fair.action, graph.label(i).args) for i in labels.tolist()]
            labels = labels[np.array(admitted, dtype=bool)]
        if fair.per_instance:
            first = len(strong)
            for label_id in labels.tolist():
                strong.append(fair.kind == "strong")
                names.append(f"{fair.prefix}({graph.label(label_id)})")
            pair_label.append(labels)
            pair_ob.append(np.arange(first, first + len(labels)))
        else:
            pair_label.append(labels)
            pair_ob.append(np.full(len(labels), len(strong)))
            strong.append(fair.kind == "strong")
            names.append(fair.title)
    labels_all = np.concatenate(pair_label) if pair_label else np.empty(0, np.int64)
    obs_all = np.concatenate(pair_ob) if pair_ob else np.empty(0, np.int64)
    order = np.argsort(labels_all, kind="stable")
    labels_all, obs_all = labels_all[order], obs_all[order]
    # join edges with the obligations of their label; an edge to a state a bound
    # dropped (target -1) still shows its action enabled, but cannot be on a cycle
    moving = np.flatnonzero(graph.targets != graph.sources)
    edge_labels = graph.labels[moving]
    start = np.searchsorted(labels_all, edge_labels, side="left")
    stop = np.searchsorted(labels_all, edge_labels, side="right")
    counts = stop - start
    edge = np.repeat(moving, counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    edge_ob = obs_all[np.repeat(start, counts) + offsets]
    n_obs = max(len(strong), 1)
    enabled = unique(graph.sources[edge].astype(np.int64) * n_obs + edge_ob)
    known_target = graph.targets[edge] >= 0
    edge, edge_ob = edge[known_target], edge_ob[known_target]
    return Obligations(
        strong=np.array(strong, dtype=bool),
        names=tuple(names),
        edge=edge.astype(np.int64),
        edge_ob=edge_ob.astype(np.int64),
        enabled_state=enabled // n_obs,
        enabled_ob=enabled % n_obs,
    )


@dataclass(frozen=True)
class FairSCCs:
    """The fair strongly connected components inside a region."""

    component: IntArray
    """SCC id per state, ``-1`` for states in no fair SCC."""
    count: int


def strongly_connected(graph: StateGraph[Any], mask: BoolArray) -> IntArray:
    """SCC id per state of the subgraph induced by ``mask`` (``-1`` outside it)."""
    sources = graph.sources
    keep = mask[sources] & (graph.targets >= 0)
    keep[keep] = mask[graph.targets[keep]]
    n = graph.num_states
    matrix = csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.int8), (sources[keep], graph.targets[keep])), shape=(n, n)
    )
    _, labels = connected_components(matrix, directed=True, connection="strong")
    component: IntArray = labels.astype(np.int64)
    component[~mask] = -1
    return component


def fair_sccs(graph: StateGraph[Any], obligations: Obligations, region: BoolArray) -> FairSCCs:
    """Refine ``region`` to the union of its fair SCCs (see the module docstring)."""
    mask = region.copy()
    n_obs = max(obligations.count, 1)
    while True:
        component = strongly_connected(graph, mask)
        if obligations.count == 0 or not mask.any():
            break
        size = np.bincount(component[mask])
        n_sccs = len(size)
        # (scc, obligation) -> number of states of the scc where it is enabled
        inside = mask[obligations.enabled_state]
        en_scc = component[obligations.enabled_state[inside]]
        en_ob = obligations.enabled_ob[inside]
        en_keys, en_counts = unique_counts(en_scc * n_obs + en_ob)
        # (scc, obligation) pairs taken by an edge inside the scc
        src = graph.sources[obligations.edge]
        dst = graph.targets[obligations.edge]
        internal = mask[src] & mask[dst]
        internal[internal] = component[src[internal]] == component[dst[internal]]
        taken = unique(component[src[internal]] * n_obs + obligations.edge_ob[internal])
        untaken = ~member(en_keys, taken)
        scc_of_key, ob_of_key = en_keys // n_obs, en_keys % n_obs
        weak_fail = untaken & ~obligations.strong[ob_of_key] & (en_counts == size[scc_of_key])
        strong_fail = untaken & obligations.strong[ob_of_key]
        drop_scc = np.zeros(n_sccs, dtype=bool)
        drop_scc[scc_of_key[weak_fail]] = True
        drop = drop_scc[np.where(mask, component, 0)] & mask
        if strong_fail.any():  # drop the states enabling an SF action their SCC never takes
            hit = member(en_scc * n_obs + en_ob, en_keys[strong_fail])
            drop[obligations.enabled_state[inside][hit]] = True
        if not drop.any():
            break
        mask &= ~drop
        if not strong_fail.any():  # only whole SCCs went: the others and their verdicts stand
            component[drop] = -1
            break
    return FairSCCs(component, len(unique(component[mask])))


class Csr(Protocol):
    """What a breadth-first search needs of a graph (a ``StateGraph`` or an SCC's subgraph)."""

    @property
    def num_states(self) -> int: ...
    @property
    def indptr(self) -> IntArray: ...
    @property
    def targets(self) -> npt.NDArray[np.int32]: ...
    @property
    def sources(self) -> npt.NDArray[np.int32]: ...


def bfs(graph: Csr, starts: IntArray, allowed: BoolArray) -> tuple[IntArray, IntArray]:
    """Multi-source BFS inside ``allowed``: distance and entering edge per state (``-1`` if none)."""
    n = graph.num_states
    distance = np.full(n, -1, dtype=np.int64)
    via = np.full(n, -1, dtype=np.int64)
    frontier = unique(starts[allowed[starts]])
    distance[frontier] = 0
    level = 0
    while len(frontier):
        level += 1
        edges = _out_edges(graph.indptr, frontier)
        targets = graph.targets[edges].astype(np.int64)
        ok = targets >= 0
        ok[ok] = allowed[targets[ok]] & (distance[targets[ok]] < 0)
        targets, edges = targets[ok], edges[ok]
        fresh, first, _ = unique_first(targets)
        distance[fresh] = level
        via[fresh] = edges[first]
        frontier = fresh
    return distance, via


def _out_edges(indptr: IntArray, states: IntArray) -> IntArray:
    """Indices of all edges leaving ``states`` (CSR rows concatenated)."""
    lo, hi = indptr[states], indptr[states + 1]
    counts = hi - lo
    offsets: IntArray = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
    return offsets


def _walk_back(graph: Csr, via: IntArray, state: int) -> tuple[list[int], list[int]]:
    """States and edges of the BFS path ending at ``state``."""
    states, edges = [state], []
    while via[states[-1]] >= 0:
        edge = int(via[states[-1]])
        edges.append(edge)
        states.append(int(graph.sources[edge]))
    states.reverse()
    edges.reverse()
    return states, edges


@dataclass(frozen=True)
class _Subgraph:
    """One SCC with its internal edges, renumbered from 0 (so work is proportional to its size)."""

    state_ids: IntArray
    """Global id per local state (ascending)."""
    edge_ids: IntArray
    """Global edge index per local edge (ascending, hence grouped by source)."""
    indptr: IntArray
    targets: npt.NDArray[np.int32]
    sources: npt.NDArray[np.int32]

    @property
    def num_states(self) -> int:
        return len(self.state_ids)

    @classmethod
    def of(cls, graph: StateGraph[Any], members: BoolArray) -> _Subgraph:
        state_ids = np.flatnonzero(members).astype(np.int64)
        edges = _out_edges(graph.indptr, state_ids)
        global_targets = graph.targets[edges]
        inside = global_targets >= 0
        inside[inside] = members[global_targets[inside]]
        edges = edges[inside]
        local_sources = np.searchsorted(state_ids, graph.sources[edges]).astype(np.int32)
        local_targets = np.searchsorted(state_ids, graph.targets[edges]).astype(np.int32)
        indptr = np.zeros(len(state_ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(local_sources, minlength=len(state_ids)), out=indptr[1:])
        return cls(state_ids, edges, indptr, local_targets, local_sources)


@dataclass(frozen=True)
class Lasso:
    """Ids of a lasso: ``states[loop:]`` is the cycle; ``edges[i]`` leads from ``states[i]``.

    ``edges`` has one more entry than ``states`` minus one when the cycle is
    closed by an edge (the last edge returns to ``states[loop]``); a stuttering
    lasso has exactly ``len(states) - 1`` edges.
    """

    states: list[int]
    edges: list[int]
    loop: int

    @property
    def stutters(self) -> bool:
        return len(self.edges) == len(self.states) - 1


def _cycle(
    graph: StateGraph[Any], obligations: Obligations, component: IntArray, entry: int, bad: BoolArray | None
) -> tuple[list[int], list[int]]:
    """States and edges (global ids) of a fair cycle from ``entry`` back to it, inside its SCC.

    Each goal is a set of states to visit or of edges to take; the walk goes to
    the nearest unmet goal in turn (meeting others on the way) and returns.
    """
    members = component == component[entry]
    sub = _Subgraph.of(graph, members)
    k = sub.num_states
    start = int(np.searchsorted(sub.state_ids, entry))
    inside_en = members[obligations.enabled_state]
    en_state = np.searchsorted(sub.state_ids, obligations.enabled_state[inside_en])
    en_ob = obligations.enabled_ob[inside_en]
    enabled_count = np.bincount(en_ob, minlength=max(obligations.count, 1))
    ob_edges = member(obligations.edge, sub.edge_ids)  # obligation edges inside the SCC
    local_ob_edge = np.searchsorted(sub.edge_ids, obligations.edge[ob_edges])
    local_ob = obligations.edge_ob[ob_edges]
    goals: list[tuple[str, BoolArray]] = []  # ("state", local state mask) or ("edge", local edge mask)
    for ob in np.flatnonzero(enabled_count > 0).tolist():
        if not obligations.strong[ob] and enabled_count[ob] < k:
            disabled = np.ones(k, dtype=bool)
            disabled[en_state[en_ob == ob]] = False
            goals.append(("state", disabled))
        else:
            edge_mask = np.zeros(len(sub.edge_ids), dtype=bool)
            edge_mask[local_ob_edge[local_ob == ob]] = True
            goals.append(("edge", edge_mask))
    if bad is not None:
        goals.append(("state", bad[sub.state_ids]))
    everywhere = np.ones(k, dtype=bool)
    states: list[int] = [start]
    edges: list[int] = []
    remaining = [goal for goal in goals if not (goal[0] == "state" and goal[1][start])]
    if not remaining:  # only WF obligations, all disabled in ``entry``: stuttering there is fair
        return [entry], []
    while remaining:
        targets = np.zeros(k, dtype=bool)
        for kind, where in remaining:
            if kind == "state":
                targets |= where
            else:
                targets[sub.sources[where]] = True
        distance, via = bfs(sub, np.array([states[-1]]), everywhere)
        reachable = np.flatnonzero(targets & (distance >= 0))
        goal_state = int(reachable[np.argmin(distance[reachable])])
        path_states, path_edges = _walk_back(sub, via, goal_state)
        states += path_states[1:]
        edges += path_edges
        lo, hi = int(sub.indptr[goal_state]), int(sub.indptr[goal_state + 1])
        for kind, where in remaining:
            if kind == "edge" and where[lo:hi].any():
                edge = lo + int(np.flatnonzero(where[lo:hi])[0])
                edges.append(edge)
                states.append(int(sub.targets[edge]))
                break
        seen_states = np.zeros(k, dtype=bool)
        seen_states[states] = True
        taken = np.zeros(len(sub.edge_ids), dtype=bool)
        taken[edges] = True
        remaining = [
            (kind, where)
            for kind, where in remaining
            if not (where & (seen_states if kind == "state" else taken)).any()
        ]
    if states[-1] != start:
        _, via = bfs(sub, np.array([states[-1]]), everywhere)
        back_states, back_edges = _walk_back(sub, via, start)
        states += back_states[1:]
        edges += back_edges
    return sub.state_ids[states[:-1]].tolist(), sub.edge_ids[edges].tolist()


class LivenessChecker(Generic[S]):
    """Checks a model's temporal properties on the graph a safety search recorded."""

    def __init__(self, model: Model[S]) -> None:
        if model.symmetry is not None or model.view is not None:
            raise SpecError(
                f"model {model.name} declares "
                + " and ".join(n for n in ("symmetry", "view") if getattr(model, n) is not None)
                + ": liveness on a reduced graph can be unsound (a cycle of the quotient need not be a "
                "cycle of the model); check temporal properties without them, or pass --no-liveness"
            )
        self.model = model
        self.predicates: list[Predicate[S]] = []
        self._slots: list[tuple[int, int | None, int | None]] = []
        for prop in model.properties:
            p_slot = self._slot(prop.p)
            q_slot = None if prop.q is None else self._slot(prop.q)
            initially_slot = None if prop.initially is None else self._slot(prop.initially)
            self._slots.append((p_slot, q_slot, initially_slot))

    def _slot(self, predicate: Predicate[S]) -> int:
        """The index of the engine's recorded values of ``predicate`` over every state."""
        self.predicates.append(predicate)
        return len(self.predicates) - 1

    def check(
        self, exploration: Exploration[S], stop_at_first: bool, skip: bool = False
    ) -> tuple[list[PropertyResult], dict[str, Any]]:
        """Each property's status and lasso, in declaration order.

        ``stop_at_first`` leaves the properties after the first violated one
        unknown; ``skip`` leaves all of them unknown (a safety violation stopped
        the search, so the graph is partial).
        """
        started = time.perf_counter()
        if skip:
            unknown = [PropertyResult(p.name, p.kind, "unknown") for p in self.model.properties]
            return unknown, {"liveness_seconds": 0.0}
        graph = StateGraph.from_exploration(exploration)
        obligations = obligations_of(graph)
        values = [v.view.astype(bool) for v in exploration.predicate_values]
        results: list[PropertyResult] = []
        for prop, (p_slot, q_slot, initially_slot) in zip(self.model.properties, self._slots, strict=True):
            if stop_at_first and any(r.status == "violated" for r in results):
                results.append(PropertyResult(prop.name, prop.kind, "unknown"))
                continue
            q_values = None if q_slot is None else values[q_slot]
            starts = graph.initial_ids.astype(np.int64)
            if initially_slot is not None:
                starts = starts[values[initially_slot][starts]]
            lasso = find_violation(graph, obligations, prop, values[p_slot], q_values, starts)
            status: Status
            if lasso is not None:
                trace = self._trace(graph, prop, lasso)
                results.append(PropertyResult(prop.name, prop.kind, "violated", trace))
                continue
            status = "holds" if graph.complete and bool(fully_known(graph).all()) else "unknown"
            results.append(PropertyResult(prop.name, prop.kind, status))
        all_states = np.ones(graph.num_states, dtype=bool)
        stats = {
            "graph_edges": graph.num_edges,
            "sccs": int(strongly_connected(graph, all_states).max() + 1) if graph.num_states else 0,
            "graph_bytes": graph.nbytes,
            "liveness_seconds": time.perf_counter() - started,
        }
        return results, stats

    def _trace(self, graph: StateGraph[S], prop: Property[S], lasso: Lasso) -> Trace[S]:
        path_edges = lasso.edges[: len(lasso.states) - 1]
        steps = graph.trace(lasso.states, path_edges)
        loop_label = None if lasso.stutters else graph.label(int(graph.labels[lasso.edges[-1]]))
        return Trace(prop.name, prop.kind, tuple(steps), lasso.loop, lasso.stutters, loop_label)


def fully_known(graph: StateGraph[Any]) -> BoolArray:
    """States whose transitions are all known: only they may lie on a cycle.

    The constraint and the bounds leave states unexpanded; their enabled
    actions are unknown, so a cycle through one could be unfair in truth.
    (An expanded state whose target a bound dropped is fine: the edge is
    known to exist, it only cannot be followed.)
    """
    return graph.expanded


def find_violation(
    graph: StateGraph[Any],
    obligations: Obligations,
    prop: Property[Any],
    p: BoolArray,
    q: BoolArray | None,
    starts: IntArray | None = None,
) -> Lasso | None:
    """A lasso violating ``prop`` under the graph's fairness, or ``None`` if it holds: a behaviour
    from one of ``starts`` (by default every initial state)."""
    if starts is None:
        starts = graph.initial_ids.astype(np.int64)
    everything = np.ones(graph.num_states, dtype=bool)
    if len(starts) < len(graph.initial_ids):
        everything = bfs(graph, starts, everything)[0] >= 0
    live = fully_known(graph) & everything
    bad: BoolArray | None = None
    prefix_allowed = everything
    if prop.kind == "eventually":
        prefix_allowed = ~p
        reach, _ = bfs(graph, starts, prefix_allowed)
        region = (reach >= 0) & live
    elif prop.kind == "always_eventually":
        region = ~p & live
    elif prop.kind == "leads_to":
        assert q is not None
        triggers = np.flatnonzero(p & ~q & everything).astype(np.int64)
        reach, _ = bfs(graph, triggers, ~q)
        region = (reach >= 0) & live
    else:
        region = live.copy()
        bad = ~p
    fair = fair_sccs(graph, obligations, region)
    accepting = fair.component >= 0
    if bad is not None:
        good_sccs = unique(fair.component[accepting & bad])
        accepting &= member(fair.component, good_sccs)
    if not accepting.any():
        return None
    if prop.kind == "leads_to":
        assert q is not None
        _, via_trigger = bfs(graph, starts, everything)
        from_trigger, via_inside = bfs(graph, triggers, ~q)
        entry = _nearest(accepting, from_trigger)
        inner_states, inner_edges = _walk_back(graph, via_inside, entry)
        outer_states, outer_edges = _walk_back(graph, via_trigger, inner_states[0])
        states, edges = outer_states + inner_states[1:], outer_edges + inner_edges
    else:
        distance, via = bfs(graph, starts, prefix_allowed)
        entry = _nearest(accepting, distance)
        states, edges = _walk_back(graph, via, entry)
    cycle_states, cycle_edges = _cycle(graph, obligations, fair.component, entry, bad)
    loop = len(states) - 1
    return Lasso(states[:-1] + cycle_states, edges + cycle_edges, loop)


def _nearest(candidates: BoolArray, distance: IntArray) -> int:
    ids = np.flatnonzero(candidates & (distance >= 0))
    return int(ids[np.argmin(distance[ids])])
