"""`pot audit`: a change is applied to a scratch copy and judged by the fast conformance tier."""

from __future__ import annotations

import difflib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conformance.audit import REPOSITORY
from pot.cli import main

LEDGER = "pot_impl/ledger/ledger.py"


def head_text(path: str) -> str:
    return subprocess.run(
        ["git", "show", f"HEAD:{path}"], cwd=REPOSITORY, capture_output=True, text=True, check=True
    ).stdout


def patch_file(tmp_path: Path, path: str, old: str, new: str) -> Path:
    """A patch against HEAD replacing the one occurrence of ``old`` in ``path``."""
    before = head_text(path)
    assert before.count(old) == 1
    after = before.replace(old, new)
    diff = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{path}", f"b/{path}"
    )
    patch = tmp_path / "change.patch"
    patch.write_text("".join(diff))
    return patch


def audit_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    status = main(["audit", *argv, "--json"])
    return status, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_harmful_patch_is_rejected_with_its_divergence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ledger that never pays validators their share is rejected at a Finalize."""
    patch = patch_file(
        tmp_path,
        LEDGER,
        "        return not proved\n    return bool(vote.evidence_upheld)",
        "        return False\n    return False",
    )
    status, report = audit_json(capsys, "--patch", str(patch))
    assert status == 1 and report["verdict"] == "reject"
    assert report["pot_impl_only"] is True and report["touched"] == [LEDGER]
    first = report["first_divergence"]
    assert isinstance(first, dict) and str(first["action"]).startswith("Finalize(")


@pytest.mark.slow
def test_harmless_patch_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    patch = patch_file(
        tmp_path, LEDGER, "MAX_PUBLIC_KEY_BYTES = 64\n", "MAX_PUBLIC_KEY_BYTES = 64  # bytes\n"
    )
    status, report = audit_json(capsys, "--patch", str(patch))
    assert status == 0 and report["verdict"] == "accept" and report["first_divergence"] is None
    assert [case["verdict"] for case in report["cases"]] == ["conforms"] * len(report["cases"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rev", "no-such-revision-xyz"], "unknown revision"),
        (["--patch", "/no/such/file.patch"], "does not exist"),
    ],
)
def test_unjudgeable_changes_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["audit", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_patch_that_does_not_apply_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    patch = tmp_path / "stale.patch"
    patch.write_text(
        f"--- a/{LEDGER}\n+++ b/{LEDGER}\n@@ -1,1 +1,1 @@\n-this line is not in the file\n+nor is this\n"
    )
    assert main(["audit", "--patch", str(patch)]) == 2
    assert "does not apply" in capsys.readouterr().err


def test_rev_and_patch_are_exclusive() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "--rev", "HEAD", "--patch", "x.patch"])
    assert exit_info.value.code == 2
