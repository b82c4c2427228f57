"""Mutation score of the audit's tier over ``pot_impl``: how many automatically planted bugs it kills.

Run: ``.venv/bin/python -m benchmarks.bench_mutation [--per-module N] [--seed S] [--quick]
[--reuse-kills]``. Prints a table and writes ``benchmarks/results/mutation.json``.

A larger sample with the same seed begins with the smaller one's sites (``random.sample`` draws
them in order), so ``--reuse-kills`` takes each kill the last run of that seed recorded instead of
judging that mutant again, and says when it was measured; survivors are always judged again. The
judges only ever gain checks, so a kill stands; a survivor may not.

The mutator is our own, over Python's ``ast`` (cosmic-ray and mutmut rewrite the
installed package or need their own runner and test layout; ours writes one
mutated module into a scratch copy and hands it to the audit's runners):

==================  ===========================================================
comparison          ``<`` ``<=`` ``>`` ``>=`` ``==`` ``!=`` ``in`` ``is`` to their neighbour or negation
arithmetic          ``+`` and ``-`` swapped, ``*`` to ``+``
boolean             ``and`` and ``or`` swapped, ``not`` dropped
constant            an int ``c`` to ``c + 1``, ``True`` and ``False`` swapped
return-value        ``return e`` to ``return None``
statement-deletion  an assignment or call statement to ``pass``
==================  ===========================================================

Every mutation site of each module group is enumerated in a fixed order and
``--per-module`` of them are sampled with ``--seed``. A mutant is judged as
``pot audit`` judges a change: the fast conformance tier and the tests that
import the mutated module, side by side, the first failure cancelling the rest
(``conformance.audit.judge_tree``). It is killed by a case that does not
conform, crashes or times out, or by a failing test. A survivor is either an
equivalent mutant or a gap in the suite, which only reading it can tell: the
verdicts of that reading live in ``benchmarks/mutation_triage.toml`` (one
``[[survivor]]`` per site, keyed by file, source line and mutation, so that
they survive line shifts), and the score per group is killed over sampled
less the equivalent ones. An untriaged survivor is printed as such.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_checker import RESULTS, environment
from conformance.audit import CASE_OUTCOMES, FAST_TIER, Judgement, judge_tree, select_tests
from conformance.checkout import build_extensions, copy_sources

REPOSITORY = Path(__file__).resolve().parents[1]
GROUPS: dict[str, tuple[str, ...]] = {
    "pbft": (
        "pot_impl/pbft/replica.py",
        "pot_impl/pbft/normal_case.py",
        "pot_impl/pbft/checkpoints.py",
        "pot_impl/pbft/view_change.py",
        "pot_impl/pbft/state_transfer.py",
        "pot_impl/pbft/outbox.py",
        "pot_impl/pbft/certificates.py",
        "pot_impl/pbft/quorums.py",
    ),
    "ledger": ("pot_impl/ledger/ledger.py",),
    "training verification": ("pot_impl/training/validator.py",),
    "codec and auth": ("pot_impl/codec.py", "pot_impl/auth.py"),
}
TRIAGE = REPOSITORY / "benchmarks" / "mutation_triage.toml"
TEST_TIMEOUT_S = 60
"""Per test: a mutant that makes a test loop for ever fails it within a minute (a hang is a kill:
the mutant changed behaviour the test observes), not after the project's five minutes."""

_COMPARISONS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_ARITHMETIC: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Add,
}


@dataclass(frozen=True)
class Site:
    """One mutation: the ``index``-th site of its module, in ``ast.walk`` order."""

    path: str
    index: int
    operator: str
    line: int
    description: str
    code: str
    """The source line, stripped: with ``path`` and ``description``, the key of its triage."""


def _docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first))
    return found


def _in_functions(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside function bodies (module-level constants and annotations are not mutated)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for statement in node.body:
                inside.update(id(child) for child in ast.walk(statement))
    return inside


def _mutations(tree: ast.AST) -> Iterator[tuple[ast.AST, str, str]]:
    """(node, operator, description) for every mutation site, in a fixed order."""
    inside, docstrings = _in_functions(tree), _docstring_nodes(tree)
    for node in ast.walk(tree):
        if id(node) not in inside or id(node) in docstrings:
            continue
        if isinstance(node, ast.Compare):
            for position, op in enumerate(node.ops):
                if type(op) in _COMPARISONS:
                    swapped = _COMPARISONS[type(op)].__name__
                    yield node, f"comparison:{position}", f"{type(op).__name__} -> {swapped}"
        elif isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            yield node, "arithmetic", f"{type(node.op).__name__} -> {_ARITHMETIC[type(node.op)].__name__}"
        elif isinstance(node, ast.BoolOp):
            yield node, "boolean", f"{type(node.op).__name__} swapped"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "boolean-not", "not dropped"
        elif isinstance(node, ast.Constant) and type(node.value) in (int, bool):
            yield node, "constant", f"{node.value!r} changed"
        elif isinstance(node, ast.Return) and node.value is not None:
            yield node, "return-value", "returns None"
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.Expr):
            yield node, "statement-deletion", "statement deleted"


