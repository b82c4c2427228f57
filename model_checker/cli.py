"""Subcommands of `pot` provided by `model_checker`: check, models."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from model_checker.checker import SCHEMA, CheckResult, check
from model_checker.constants import choices, constant_json, format_constant, parse_constant
from model_checker.engine import ActionFailure
from model_checker.model import ConstantError, Model, ModelSpec, SpecError
from model_checker.progress import progress_reporter
from model_checker.run_config import RunConfigError, apply_run_config
from model_checker.simulate import simulate
from model_checker.trace import Palette, Trace, format_trace, format_value, to_itf

EXIT_OK, EXIT_VIOLATION, EXIT_ERROR = 0, 1, 2
MODELS_SCHEMA = "pot-models/1"
"""The ``schema`` of ``pot models --json`` (pot/schemas/models.schema.json)."""


class UsageError(Exception):
    """A mistake on the command line: printed as one line, exit status 2."""


HtmlReport = Callable[[str], Callable[[dict[str, Any]], None]]
"""Behind ``--html FILE``: given FILE, checks that it can be written (a ValueError says why) and
returns the function that writes a run's JSON document there as one HTML page."""


def register(
    sub: argparse._SubParsersAction[Any],
    models: Callable[[], Mapping[str, ModelSpec]],
    html: HtmlReport | None = None,
) -> None:
    """Add `check` and `models`; `models` supplies the registry lazily, `html` the `--html` writer."""
    checker = sub.add_parser(
        "check",
        help="check a model's invariants, deadlock freedom and temporal properties",
        description="Explicit-state model checking (breadth-first) or random simulation of a model.",
    )
    checker.add_argument(
        "model",
        metavar="MODEL",
        nargs="?",
        help="a name from `pot models`, or package.module:attribute (optional when --config names one)",
    )
    checker.add_argument(
        "--config", metavar="FILE", help="take the run's settings from a TOML file; options given here win"
    )
    checker.add_argument(
        "--const", action="append", default=[], metavar="NAME=VALUE", help="override a model constant"
    )
    checker.add_argument(
        "--invariant", action="append", default=None, metavar="NAME", help="check only these invariants"
    )
    checker.add_argument(
        "--property",
        action="append",
        default=None,
        metavar="NAME",
        help="check only these temporal properties",
    )
    checker.add_argument("--max-depth", type=int, metavar="D", help="explore at most D breadth-first levels")
    checker.add_argument("--max-states", type=int, metavar="S", help="stop after S distinct states")
    checker.add_argument("--simulate", type=int, metavar="N", help="run N random walks instead of exhausting")
    checker.add_argument("--depth", type=int, metavar="D", help="steps per random walk (with --simulate)")
    checker.add_argument("--seed", type=int, metavar="S", help="random seed for --simulate (default 0)")
    checker.add_argument(
        "--no-deadlock", action="store_true", default=None, help="do not report deadlocked states"
    )
    checker.add_argument("--no-liveness", action="store_true", default=None, help="skip temporal properties")
    checker.add_argument(
        "--continue",
        dest="keep_going",
        action="store_true",
        default=None,
        help="do not stop at the first violation: one counterexample per property",
    )
    checker.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes generating successors, the master included (default: one per core, or per CPU of "
        "the Ray cluster)",
    )
    checker.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="generate successors on a Ray cluster: `auto` (the one `ray start` made here), HOST:PORT of its "
        "head, or `local` to start one on this machine (needs `pip install 'pot-verify[ray]'`)",
    )
    checker.add_argument(
        "--memory",
        type=float,
        metavar="GB",
        help="GiB of encoded frontier to keep in memory; the rest of a level spills to a temporary file "
        "(default: no bound)",
    )
    checker.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="save the search to DIR/MODEL.checkpoint at the end of a BFS level, at most once a minute",
    )
    checker.add_argument(
        "--resume", metavar="DIR", help="resume from DIR/MODEL.checkpoint (a model without one starts afresh)"
    )
    checker.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    checker.add_argument("--trace-out", metavar="FILE", help="write the counterexample as ITF JSON")
    checker.add_argument(
        "--graph-out",
        metavar="FILE",
        help="write the explored state graph (FILE.dot, FILE.graphml or FILE.gexf; at most 10,000 states)",
    )
    if html is not None:
        checker.add_argument("--html", metavar="FILE", help="also write the run's report as one HTML page")
    checker.set_defaults(run=lambda args: run_check(args, models, html))

    lister = sub.add_parser("models", help="list the models `pot check` knows")
    lister.add_argument("--json", action="store_true", help="print the list as JSON")
    lister.set_defaults(run=lambda args: run_models(args, models))


