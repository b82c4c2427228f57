"""What ``pot audit`` says of hand-written changes: every bug rejected, every refactoring accepted.

Run: ``.venv/bin/python -m benchmarks.bench_audit [--only NAME ...] [--kind bug|refactoring]
[--keep-going]``. Prints a table and writes ``benchmarks/results/audit.json``: the rows of the patches
judged replace their earlier rows (each row says when it was measured), so the catalogue can be
judged in parts.

Two catalogues of patches against ``HEAD``, each judged by ``pot audit --patch P --json`` in its own
process, one at a time (the audit uses every core):

* ``benchmarks/audit_bugs/*/*.patch``: realistic mistakes in ``pot_impl``, the first line of each
  saying what is wrong. The audit must answer REJECT; anything else is a miss. The kill rate is
  the reference figure (target: all of them).
* ``benchmarks/audit_refactors/*.patch``: changes of form only (renames, extracted helpers,
  reordered independent statements, rewritten comprehensions). The audit must answer ACCEPT;
  REJECT is a false alarm and UNVERIFIED a change no judge executed (target: none of either).

A patch that no longer applies to ``HEAD`` is reported as stale, not judged. Per patch: the verdict,
what rejected it (the first reason), the seconds in all and each judge's seconds, so the table
says what dominates an audit; the ratio is each audit's time to the three-minute target.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_checker import RESULTS, environment

REPOSITORY = Path(__file__).resolve().parents[1]
BUGS = REPOSITORY / "benchmarks" / "audit_bugs"
REFACTORS = REPOSITORY / "benchmarks" / "audit_refactors"
TARGET_S = 180.0
"""The audit of a one-file change should take under three minutes on the 2-core machine."""
EXPECTED = {"bug": "reject", "refactoring": "accept"}


@dataclass
class Judged:
    name: str
    kind: str
    """``bug`` or ``refactoring``."""
    what: str
    """The patch's first line: what is wrong, or what was reshaped."""
    verdict: str
    """``accept``, ``unverified``, ``reject``, ``stale`` (does not apply) or ``error``."""
    reason: str
    seconds: float
    judges: dict[str, float]
    """Seconds of each judge that finished (``MODEL MODE``, ``tests``)."""
    measured_at: str = ""

    @property
    def as_expected(self) -> bool:
        return self.verdict == EXPECTED[self.kind]

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "as_expected": self.as_expected, "vs_target": self.seconds / TARGET_S}


def catalogue() -> list[tuple[str, Path]]:
    """(kind, patch) for every patch of both catalogues."""
    found = [("bug", path) for path in sorted(BUGS.glob("*/*.patch"))]
    return found + [("refactoring", path) for path in sorted(REFACTORS.glob("*.patch"))]


def judge(kind: str, patch: Path, keep_going: bool) -> Judged:
    """``pot audit --patch`` on one patch, in the repository, in a process of its own."""
    what = patch.read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
    command = [sys.executable, "-m", "pot", "audit", "--patch", str(patch), "--json"]
    started = time.perf_counter()
    finished = subprocess.run(
        [*command, *(["--keep-going"] if keep_going else [])],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    try:
        report: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (finished.stderr or finished.stdout).strip().splitlines()[-1:]
        return Judged(patch.stem, kind, what, "error", " ".join(tail), seconds, {})
    if report["verdict"] == "error":
        stale = "does not apply" in report["error"]
        return Judged(patch.stem, kind, what, "stale" if stale else "error", report["error"], seconds, {})
    judges = {f"{c['model']} {c['mode']}": c["seconds"] for c in report["cases"]}
    if report["tests"] is not None:
        judges["tests"] = report["tests"]["seconds"]
    reasons = report["reasons"] or report["changed_statements_not_executed"]
    return Judged(patch.stem, kind, what, report["verdict"], ", ".join(reasons[:1]), seconds, judges)


def earlier_rows(names: set[str]) -> list[Judged]:
    """Rows of ``audit.json`` for patches of the catalogue (``names``) not judged in this run."""
    try:
        rows = json.loads((RESULTS / "audit.json").read_text())["rows"]
    except (OSError, ValueError, KeyError):
        return []
    fields = set(Judged.__dataclass_fields__)
    kept = [Judged(**{k: v for k, v in row.items() if k in fields}) for row in rows]
    return [row for row in kept if row.name in names]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="judge only these patches (file stems)")
    parser.add_argument("--kind", choices=sorted(EXPECTED), help="judge only this catalogue")
    parser.add_argument("--keep-going", action="store_true", help="pass --keep-going to the audit")
    args = parser.parse_args(argv)
    every = catalogue()
    chosen = [
        (kind, patch)
        for kind, patch in every
        if (not args.only or patch.stem in args.only) and (not args.kind or kind == args.kind)
    ]
    judged = [
        j for j in earlier_rows({p.stem for _, p in every}) if j.name not in {p.stem for _, p in chosen}
    ]
    print(f"{'patch':<40} {'kind':<11} {'verdict':<10} {'s':>5} {'vs 3 min':>8}  reason")
    for kind, patch in chosen:
        result = judge(kind, patch, args.keep_going)
        result.measured_at = environment()["measured_at"]
        judged.append(result)
        write(judged)
        mark = "" if result.as_expected else "  <-- not " + EXPECTED[kind].upper()
        print(
            f"{result.name:<40} {kind:<11} {result.verdict:<10} {result.seconds:>5.0f} "
            f"{result.seconds / TARGET_S:>8.2f}  {result.reason[:90]}{mark}",
            flush=True,
        )
    for kind, figures in write(judged).items():
        print(
            f"{kind}: {figures['as_expected']} of {figures['judged']} as expected ({figures['stale']} stale)"
        )
    print(f"written {RESULTS / 'audit.json'}")
    return 0


def write(judged: list[Judged]) -> dict[str, dict[str, Any]]:
    """``audit.json`` with every row so far (after each patch: a long run interrupted keeps what it
    measured); the summary per catalogue."""
    summary = {}
    for kind in EXPECTED:
        mine = [j for j in judged if j.kind == kind and j.verdict != "stale"]
        summary[kind] = {
            "judged": len(mine),
            "as_expected": sum(j.as_expected for j in mine),
            "stale": sum(1 for j in judged if j.kind == kind and j.verdict == "stale"),
            "median_seconds": sorted(j.seconds for j in mine)[len(mine) // 2] if mine else None,
        }
    RESULTS.mkdir(exist_ok=True)
    document = {
        "benchmark": "audit",
        "environment": environment(),
        "target_seconds": TARGET_S,
        "summary": summary,
        "rows": [j.row() for j in sorted(judged, key=lambda j: (j.kind, j.name))],
    }
    (RESULTS / "audit.json").write_text(json.dumps(document, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
