"""``pot audit``: judge an implementation change, and say what was verified.

The change (a commit, a patch applied to ``HEAD``, or the working tree's
uncommitted edits) is judged in the git repository of the current directory.
Its tree and its base tree are materialised in scratch directories with
``git archive`` (the repository, its index and its worktrees are never
touched). In the changed tree, under ``coverage``:

* every case of the fast conformance tier runs as ``python -m conformance.runner
  ... --json`` with ``PYTHONPATH`` at the copy, so the implementation under
  judgement is the copy's, and the spec too;
* the project's tests that import a changed module run with pytest.

The base tree runs the same tier (its figures are cached in the repository's
git directory by tree), so the verdict can compare transition coverage and
gaps. The verdict:

* **REJECT**: a case diverges, crashes (its traceback is shown) or times out,
  a test fails, or the change loses transition coverage or adds gaps;
* **UNVERIFIED**: none of that, but some changed statements were never
  executed by any run (listed as ``file:line``);
* **ACCEPT**: every changed statement executed, no divergence, no coverage
  lost. It says that what the tier and the tests drive behaves as the spec
  says; it says nothing about behaviour they never reach.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

from conformance.checkout import CheckoutError, build_extensions, checkout_root

SCHEMA = "pot-audit/1"
"""The ``schema`` of ``pot audit --json`` (pot/schemas/audit.schema.json)."""
CASE_TIMEOUT_S = 600.0
TESTS_TIMEOUT_S = 900.0
CACHE_VERSION = 3
"""Bump when what a cached base run records changes."""

FAST_TIER: tuple[tuple[str, str], ...] = (
    ("ledger-tiny", "replay"),
    ("ledger-overlap", "replay"),
    ("ledger-dispute", "replay"),
    ("pbft-tiny", "stateful"),
    ("pbft-twin", "stateful"),
    ("tiny", "stateful"),
)
"""(model, mode) cases: full transition-cover replay of the ledger models (real training; the
second with accounts in two roles, the third with the bisection dispute game), and
seeded stateful scenarios of the PBFT models (Byzantine primary of view 0, and its twin with the
Byzantine replica the primary of view 1) and the combined model (the full PBFT replays are the slow
tier)."""

PACKAGES = ("pot_impl", "spec", "conformance", "model_checker", "pot", "tests")
"""Where changed Python lines are measured; other files (docs, benchmarks) need no execution."""

Verdict = Literal["accept", "unverified", "reject"]


class AuditError(CheckoutError):
    """The change cannot be judged (not a repository, bad revision, a patch that does not apply)."""


# --------------------------------------------------------------------------- the change


@dataclass
class Change:
    """What is judged: a description, the base commit, and the lines it adds or edits."""

    description: str
    base: str | None
    """The commit the change applies to (``None`` for a root commit)."""
    touched: list[str]
    changed_lines: dict[str, set[int]]
    """Per Python file under ``PACKAGES``: line numbers in the changed tree that the change added
    or edited, and, for a pure deletion, the line that now follows it."""

    @property
    def pot_impl_only(self) -> bool:
        return bool(self.touched) and all(path.startswith("pot_impl/") for path in self.touched)

    @property
    def scope(self) -> str:
        if not self.touched:
            return "nothing to judge"
        return "pot_impl only" if self.pot_impl_only else "touches more than pot_impl"


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def changed_lines(diff: str) -> dict[str, set[int]]:
    """The new-side lines a unified diff adds (and, for deletions, the line after), per file."""
    lines: dict[str, set[int]] = {}
    current: set[int] | None = None
    new_line = 0
    deleted = False

    def close_hunk() -> None:
        if current is not None and deleted:
            current.add(new_line)

    for text in diff.splitlines():
        if text.startswith("+++ "):
            close_hunk()
            deleted = False
            path = text[4:].split("\t")[0]
            path = path[2:] if path.startswith("b/") else path
            measured = path.endswith(".py") and path.split("/")[0] in PACKAGES
            current = lines.setdefault(path, set()) if measured else None
            continue
        match = _HUNK.match(text)
        if match:
            close_hunk()
            # An empty new side starts at the line before it: what follows the deletion is one on.
            new_line = int(match.group(1)) + (match.group(2) == "0")
            deleted = False
            continue
        if current is None or text.startswith(("--- ", "diff ", "index ")):
            continue
        if text.startswith("+"):
            current.add(new_line)
            new_line += 1
            deleted = False
        elif text.startswith("-"):
            deleted = True
        elif text.startswith(" "):
            if deleted:
                current.add(new_line)
                deleted = False
            new_line += 1
    close_hunk()
    return {path: found for path, found in lines.items() if found}


class Repository:
    """git commands on the repository being judged."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def git(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["git", *args], cwd=self.root, input=stdin, capture_output=True, check=False)

    def commit(self, revision: str) -> str:
        resolved = self.git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
        if resolved.returncode:
            raise AuditError(f"unknown revision {revision!r}")
        return resolved.stdout.decode().strip()

    def parent(self, commit: str) -> str | None:
        resolved = self.git("rev-parse", "--verify", "--quiet", f"{commit}^1")
        return resolved.stdout.decode().strip() if resolved.returncode == 0 else None

    def tree(self, commit: str) -> str:
        return self.git("rev-parse", f"{commit}^{{tree}}").stdout.decode().strip()

    def show(self, commit: str, path: str) -> str | None:
        """The text of ``path`` at ``commit``, or None where it does not exist."""
        shown = self.git("show", f"{commit}:{path}")
        return shown.stdout.decode("utf-8", "replace") if shown.returncode == 0 else None

    def extract(self, revision: str, destination: Path) -> None:
        archive = self.git("archive", "--format=tar", revision)
        if archive.returncode:
            raise AuditError(f"cannot read revision {revision}: {archive.stderr.decode().strip()}")
        with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
            tar.extractall(destination, filter="data")

    def cache_dir(self) -> Path:
        common = self.git("rev-parse", "--git-common-dir").stdout.decode().strip()
        return (self.root / common / "pot-audit").resolve()


