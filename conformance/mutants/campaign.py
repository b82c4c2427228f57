"""Run the conformance suite against every mutant, each in a scratch copy of the repository.

``run_catalogue()`` (what ``pot conform --mutants`` calls):

1. copies the source packages and tests of the checkout in the current
   directory to a temporary directory (the working tree is never touched) and
   builds the C extensions its pyproject.toml declares there;
2. calibrates: runs every mode on the unpatched copy and keeps the cases
   that conform there (a mutant is killed only by a case the original
   passes), dropping modes that never conform there (saying why);
3. for each mutant, patches one file of the copy, runs the modes in order
   in subprocesses with ``PYTHONPATH`` set to the copy, stops at the first
   mode that fails a calibrated case, and restores the file. A case that gives
   no verdict in time kills nothing: a mutant that only times out is undecided.

Modes, in order: ``sim-trace`` and ``sim-adversary`` (``conformance.mutants.probe``:
seeded simulations checked by the simulator and by trace validation against
the spec), ``new-view-plan`` (the implementation's O against the spec's on
random V sets), ``ledger-replay`` and ``dispute-replay`` (the bridge's replays
of ``ledger-tiny`` and ``ledger-dispute`` through ``python -m pot conform``), the
bridge's ``replay`` (time-bounded) and ``stateful`` runs of the chosen model,
then ``impl-tests`` (the implementation's own ledger and sampling tests).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from conformance.checkout import CheckoutError, build_extensions, copy_sources, project_checkout
from conformance.mutants.catalogue import Mutant, by_name
from conformance.trace.sim import ADVERSARIES

DEFAULT_TIMEOUT_S = 300.0
LEDGER_REPLAY_TIMEOUT_S = 120.0
"""The full replay of ``ledger-tiny`` takes 10-25 s here; a mutant that keeps the bridge from
realising the spec's samples makes it search for keys without end."""
DISPUTE_REPLAY_TIMEOUT_S = 240.0
"""The full replay of ``ledger-dispute`` (bisection game, real one-step referee) takes about 55 s."""
REPLAY_BUDGET_S = 60
BRIDGE_MODEL = "pbft-tiny"
"""The model of the bridge's PBFT ``replay``/``stateful`` modes: its full walk takes seconds.
``default``'s takes 3-4 minutes with two processes (25 s of it exploring), once per mode and
mutant, which would put the catalogue far beyond its 10-minute budget; the PBFT mutants all die
on pbft-tiny, the simulator traces or the adversaries within seconds."""
STATEFUL_EXAMPLES = 10
PYTEST_FLAGS = ("-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-m", "not slow")
"""One -q (the project's addopts add another, and -qq hides the pass count the runner reports)."""
IMPL_TESTS = (
    "tests/impl/test_ledger.py",
    "tests/training/test_sampling.py",
    "tests/training/test_ledger_integration.py",
)


@dataclass(frozen=True)
class CaseOutcome:
    """One case of one mode: did the (possibly patched) implementation conform, and how far it got."""

    case: str
    ok: bool
    steps: int | None = None
    detail: str = ""
    timed_out: bool = False


@dataclass(frozen=True)
class Mode:
    """A way to run part of the suite in a copy: the argv for some cases, and how to read the result."""

    name: str
    cases: tuple[str, ...]
    argv: Callable[[Sequence[str], bool], list[str]]
    """The command for some cases; the flag asks it to stop at the first failing case."""
    parse: Callable[[subprocess.CompletedProcess[str], Sequence[str]], list[CaseOutcome]]
    timeout_s: float | None = None
    """This mode's own time limit (the runner's default otherwise); no verdict in time kills nothing."""


