"""``pot audit``: judge an implementation change by running the fast conformance tier on it.

The change (a commit, or a patch applied to ``HEAD``) is materialised in a
temporary directory with ``git archive`` (so the repository, its index and
its worktree list are never touched), then each case of the fast tier runs
as ``python -m conformance.runner ... --json`` in a subprocess whose
``PYTHONPATH`` is that copy: the implementation under judgement is the
copy's, the spec too. The change is accepted when every case conforms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]
CASE_TIMEOUT_S = 600.0

FAST_TIER: tuple[tuple[str, str], ...] = (
    ("ledger-tiny", "replay"),
    ("pbft-tiny", "stateful"),
    ("tiny", "stateful"),
)
"""(model, mode) cases: full transition-cover replay of the ledger model (real training), and
seeded stateful scenarios of the PBFT and combined models (the full PBFT replays are the slow tier)."""


class AuditError(Exception):
    """The change cannot be judged (bad revision, missing or non-applying patch); exit status 2."""


@dataclass
class Change:
    """What is judged: a description, the files it touches, and the tree with it applied."""

    description: str
    touched: list[str]

    @property
    def pot_impl_only(self) -> bool:
        return bool(self.touched) and all(path.startswith("pot_impl/") for path in self.touched)


@dataclass
class AuditReport:
    change: Change
    cases: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def accepted(self) -> bool:
        return all(case["verdict"] == "conforms" for case in self.cases)

    @property
    def first_divergence(self) -> dict[str, Any] | None:
        for case in self.cases:
            if case["verdict"] != "conforms":
                return {"model": case["model"], "mode": case["mode"], **(case.get("divergence") or {})}
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": "accept" if self.accepted else "reject",
            "change": self.change.description,
            "touched": self.change.touched,
            "pot_impl_only": self.change.pot_impl_only,
            "cases": self.cases,
            "first_divergence": self.first_divergence,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        scope = "pot_impl only" if self.change.pot_impl_only else "touches more than pot_impl"
        lines = [
            f"{'ACCEPT' if self.accepted else 'REJECT'} {self.change.description} "
            f"({len(self.change.touched)} files, {scope})"
        ]
        for case in self.cases:
            lines.append(f"  {case['model']} {case['mode']}: {case['verdict']} after {case['steps']} steps")
        first = self.first_divergence
        if first is not None:
            lines.append(f"first divergence: {first.get('action', '?')} at step {first.get('step', '?')}")
            for diff in first.get("diff") or []:
                lines.append(f"  {diff['field']}: spec {diff['spec']}  impl {diff['impl']}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- materialising the change


def _git(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=REPOSITORY, input=stdin, capture_output=True, check=False)


def _extract(revision: str, destination: Path) -> None:
    archive = _git("archive", "--format=tar", revision)
    if archive.returncode:
        raise AuditError(f"cannot read revision {revision}: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")


def materialise_revision(revision: str, destination: Path) -> Change:
    """The tree of commit ``revision``; the change judged is what that commit changed."""
    resolved = _git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if resolved.returncode:
        raise AuditError(f"unknown revision {revision!r}")
    commit = resolved.stdout.decode().strip()
    touched = _git("diff-tree", "--no-commit-id", "--name-only", "-r", "--root", commit)
    _extract(commit, destination)
    files = touched.stdout.decode().split()
    return Change(f"commit {commit[:12]}", files)


def materialise_patch(patch: Path, destination: Path) -> Change:
    """``HEAD``'s tree with ``patch`` applied (it must apply cleanly)."""
    if not patch.is_file():
        raise AuditError(f"patch file {patch} does not exist")
    data = patch.read_bytes()
    _extract("HEAD", destination)
    numstat = subprocess.run(
        ["git", "apply", "--numstat", "-"], cwd=destination, input=data, capture_output=True, check=False
    )
    files = [line.split("\t")[-1] for line in numstat.stdout.decode().splitlines() if line.strip()]
    applied = subprocess.run(
        ["git", "apply", "-"], cwd=destination, input=data, capture_output=True, check=False
    )
    if numstat.returncode or applied.returncode or not files:
        reason = (applied.stderr or numstat.stderr).decode().strip().splitlines()
        raise AuditError(f"patch {patch} does not apply to HEAD: {reason[0] if reason else 'empty patch'}")
    return Change(f"patch {patch.name}", files)


# --------------------------------------------------------------------------- judging


def run_case(root: Path, model: str, mode: str) -> dict[str, Any]:
    """One fast-tier case in a subprocess that imports everything from ``root``."""
    environment = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "conformance.runner", model, "--mode", mode, "--json"]
    try:
        finished = subprocess.run(
            command,
            cwd=root,
            env=environment,
            capture_output=True,
            text=True,
            timeout=CASE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"model": model, "mode": mode, "verdict": "diverges", "steps": 0, "error": "timed out"}
    lines = finished.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        error = (finished.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": model, "mode": mode, "verdict": "diverges", "steps": 0, "error": error[:500]}
    divergences = result.get("divergences") or []
    return {
        "model": model,
        "mode": mode,
        "verdict": result.get("verdict", "diverges"),
        "steps": result.get("steps", 0),
        "divergence": divergences[0] if divergences else None,
    }


def audit(revision: str | None = None, patch: Path | None = None) -> AuditReport:
    """Judge a commit or a patch; stops at the first case that does not conform."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pot-audit-") as scratch:
        root = Path(scratch)
        change = materialise_revision(revision, root) if revision is not None else None
        if change is None:
            assert patch is not None
            change = materialise_patch(patch, root)
        report = AuditReport(change)
        for model, mode in FAST_TIER:
            report.cases.append(run_case(root, model, mode))
            if report.cases[-1]["verdict"] != "conforms":
                break
    report.seconds = time.perf_counter() - started
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    change = parser.add_mutually_exclusive_group(required=True)
    change.add_argument("--rev", help="a commit: judge the tree it produces")
    change.add_argument("--patch", type=Path, help="a patch file, applied to HEAD")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def audit_command(args: argparse.Namespace) -> int:
    """0 when the change is accepted, 1 when rejected, 2 when it cannot be judged."""
    try:
        report = audit(args.rev, args.patch)
    except AuditError as error:
        print(f"pot audit: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_json()) if args.json else report.summary())
    return 0 if report.accepted else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.audit", description=__doc__)
    add_arguments(parser)
    return audit_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
