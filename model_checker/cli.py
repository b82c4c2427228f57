"""Subcommands of `pot` provided by `model_checker`: check, models."""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from model_checker.checker import CheckResult, check
from model_checker.engine import ActionFailure, Progress
from model_checker.model import Model, ModelSpec, SpecError
from model_checker.simulate import simulate
from model_checker.trace import Palette, Trace, format_trace, format_value, to_itf

EXIT_OK, EXIT_VIOLATION, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """A mistake on the command line: printed as one line, exit status 2."""


def register(sub: argparse._SubParsersAction[Any], models: Callable[[], Mapping[str, ModelSpec]]) -> None:
    """Add `check` and `models`; `models` supplies the registry lazily."""
    checker = sub.add_parser(
        "check",
        help="check a model's invariants, deadlock freedom and temporal properties",
        description="Explicit-state model checking (breadth-first) or random simulation of a model.",
    )
    checker.add_argument(
        "model", metavar="MODEL", help="a name from `pot models`, or package.module:attribute"
    )
    checker.add_argument(
        "--const", action="append", default=[], metavar="NAME=VALUE", help="override a model constant"
    )
    checker.add_argument(
        "--invariant", action="append", default=None, metavar="NAME", help="check only these invariants"
    )
    checker.add_argument("--max-depth", type=int, metavar="D", help="explore at most D breadth-first levels")
    checker.add_argument("--max-states", type=int, metavar="S", help="stop after S distinct states")
    checker.add_argument("--simulate", type=int, metavar="N", help="run N random walks instead of exhausting")
    checker.add_argument("--depth", type=int, metavar="D", help="steps per random walk (with --simulate)")
    checker.add_argument("--seed", type=int, default=0, metavar="S", help="random seed for --simulate")
    checker.add_argument("--no-deadlock", action="store_true", help="do not report deadlocked states")
    checker.add_argument("--no-liveness", action="store_true", help="skip temporal properties")
    checker.add_argument(
        "--continue",
        dest="keep_going",
        action="store_true",
        help="do not stop at the first violation: one counterexample per property",
    )
    checker.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes generating successors (safety-only searches; default: one per core)",
    )
    checker.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    checker.add_argument("--trace-out", metavar="FILE", help="write the counterexample as ITF JSON")
    checker.set_defaults(run=lambda args: run_check(args, models))

    lister = sub.add_parser("models", help="list the models `pot check` knows")
    lister.add_argument("--json", action="store_true", help="print the list as JSON")
    lister.set_defaults(run=lambda args: run_models(args, models))


def run_models(args: argparse.Namespace, models: Callable[[], Mapping[str, ModelSpec]]) -> int:
    """Print each registered model with its constants and their defaults."""
    registry = models()
    if args.json:
        listing = [
            {
                "name": name,
                "doc": spec.doc,
                "constants": {k: repr(v) for k, v in spec.defaults.items()},
                "companions": list(spec.companions),
            }
            for name, spec in registry.items()
        ]
        print(json.dumps(listing, indent=2))
        return EXIT_OK
    width = max((len(name) for name in registry), default=0)
    for name, spec in registry.items():
        constants = " ".join(f"{k}={v!r}" for k, v in spec.defaults.items())
        print(f"{name:<{width}}  {spec.doc}")
        if constants:
            print(f"{'':<{width}}  constants: {constants}")
        if spec.companions:
            print(f"{'':<{width}}  checked with: {', '.join(spec.companions)}")
        for constant, meaning in spec.constant_docs.items():
            print(f"{'':<{width}}    {constant}: {meaning}")
    return EXIT_OK