def run_models(args: argparse.Namespace, models: Callable[[], Mapping[str, ModelSpec]]) -> int:
    """Print each registered model: its constants' defaults as ``--const`` takes them, meanings, choices."""
    registry = models()
    if args.json:
        listing = [
            {
                "name": name,
                "doc": spec.doc,
                "constants": {k: constant_json(v) for k, v in spec.defaults.items()},
                "choices": {k: list(choices(v)) for k, v in spec.defaults.items() if choices(v)},
                "companions": list(spec.companions),
            }
            for name, spec in registry.items()
        ]
        print(json.dumps({"schema": MODELS_SCHEMA, "models": listing}, indent=2))
        return EXIT_OK
    width = max((len(name) for name in registry), default=0)
    for name, spec in registry.items():
        constants = " ".join(f"{k}={format_constant(v)}" for k, v in spec.defaults.items())
        print(f"{name:<{width}}  {spec.doc}")
        if constants:
            print(f"{'':<{width}}  constants: {constants}")
        if spec.companions:
            print(f"{'':<{width}}  checked with: {', '.join(spec.companions)}")
        for constant in spec.defaults:
            meaning = spec.constant_docs.get(constant, "")
            options = " | ".join(choices(spec.defaults[constant]))
            described = "; ".join(part for part in (meaning, options and f"one of {options}") if part)
            if described:
                print(f"{'':<{width}}    {constant}: {described}")
    return EXIT_OK


