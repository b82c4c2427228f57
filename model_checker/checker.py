"""The public entry point: ``check(model, ...) -> CheckResult``.

Runs the breadth-first search for invariants and deadlocks and, when the
model declares temporal properties, the liveness analysis on the state graph
recorded by the same search. The result carries everything ``pot check``
prints: verdict, counts, per-property status with counterexamples, coverage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from model_checker.constants import constant_json
from model_checker.engine import ActionCoverage, ActionFailure, Exploration, Explorer, Progress
from model_checker.fingerprint import CollisionEstimates, collision_estimates
from model_checker.graph import StateGraph
from model_checker.memory import Memory, current_rss, peak_rss, reset_peak
from model_checker.model import Model, SpecError
from model_checker.trace import Trace, replay, to_itf

SCHEMA = "pot-check/2"
"""The ``schema`` of ``pot check --json`` (pot/schemas/check.schema.json)."""

Verdict = Literal["ok", "violation", "incomplete"]
Status = Literal["holds", "violated", "unknown"]


@dataclass(frozen=True)
class PropertyResult:
    """One checked property: an invariant, deadlock freedom, or a temporal property."""

    name: str
    kind: str
    """``invariant``, ``deadlock``, or a temporal kind (``eventually``, ``leads_to``, ...)."""
    status: Status
    """``unknown`` when the search was bounded or stopped before deciding it."""
    counterexample: Trace[Any] | None = None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one ``check`` or ``simulate`` run."""

    model: Model[Any]
    mode: Literal["exhaustive", "simulation"]
    verdict: Verdict
    distinct_states: int
    generated_states: int
    depth: int
    """Breadth-first levels, the initial level counted (TLC's convention)."""
    seconds: float
    memory: Memory | None
    """Where the bytes went (exhaustive runs)."""
    collisions: CollisionEstimates | None
    """The probability that two distinct states shared a fingerprint (exhaustive runs)."""
    properties: tuple[PropertyResult, ...]
    coverage: tuple[ActionCoverage, ...]
    incomplete_reason: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    """Extra figures (e.g. graph edges and SCCs when liveness was checked)."""
    graph: StateGraph[Any] | None = None
    """The explored state graph, when ``check(record_graph=True)`` asked for it."""

    @property
    def states_per_second(self) -> float:
        return self.distinct_states / self.seconds if self.seconds > 0 else 0.0

    @property
    def counterexample(self) -> Trace[Any] | None:
        """The first violation's trace, if any."""
        return next((p.counterexample for p in self.properties if p.counterexample is not None), None)

    @property
    def never_enabled(self) -> list[str]:
        """Actions that no explored state enabled: usually a spec bug."""
        return [c.name for c in self.coverage if c.enabled == 0]

    def to_json(self) -> dict[str, Any]:
        """The ``pot check --json`` object; the first counterexample also stands on top."""
        properties = [
            {
                "name": p.name,
                "kind": p.kind,
                "status": p.status,
                "counterexample": None if p.counterexample is None else to_itf(self.model, p.counterexample),
            }
            for p in self.properties
        ]
        first = next((p["counterexample"] for p in properties if p["counterexample"] is not None), None)
        return {
            "schema": SCHEMA,
            "model": self.model.name,
            "mode": self.mode,
            "verdict": self.verdict,
            "distinct_states": self.distinct_states,
            "generated_states": self.generated_states,
            "depth": self.depth,
            "seconds": round(self.seconds, 4),
            "states_per_second": round(self.states_per_second, 1),
            "memory": None if self.memory is None else self.memory.to_json(self.distinct_states),
            "fingerprint_collisions": None if self.collisions is None else self.collisions.to_json(),
            "properties": properties,
            "coverage": [
                {
                    "action": c.name,
                    "enabled": c.enabled,
                    "generated": c.generated,
                    "new_states": c.new,
                    "never_enabled": c.enabled == 0,
                }
                for c in self.coverage
            ],
            "counterexample": first,
            "incomplete_reason": self.incomplete_reason,
            "constants": {name: constant_json(value) for name, value in self.model.constants.items()},
            "warnings": list(self.model.warnings),
            **self.stats,
        }