def materialise_revision(repo: Repository, revision: str, destination: Path) -> Change:
    """The tree of commit ``revision``; the change judged is what it changed from its first parent."""
    commit = repo.commit(revision)
    base = repo.parent(commit)
    repo.extract(commit, destination)
    if base is None:
        listing = repo.git("ls-tree", "-r", "--name-only", commit).stdout.decode().split()
        lines = {p: set(range(1, 1 + _line_count(destination / p))) for p in listing if p.endswith(".py")}
        return Change(f"commit {commit[:12]}", None, listing, lines)
    diff = repo.git("diff", "--no-color", "--no-ext-diff", "-U0", base, commit).stdout.decode()
    touched = repo.git("diff", "--name-only", base, commit).stdout.decode().split()
    return Change(f"commit {commit[:12]}", base, touched, changed_lines(diff))


def materialise_patch(repo: Repository, patch: Path, destination: Path) -> Change:
    """``HEAD``'s tree with ``patch`` applied (it must apply cleanly)."""
    if not patch.is_file():
        raise AuditError(f"patch file {patch} does not exist")
    return _apply(repo, patch.read_bytes(), f"patch {patch.name}", destination)


def materialise_worktree(repo: Repository, destination: Path) -> Change:
    """``HEAD``'s tree with the working tree's uncommitted edits to tracked files."""
    diff = repo.git("diff", "--no-color", "--no-ext-diff", "--binary", "HEAD").stdout
    if not diff.strip():
        base = repo.commit("HEAD")
        repo.extract(base, destination)
        return Change("the working tree (no uncommitted change)", base, [], {})
    return _apply(repo, diff, "the working tree's uncommitted changes", destination)


def _apply(repo: Repository, data: bytes, description: str, destination: Path) -> Change:
    base = repo.commit("HEAD")
    repo.extract(base, destination)

    def git_apply(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["git", "apply", *args, "-"], cwd=destination, input=data, capture_output=True, check=False
        )

    numstat = git_apply("--numstat")
    touched = [line.split("\t")[-1] for line in numstat.stdout.decode().splitlines() if line.strip()]
    applied = git_apply()
    if numstat.returncode or applied.returncode or not touched:
        reason = (applied.stderr or numstat.stderr).decode().strip().splitlines()
        raise AuditError(f"{description} does not apply to HEAD: {reason[0] if reason else 'empty patch'}")
    return Change(description, base, touched, changed_lines(data.decode("utf-8", "replace")))