def run_check(
    args: argparse.Namespace, models: Callable[[], Mapping[str, ModelSpec]], html: HtmlReport | None = None
) -> int:
    """`pot check`: the exit status is 0 (all hold), 1 (violation) or 2 (usage or spec error).

    A registry model with companions is checked together with them (unless
    ``--no-liveness``, ``--simulate``, ``--invariant``, ``--property`` or ``--graph-out``
    narrows the run to the model itself); one verdict covers all of them.
    """
    results: list[CheckResult] = []
    current: Model[Any] | None = None
    try:
        constants = _settle_options(args)
        _check_options(args)
        write_html = _html_writer(args, html)
        for current in _models_to_check(args, constants, models):
            result = _run(args, current)
            results.append(result)
            if result.verdict == "violation" and not args.keep_going:
                break
    except UsageError as error:
        return _fail(args, str(error))
    except ActionFailure as failure:
        assert current is not None  # only a search raises ActionFailure
        _report_failure(failure, current)
        return _fail(args, f"specification error: {failure}", printed=True)
    except ConstantError as error:
        return _fail(args, str(error))
    except SpecError as error:
        return _fail(args, f"specification error: {error}")
    palette = Palette(sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    try:
        document = suite_json(results) if args.json or write_html is not None else None
        if args.json:
            print(json.dumps(document))
        else:
            print(format_suite(results, palette))
        if args.trace_out:
            _write_traces(Path(args.trace_out), results, quiet=args.json)
    except SpecError as error:  # a value of the model's fields has no ITF form
        return _fail(args, f"specification error: {error}")
    if args.graph_out:
        _write_graph(Path(args.graph_out), results[0], quiet=args.json)
    if write_html is not None and document is not None:
        write_html(document)
    return EXIT_VIOLATION if overall_verdict(results) == "violation" else EXIT_OK


def _fail(args: argparse.Namespace, message: str, printed: bool = False) -> int:
    """A usage or specification error: one line on stderr, and with ``--json`` an error document."""
    if args.json:
        print(json.dumps({"schema": SCHEMA, "verdict": "error", "error": message}))
    if not printed:
        print(f"pot check: {message}", file=sys.stderr)
    return EXIT_ERROR


OPTION_DEFAULTS: Mapping[str, Any] = {
    "seed": 0,
    "workers": os.cpu_count() or 1,
    "no_deadlock": False,
    "no_liveness": False,
    "keep_going": False,
}
"""Options parsed with default None, so that a --config file can tell them unset, and their defaults."""


def _settle_options(args: argparse.Namespace) -> dict[str, Any]:
    """Fill what the command line left unset from ``--config``, then from the defaults; the constants.

    The constants are the file's, each overridden by a ``--const`` of the same name.
    """
    try:
        file_constants = apply_run_config(args, Path(args.config)) if args.config else {}
    except RunConfigError as error:
        raise UsageError(str(error)) from None
    for option, default in OPTION_DEFAULTS.items():
        if getattr(args, option) is None and not (option == "workers" and args.ray):
            setattr(args, option, default)
    if args.model is None:
        raise UsageError("no MODEL: name one on the command line or as `model` in the --config file")
    return {**file_constants, **parse_constants(args.const)}


def _html_writer(
    args: argparse.Namespace, html: HtmlReport | None
) -> Callable[[dict[str, Any]], None] | None:
    """The writer of ``--html FILE``, its target checked before any search; None without the option."""
    if html is None or args.html is None:
        return None
    try:
        return html(args.html)
    except ValueError as error:
        raise UsageError(f"--html {error}") from None


def _models_to_check(
    args: argparse.Namespace, constants: dict[str, Any], models: Callable[[], Mapping[str, ModelSpec]]
) -> Iterator[Model[Any]]:
    """The model named on the command line, then its companions (built lazily, one at a time)."""
    yield resolve_model(args.model, constants, models)
    narrowed = args.no_liveness or args.simulate is not None or args.invariant or args.property
    if ":" in args.model or narrowed or args.graph_out:
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
    if args.memory is not None and not args.memory > 0:
        raise UsageError(f"--memory must be a positive number of GiB, got {args.memory}")
    if args.resume is not None and not Path(args.resume).is_dir():
        raise UsageError(f"--resume {args.resume}: no such directory")
    if args.checkpoint is not None:
        try:
            Path(args.checkpoint).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"--checkpoint {args.checkpoint}: {error.strerror or error}") from None
    if args.ray and args.simulate is not None:
        raise UsageError("--ray distributes an exhaustive search; --simulate runs in one process")
    if args.ray and importlib.util.find_spec("ray") is None:
        raise UsageError("--ray needs Ray, an optional extra: pip install 'pot-verify[ray]'")
    if args.property and (args.no_liveness or args.simulate is not None):
        raise UsageError("--property names temporal properties; --no-liveness and --simulate check none")
    for option, target in (("--trace-out", args.trace_out), ("--graph-out", args.graph_out)):
        if target:
            folder = Path(target).resolve().parent
            if not folder.is_dir():
                raise UsageError(f"{option} {target}: no such directory {folder}")
            if not os.access(folder, os.W_OK):
                raise UsageError(f"{option} {target}: directory {folder} is not writable")
    if args.graph_out:
        _check_graph_options(args)


