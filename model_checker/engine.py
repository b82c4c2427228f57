"""Breadth-first exploration: the engine under safety checking and state-graph building.

The search is level-synchronous and vectorised where Python allows it. For a
chunk of the frontier the only per-state Python work is calling each action's
``step``; successors are fingerprinted by the compiled walker of
``model_checker.fingerprint`` into an int64 array, and the whole chunk is
deduplicated against the visited table's fingerprint set in one compiled pass.
New states get ids in BFS order (first occurrence in the chunk, i.e. by
parent then action order), so the parent links give shortest traces.

Fingerprinting walks every stored state and rejects any value that is not
plain, so plainness is checked on every state, not on a sample; the sampled
checks below only verify the shape of what actions yield.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import multiprocessing
import time
from array import array
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import compress, islice, pairwise
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from operator import itemgetter
from pathlib import Path
from typing import Any, Generic

import numpy as np
import numpy.typing as npt

from model_checker import checkpoint, codec
from model_checker.arrays import unique
from model_checker.fingerprint import fingerprint as fingerprint_value
from model_checker.fingerprint import fingerprint_array
from model_checker.frontier import Chunk, Frontier, NewStates
from model_checker.model import Action, Label, Model, Predicate, S, SpecError, check_plain
from model_checker.visited import GrowableArray, VisitedTable

CHUNK_STATES = 16_384
"""Frontier states expanded per vectorised batch: bounds transient memory and paces progress."""

PARALLEL_MIN_STATES = 2_048
"""Chunks smaller than this are expanded by the master: below it, sending states to the workers
and back costs more than it saves (and small models never start a worker)."""

SLICE_STATES = 256
"""States a worker expands between two looks for the master's fetch of the previous chunk's new
states, and the master between two reads of the workers' answers: each generates its part of the
next chunk meanwhile, and waits at most a slice for the other."""

_SAMPLES_PER_CHUNK = 16
"""Evenly spaced successors per chunk whose shape and plainness are verified, besides each
action's first successor in the chunk (all initial states are verified)."""

_SECOND = itemgetter(1)
_FIRST = itemgetter(0)


def fingerprint_key(model: Model[Any]) -> Callable[[Any], Hashable] | None:
    """What is fingerprinted for a state: ``view(symmetry(state))``, or the state itself (``None``)."""
    symmetry, view = model.symmetry, model.view
    if symmetry is not None and view is not None:
        return lambda state: view(symmetry(state))
    return symmetry or view


def fingerprint(model: Model[Any], state: Any) -> int:
    """The 64-bit fingerprint of one state (identical in every process)."""
    key = fingerprint_key(model)
    return fingerprint_value(state if key is None else key(state))


@dataclass
class ActionCoverage:
    """How often an action family fired during the search."""

    name: str
    enabled: int = 0
    """States at which the action had at least one successor."""
    generated: int = 0
    """Successors it produced, duplicates and stuttering steps included."""
    new: int = 0
    """Distinct states first reached through it."""


@dataclass(frozen=True)
class Violation:
    """A state violating an invariant, or a deadlocked state (``kind='deadlock'``)."""

    name: str
    kind: str
    state_id: int


@dataclass(frozen=True)
class Progress:
    """A snapshot for the live progress line."""

    distinct: int
    queue: int
    depth: int
    seconds: float


class LabelInterner(dict[tuple[int, tuple[Any, ...]], int]):
    """``(action index, parameter values)`` to a dense label id, assigned on first sight.

    A dict whose misses assign the next id, so ``map(interner.__getitem__, keys)``
    interns a whole batch without a Python-level call per hit.
    """

    def __missing__(self, key: tuple[int, tuple[Any, ...]]) -> int:
        label_id = self[key] = len(self)
        return label_id


@dataclass
class Graph:
    """Edges recorded during exploration, in CSR form by source id."""

    out_degree: GrowableArray = field(default_factory=lambda: GrowableArray(np.int32))
    targets: GrowableArray = field(default_factory=lambda: GrowableArray(np.int32))
    label_ids: GrowableArray = field(default_factory=lambda: GrowableArray(np.int32))
    label_keys: LabelInterner = field(default_factory=LabelInterner)


@dataclass
class Exploration(Generic[S]):
    """What one breadth-first search found."""

    model: Model[S]
    visited: VisitedTable
    initial_ids: list[int]
    violations: list[Violation]
    coverage: list[ActionCoverage]
    generated: int
    depth: int
    seconds: float
    complete: bool
    """Every reachable state was expanded (no bound was hit, no early stop)."""
    stopped_early: bool
    """The search stopped at the first violation."""
    peak_frontier: int
    """The most states waiting to be expanded at once (one level and the next)."""
    peak_frontier_bytes: int
    """The most bytes of encoded frontier blocks held in memory at once (one level's)."""
    spilled_bytes: int
    """Bytes of frontier blocks written to disk past the memory budget."""
    expanded: npt.NDArray[np.bool_] | None = None
    """With a graph: which states were expanded (the constraint leaves some unexpanded)."""
    graph: Graph | None = None
    predicate_values: list[GrowableArray] = field(default_factory=list)
    resumed_depth: int | None = None
    """The depth of the checkpoint this search resumed from, or None."""


class ActionFailure(SpecError):
    """An action, invariant or predicate raised: names it and the state it ran on.

    ``trace`` (a list of ``trace.Step``) leads to that state; the checker fills it
    in from ``state_id`` after the search.
    """

    def __init__(
        self, message: str, state: Any, state_id: int | None, trace: list[Any] | None = None
    ) -> None:
        super().__init__(message)
        self.state = state
        self.state_id = state_id
        self.trace = trace