def check(
    model: Model[Any],
    *,
    invariants: Sequence[str] | None = None,
    properties: Sequence[str] | None = None,
    deadlock: bool = True,
    liveness: bool = True,
    max_depth: int | None = None,
    max_states: int | None = None,
    stop_at_first: bool = True,
    progress: Callable[[Progress], None] | None = None,
    workers: int = 1,
    ray: str | None = None,
    record_graph: bool = False,
    memory_budget: int | None = None,
    checkpoint_dir: Path | None = None,
    checkpoint_every_s: float = 60.0,
    resume_dir: Path | None = None,
) -> CheckResult:
    """Check ``model`` exhaustively (breadth-first), within the optional bounds.

    ``invariants`` and ``properties`` select invariants and temporal properties
    by name (default: all; TLC's INVARIANT and PROPERTY). ``stop_at_first``
    stops at the first violation; otherwise one counterexample is collected
    per property. Temporal properties are checked when ``liveness`` is set and
    the model declares any (the search then records the state graph). ``workers``
    processes generate successors (and label the graph's edges) in parallel, with the
    same counts, graph and traces as one; with ``ray`` (a Ray address, or ``local``)
    they are actors on that Ray cluster. ``record_graph`` keeps the explored state
    graph in the result. The frontier is kept encoded; ``memory_budget`` bounds the bytes of it
    held in memory, spilling the rest of a level to a temporary file. With ``checkpoint_dir`` the
    search saves itself there at the end of a level at most every ``checkpoint_every_s``; with
    ``resume_dir`` it starts from the checkpoint found there for this model
    (``model_checker.checkpoint``).
    """
    model = with_properties(model, properties)
    temporal = liveness and bool(model.properties)
    live = None
    if temporal:
        from model_checker.liveness import LivenessChecker  # builds on this module; imports scipy

        live = LivenessChecker(model)
    reset_peak()
    start_rss = current_rss()
    explorer = Explorer(
        model,
        invariants=invariants,
        deadlock=deadlock,
        max_depth=max_depth,
        max_states=max_states,
        stop_at_first=stop_at_first,
        record_graph=temporal or record_graph,
        predicates=live.predicates if live is not None else (),
        progress=progress,
        workers=workers,
        ray=ray,
        memory_budget=memory_budget,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every_s=checkpoint_every_s,
        resume_dir=resume_dir,
    )
    try:
        exploration = explorer.run()
    except ActionFailure as failure:
        if failure.state_id is not None:
            path = explorer.visited.path_to(failure.state_id)
            failure.trace = replay(model, [explorer.visited.fingerprint(i) for i in path])
        raise
    results = safety_results(exploration, [name for name, _ in explorer.invariants], deadlock)
    stats: dict[str, Any] = {
        "workers": explorer.workers,
        "ray": ray,
        "resumed_at_depth": exploration.resumed_depth,
    }
    graph_bytes = 0
    seconds = exploration.seconds
    if live is not None:
        skip = exploration.stopped_early
        temporal_results, liveness_stats = live.check(exploration, stop_at_first, skip=skip)
        results += temporal_results
        seconds += liveness_stats["liveness_seconds"]
        graph_bytes = liveness_stats.pop("graph_bytes", 0)
        stats.update(liveness_stats)
    visited = exploration.visited
    collisions = collision_estimates(len(visited), exploration.generated, visited.fps_by_id.view)
    memory = Memory(  # measured last, so the peak includes the estimates' sorted copy
        start_rss=start_rss,
        peak_rss=peak_rss(),
        visited_table=visited.nbytes,
        graph=graph_bytes,
        peak_frontier_states=exploration.peak_frontier,
        frontier_bytes=exploration.peak_frontier_bytes,
        spilled_bytes=exploration.spilled_bytes,
    )
    return CheckResult(
        model=model,
        mode="exhaustive",
        verdict=verdict_of(results, exploration.complete),
        distinct_states=len(exploration.visited),
        generated_states=exploration.generated,
        depth=exploration.depth,
        seconds=seconds,
        memory=memory,
        collisions=collisions,
        properties=tuple(results),
        coverage=tuple(exploration.coverage),
        incomplete_reason=_incomplete_reason(exploration, max_depth, max_states),
        stats=stats,
        graph=StateGraph.from_exploration(exploration) if record_graph else None,
    )


def with_properties(model: Model[Any], names: Sequence[str] | None) -> Model[Any]:
    """``model`` with only the temporal properties ``names`` (all when None); SpecError for unknown names."""
    if names is None:
        return model
    declared = [prop.name for prop in model.properties]
    unknown = [name for name in names if name not in declared]
    if unknown:
        raise SpecError(
            f"model {model.name} has no temporal property {', '.join(unknown)}; "
            f"its properties are {', '.join(declared) or '(none)'}"
        )
    return replace(model, properties=tuple(p for p in model.properties if p.name in names))


def safety_results(
    exploration: Exploration[Any], invariants: list[str], deadlock: bool
) -> list[PropertyResult]:
    """Invariant and deadlock statuses, with traces rebuilt for the violations."""
    found = {v.name: v for v in exploration.violations}
    decided: Status = "holds" if exploration.complete else "unknown"
    checked = [(name, "invariant") for name in invariants]
    if deadlock:
        checked.append(("deadlock", "deadlock"))
    results = []
    for name, kind in checked:
        violation = found.get(name)
        if violation is None:
            results.append(PropertyResult(name, kind, decided))
            continue
        path = exploration.visited.path_to(violation.state_id)
        fingerprints = [exploration.visited.fingerprint(i) for i in path]
        trace = Trace(name, kind, tuple(replay(exploration.model, fingerprints)))
        results.append(PropertyResult(name, kind, "violated", trace))
    return results


def _any_violated(results: Sequence[PropertyResult]) -> bool:
    return any(r.status == "violated" for r in results)


def verdict_of(results: Sequence[PropertyResult], complete: bool) -> Verdict:
    """``violation`` if anything failed, else ``ok`` only if the search was exhaustive."""
    if _any_violated(results):
        return "violation"
    if not complete or any(r.status == "unknown" for r in results):
        return "incomplete"
    return "ok"


def _incomplete_reason(
    exploration: Exploration[Any], max_depth: int | None, max_states: int | None
) -> str | None:
    if exploration.complete:
        return None
    if exploration.stopped_early:
        return "stopped at the first violation"
    if max_states is not None and len(exploration.visited) >= max_states:
        return f"state bound reached (--max-states {max_states})"
    return f"depth bound reached (--max-depth {max_depth})"