def _read(root: Path, path: str) -> str | None:
    try:
        return (root / path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n") + 1
    except OSError:
        return 0


# --------------------------------------------------------------------------- running what judges it


CASE_OUTCOMES = {"ok": "conforms", "violation": "diverges", "error": "crashed", "incomplete": "timed out"}
"""A case's verdict (the JSON vocabulary) in the words of the text report."""


@dataclass
class CaseResult:
    """One conformance case: its verdict and, when it failed, why."""

    model: str
    mode: str
    verdict: str
    """``ok`` (conforms), ``violation`` (diverges), ``error`` (crashed) or ``incomplete`` (timed out)."""
    steps: int = 0
    transitions_covered: int = 0
    gaps: dict[str, int] = field(default_factory=dict)
    divergence: dict[str, Any] | None = None
    traceback: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 3)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseResult:
        return cls(**data)


def _environment(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Cancelled(Exception):
    """A run stopped because the verdict was already REJECT (``Judges.stop``)."""


POLL_S = 0.5
"""How often a running judge looks at ``stop``."""


def _run_in(
    root: Path, command: list[str], timeout_s: float, stop: threading.Event | None = None
) -> subprocess.CompletedProcess[str] | None:
    """``command`` run in the tree at ``root`` with its packages first on the path; None on timeout.
    Raises ``Cancelled`` once ``stop`` is set. Either way the whole process group is killed, so
    nothing the command started (pytest's or the runner's workers) outlives it."""
    deadline = time.monotonic() + timeout_s
    with subprocess.Popen(
        command,
        cwd=root,
        env=_environment(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        while True:
            try:
                out, err = process.communicate(timeout=POLL_S)
                return subprocess.CompletedProcess(command, process.returncode, out, err)
            except subprocess.TimeoutExpired:
                cancelled = stop is not None and stop.is_set()
                if not cancelled and time.monotonic() < deadline:
                    continue
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            if cancelled:
                raise Cancelled
            return None


def _coverage_prefix(rcfile: Path | None) -> list[str]:
    return (
        [sys.executable]
        if rcfile is None
        else [sys.executable, "-m", "coverage", "run", f"--rcfile={rcfile}"]
    )


def run_case(
    root: Path, model: str, mode: str, rcfile: Path | None = None, stop: threading.Event | None = None
) -> CaseResult:
    """One fast-tier case in a subprocess that imports everything from ``root``, timed (``Cancelled``
    once ``stop`` is set)."""
    started = time.perf_counter()
    result = _run_case(root, model, mode, rcfile, stop)
    result.seconds = time.perf_counter() - started
    return result


def _run_case(
    root: Path, model: str, mode: str, rcfile: Path | None, stop: threading.Event | None
) -> CaseResult:
    command = [*_coverage_prefix(rcfile), "-m", "conformance.runner", model, "--mode", mode, "--json"]
    finished = _run_in(root, command, CASE_TIMEOUT_S, stop)
    if finished is None:
        return CaseResult(model, mode, "incomplete", traceback=f"no result within {CASE_TIMEOUT_S:.0f} s")
    lines = finished.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        return CaseResult(model, mode, "error", traceback=_tail(finished.stderr or finished.stdout, 40))
    divergences = result.get("divergences") or []
    gaps = {f"{gap['action']}: {gap['reason']}": int(gap["count"]) for gap in result.get("gaps") or []}
    return CaseResult(
        model,
        mode,
        str(result.get("verdict", "violation")),
        steps=int(result.get("steps", 0)),
        transitions_covered=int(result.get("transitions_covered", 0)),
        gaps=gaps,
        divergence=divergences[0] if divergences else None,
    )


@dataclass
class TestsResult:
    """The project's tests that import a changed module, run in the changed tree."""

    files: list[str]
    passed: bool
    output: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "passed": self.passed,
            "failures": None if self.passed else self.output,
            "seconds": round(self.seconds, 3),
        }


def select_tests(root: Path, changed: Iterable[str]) -> list[str]:
    """Test files (relative to ``root``) that import a changed module or are changed themselves.

    Imports are followed through the tests' own helpers and through the changed module's package
    (a test that drives the replica through its harness runs when one of the replica's parts
    changes), not through other layers: a test of the audit or the report reaches every module
    of ``pot_impl`` through the bridges without judging any of them."""
    modules = {_module_of(path) for path in changed if path.endswith(".py")}
    through = {"tests"} | {module.partition(".")[0] for module in modules}
    graph = _import_graph(root)
    selected = []
    for test in sorted((root / "tests").rglob("test_*.py")):
        relative = test.relative_to(root).as_posix()
        if relative in changed or modules & _reachable(graph, _module_of(relative), through):
            selected.append(relative)
    return selected


def _import_graph(root: Path) -> dict[str, set[str]]:
    """Each module of the repository's top-level packages, with the repository modules it imports
    (importing ``a.b.c`` runs ``a`` and ``a.b`` first)."""
    files = {
        _module_of(path.relative_to(root).as_posix()): path
        for package in sorted(root.iterdir())
        if (package / "__init__.py").is_file()
        for path in package.rglob("*.py")
    }
    return {module: _with_packages(_imports(path)) & files.keys() for module, path in files.items()}


def _with_packages(modules: set[str]) -> set[str]:
    """``modules`` and every package that holds one of them."""
    found = set(modules)
    for name in modules:
        parts = name.split(".")
        found.update(".".join(parts[:end]) for end in range(1, len(parts)))
    return found


def _reachable(graph: Mapping[str, set[str]], start: str, through: set[str]) -> set[str]:
    """The modules ``start`` imports, directly or through modules of the packages ``through``."""
    seen: set[str] = set()
    waiting = [start]
    while waiting:
        for module in graph.get(waiting.pop(), ()):
            if module not in seen:
                seen.add(module)
                if module.partition(".")[0] in through:
                    waiting.append(module)
    return seen


def _module_of(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file names in an import, with ``from a import b`` counted as ``a`` and ``a.b``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def run_tests(
    root: Path,
    files: list[str],
    rcfile: Path | None,
    per_test_timeout_s: int | None = None,
    stop: threading.Event | None = None,
) -> TestsResult:
    """``files`` with pytest (the fast tier: not slow) in the tree at ``root``, timed; each test within
    ``per_test_timeout_s`` when given (the project's own limit otherwise); ``Cancelled`` once
    ``stop`` is set."""
    started = time.perf_counter()
    result = _run_tests(root, files, rcfile, per_test_timeout_s, stop)
    result.seconds = time.perf_counter() - started
    return result


def _run_tests(
    root: Path,
    files: list[str],
    rcfile: Path | None,
    per_test_timeout_s: int | None,
    stop: threading.Event | None,
) -> TestsResult:
    if not files:
        return TestsResult([], True)
    limit = [] if per_test_timeout_s is None else ["-o", f"timeout={per_test_timeout_s}"]
    command = [
        *_coverage_prefix(rcfile),
        "-m",
        "pytest",
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
        *limit,
        *files,
    ]
    finished = _run_in(root, command, TESTS_TIMEOUT_S, stop)
    if finished is None:
        return TestsResult(files, False, f"the tests did not finish within {TESTS_TIMEOUT_S:.0f} s")
    return TestsResult(files, finished.returncode == 0, _tail(finished.stdout + finished.stderr, 40))


@dataclass
class Judgement:
    """What the judges of one tree found: the cases and tests that finished, and those cancelled."""

    cases: list[CaseResult]
    tests: TestsResult | None
    not_run: list[str]
    """Judges cancelled once another had failed (``"MODEL MODE"``, ``"tests"``)."""


def judge_tree(
    root: Path,
    tier: Sequence[tuple[str, str]],
    test_files: list[str],
    rcfile: Path | None,
    stop: threading.Event,
    keep_going: bool = False,
    per_test_timeout_s: int | None = None,
) -> Judgement:
    """The tier's cases and the tests on the tree at ``root``, side by side (one subprocess per core,
    and one more). Unless ``keep_going``, the first case that does not conform or the tests failing
    sets ``stop``, and the judges still running are cancelled: the verdict is REJECT whatever they
    would find."""

    def failed() -> None:
        if not keep_going:
            stop.set()

    def case(model: str, mode: str) -> CaseResult | None:
        try:
            result = run_case(root, model, mode, rcfile, stop)
        except Cancelled:
            return None
        if result.verdict != "ok":
            failed()
        return result

    def tests() -> TestsResult | None:
        try:
            result = run_tests(root, test_files, rcfile, per_test_timeout_s, stop)
        except Cancelled:
            return None
        if not result.passed:
            failed()
        return result

    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 1) as pool:
        try:
            tested = pool.submit(tests)
            cases = list(pool.map(lambda c: case(*c), tier))
            tests_result = tested.result()
        except BaseException:
            # an interrupt or an error here: the judges run in their own sessions, which no
            # signal to this process reaches, so they are stopped before the pool waits for them
            stop.set()
            raise
    not_run = [f"{model} {mode}" for (model, mode), result in zip(tier, cases, strict=True) if result is None]
    if tests_result is None:
        not_run.append("tests")
    return Judgement([c for c in cases if c is not None], tests_result, not_run)


def write_coverage_rc(scratch: Path, root: Path, change: Change) -> Path:
    """A coverage configuration measuring only the changed files of the tree at ``root``."""
    return _coverage_rc(scratch, [str(root / path) for path in sorted(change.changed_lines)])


def _coverage_rc(directory: Path, include: Sequence[str]) -> Path:
    """A coverage configuration writing its data into ``directory``, measuring ``include``."""
    directory.mkdir(parents=True, exist_ok=True)
    rcfile = directory / "coveragerc"
    rcfile.write_text(
        "[run]\n"
        f"data_file = {directory / 'coverage.data'}\n"
        "parallel = true\n"
        "concurrency = thread,multiprocessing\n"
        f"include = {','.join(include)}\n"
    )
    return rcfile


def _executed(directory: Path) -> tuple[Any, dict[Path, set[int]]]:
    """The coverage data written into ``directory`` (combined), and the lines executed per file."""
    import coverage

    measured = coverage.Coverage(data_file=str(directory / "coverage.data"), config_file=False)
    measured.combine(data_paths=[str(directory)], strict=False, keep=True)
    data = measured.get_data()
    return measured, {Path(name).resolve(): set(data.lines(name) or ()) for name in data.measured_files()}


def unexecuted_lines(scratch: Path, root: Path, change: Change) -> dict[str, list[int]]:
    """Changed statements no run executed, per file (lines that are not statements are skipped)."""
    measured, executed_by_file = _executed(scratch)
    missing: dict[str, list[int]] = {}
    for path, lines in sorted(change.changed_lines.items()):
        source = (root / path).resolve()
        if not source.exists():
            continue
        statements = _statements(measured, source)
        executed = executed_by_file.get(source, set())
        never = sorted((lines & statements) - executed)
        if never:
            missing[path] = never
    return missing


def _statements(measured: Any, source: Path) -> set[int]:
    try:
        _, statements, _, _, _ = measured.analysis2(str(source))
    except Exception:  # a file coverage cannot parse: every changed line counts as a statement
        return set(range(1, _line_count(source) + 1))
    return set(statements)


# --------------------------------------------------------------------------- the verdict


@dataclass
class AuditReport:
    change: Change
    cases: list[CaseResult] = field(default_factory=list)
    base_cases: list[CaseResult] | None = None
    tests: TestsResult | None = None
    not_run: list[str] = field(default_factory=list)
    """Judges cancelled because the verdict was already REJECT (``judge_tree``)."""
    unaffected: list[tuple[str, str]] = field(default_factory=list)
    """Cases the change cannot affect (``unaffected_cases``): not run, their base result stands."""
    unexecuted: dict[str, list[int]] = field(default_factory=dict)
    build_error: str | None = None
    seconds: float = 0.0

    @property
    def regressions(self) -> list[str]:
        """Transition coverage lost and gaps added, case by case, against the base tree."""
        if self.base_cases is None:
            return []
        found = []
        bases = {(base.model, base.mode): base for base in self.base_cases}
        for case in self.cases:
            where = f"{case.model} {case.mode}"
            base = bases.get((case.model, case.mode))
            if base is None:
                continue
            if case.transitions_covered < base.transitions_covered:
                found.append(
                    f"{where}: transition coverage fell from {base.transitions_covered} "
                    f"to {case.transitions_covered}"
                )
            for gap, count in sorted(case.gaps.items()):
                if count > base.gaps.get(gap, 0):
                    found.append(f"{where}: gap {gap} ({base.gaps.get(gap, 0)} -> {count})")
        return found

    @property
    def failures(self) -> list[str]:
        """Why the change is rejected (empty when it is not)."""
        found = [f"the changed tree does not build: {self.build_error}"] if self.build_error else []
        for case in self.cases:
            if case.verdict != "ok":
                found.append(f"{case.model} {case.mode}: {CASE_OUTCOMES[case.verdict]}")
        if self.tests is not None and not self.tests.passed:
            failed = [
                line.split()[1] for line in self.tests.output.splitlines() if line.startswith("FAILED ")
            ]
            found.append(f"tests failed: {' '.join(failed or self.tests.files)}")
        return found + self.regressions

    @property
    def verdict(self) -> Verdict:
        if self.failures:
            return "reject"
        return "unverified" if self.unexecuted else "accept"

    @property
    def first_divergence(self) -> dict[str, Any] | None:
        for case in self.cases:
            if case.divergence is not None:
                return {"model": case.model, "mode": case.mode, "steps_run": case.steps, **case.divergence}
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "verdict": self.verdict,
            "change": self.change.description,
            "base": self.change.base,
            "touched": self.change.touched,
            "pot_impl_only": self.change.pot_impl_only,
            "reasons": self.failures,
            "cases": [case.to_json() for case in self.cases],
            "base_cases": None if self.base_cases is None else [c.to_json() for c in self.base_cases],
            "tests": None if self.tests is None else self.tests.to_json(),
            "not_run": self.not_run,
            "unaffected": [f"{model} {mode}" for model, mode in self.unaffected],
            "changed_statements_not_executed": [
                f"{path}:{line}" for path, lines in self.unexecuted.items() for line in lines
            ],
            "first_divergence": self.first_divergence,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        change = self.change
        lines = [f"{self.verdict.upper()} {change.description} ({len(change.touched)} files, {change.scope})"]
        bases = {(base.model, base.mode): base for base in self.base_cases or []}
        for case in self.cases:
            base = bases.get((case.model, case.mode))
            was = f" (base {base.transitions_covered})" if base is not None else ""
            lines.append(
                f"  {case.model} {case.mode}: {CASE_OUTCOMES[case.verdict]} after {case.steps} steps, "
                f"{case.transitions_covered} transitions covered{was}, {case.seconds:.0f} s"
            )
        if self.tests is not None and self.tests.files:
            outcome = "passed" if self.tests.passed else "FAILED"
            lines.append(
                f"  tests importing the change: {outcome} ({len(self.tests.files)} files, "
                f"{self.tests.seconds:.0f} s)"
            )
        for model, mode in self.unaffected:
            lines.append(
                f"  {model} {mode}: not affected (it ran no function of the changed files on the base)"
            )
        if self.not_run:
            lines.append(f"  not run, the verdict being REJECT already: {', '.join(self.not_run)}")
        lines += [f"reason: {reason}" for reason in self.failures]
        first = self.first_divergence
        if first is not None:
            lines.append(
                f"first divergence: {first.get('action', '?')} at step {first.get('step', '?')} of its "
                f"behaviour ({first['steps_run']} steps run in all)"
            )
            lines += [f"  {d['field']}: spec {d['spec']}  impl {d['impl']}" for d in first.get("diff") or []]
            if first.get("trace"):
                lines.append("  spec trace to it:")
                lines += [f"    {number}. {label}" for number, label in enumerate(first["trace"], start=1)]
        for case in self.cases:
            if case.traceback:
                lines.append(f"{case.model} {case.mode} {CASE_OUTCOMES[case.verdict]}:")
                lines += [f"  {line}" for line in case.traceback.splitlines()]
        if self.tests is not None and not self.tests.passed:
            lines += [f"  {line}" for line in self.tests.output.splitlines()]
        if self.unexecuted:
            lines.append("changed statements that nothing executed:")
            lines += [f"  {path}:{line}" for path, found in self.unexecuted.items() for line in found]
        lines.append(f"{self.seconds:.0f} s in all")
        return "\n".join(lines)


@dataclass
class BaseRun:
    """The tier on the base tree: each case's result, and the lines of ``pot_impl`` it executed."""

    cases: list[CaseResult]
    executed: list[dict[str, list[int]]]
    """Per case, in tier order: path (relative to the tree) -> lines executed."""

    def to_json(self) -> dict[str, Any]:
        return {"cases": [case.to_json() for case in self.cases], "executed": self.executed}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BaseRun:
        return cls([CaseResult.from_json(item) for item in data["cases"]], data["executed"])


def _base_cache(repo: Repository, base: str, tier: Sequence[tuple[str, str]]) -> Path:
    key = hashlib.sha256(
        json.dumps([CACHE_VERSION, repo.tree(base), list(tier), sys.version]).encode()
    ).hexdigest()[:24]
    return repo.cache_dir() / f"{key}.json"


def cached_base(repo: Repository, base: str, tier: Sequence[tuple[str, str]]) -> BaseRun | None:
    """The base run of ``tier`` on ``base`` if this tree was judged before."""
    try:
        return BaseRun.from_json(json.loads(_base_cache(repo, base, tier).read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _base_cases(
    repo: Repository, base: str, scratch: Path, tier: Sequence[tuple[str, str]], stop: threading.Event
) -> BaseRun | None:
    """The tier on the base tree, each case under coverage of ``pot_impl``, cached when every case
    conforms; None if cancelled (``stop``: the verdict is REJECT whatever the base does)."""
    root = scratch / "base"
    repo.extract(base, root)
    if build_extensions(root) is not None:
        raise AuditError(f"the base commit {base[:12]} does not build")

    def measured(index: int, case: tuple[str, str]) -> tuple[CaseResult, dict[str, list[int]]]:
        directory = scratch / "base-coverage" / str(index)
        rcfile = _coverage_rc(directory, [str(root / "pot_impl" / "*")])
        result = run_case(root, case[0], case[1], rcfile, stop)
        lines = _executed(directory)[1]
        return result, {
            path.relative_to(root.resolve()).as_posix(): sorted(found) for path, found in lines.items()
        }

    try:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            runs = list(pool.map(lambda item: measured(*item), enumerate(tier)))
    except Cancelled:
        return None
    run = BaseRun([result for result, _ in runs], [lines for _, lines in runs])
    if all(case.verdict == "ok" for case in run.cases):
        cache = _base_cache(repo, base, tier)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(run.to_json()))
        prune_cache(cache.parent)
    return run


CACHED_BASES = 32
"""Base runs kept in ``.git/pot-audit`` (about 15 KB each); the least recently written go first."""


def prune_cache(directory: Path, keep: int = CACHED_BASES) -> None:
    """Delete all but the ``keep`` most recently written base runs."""
    entries = sorted(directory.glob("*.json"), key=lambda path: path.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        stale.unlink(missing_ok=True)


def unaffected_cases(
    base: BaseRun,
    tier: Sequence[tuple[str, str]],
    change: Change,
    read_base: Callable[[str], str | None],
    read_changed: Callable[[str], str | None],
) -> list[tuple[str, str]]:
    """Cases the change cannot affect, so that their base result stands: the change edits only
    function bodies of ``pot_impl`` files, and the case ran no line of any function of those files
    in the base tree. (Code outside the changed files is the same in both trees and the cases are
    deterministic, so a case that never called into a file's functions never calls into them in the
    changed tree either.) A change to anything else, or to module-level code, affects every case."""
    if any(not (path.startswith("pot_impl/") and path.endswith(".py")) for path in change.touched):
        return []
    bodies: dict[str, set[int]] = {}
    for path in change.touched:
        source = read_base(path)
        bodies[path] = set() if source is None else function_body_lines(source)
    for path, lines in change.changed_lines.items():
        if not lines <= function_body_lines(read_changed(path) or ""):
            return []
    return [
        case
        for case, executed in zip(tier, base.executed, strict=True)
        if not any(bodies[path] & set(executed.get(path, ())) for path in change.touched)
    ]


def function_body_lines(source: str) -> set[int]:
    """Lines inside the body of any function (methods and nested functions included)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0].lineno
            last = node.end_lineno or first
            lines.update(range(first, last + 1))
    return lines


def audit(
    revision: str | None = None,
    patch: Path | None = None,
    cwd: Path | None = None,
    tier: Sequence[tuple[str, str]] = FAST_TIER,
    keep_going: bool = False,
) -> AuditReport:
    """Judge a commit, a patch, or (neither given) the working tree's uncommitted changes, with the
    conformance cases of ``tier`` (default: the fast tier). The first judge that fails cancels the
    others unless ``keep_going``."""
    started = time.perf_counter()
    for needed in ("pytest", "coverage"):
        if importlib.util.find_spec(needed) is None:
            raise AuditError(f"pot audit runs the judged tree's tests under {needed}, which is not installed")
    repo = Repository(checkout_root(cwd))
    with tempfile.TemporaryDirectory(prefix="pot-audit-") as scratch_name:
        scratch = Path(scratch_name)
        root = scratch / "changed"
        if revision is not None:
            change = materialise_revision(repo, revision, root)
        elif patch is not None:
            change = materialise_patch(repo, patch, root)
        else:
            change = materialise_worktree(repo, root)
        report = AuditReport(change)
        if not change.touched:
            report.seconds = time.perf_counter() - started
            return report
        report.build_error = build_extensions(root)
        if report.build_error is None:
            rcfile = write_coverage_rc(scratch, root, change)
            stop = threading.Event()
            cached = None if change.base is None else cached_base(repo, change.base, tier)
            run = list(tier)
            if cached is not None and change.base is not None:
                report.unaffected = unaffected_cases(
                    cached, tier, change, partial(repo.show, change.base), partial(_read, root)
                )
                run = [case for case in tier if case not in report.unaffected]
            # Without a cached base, the base tier (a run that mostly waits on its own subprocesses)
            # beside the changed tree's judges: they are independent.
            with ThreadPoolExecutor(max_workers=1) as pool:
                base = (
                    None
                    if change.base is None or cached is not None
                    else pool.submit(_base_cases, repo, change.base, scratch, tier, stop)
                )
                tests = select_tests(root, change.touched)
                try:
                    judged = judge_tree(root, run, tests, rcfile, stop, keep_going)
                    based = cached if base is None else base.result()
                except BaseException:
                    stop.set()
                    raise
            report.base_cases = None if based is None else based.cases
            report.cases, report.tests, report.not_run = judged.cases, judged.tests, judged.not_run
            if change.changed_lines and not stop.is_set():
                report.unexecuted = unexecuted_lines(scratch, root, change)
    report.seconds = time.perf_counter() - started
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    change = parser.add_mutually_exclusive_group()
    change.add_argument("--rev", help="a commit: judge what it changed from its parent")
    change.add_argument("--patch", type=Path, help="a patch file, applied to HEAD")
    parser.add_argument(
        "--case",
        action="append",
        metavar="MODEL:MODE",
        help="judge with these conformance cases instead of the fast tier "
        f"({', '.join(f'{m}:{mode}' for m, mode in FAST_TIER)}); mode replay or stateful",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="run every judge even once one has failed (by default the first failure cancels the rest)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def parse_cases(texts: Sequence[str] | None) -> tuple[tuple[str, str], ...]:
    """``--case`` values as (model, mode) pairs; the fast tier when none is given."""
    if not texts:
        return FAST_TIER
    cases = []
    for text in texts:
        model, _, mode = text.partition(":")
        if not model or mode not in ("replay", "stateful"):
            raise AuditError(f"--case {text!r}: expected MODEL:replay or MODEL:stateful")
        cases.append((model, mode))
    return tuple(cases)


@contextmanager
def _terminated_as_exit() -> Iterator[None]:
    """SIGTERM raises ``SystemExit`` while the audit runs, so that it stops its judges (which run in
    sessions of their own) on the way out, as it does on an interrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def audit_command(
    args: argparse.Namespace, write_html: Callable[[dict[str, Any]], None] | None = None
) -> int:
    """0 ACCEPT; 1 REJECT or UNVERIFIED; 2 when the change cannot be judged. ``write_html`` writes
    the report's page (``--html``)."""
    try:
        with _terminated_as_exit():
            report = audit(args.rev, args.patch, tier=parse_cases(args.case), keep_going=args.keep_going)
    except CheckoutError as error:
        if args.json:
            print(json.dumps({"schema": SCHEMA, "verdict": "error", "error": str(error)}))
        print(f"pot audit: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_json()) if args.json else report.summary())
    if write_html is not None:
        write_html(report.to_json())
    return 0 if report.verdict == "accept" else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.audit", description=__doc__)
    add_arguments(parser)
    return audit_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