def sites(path: str) -> list[Site]:
    source = (REPOSITORY / path).read_text()
    lines = source.splitlines()
    found = []
    for index, (node, operator, description) in enumerate(_mutations(ast.parse(source))):
        line = getattr(node, "lineno", 0)
        code = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        found.append(Site(path, index, operator.split(":")[0], line, description, code))
    return found


@dataclass(frozen=True)
class Triage:
    verdict: str
    """``equivalent`` (no input can tell the mutant from the original) or ``gap``."""
    reason: str


def load_triage(path: Path = TRIAGE) -> dict[tuple[str, str, str], Triage]:
    """(file, source line, mutation) -> the verdict of reading that survivor."""
    try:
        entries = tomllib.loads(path.read_text(encoding="utf-8")).get("survivor", [])
    except FileNotFoundError:
        return {}
    return {
        (entry["path"], entry["code"], entry["mutation"]): Triage(entry["verdict"], entry["reason"])
        for entry in entries
    }


class _Apply(ast.NodeTransformer):
    def __init__(self, target: ast.AST, operator: str) -> None:
        self.target, self.operator = target, operator

    def visit(self, node: ast.AST) -> Any:
        if node is not self.target:
            return self.generic_visit(node)
        kind, _, detail = self.operator.partition(":")
        if isinstance(node, ast.Compare) and kind == "comparison":
            ops = list(node.ops)
            ops[int(detail)] = _COMPARISONS[type(ops[int(detail)])]()
            node.ops = ops
        elif isinstance(node, ast.BinOp):
            node.op = _ARITHMETIC[type(node.op)]()
        elif isinstance(node, ast.BoolOp):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif isinstance(node, ast.UnaryOp):
            return node.operand
        elif isinstance(node, ast.Constant) and isinstance(node.value, int):
            node.value = (not node.value) if isinstance(node.value, bool) else node.value + 1
        elif isinstance(node, ast.Return):
            node.value = None
        else:
            return ast.Pass()
        return node


def mutated_source(site: Site) -> str:
    tree = ast.parse((REPOSITORY / site.path).read_text())
    node, operator, _ = list(_mutations(tree))[site.index]
    return ast.unparse(ast.fix_missing_locations(_Apply(node, operator).visit(tree)))


@dataclass
class Outcome:
    site: Site
    killed_by: str | None
    """``conformance: MODEL MODE VERDICT``, ``tests``, or None for a survivor."""
    seconds: float
    measured_at: str

    @property
    def site_key(self) -> tuple[str, str, str]:
        """What ``mutation_triage.toml`` keys its verdict on."""
        return self.site.path, self.site.code, self.site.description


def judge(root: Path, site: Site) -> Outcome:
    """Run the audit's judges on the copy at ``root`` with ``site`` applied; restores the file."""
    started = time.perf_counter()
    target = root / site.path
    original = target.read_text()
    target.write_text(mutated_source(site))
    try:
        tests = select_tests(root, [site.path])
        judged = judge_tree(
            root, FAST_TIER, tests, None, threading.Event(), per_test_timeout_s=TEST_TIMEOUT_S
        )
    finally:
        target.write_text(original)
    return Outcome(site, killed_by(judged), time.perf_counter() - started, environment()["measured_at"])


def killed_by(judged: Judgement) -> str | None:
    """What killed the mutant (``conformance: MODEL MODE OUTCOME`` or ``tests``), or None."""
    failing = next((case for case in judged.cases if case.verdict != "ok"), None)
    if failing is not None:
        return f"conformance: {failing.model} {failing.mode} {CASE_OUTCOMES[failing.verdict]}"
    if judged.tests is not None and not judged.tests.passed:
        return "tests"
    return None