@dataclass(frozen=True)
class Judged:
    """Per state of a batch: each invariant's value, each temporal predicate's, and the constraint's."""

    invariants: list[npt.NDArray[np.bool_]]
    predicates: list[npt.NDArray[np.bool_]]
    constraint: npt.NDArray[np.bool_] | None

    @staticmethod
    def concatenate(parts: list[Judged | None]) -> Judged | None:
        """The judgements of consecutive batches as one (None if any batch has none)."""
        if not parts or any(part is None for part in parts):
            return None
        judged = [part for part in parts if part is not None]
        first = judged[0]
        return Judged(
            [np.concatenate([part.invariants[i] for part in judged]) for i in range(len(first.invariants))],
            [np.concatenate([part.predicates[i] for part in judged]) for i in range(len(first.predicates))],
            None
            if first.constraint is None
            else np.concatenate([part.constraint for part in judged if part.constraint is not None]),
        )


class Explorer(Generic[S]):
    """One breadth-first search of a model; ``run`` does the work."""

    def __init__(
        self,
        model: Model[S],
        *,
        invariants: Sequence[str] | None = None,
        deadlock: bool = True,
        max_depth: int | None = None,
        max_states: int | None = None,
        stop_at_first: bool = True,
        record_graph: bool = False,
        predicates: Sequence[Predicate[S]] = (),
        progress: Callable[[Progress], None] | None = None,
        workers: int = 1,
        ray: str | None = None,
        memory_budget: int | None = None,
        checkpoint_dir: Path | None = None,
        checkpoint_every_s: float = 60.0,
        resume_dir: Path | None = None,
    ) -> None:
        self.model = model
        self.checkpoint_dir = checkpoint_dir
        """Where to write a checkpoint at the end of a level, at most every ``checkpoint_every_s``."""
        self.checkpoint_every_s = checkpoint_every_s
        self.resume_dir = resume_dir
        """Where to resume from (``model_checker.checkpoint``), if it holds this model's checkpoint."""
        self.memory_budget = memory_budget
        """Bytes of encoded frontier kept in memory; blocks beyond spill to disk (None: no bound)."""
        self._frontier_bytes = 0
        self._spilled_bytes = 0
        self._seconds_before = 0.0
        """Search time before the checkpoint this run resumed from."""
        self._resumed_depth: int | None = None
        names = list(model.invariants) if invariants is None else list(invariants)
        unknown = [name for name in names if name not in model.invariants]
        if unknown:
            raise SpecError(
                f"model {model.name} has no invariant {', '.join(unknown)}; "
                f"its invariants are {', '.join(model.invariants) or '(none)'}"
            )
        self.invariants = [(name, model.invariants[name]) for name in names]
        self.deadlock = deadlock
        self.max_depth = max_depth
        self.max_states = max_states
        self.stop_at_first = stop_at_first
        self.predicates = list(predicates)
        self.progress = progress
        self.key = fingerprint_key(model)
        self.visited = VisitedTable(with_ids=record_graph)
        self.violations: list[Violation] = []
        self._violated: set[str] = set()
        self.coverage = [ActionCoverage(action.name) for action in model.actions]
        self.generated = 0
        self.graph = Graph() if record_graph else None
        self.expanded = GrowableArray(np.bool_) if record_graph else None
        self.predicate_values = [GrowableArray(np.bool_) for _ in self.predicates]
        self._stop = False
        self._bounded = False
        self.workers = max(workers, 1)
        """Processes generating successors."""
        self.ray = ray
        """Where the workers run: None for forked processes here, else a Ray address (``ray_pool``)."""
        self._workers: WorkerPool[S] | None = None

    # -- the search -------------------------------------------------------

    def run(self) -> Exploration[S]:
        """Explore breadth-first until done, a bound, or the first violation.

        The cyclic garbage collector is paused meanwhile: states are acyclic,
        and with millions of live tuples its full passes cost more than the
        search itself (measured: 13 s instead of 3.6 s on TwoPhase RM=7).
        """
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._search()
        finally:
            if self._workers is not None:
                self._workers.close()
                self._workers = None
            if collecting:
                gc.enable()

    def _search(self) -> Exploration[S]:
        started = time.perf_counter()
        self._started = started
        self._last_report = started
        resumed = self._resumed()
        if resumed is None:
            initial = self._initial_states()
            fps = self._fingerprints(initial)
            first, _, dropped = self.visited.insert_new(fps, self.max_states)
            self._bounded |= dropped
            no_parents = np.full(len(first), -1, dtype=np.int32)
            states, ids = self._admit(
                NewStates.of([initial[j] for j in first.tolist()]), no_parents, fps[first]
            )
            initial_ids = ids.tolist()
            frontier: Frontier[S] = Frontier(self.memory_budget)
            frontier.extend(states, ids)
            peak_frontier = len(frontier)
            depth = 1
        else:
            frontier, depth, initial_ids, peak_frontier = resumed
            self._resumed_depth = depth
        last_checkpoint = time.perf_counter()
        # The next level's chunks and its first chunk, when taken out as this level ended (``_early``).
        carried: tuple[Iterator[Chunk[S]], Chunk[S]] | None = None
        while (frontier or carried) and not self._stop:
            # At the depth bound the last level is still expanded, to learn whether
            # anything lies beyond it (and to find its deadlocks), but nothing is added.
            probing = self.max_depth is not None and depth >= self.max_depth
            following: Frontier[S] = Frontier(self.memory_budget)
            level_start = len(self.visited)
            if carried is None:
                chunks = frontier.chunks(CHUNK_STATES)
                chunk = next(chunks, None)
            else:
                (chunks, chunk), carried = carried, None
            level = len(frontier) + (0 if chunk is None else len(chunk[0]))
            checkpoint_due = self._checkpoint_due(last_checkpoint)
            while chunk is not None:
                upcoming = next(chunks, None)  # decoded now, so the workers can start on it early
                if upcoming is None and self._early(probing, checkpoint_due, following):
                    following_chunks = following.chunks(CHUNK_STATES)
                    carried = following_chunks, next(following_chunks)
                    upcoming = carried[1]
                following.extend(*self._expand_chunk(*chunk, probing, upcoming))
                ahead = len(upcoming[0]) if upcoming else 0
                queue = len(frontier) + ahead + len(following)
                peak_frontier = max(peak_frontier, level + len(following) + (ahead if carried else 0))
                self._report(queue, depth + int(len(self.visited) > level_start))
                if self._stop:
                    break
                chunk = upcoming if carried is None else None
            self._retire(frontier)
            if len(self.visited) > level_start:
                depth += 1
            frontier = following
            if self._bounded or probing:
                break
            if checkpoint_due and carried is None and not self._stop:
                self._checkpoint(frontier, depth, initial_ids, peak_frontier)
                last_checkpoint = time.perf_counter()
        self._retire(frontier)
        if self.expanded is not None:
            # States never expanded (constraint, bound, early stop) get no out-edges.
            missing = len(self.visited) - len(self.expanded)
            self.expanded.extend(np.zeros(missing, dtype=np.bool_))
            assert self.graph is not None
            self.graph.out_degree.extend(np.zeros(missing, dtype=np.int32))
        complete = not self._bounded and not self._stop
        return Exploration(
            model=self.model,
            visited=self.visited,
            initial_ids=initial_ids,
            violations=self.violations,
            coverage=self.coverage,
            generated=self.generated,
            depth=depth,
            seconds=time.perf_counter() - started + self._seconds_before,
            complete=complete,
            stopped_early=self._stop,
            peak_frontier=peak_frontier,
            peak_frontier_bytes=self._frontier_bytes,
            spilled_bytes=self._spilled_bytes,
            expanded=None if self.expanded is None else self.expanded.view.astype(bool),
            graph=self.graph,
            predicate_values=self.predicate_values,
            resumed_depth=self._resumed_depth,
        )

    def _checkpoint_due(self, last_checkpoint: float) -> bool:
        """Whether the level about to be expanded ends with a checkpoint."""
        return self.checkpoint_dir is not None and (
            time.perf_counter() - last_checkpoint >= self.checkpoint_every_s
        )

    def _early(self, probing: bool, checkpoint_due: bool, following: Frontier[S]) -> bool:
        """Whether to hand the workers the next level's first chunk with this level's last one.

        Otherwise they would wait, at every level's end, while the master deduplicates the last
        chunk. Its states are already in ``following`` (new states of earlier chunks), and
        generating them early changes nothing but when: deduplication stays in order, so ids,
        counts and depths are those of a level-by-level search. Not when the search ends with this
        level (``probing``) or saves ``following`` after it (a checkpoint must hold the whole level).
        """
        return (
            self._workers is not None
            and not probing
            and not checkpoint_due
            and not self._bounded
            and len(following) >= CHUNK_STATES
        )

    def _retire(self, frontier: Frontier[S]) -> None:
        """Count what a level's frontier held and drop its spill file."""
        self._frontier_bytes = max(self._frontier_bytes, frontier.peak_encoded_bytes)
        self._spilled_bytes += frontier.spilled_bytes
        frontier.close()

    _RESUMED_FIELDS = (
        "visited",
        "violations",
        "_violated",
        "coverage",
        "generated",
        "graph",
        "expanded",
        "predicate_values",
        "_frontier_bytes",
        "_spilled_bytes",
    )
    """The explorer's fields a checkpoint saves and a resumed search restores."""

    def _run_key(self) -> tuple[Any, ...]:
        names = [name for name, _ in self.invariants]
        return checkpoint.run_key(
            self.model, names, self.deadlock, self.graph is not None, len(self.predicates)
        )

    def _checkpoint(
        self, frontier: Frontier[S], depth: int, initial_ids: list[int], peak_frontier: int
    ) -> None:
        assert self.checkpoint_dir is not None
        saved = checkpoint.Checkpoint(
            run=self._run_key(),
            depth=depth,
            initial_ids=initial_ids,
            peak_frontier=peak_frontier,
            seconds=time.perf_counter() - self._started + self._seconds_before,
            explorer={name: getattr(self, name) for name in self._RESUMED_FIELDS},
            frontier=frontier.encoded(),
        )
        checkpoint.save(self.checkpoint_dir, self.model, saved)

    def _resumed(self) -> tuple[Frontier[S], int, list[int], int] | None:
        """The frontier, depth, initial ids and peak frontier of the checkpoint resumed from, with the
        explorer's fields restored; None to start afresh."""
        if self.resume_dir is None:
            return None
        found = checkpoint.load(self.resume_dir, self.model, self._run_key())
        if found is None:
            return None
        for name in self._RESUMED_FIELDS:
            setattr(self, name, found.explorer[name])
        self._seconds_before = found.seconds
        try:
            frontier: Frontier[S] = Frontier.of_encoded(found.frontier, self.memory_budget)
        except (ValueError, TypeError) as error:
            raise SpecError(
                f"{checkpoint.path_for(self.resume_dir, self.model)}: its states do not decode with this "
                f"code of {self.model.name} ({error}); resume with the code that wrote it, or start afresh"
            ) from None
        return frontier, found.depth, found.initial_ids, found.peak_frontier

    def _initial_states(self) -> list[S]:
        try:
            initial = list(self.model.init())
        except SpecError:
            raise
        except Exception as exc:
            raise SpecError(f"the initial-state function of {self.model.name} raised {exc!r}") from exc
        if not initial:
            raise SpecError(f"model {self.model.name} has no initial state")
        for index, state in enumerate(initial):
            check_plain(state, f"initial state {index}")
        self.generated += len(initial)
        return initial

    def _expand_chunk(
        self,
        chunk: list[S],
        chunk_ids: npt.NDArray[np.int32],
        probing: bool = False,
        upcoming: Chunk[S] | None = None,
    ) -> tuple[NewStates[S], npt.NDArray[np.int32]]:
        """Expand ``chunk``; returns the new states to expand next and their ids.

        When ``probing``, new successors are not added; finding any marks the search bounded.
        With workers, the ``upcoming`` chunk (the next of this level, or the next level's first) is
        handed to them as soon as they have replied with this one's successors: they generate it
        while the master deduplicates this one, and answer this one's fetch between its slices.
        """
        fetch: Callable[[list[int]], tuple[NewStates[S], Judged | None]]
        if self._workers is None and self.workers > 1 and len(chunk) >= PARALLEL_MIN_STATES:
            self._workers = self._pool()
        workers = self._workers
        handed = upcoming if upcoming is not None and len(upcoming[0]) >= PARALLEL_MIN_STATES else None
        recording = self.graph is not None
        label_ids: npt.NDArray[np.int32] | None = None
        if workers is None or len(chunk) < PARALLEL_MIN_STATES:
            if workers is not None and handed is not None:
                workers.submit(*handed)
            pairs, successors, per_action, fps = self._generate(chunk, chunk_ids)
            fetch = functools.partial(_pick_unjudged, successors)
            if recording:
                label_ids = self._label_ids(pairs, per_action)
        else:
            per_action, fps, fetch, label_ids = workers.generate(chunk, chunk_ids, handed)
        n_actions = len(self.model.actions)
        ends_array = np.cumsum(per_action.ravel())
        self._count_coverage(per_action)
        self.generated += len(fps)
        state_ends = np.cumsum(per_action.sum(axis=1))
        if self.deadlock:
            for local in np.flatnonzero(per_action.sum(axis=1) == 0).tolist():
                self._violate("deadlock", "deadlock", int(chunk_ids[local]))
        if self.expanded is not None:
            self.expanded.extend(np.ones(len(chunk), dtype=np.bool_))

        room = 0 if probing else None
        if self.max_states is not None and not probing:
            room = max(self.max_states - len(self.visited), 0)
        new_first, successor_ids, dropped = self.visited.insert_new(fps, room, with_ids=recording)
        self._bounded |= dropped
        parents = chunk_ids[np.searchsorted(state_ends, new_first, side="right")]
        new_action = np.searchsorted(ends_array, new_first, side="right") % n_actions
        for action_index, count in enumerate(np.bincount(new_action, minlength=n_actions).tolist()):
            self.coverage[action_index].new += count
        new_states, judged = fetch(new_first.tolist())
        states, ids = self._admit(new_states, parents, fps[new_first], judged)
        if recording:  # successor_ids: -1 for those a bound dropped
            assert label_ids is not None and successor_ids is not None
            self._record_edges(label_ids, successor_ids, per_action)
        return states, ids

    def _pool(self) -> WorkerPool[S]:
        """The master and ``workers - 1`` workers: the master generates a part of each chunk too."""
        if self.ray is None:
            return _Processes(self, self.workers - 1)
        from model_checker.ray_pool import RayPool  # Ray is an optional extra

        return RayPool(self, self.ray, self.workers - 1)

    def _generate(
        self,
        chunk: list[S],
        chunk_ids: npt.NDArray[np.int32],
        between: Callable[[], None] | None = None,
    ) -> tuple[list[tuple[tuple[Any, ...], S]], list[S], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Every successor of ``chunk``: the yielded ``(values, state)`` pairs, the states, how many each
        (state, action) yielded (``len(chunk)`` rows), and the fingerprints. Touches no counter, so a
        worker process can run it on its copy of the explorer; it calls ``between`` every
        ``SLICE_STATES`` states (a worker answers the master there)."""
        steps = [action.step for action in self.model.actions]
        pairs: list[tuple[tuple[Any, ...], S]] = []
        ends = array("q")
        extend, mark, size = pairs.extend, ends.append, pairs.__len__
        for low in range(0, len(chunk), SLICE_STATES):
            if low and between is not None:
                between()
            try:
                for state in chunk[low : low + SLICE_STATES]:
                    for step in steps:
                        extend(step(state))
                        mark(size())
            except Exception as exc:
                position, action_index = divmod(len(ends), len(steps))
                action = self.model.actions[action_index]
                raise ActionFailure(
                    f"action {label_at_failure(action, exc)} raised {type(exc).__name__}: {exc}",
                    chunk[position],
                    int(chunk_ids[position]),
                ) from exc
        ends_array = np.frombuffer(ends, dtype=np.int64)
        per_action = np.diff(ends_array, prepend=np.int64(0)).astype(np.int64).reshape(len(chunk), len(steps))
        self._verify_sample(pairs, per_action, chunk, chunk_ids)
        try:
            successors = list(map(_SECOND, pairs))
        except TypeError:
            self._verify_all(pairs, per_action, chunk, chunk_ids)
            raise
        return pairs, successors, per_action, self._fingerprints(successors)

    def _admit(
        self,
        candidates: NewStates[S],
        parents: npt.NDArray[np.int32],
        fps: npt.NDArray[np.int64],
        judged: Judged | None = None,
    ) -> tuple[NewStates[S], npt.NDArray[np.int32]]:
        """Record the states ``visited.insert_new`` just entered, check them; returns those to expand
        next, with ids. ``judged``: what ``judge`` gave for ``candidates`` in a worker, so the master
        need not (nor decode a worker's states, unless a constraint drops some)."""
        id_range = self.visited.record(fps, parents)
        ids = np.arange(id_range.start, id_range.stop, dtype=np.int32)
        for index, (name, invariant) in enumerate(self.invariants):
            if name in self._violated:
                continue
            holds = (
                judged.invariants[index]
                if judged is not None
                else self._evaluate(f"invariant {name}", invariant, candidates.states(), ids)
            )
            if not holds.all():
                self._violate(name, "invariant", int(ids[np.argmin(holds)]))
        for index, (predicate, values) in enumerate(zip(self.predicates, self.predicate_values, strict=True)):
            values.extend(
                judged.predicates[index]
                if judged is not None
                else self._evaluate("a temporal property's predicate", predicate, candidates.states(), ids)
            )
        if self.model.constraint is None:
            return candidates, ids
        states = candidates.states()
        keep = (
            judged.constraint
            if judged is not None and judged.constraint is not None
            else self._evaluate("the state constraint", self.model.constraint, states, ids)
        )
        return NewStates.of(list(compress(states, keep.tolist()))), ids[keep]

    def judge(self, states: list[S]) -> Judged | None:
        """Every invariant, temporal predicate and the state constraint on ``states``: a worker
        runs this on the new states the master fetches from it, so that the master only
        deduplicates. None if one raised: the master then evaluates them itself, to name the state."""

        def values(predicate: Predicate[S]) -> npt.NDArray[np.bool_]:
            return np.fromiter(map(predicate, states), dtype=np.bool_, count=len(states))

        constraint = self.model.constraint
        try:
            return Judged(
                [values(invariant) for _, invariant in self.invariants],
                [values(predicate) for predicate in self.predicates],
                None if constraint is None else values(constraint),
            )
        except Exception:
            return None

    def _evaluate(
        self, what: str, predicate: Predicate[S], states: list[S], ids: npt.NDArray[np.int32]
    ) -> npt.NDArray[np.bool_]:
        try:
            return np.fromiter(map(predicate, states), dtype=np.bool_, count=len(states))
        except Exception as exc:
            position = _first_raising(predicate, states)
            raise ActionFailure(
                f"{what} raised {type(exc).__name__}: {exc}", states[position], int(ids[position])
            ) from exc

    def _fingerprints(self, states: list[S]) -> npt.NDArray[np.int64]:
        key = self.key
        try:
            keys: Iterable[Hashable] = states if key is None else map(key, states)
            return fingerprint_array(keys, len(states))
        except Exception as exc:
            for index, state in enumerate(states):
                check_plain(state if key is None else key(state), f"state {index} of the batch")
            raise SpecError(
                f"fingerprinting a state raised {type(exc).__name__}: {exc} "
                "(states must be plain values; symmetry and view must accept every state)"
            ) from exc

    def _verify_sample(
        self,
        pairs: list[tuple[tuple[Any, ...], S]],
        per_action: npt.NDArray[np.int64],
        chunk: list[S],
        ids: Any,
    ) -> None:
        """Check a few yielded items (each action's first in the chunk, and evenly spaced ones):
        ``(parameter values, state)`` with the right number of values and a plain state."""
        if not pairs:
            return
        flat = per_action.ravel()
        ends = np.cumsum(flat)
        starts = (ends - flat).reshape(per_action.shape)
        fired = per_action > 0
        first_rows = np.argmax(fired, axis=0)  # first state of the chunk where each action fired
        firsts = starts[first_rows, np.arange(per_action.shape[1])][fired.any(axis=0)]
        spaced = np.linspace(0, len(pairs) - 1, _SAMPLES_PER_CHUNK).astype(np.int64)
        for j in unique(np.concatenate([spaced, firsts])).tolist():
            self._verify_item(pairs, j, ends, chunk, ids)

    def _verify_all(
        self,
        pairs: list[tuple[tuple[Any, ...], S]],
        per_action: npt.NDArray[np.int64],
        chunk: list[S],
        ids: Any,
    ) -> None:
        ends = np.cumsum(per_action.ravel())
        for j in range(len(pairs)):
            self._verify_item(pairs, j, ends, chunk, ids)

    def _verify_item(
        self,
        pairs: list[tuple[tuple[Any, ...], S]],
        j: int,
        ends: npt.NDArray[np.int64],
        chunk: list[S],
        ids: Any,
    ) -> None:
        """Check ``pairs[j]``; ``ends``: the cumulated successor counts per (state, action)."""
        n_actions = len(self.model.actions)
        slot = int(np.searchsorted(ends, j, side="right"))
        action = self.model.actions[slot % n_actions]
        item = pairs[j]
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], tuple)):
            raise ActionFailure(
                f"action {action.name} yielded {item!r}; a step yields (parameter values tuple, state)",
                chunk[slot // n_actions],
                int(ids[slot // n_actions]),
            )
        action.label(item[0])
        check_plain(item[1], f"successor of {action.name}")

    def _count_coverage(self, per_action: npt.NDArray[np.int64]) -> None:
        generated = per_action.sum(axis=0).tolist()
        enabled = (per_action > 0).sum(axis=0).tolist()
        for cov, gen, en in zip(self.coverage, generated, enabled, strict=True):
            cov.generated += gen
            cov.enabled += en

    def _label_ids(
        self, pairs: list[tuple[tuple[Any, ...], S]], per_action: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int32]:
        """The label id of each successor, interned in this explorer's graph (a worker's own copy)."""
        assert self.graph is not None
        actions = np.repeat(np.tile(np.arange(per_action.shape[1]), per_action.shape[0]), per_action.ravel())
        keys = zip(actions.tolist(), map(_FIRST, pairs), strict=True)
        try:
            return np.fromiter(map(self.graph.label_keys.__getitem__, keys), dtype=np.int32, count=len(pairs))
        except TypeError as exc:
            raise SpecError(f"action parameter values must be hashable to label transitions: {exc}") from exc

    def _record_edges(
        self,
        label_ids: npt.NDArray[np.int32],
        targets: npt.NDArray[np.int32],
        per_action: npt.NDArray[np.int64],
    ) -> None:
        assert self.graph is not None
        graph = self.graph
        graph.out_degree.extend(per_action.sum(axis=1).astype(np.int32))
        graph.targets.extend(targets)
        graph.label_ids.extend(label_ids)

    def _violate(self, name: str, kind: str, state_id: int) -> None:
        if name in self._violated:
            return
        self._violated.add(name)
        self.violations.append(Violation(name, kind, state_id))
        if self.stop_at_first:
            self._stop = True

    def _report(self, queue: int, depth: int) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        if now - self._last_report >= 1.0:
            self._last_report = now
            self.progress(Progress(len(self.visited), queue, depth, now - self._started))


class WorkerPool(Generic[S]):
    """The master and ``helpers`` workers generating successors together, chunk by chunk; subclasses
    say how the workers run.

    A chunk is cut into consecutive parts: the first is the master's own, then one per worker. Each
    worker returns the per-action counts and fingerprints of its successors and keeps the
    successors themselves until the master, having deduplicated the whole chunk in order, fetches
    the new ones. Ids, counts and traces are those of the one-process search: the parts are
    concatenated in chunk order. The next chunk is submitted as soon as the workers have replied,
    so they generate it while the master deduplicates, and answer the fetch between its slices
    (``PartGenerator`` keeps two chunks' successors).
    The master's part is sized so that its whole cycle, deduplication included, takes as long as
    a worker's part: then neither waits for the other, and the master's part crosses no pipe.
    """

    def __init__(self, explorer: Explorer[S], helpers: int, known_labels: int = 0) -> None:
        self.explorer = explorer
        self.actions = len(explorer.model.actions)
        self.helpers = helpers
        self.serial = 0
        """The serial number of the last chunk submitted."""
        self.submitted: tuple[list[S], npt.NDArray[np.int32], int] | None = None
        """The master's part of the chunk the workers are generating (with its ids), and the chunk's size."""
        self.own: _OwnPart[S] | Exception | None = None
        """The master's part of the submitted chunk once generated (or what generating it raised)."""
        self.own_share = 1 / (helpers + 1)
        """The fraction of a chunk the master generates itself."""
        self._replied_at: float | None = None
        """When the master last had every worker's reply: its own cycle's work starts there."""
        self._submitted_at = 0.0
        """When the master finished sending the workers their parts of the last chunk submitted."""
        self.unmeasured = 0.0
        """Seconds of a worker's cycle its own clock misses (reading its part, sending the reply),
        learnt from the chunks whose replies the master had to wait for: from submission to reply
        they time the worker's whole cycle. A reply that had begun to arrive teaches nothing (the
        master was busy elsewhere meanwhile, and reading a large reply is not waiting)."""
        self.labels = None if explorer.graph is None else explorer.graph.label_keys
        """The master's label table, when it records the graph: workers intern labels in tables of
        their own, and report the labels new to them, which the master interns in part order (so
        every id is the one the one-process search gives)."""
        self.translations = [list(range(known_labels)) for _ in range(helpers)]
        """Per worker, its label ids to the master's (``known_labels``: how many labels a new
        worker's table starts with; a forked one starts with the master's)."""

    def start(self, part: int, serial: int, chunk: bytes, chunk_ids: npt.NDArray[np.int32]) -> None:
        """Have worker ``part`` generate the successors of ``chunk`` (chunk ``serial``'s part, as
        ``codec.dumps`` bytes) and keep them."""
        raise NotImplementedError

    def replies(self) -> list[GenerateReply]:
        """Each worker's reply to its last ``start``, in part order."""
        raise NotImplementedError

    def replied(self) -> bool:
        """Whether every worker's reply to its last ``start`` has begun to arrive."""
        raise NotImplementedError

    def between_slices(self) -> None:
        """Run between the slices of the master's own part: read what the workers sent meanwhile."""

    def ask(self, serial: int, asked: dict[int, list[int]]) -> None:
        """Ask each worker in ``asked`` for the successors of chunk ``serial`` at the given local indices."""
        raise NotImplementedError

    def answers(self, asked: list[int]) -> dict[int, tuple[bytes, Judged | None]]:
        """The asked workers' answers: the successors as ``codec.dumps`` bytes, with their ``judge``
        of them."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def submit(self, chunk: list[S], chunk_ids: npt.NDArray[np.int32]) -> None:
        """Start generating ``chunk``'s successors; ``generate`` on the same chunk collects them."""
        self.serial += 1
        own = round(self.own_share * len(chunk))
        bounds = np.linspace(own, len(chunk), self.helpers + 1).astype(int).tolist()
        for part, (low, high) in enumerate(pairwise(bounds)):
            self.start(part, self.serial, codec.dumps(chunk[low:high]), chunk_ids[low:high])
        self.submitted = (chunk[:own], chunk_ids[:own], len(chunk))
        self._submitted_at = time.perf_counter()

    def generate(
        self, chunk: list[S], chunk_ids: npt.NDArray[np.int32], upcoming: Chunk[S] | None = None
    ) -> tuple[
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        Callable[[list[int]], tuple[NewStates[S], Judged | None]],
        npt.NDArray[np.int32] | None,
    ]:
        """Per-action counts and fingerprints of the chunk's successors, a fetch of some by index (the
        chunk was ``submit``-ted already, or is now), and, when the graph is recorded, each
        successor's label id. The ``upcoming`` chunk is submitted as soon as the workers' replies
        are in: a worker goes on to it without waiting for the master to deduplicate this one."""
        pipelined = self.submitted is not None
        if self.submitted is None:
            self.submit(chunk, chunk_ids)
        assert self.submitted is not None
        own_states, size = len(self.submitted[0]), self.submitted[2]
        assert size == len(chunk)
        serial, submitted_at = self.serial, self._submitted_at
        self._generate_own()
        own, self.own, self.submitted = self.own, None, None
        if isinstance(own, Exception):
            raise own
        assert own is not None
        waiting = time.perf_counter()
        waited = not self.replied()
        replies = self.replies()
        replied = time.perf_counter()
        for reply in replies:
            if reply[0] == "failure":
                raise ActionFailure(reply[1], reply[2], reply[3])
            if reply[0] == "error":
                raise SpecError(reply[1])
        if upcoming is not None:
            self.submit(*upcoming)
        if waited:
            missed = replied - submitted_at - max(reply[4] for reply in replies)
            self.unmeasured = (self.unmeasured + max(missed, 0.0)) / 2
        if pipelined and self._replied_at is not None:
            overhead = waiting - self._replied_at - own.seconds
            self._balance(own_states, own.seconds, overhead, size, replies)
        self._replied_at = replied
        counts = np.concatenate([own.counts.ravel()] + [reply[1] for reply in replies])
        fps = np.concatenate([own.fps] + [reply[2] for reply in replies])
        label_ids = None
        if own.labels is not None:
            interned = [self._interned(part, reply[3]) for part, reply in enumerate(replies)]
            label_ids = np.concatenate([own.labels, *interned])
        offsets = np.cumsum([0, len(own.fps)] + [len(reply[2]) for reply in replies])

        def fetch(indices: list[int]) -> tuple[NewStates[S], Judged | None]:
            """The successors at ``indices`` (ascending, so the parts' answers concatenate in order)."""
            where = np.searchsorted(offsets, indices, side="right") - 1
            assert (np.diff(where) >= 0).all(), "fetched out of chunk order"
            wanted = np.asarray(indices, dtype=np.int64)
            asked = {
                part - 1: (wanted[where == part] - offsets[part]).tolist()
                for part in range(1, self.helpers + 1)
                if (where == part).any()
            }
            self.ask(serial, asked)
            self._generate_own()  # the next chunk's, while the workers answer
            mine = [own.successors[j] for j in wanted[where == 0].tolist()]
            judged = self.explorer.judge(mine)
            got = self.answers(list(asked))
            theirs = [(codec.from_bytes(got[part][0]), len(asked[part])) for part in sorted(got)]
            states = NewStates([(mine, len(mine)), *theirs])
            return states, Judged.concatenate([judged] + [got[part][1] for part in sorted(got)])

        return counts.reshape(len(chunk), self.actions), fps, fetch, label_ids

    def _generate_own(self) -> None:
        """Generate the master's part of the submitted chunk, once; what it raises is kept for
        ``generate`` to raise, after the chunk before it is done."""
        if self.submitted is None or self.own is not None:
            return
        chunk, chunk_ids, _ = self.submitted
        began = time.perf_counter()
        try:
            pairs, successors, counts, fps = self.explorer._generate(chunk, chunk_ids, self.between_slices)
            labels = None if self.labels is None else self.explorer._label_ids(pairs, counts)
        except Exception as error:
            self.own = error
            return
        self.own = _OwnPart(successors, counts, fps, labels, time.perf_counter() - began)

    def _balance(
        self, own_states: int, own_seconds: float, overhead: float, size: int, replies: list[GenerateReply]
    ) -> None:
        """Size the master's next part so that its ``overhead`` (deduplication, fetching, admitting)
        and its generation take as long as a worker's part: ``overhead + s * own_rate =
        (size - s) / helpers * worker_rate``, from the rates measured on this chunk."""
        worker_states = size - own_states
        if worker_states == 0:
            return
        worker_rate = (sum(reply[4] for reply in replies) + self.helpers * self.unmeasured) / worker_states
        own_rate = own_seconds / own_states if own_states else worker_rate
        per_helper = worker_rate / self.helpers
        wanted = (size * per_helper - overhead) / (own_rate + per_helper) / size
        self.own_share = (self.own_share + min(max(wanted, 0.0), 1.0)) / 2

    def _interned(self, part: int, labels: WorkerLabels) -> npt.NDArray[np.int32]:
        """A worker's label ids as the master's, interning the labels new to the worker in its order."""
        assert self.labels is not None
        local_ids, first_new, new_keys = labels
        translation = self.translations[part]
        assert len(translation) == first_new, "a worker's label table ran ahead of the master's view of it"
        translation.extend(self.labels[key] for key in new_keys)
        return np.asarray(translation, dtype=np.int32)[local_ids]


@dataclass(frozen=True)
class _OwnPart(Generic[S]):
    """The master's part of a chunk, generated."""

    successors: list[S]
    counts: npt.NDArray[np.int64]
    fps: npt.NDArray[np.int64]
    labels: npt.NDArray[np.int32] | None
    seconds: float


WorkerLabels = tuple[npt.NDArray[np.int32], int, list[tuple[int, tuple[Any, ...]]]]
"""A worker's label ids of its successors, the first id new to its table, and the new labels' keys."""

GenerateReply = tuple[Any, ...]
"""``("ok", counts, fingerprints, labels, seconds)`` (``labels``: ``WorkerLabels`` when the graph
is recorded, else None; ``seconds`` the part took, its decoding and the fetches answered
meanwhile included), ``("failure", message, state, state id)`` or ``("error", message)``."""


class PartGenerator(Generic[S]):
    """A worker's side of the pool, on its copy of the explorer: it generates its part of each chunk
    and keeps the successors of the last two, since the master fetches one chunk's new states
    while the next is generated."""

    def __init__(self, explorer: Explorer[S]) -> None:
        self.explorer = explorer
        self.kept: dict[int, list[S]] = {}
        """Successors by chunk serial number, until fetched or two chunks old."""

    def generate(
        self,
        serial: int,
        encoded_chunk: bytes,
        chunk_ids: npt.NDArray[np.int32],
        between: Callable[[], None] | None = None,
    ) -> GenerateReply:
        """The reply for chunk ``serial``'s part (``codec.dumps`` bytes); ``between`` runs between
        slices."""
        began = time.perf_counter()  # decoding counts: the master sizes its part by this time
        chunk: list[S] = codec.loads(encoded_chunk)
        for old in [kept for kept in self.kept if kept < serial - 1]:
            del self.kept[old]
        explorer = self.explorer
        labels: WorkerLabels | None = None
        try:
            pairs, successors, counts, fps = explorer._generate(chunk, chunk_ids, between)
            if explorer.graph is not None:
                known = explorer.graph.label_keys
                first_new = len(known)
                local_ids = explorer._label_ids(pairs, counts)
                labels = (local_ids, first_new, list(islice(known, first_new, None)))
        except ActionFailure as failure:
            return ("failure", str(failure), failure.state, failure.state_id)
        except Exception as error:
            return ("error", str(error))
        self.kept[serial] = successors
        return ("ok", counts.ravel(), fps, labels, time.perf_counter() - began)

    def fetch(self, serial: int, indices: list[int]) -> tuple[bytes, Judged | None]:
        """The successors of chunk ``serial`` at ``indices`` (``codec.dumps`` bytes), and the
        explorer's ``judge`` of them."""
        successors = self.kept.pop(serial)
        states = [successors[j] for j in indices]
        return codec.dumps(states), self.explorer.judge(states)


class _Processes(WorkerPool[S]):
    """Forked worker processes: they hold the model (closures included) without pickling it."""

    def __init__(self, explorer: Explorer[S], count: int) -> None:
        super().__init__(explorer, count, 0 if explorer.graph is None else len(explorer.graph.label_keys))
        context = multiprocessing.get_context("fork")
        self.connections: list[Connection] = []
        self.processes: list[BaseProcess] = []
        self.inbox: list[list[tuple[Any, ...]]] = [[] for _ in range(count)]
        """Per worker, what it sent that the master has read but not yet used: a fetch's answer read
        between slices of the master's own part (so the worker need not wait to send it), or a reply
        to the next chunk that came before that answer."""
        for _ in range(count):
            mine, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(explorer, theirs), daemon=True)
            process.start()
            theirs.close()
            self.connections.append(mine)
            self.processes.append(process)

    def start(self, part: int, serial: int, chunk: bytes, chunk_ids: npt.NDArray[np.int32]) -> None:
        self.connections[part].send(("generate", serial, chunk, chunk_ids))

    def replies(self) -> list[GenerateReply]:
        return [self._take(part, answer=False) for part in range(self.helpers)]

    def replied(self) -> bool:
        return all(
            any(kept[0] != "fetched" for kept in inbox) or connection.poll()
            for inbox, connection in zip(self.inbox, self.connections, strict=True)
        )

    def ask(self, serial: int, asked: dict[int, list[int]]) -> None:
        for part, local in asked.items():
            self.connections[part].send(("fetch", serial, local))

    def answers(self, asked: list[int]) -> dict[int, tuple[bytes, Judged | None]]:
        return {part: self._take(part, answer=True)[1:] for part in asked}

    def between_slices(self) -> None:
        for part, connection in enumerate(self.connections):
            while connection.poll():
                self.inbox[part].append(connection.recv())

    def _take(self, part: int, answer: bool) -> tuple[Any, ...]:
        """Worker ``part``'s next fetch answer (``answer``) or reply to a chunk; the other kind waits."""
        inbox = self.inbox[part]
        for index, kept in enumerate(inbox):
            if (kept[0] == "fetched") == answer:
                return inbox.pop(index)
        while True:
            message: tuple[Any, ...] = self.connections[part].recv()
            if (message[0] == "fetched") == answer:
                return message
            inbox.append(message)

    def close(self) -> None:
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.send(("stop",))
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


def _pick_unjudged(items: list[S], indices: list[int]) -> tuple[NewStates[S], Judged | None]:
    return NewStates.of([items[j] for j in indices]), None


def _serve(explorer: Explorer[Any], connection: Connection) -> None:
    """A worker process's loop: generate parts of chunks, and hand out the successors asked for,
    also between the slices of a generation (the master asks for the previous chunk's then)."""
    generator = PartGenerator(explorer)

    def answer(request: tuple[Any, ...]) -> None:
        if request[0] == "stop":
            raise SystemExit(0)
        if request[0] == "fetch":
            connection.send(("fetched", *generator.fetch(request[1], request[2])))
        else:
            connection.send(generator.generate(request[1], request[2], request[3], answer_waiting))

    def answer_waiting() -> None:
        while connection.poll():
            request = connection.recv()
            assert request[0] != "generate", "a chunk was submitted before the last one was collected"
            answer(request)

    while True:
        answer(connection.recv())


def label_at_failure(action: Action[Any], exc: BaseException) -> str:
    """The failing witness's label, read from the step's frame when its parameters are bound there."""
    code = getattr(action.step, "__code__", None)
    bound: dict[str, Any] | None = None
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code is code:
            bound = trace.tb_frame.f_locals
        trace = trace.tb_next
    if bound is None or not all(name in bound for name in action.params):
        return action.name
    return str(Label(action.name, tuple((name, bound[name]) for name in action.params)))


def _first_raising(predicate: Callable[[Any], Any], states: list[Any]) -> int:
    for position, state in enumerate(states):
        try:
            predicate(state)
        except Exception:
            return position
    return 0


def label_of(model: Model[Any], key: tuple[int, tuple[Any, ...]]) -> Label:
    """The printable label of an interned ``(action index, values)`` key."""
    action: Action[Any] = model.actions[key[0]]
    return action.label(key[1])