def _check_graph_options(args: argparse.Namespace) -> None:
    """A graph file needs a suffix naming its format and an exhaustive search small enough to draw."""
    from model_checker.export import GRAPH_STATE_LIMIT, graph_format  # imports networkx

    try:
        graph_format(args.graph_out)
    except ValueError as error:
        raise UsageError(f"--graph-out {error}") from None
    if args.simulate is not None:
        raise UsageError("--graph-out draws the graph of an exhaustive search, not of --simulate")
    if args.max_states is not None and args.max_states > GRAPH_STATE_LIMIT:
        raise UsageError(f"--graph-out draws at most {GRAPH_STATE_LIMIT:,} states; lower --max-states")


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
    max_states = args.max_states
    if args.graph_out:
        from model_checker.export import GRAPH_STATE_LIMIT  # imports networkx

        # One state past the limit is enough to know the graph is too large to draw.
        max_states = max_states or GRAPH_STATE_LIMIT + 1
    workers = args.workers
    if args.ray:
        from model_checker.ray_pool import cluster_cpus, connect  # Ray is an optional extra

        connect(args.ray, workers or os.cpu_count() or 1)
        workers = workers or cluster_cpus()
    with progress_reporter(args.max_states, machine_readable=args.json) as progress:
        result = check(
            model,
            invariants=args.invariant,
            properties=args.property,
            deadlock=not args.no_deadlock,
            liveness=not args.no_liveness,
            max_depth=args.max_depth,
            max_states=max_states,
            stop_at_first=not args.keep_going,
            progress=progress,
            workers=workers,
            ray=args.ray,
            record_graph=bool(args.graph_out),
            memory_budget=None if args.memory is None else int(args.memory * 2**30),
            checkpoint_dir=None if args.checkpoint is None else Path(args.checkpoint),
            resume_dir=None if args.resume is None else Path(args.resume),
        )
    if args.graph_out and result.distinct_states > GRAPH_STATE_LIMIT:
        raise UsageError(
            f"--graph-out: {model.name} has more than {GRAPH_STATE_LIMIT:,} states, too many to draw; "
            "bound the search with --max-states or --max-depth"
        )
    return result


def parse_constants(assignments: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs, each value as ``model_checker.constants.parse_constant`` reads it.

    Values are Python literals (``3``, ``True``, ``{0, 1}``, ``(1, 2)``) or bare
    words taken as strings, so ``bug=no_null_fill`` needs no shell quoting.
    """
    constants: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--const expects NAME=VALUE, got {assignment!r}")
        try:
            constants[name.strip()] = parse_constant(text)
        except ValueError as error:
            raise UsageError(f"--const {name}: {error}") from None
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


def format_result(result: CheckResult, palette: Palette) -> str:
    """The human-readable report: summary, properties, coverage, counterexamples."""
    model = result.model
    constants = ", ".join(f"{k}={format_constant(v)}" for k, v in model.constants.items())
    lines = [
        f"Model {model.name}" + (f" ({constants})" if constants else "") + f": {result.mode} search",
        *(f"Warning: {warning}" for warning in model.warnings),
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
    if result.stats.get("resumed_at_depth") is not None:
        lines.append(f"  resumed           from a checkpoint at depth {result.stats['resumed_at_depth']}")
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
    suffix = ".itf.json" if path.name.endswith(".itf.json") else path.suffix
    stem = path.name[: len(path.name) - len(suffix)]
    for index, (model, trace) in enumerate(traces):
        target = path if index == 0 else path.with_name(f"{stem}.{trace.property}{suffix}")
        try:
            target.write_text(json.dumps(to_itf(model, trace), indent=1) + "\n")
        except OSError as error:
            print(f"pot check: cannot write {target}: {error}", file=sys.stderr)
            continue
        if not quiet:
            print(f"ITF trace written to {target}", file=sys.stderr)


def _write_graph(path: Path, result: CheckResult, quiet: bool) -> None:
    from model_checker.export import write_graph  # imports networkx

    try:
        write_graph(path, result)
    except OSError as error:
        print(f"pot check: cannot write {path}: {error}", file=sys.stderr)
        return
    if not quiet:
        print(f"state graph written to {path}", file=sys.stderr)


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