@dataclass
class MutantResult:
    """What the suite did to one mutant."""

    name: str
    bug: str
    outcome: Literal["killed", "survived", "undecided"]
    """``undecided``: nothing killed it, and some case gave no verdict in time."""
    mode: str | None
    """The mode that killed it (or, undecided, the first that timed out)."""
    steps: int | None
    """Events (or spec steps, for the bridge's modes) the killing case got through before diverging."""
    seconds: float
    """Time from applying the patch to the kill (or to the end of all modes, if it survived)."""
    case: str = ""
    detail: str = ""

    @property
    def killed(self) -> bool:
        return self.outcome == "killed"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Calibration:
    """The modes and cases that conform on the unpatched implementation."""

    modes: list[Mode] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Mode name -> why it is not used."""


# ------------------------------------------------------------------ modes


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _probe(mode: str, cases: Sequence[str], stop_at_first: bool) -> list[str]:
    flag = ["--stop-at-first"] if stop_at_first else []
    return _python("-m", "conformance.mutants.probe", mode, *flag, *cases)


def _probe_parse(finished: subprocess.CompletedProcess[str], cases: Sequence[str]) -> list[CaseOutcome]:
    report = _last_json(finished.stdout)
    if report is None:
        return [CaseOutcome(cases[0], False, None, _failure(finished))]
    return [
        CaseOutcome(r["case"], bool(r["ok"]), r.get("steps"), r.get("detail", "")) for r in report["results"]
    ]


def _bridge_parse(finished: subprocess.CompletedProcess[str], cases: Sequence[str]) -> list[CaseOutcome]:
    report = _last_json(finished.stdout)
    if report is None:
        return [CaseOutcome(cases[0], False, None, _failure(finished))]
    divergences = report.get("divergences") or []
    detail = json.dumps(divergences[0])[:500] if divergences else ""
    return [CaseOutcome(cases[0], report.get("verdict") == "ok", report.get("steps"), detail)]


def _pytest_parse(finished: subprocess.CompletedProcess[str], cases: Sequence[str]) -> list[CaseOutcome]:
    passed = re.search(r"(\d+) passed", finished.stdout)
    failed = re.search(r"^FAILED (\S+)", finished.stdout, re.MULTILINE)
    detail = failed.group(1) if failed else ("" if finished.returncode == 0 else _failure(finished))
    steps = int(passed.group(1)) if passed else 0
    return [CaseOutcome(cases[0], finished.returncode == 0, steps, detail)]


def _bridge_mode(
    name: str, mode: str, model: str, seed: int, *extra: str, timeout_s: float | None = None
) -> Mode:
    """A mode of ``pot conform`` (its JSON contract: one JSON object with ``verdict``,
    ``steps`` and ``divergences``) on ``model``, with extra options such as a time budget."""
    return Mode(
        name,
        (model,),
        lambda cases, _: _python(
            "-m", "pot", "conform", cases[0], "--mode", mode, "--seed", str(seed), *extra, "--json"
        ),
        _bridge_parse,
        timeout_s,
    )


def default_modes(
    model: str = BRIDGE_MODEL, seed: int = 0, sim_seeds: int = 12, adversary_seeds: int = 3
) -> list[Mode]:
    """The suite, cheapest first: the simulator-backed and differential modes take seconds and
    reach the PBFT bugs; the bridge's replays of ``ledger-tiny`` and ``ledger-dispute`` reach the
    ledger bugs (the second, those of the dispute game); the bridge's (time-bounded) replay and
    stateful runs of ``model`` and the implementation's own ledger tests come last, for whatever
    survives."""
    adversaries = tuple(f"{name}:{s}" for name in ADVERSARIES for s in range(adversary_seeds))
    return [
        Mode(
            "sim-trace",
            tuple(str(s) for s in range(seed, seed + sim_seeds)),
            lambda cases, stop: _probe("sim-trace", cases, stop),
            _probe_parse,
        ),
        Mode(
            "sim-adversary",
            adversaries,
            lambda cases, stop: _probe("sim-adversary", cases, stop),
            _probe_parse,
        ),
        Mode(
            "new-view-plan",
            tuple(str(s) for s in range(seed, seed + 2)),
            lambda cases, stop: _probe("new-view-plan", cases, stop),
            _probe_parse,
        ),
        _bridge_mode("ledger-replay", "replay", "ledger-tiny", seed, timeout_s=LEDGER_REPLAY_TIMEOUT_S),
        _bridge_mode("dispute-replay", "replay", "ledger-dispute", seed, timeout_s=DISPUTE_REPLAY_TIMEOUT_S),
        _bridge_mode("replay", "replay", model, seed, "--budget", str(REPLAY_BUDGET_S)),
        _bridge_mode("stateful", "stateful", model, seed, "--examples", str(STATEFUL_EXAMPLES)),
        Mode(
            "impl-tests",
            ("ledger-and-sampling",),
            lambda cases, _: _python("-m", "pytest", *PYTEST_FLAGS, *IMPL_TESTS),
            _pytest_parse,
        ),
    ]


# ------------------------------------------------------------------ running


def _last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _failure(finished: subprocess.CompletedProcess[str]) -> str:
    tail = (finished.stderr or finished.stdout).strip().splitlines()
    return f"exit {finished.returncode}: {tail[-1] if tail else 'no output'}"[:500]


def run_mode(
    mode: Mode, root: Path, cases: Sequence[str], timeout_s: float, stop_at_first: bool = True
) -> list[CaseOutcome]:
    """Run ``cases`` of ``mode`` in the copy at ``root``; a timeout is a case without a verdict."""
    environment = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        finished = subprocess.run(
            mode.argv(cases, stop_at_first),
            cwd=root,
            env=environment,
            capture_output=True,
            text=True,
            timeout=mode.timeout_s or timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        limit = mode.timeout_s or timeout_s
        return [CaseOutcome(cases[0], False, None, f"no verdict within {limit:.0f} s", timed_out=True)]
    report = _last_json(finished.stdout)
    if report is not None and "pot_impl" in report and not str(report["pot_impl"]).startswith(str(root)):
        raise RuntimeError(f"mode {mode.name} imported {report['pot_impl']}, not the copy under {root}")
    return mode.parse(finished, cases)


def calibrate(modes: Sequence[Mode], root: Path, timeout_s: float) -> Calibration:
    """Keep each mode's cases that conform on the unpatched copy at ``root``."""
    calibration = Calibration()
    for mode in modes:
        outcomes = run_mode(mode, root, mode.cases, timeout_s, stop_at_first=False)
        passing = tuple(o.case for o in outcomes if o.ok)
        if passing:
            calibration.modes.append(dataclasses.replace(mode, cases=passing))
        else:
            first = outcomes[0]
            calibration.skipped[mode.name] = (
                f"no case conforms on the unpatched implementation ({first.case}: {first.detail})"
            )
    return calibration