def earlier_kills(seed: int) -> dict[Site, Outcome]:
    """The kills ``mutation.json`` recorded for ``seed``, by site."""
    try:
        document = json.loads((RESULTS / "mutation.json").read_text())
    except (OSError, ValueError):
        return {}
    if document.get("seed") != seed:
        return {}
    found = {}
    fields = Site.__dataclass_fields__
    for row in document["rows"]:
        for recorded in row["outcomes"]:
            if recorded["killed_by"]:
                site = Site(**{name: recorded[name] for name in fields})
                when = recorded.get("measured_at", document["environment"]["measured_at"])
                found[site] = Outcome(site, recorded["killed_by"], recorded["seconds"], when)
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-module", type=int, default=8, help="mutants sampled per module group")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument("--quick", action="store_true", help="two mutants per group")
    parser.add_argument(
        "--reuse-kills",
        action="store_true",
        help="take the last run's kills of this seed instead of judging them",
    )
    args = parser.parse_args(argv)
    earlier = earlier_kills(args.seed) if args.reuse_kills else {}
    per_group = 2 if args.quick else args.per_module
    sample: dict[str, list[Site]] = {}
    totals: dict[str, int] = {}
    for group, paths in GROUPS.items():
        every = [site for path in paths for site in sites(path)]
        totals[group] = len(every)
        sample[group] = random.Random(f"{args.seed}:{group}").sample(every, min(per_group, len(every)))
    outcomes: dict[str, list[Outcome]] = {}
    with tempfile.TemporaryDirectory(prefix="pot-mutation-") as scratch:
        root = copy_sources(REPOSITORY, Path(scratch))
        error = build_extensions(root)
        if error is not None:
            raise SystemExit(error)
        for group, chosen in sample.items():
            outcomes[group] = []
            for site in chosen:
                outcome = earlier.get(site) or judge(root, site)
                outcomes[group].append(outcome)
                verdict = outcome.killed_by or "SURVIVED"
                where = f"{site.path}:{site.line} {site.description}"
                print(f"  {group}: {where}: {verdict} ({outcome.seconds:.0f} s)", flush=True)
    triaged = load_triage()
    print(f"\nMutation score of the audit's tier (sample of {per_group} per group, seed {args.seed})")
    print(
        f"{'group':<22} {'sites':>6} {'sampled':>8} {'killed':>7} {'equiv.':>7} {'gaps':>5} "
        f"{'untriaged':>9} {'score':>6} {'s/mutant':>9}"
    )
    rows = []
    for group, found in outcomes.items():
        verdicts = [triaged.get(o.site_key) if not o.killed_by else None for o in found]
        killed = sum(1 for o in found if o.killed_by)
        equivalent = sum(1 for t in verdicts if t is not None and t.verdict == "equivalent")
        gaps = sum(1 for t in verdicts if t is not None and t.verdict == "gap")
        untriaged = len(found) - killed - equivalent - gaps
        seconds = sum(o.seconds for o in found) / max(len(found), 1)
        judged = len(found) - equivalent
        score = killed / judged if judged else 0.0
        print(
            f"{group:<22} {totals[group]:>6} {len(found):>8} {killed:>7} {equivalent:>7} {gaps:>5} "
            f"{untriaged:>9} {score:>6.0%} {seconds:>9.0f}"
        )
        rows.append(
            {
                "group": group,
                "sites": totals[group],
                "sampled": len(found),
                "killed": killed,
                "equivalent": equivalent,
                "gaps": gaps,
                "untriaged": untriaged,
                "score": score,
                "seconds_per_mutant": seconds,
                "outcomes": [
                    {
                        **asdict(o.site),
                        "killed_by": o.killed_by,
                        "triage": None if t is None else asdict(t),
                        "seconds": o.seconds,
                        "measured_at": o.measured_at,
                    }
                    for o, t in zip(found, verdicts, strict=True)
                ],
            }
        )
    survivors = [o for found in outcomes.values() for o in found if not o.killed_by]
    if survivors:
        print("survivors (equivalent, a gap in the suite, or not yet triaged):")
        for outcome in survivors:
            reading = triaged.get(outcome.site_key)
            said = "UNTRIAGED" if reading is None else f"{reading.verdict}: {reading.reason}"
            print(
                f"  {outcome.site.path}:{outcome.site.line} {outcome.site.description} [{outcome.site.code}]"
            )
            print(f"    {said}")
    RESULTS.mkdir(exist_ok=True)
    document = {"benchmark": "mutation", "environment": environment(), "seed": args.seed, "rows": rows}
    (RESULTS / "mutation.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {RESULTS / 'mutation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
