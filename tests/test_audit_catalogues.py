"""The audit benchmark's catalogues (hand-written bugs and refactorings) still apply to the tree, so
that a change to the implementation cannot silently leave ``bench_audit`` judging nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PATCHES = sorted((ROOT / "benchmarks").glob("audit_*/**/*.patch"))


def test_the_catalogues_are_found() -> None:
    assert len(PATCHES) >= 40


@pytest.mark.parametrize("patch", PATCHES, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_every_catalogued_change_applies_to_the_current_tree(patch: Path) -> None:
    checked = subprocess.run(
        ["git", "apply", "--check", str(patch)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, f"{patch.relative_to(ROOT)} no longer applies: {checked.stderr.strip()}"