def judge(mutant: Mutant, calibration: Calibration, root: Path, timeout_s: float) -> MutantResult:
    """Apply ``mutant`` to the copy at ``root``, run the calibrated modes until one kills it, restore."""
    target = root / mutant.path
    original = target.read_text(encoding="utf-8")
    started = time.perf_counter()
    undecided: tuple[str, CaseOutcome] | None = None
    try:
        mutant.apply(root)
        for mode in calibration.modes:
            for outcome in run_mode(mode, root, mode.cases, timeout_s):
                if outcome.timed_out:
                    undecided = undecided or (mode.name, outcome)
                elif not outcome.ok:
                    return MutantResult(
                        mutant.name,
                        mutant.bug,
                        "killed",
                        mode.name,
                        outcome.steps,
                        time.perf_counter() - started,
                        outcome.case,
                        outcome.detail,
                    )
        seconds = time.perf_counter() - started
        if undecided is not None:
            mode_name, outcome = undecided
            detail = f"{mode_name} {outcome.case}: {outcome.detail}"
            return MutantResult(
                mutant.name, mutant.bug, "undecided", mode_name, None, seconds, outcome.case, detail
            )
        return MutantResult(mutant.name, mutant.bug, "survived", None, None, seconds)
    finally:
        target.write_text(original, encoding="utf-8")


def run_catalogue(
    names: list[str] | None = None,
    *,
    mutants: Sequence[Mutant] | None = None,
    modes: Sequence[Mode] | None = None,
    model: str = BRIDGE_MODEL,
    seed: int = 0,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: Callable[[MutantResult], None] | None = None,
) -> tuple[list[MutantResult], Calibration]:
    """Judge the named catalogue mutants (all by default), or the given ``mutants``, with ``modes``
    (``default_modes(model, seed)``) in a copy of the checkout of the current directory; also
    return the calibration, which says which modes were used and why others were not."""
    chosen = list(mutants) if mutants is not None else by_name(names)
    source = project_checkout()
    with tempfile.TemporaryDirectory(prefix="pot-mutants-") as scratch:
        root = copy_sources(source, Path(scratch) / "repo")
        build_error = build_extensions(root)
        if build_error is not None:
            raise CheckoutError(build_error)
        calibration = calibrate(modes if modes is not None else default_modes(model, seed), root, timeout_s)
        results = []
        for mutant in chosen:
            result = judge(mutant, calibration, root, timeout_s)
            results.append(result)
            if progress is not None:
                progress(result)
        return results, calibration