def run_check(args: argparse.Namespace, models: Callable[[], Mapping[str, ModelSpec]]) -> int:
    """`pot check`: the exit status is 0 (all hold), 1 (violation) or 2 (usage or spec error).

    A registry model with companions is checked together with them (unless
    ``--no-liveness``, ``--simulate`` or ``--invariant`` narrows the run to the
    model itself); one verdict covers all of them.
    """
    results: list[CheckResult] = []
    current: Model[Any] | None = None
    try:
        _check_options(args)
        for current in _models_to_check(args, parse_constants(args.const), models):
            result = _run(args, current)
            results.append(result)
            if result.verdict == "violation" and not args.keep_going:
                break
    except UsageError as error:
        print(f"pot check: {error}", file=sys.stderr)
        return EXIT_ERROR
    except ActionFailure as failure:
        assert current is not None  # only a search raises ActionFailure
        _report_failure(failure, current)
        return EXIT_ERROR
    except SpecError as error:
        print(f"pot check: specification error: {error}", file=sys.stderr)
        return EXIT_ERROR
    palette = Palette(sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    if args.json:
        print(json.dumps(suite_json(results)))
    else:
        print(format_suite(results, palette))
    if args.trace_out:
        _write_traces(Path(args.trace_out), results, quiet=args.json)
    return EXIT_VIOLATION if overall_verdict(results) == "violation" else EXIT_OK


def _models_to_check(
    args: argparse.Namespace, constants: dict[str, Any], models: Callable[[], Mapping[str, ModelSpec]]
) -> Iterator[Model[Any]]:
    """The model named on the command line, then its companions (built lazily, one at a time)."""
    yield resolve_model(args.model, constants, models)
    if ":" in args.model or args.no_liveness or args.simulate is not None or args.invariant:
        return
    registry = models()
    for name in registry[args.model].companions:
        yield registry[name].instantiate()


def overall_verdict(results: list[CheckResult]) -> str:
    """``violation`` if any part failed, ``incomplete`` if any part was not decided, else ``ok``."""
    verdicts = {result.verdict for result in results}
    return next((v for v in ("violation", "incomplete") if v in verdicts), "ok")


def suite_json(results: list[CheckResult]) -> dict[str, Any]:
    """The main model's report; with companions, theirs nested and every property listed on top."""
    report = results[0].to_json()
    if len(results) == 1:
        return report
    report["verdict"] = overall_verdict(results)
    report["properties"] = [
        {**prop, "model": part["model"]}
        for part in (report, *(r.to_json() for r in results[1:]))
        for prop in part["properties"]
    ]
    report["companions"] = [result.to_json() for result in results[1:]]
    report["seconds_total"] = round(sum(result.seconds for result in results), 4)
    return report


def format_suite(results: list[CheckResult], palette: Palette) -> str:
    """Each part's report; with companions, a closing line for the whole."""
    parts = [format_result(results[0], palette)]
    for result in results[1:]:
        parts.append(f"\nCompanion of {results[0].model.name}:\n" + format_result(result, palette))
    if len(results) > 1:
        names = ", ".join(result.model.name for result in results)
        seconds = sum(result.seconds for result in results)
        parts.append(
            f"\nOverall verdict: {palette.note(overall_verdict(results))} ({names}; {seconds:.2f} s)"
        )
    return "\n".join(parts)


def _check_options(args: argparse.Namespace) -> None:
    """Refuse, before any search, bounds that check nothing and a trace file that cannot be written."""
    for option in ("max_depth", "max_states", "simulate", "depth", "workers"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise UsageError(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    if args.trace_out:
        folder = Path(args.trace_out).resolve().parent
        if not folder.is_dir():
            raise UsageError(f"--trace-out {args.trace_out}: no such directory {folder}")
        if not os.access(folder, os.W_OK):
            raise UsageError(f"--trace-out {args.trace_out}: directory {folder} is not writable")


def _run(args: argparse.Namespace, model: Model[Any]) -> CheckResult:
    if args.simulate is not None:
        if args.max_depth is not None or args.max_states is not None:
            raise UsageError("--simulate takes --depth and --seed, not --max-depth or --max-states")
        return simulate(
            model,
            runs=args.simulate,
            depth=100 if args.depth is None else args.depth,
            seed=args.seed,
            invariants=args.invariant,
            deadlock=not args.no_deadlock,
            stop_at_first=not args.keep_going,
        )
    if args.depth is not None:
        raise UsageError("--depth is the walk length of --simulate; use --max-depth to bound the search")
    return check(
        model,
        invariants=args.invariant,
        deadlock=not args.no_deadlock,
        liveness=not args.no_liveness,
        max_depth=args.max_depth,
        max_states=args.max_states,
        stop_at_first=not args.keep_going,
        progress=_print_progress,
        workers=args.workers,
    )


def parse_constants(assignments: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs; values are Python literals (``3``, ``True``, ``(1, 2)``).

    A bare word such as ``bug=no_null_fill`` is taken as a string, so enumerated
    constants need no shell quoting.
    """
    constants: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--const expects NAME=VALUE, got {assignment!r}")
        text = text.strip()
        try:
            constants[name.strip()] = ast.literal_eval(text)
        except (ValueError, SyntaxError) as error:
            if not text.replace("-", "_").isidentifier():
                raise UsageError(
                    f"--const {name}: {text!r} is neither a literal (e.g. 3, True, (1, 2)) nor a bare word"
                ) from error
            constants[name.strip()] = text
    return constants


def resolve_model(
    reference: str, constants: dict[str, Any], models: Callable[[], Mapping[str, ModelSpec]]
) -> Model[Any]:
    """A registry name, or ``package.module:attribute`` naming a Model, a ModelSpec or a factory."""
    if ":" in reference:
        target = _import_attribute(reference)
    else:
        registry = models()
        if reference not in registry:
            raise UsageError(f"unknown model {reference!r}; known models: {', '.join(registry) or '(none)'}")
        target = registry[reference]
    try:
        if isinstance(target, ModelSpec):
            return target.instantiate(constants)
        if isinstance(target, Model):
            if constants:
                raise UsageError(f"{reference} is a fixed Model; --const needs a ModelSpec or a factory")
            return target
        if callable(target):
            built = target(**constants)
            if isinstance(built, ModelSpec):
                return built.instantiate()
            if isinstance(built, Model):
                return built
            raise UsageError(f"{reference} returned {type(built).__name__}, not a Model")
    except (TypeError, ValueError) as error:
        raise UsageError(f"cannot build {reference} with {constants or 'its defaults'}: {error}") from error
    raise UsageError(f"{reference} is a {type(target).__name__}, not a Model, ModelSpec or factory")


def _import_attribute(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UsageError(f"cannot import {module_name!r}: {error}") from error
    if not hasattr(module, attribute):
        raise UsageError(f"module {module_name} has no attribute {attribute!r}")
    return getattr(module, attribute)


def _print_progress(progress: Progress) -> None:
    rate = progress.distinct / progress.seconds if progress.seconds else 0.0
    print(
        f"  {progress.seconds:6.1f} s  distinct {progress.distinct:,}  queue {progress.queue:,}  "
        f"depth {progress.depth}  {rate:,.0f} states/s",
        file=sys.stderr,
        flush=True,
    )


def format_result(result: CheckResult, palette: Palette) -> str:
    """The human-readable report: summary, properties, coverage, counterexamples."""
    model = result.model
    constants = ", ".join(f"{k}={v!r}" for k, v in model.constants.items())
    lines = [
        f"Model {model.name}" + (f" ({constants})" if constants else "") + f": {result.mode} search",
        f"Verdict: {palette.note(result.verdict)}"
        + (
            f" ({result.incomplete_reason})"
            if result.incomplete_reason and result.verdict != "violation"
            else ""
        ),
        f"  distinct states   {result.distinct_states:,}",
        f"  generated states  {result.generated_states:,}",
        f"  depth             {result.depth}",
        f"  time              {result.seconds:.2f} s ({result.states_per_second:,.0f} states/s)",
    ]
    if result.memory is not None:
        lines.append(f"  memory            {result.memory.describe(result.distinct_states)}")
    if result.collisions is not None:
        lines.append(
            f"  collision chance  {result.collisions.optimistic:.1e} (optimistic), "
            f"{result.collisions.observed:.1e} (from the closest fingerprints)"
        )
    for name in ("graph_edges", "sccs"):
        if name in result.stats:
            lines.append(f"  {name.replace('_', ' '):<17} {result.stats[name]:,}")
    lines.append("Properties:")
    width = max((len(p.name) for p in result.properties), default=0)
    for prop in result.properties:
        lines.append(f"  {prop.name:<{width}}  {prop.kind:<17}  {prop.status}")
    lines.append(format_coverage(result))
    for prop in result.properties:
        if prop.counterexample is not None:
            lines.append(_trace_heading(prop.counterexample))
            lines.append(format_trace(model, prop.counterexample, palette))
    return "\n".join(lines)


def format_coverage(result: CheckResult) -> str:
    """Per-action table; never-enabled actions are flagged."""
    width = max((len(c.name) for c in result.coverage), default=6)
    lines = [f"Coverage:\n  {'action':<{width}}  {'enabled':>10}  {'generated':>10}  {'new states':>10}"]
    for cov in result.coverage:
        flag = "  <- never enabled" if cov.enabled == 0 else ""
        lines.append(f"  {cov.name:<{width}}  {cov.enabled:>10,}  {cov.generated:>10,}  {cov.new:>10,}{flag}")
    return "\n".join(lines)


def _trace_heading(trace: Trace[Any]) -> str:
    shape = "lasso" if trace.loop is not None else "trace"
    return f"Counterexample to {trace.kind} {trace.property} ({shape} of {len(trace)} states):"


def _write_traces(path: Path, results: list[CheckResult], quiet: bool) -> None:
    """The first counterexample to ``path``; with --continue the others beside it, one per property."""
    traces = [(r.model, p.counterexample) for r in results for p in r.properties if p.counterexample]
    if not traces and not quiet:
        print(f"no counterexample: {path} not written", file=sys.stderr)
    for index, (model, trace) in enumerate(traces):
        target = path if index == 0 else path.with_name(f"{path.stem}.{trace.property}{path.suffix}")
        try:
            target.write_text(json.dumps(to_itf(model, trace), indent=1) + "\n")
        except OSError as error:
            print(f"pot check: cannot write {target}: {error}", file=sys.stderr)
            continue
        if not quiet:
            print(f"ITF trace written to {target}", file=sys.stderr)


def _report_failure(failure: ActionFailure, model: Model[Any], stream: TextIO = sys.stderr) -> None:
    print(f"pot check: specification error: {failure}", file=stream)
    print("  in state:", file=stream)
    try:
        record = model.record(failure.state)
        for name, value in record.items():
            print(f"    {name} = {format_value(value)}", file=stream)
    except Exception:
        print(f"    {failure.state!r}", file=stream)
    if failure.trace:
        print("  reached by:", file=stream)
        heading = Trace("spec error", "error", tuple(failure.trace))
        print(format_trace(model, heading), file=stream)
