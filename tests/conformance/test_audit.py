"""`pot audit`: a change is judged in the repository of the current directory, by the fast
conformance tier and the tests that import it, with the changed lines' execution measured."""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import audit
from conformance.audit import (
    BaseRun,
    CaseResult,
    Change,
    changed_lines,
    function_body_lines,
    judge_tree,
    prune_cache,
    select_tests,
    unaffected_cases,
)
from pot.cli import main
from report import sections as html
from tests.schemas import assert_schema

REPOSITORY = Path(__file__).resolve().parents[2]
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
    return status, assert_schema(json.loads(capsys.readouterr().out.strip().splitlines()[-1]), "audit")


@pytest.fixture
def in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPOSITORY)


@pytest.mark.timeout(900)  # two conformance runs under coverage: the base and the changed tree
@pytest.mark.usefixtures("in_repository")
def test_harmful_patch_is_rejected_with_the_spec_trace_to_its_divergence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ledger that never pays validators their share is rejected at a Finalize."""
    patch = patch_file(
        tmp_path,
        LEDGER,
        "        return not proved\n    return upheld",
        "        return False\n    return False",
    )
    status, report = audit_json(capsys, "--patch", str(patch), "--case", "ledger-tiny:replay", "--keep-going")
    assert status == 1 and report["verdict"] == "reject" and report["not_run"] == []
    assert report["pot_impl_only"] is True and report["touched"] == [LEDGER]
    first = report["first_divergence"]
    assert isinstance(first, dict) and str(first["action"]).startswith("Finalize(")
    assert first["trace"][-1] == first["action"] and len(first["trace"]) == first["step"] + 1
    assert first["steps_run"] >= first["step"]
    assert any("transition coverage fell" in reason for reason in report["reasons"])


@pytest.mark.timeout(900)  # two conformance runs under coverage: the base and the changed tree
@pytest.mark.usefixtures("in_repository")
def test_a_change_nothing_executes_is_unverified_with_its_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = "pot_impl/cli.py"  # few tests import it: the audit's selection is not what this is about
    before = head_text(path)
    added = "\n\ndef never_called() -> int:\n    return 41 + 1\n"
    patch = patch_file(tmp_path, path, before[-40:], before[-40:] + added)
    status, report = audit_json(capsys, "--patch", str(patch), "--case", "ledger-tiny:replay")
    assert status == 1 and report["verdict"] == "unverified", report["reasons"]
    line = before.count("\n") + added.count("\n")
    assert report["changed_statements_not_executed"] == [f"{path}:{line}"]


@pytest.mark.slow
@pytest.mark.timeout(900)  # the whole fast tier on the changed tree and on its base, under coverage
@pytest.mark.usefixtures("in_repository")
def test_harmless_patch_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    patch = patch_file(
        tmp_path, LEDGER, "MAX_PUBLIC_KEY_BYTES = 64\n", "MAX_PUBLIC_KEY_BYTES = 64  # bytes\n"
    )
    status, report = audit_json(capsys, "--patch", str(patch))
    assert status == 0 and report["verdict"] == "accept" and report["first_divergence"] is None
    assert [case["verdict"] for case in report["cases"]] == ["ok"] * len(report["cases"])
    assert report["changed_statements_not_executed"] == [] and report["tests"]["passed"]


def test_an_unchanged_clone_is_accepted_from_its_own_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPOSITORY), str(clone)], check=True)
    monkeypatch.chdir(clone / "docs")
    status, report = audit_json(capsys)
    assert status == 0 and report["verdict"] == "accept" and report["touched"] == []


def test_outside_a_repository_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["audit", "--patch", "x.patch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not inside a git repository" in err[0]


@pytest.mark.usefixtures("in_repository")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rev", "no-such-revision-xyz"], "unknown revision"),
        (["--patch", "/no/such/file.patch"], "does not exist"),
        (["--case", "ledger-tiny"], "expected MODEL:replay or MODEL:stateful"),
    ],
)
def test_unjudgeable_changes_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["audit", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@pytest.mark.usefixtures("in_repository")
def test_errors_are_json_too_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--rev", "no-such-revision-xyz", "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    error = "unknown revision 'no-such-revision-xyz'"
    assert report == {"schema": "pot-audit/1", "verdict": "error", "error": error}


@pytest.mark.usefixtures("in_repository")
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


def fake_tree(root: Path, verdict: str, tests_sleep_s: int) -> Path:
    """A tree whose only conformance case answers ``verdict`` at once, and whose one test sleeps."""
    (root / "conformance").mkdir(parents=True)
    (root / "conformance" / "__init__.py").write_text("")
    document = {"verdict": verdict, "steps": 3, "transitions_covered": 2, "divergences": []}
    (root / "conformance" / "runner.py").write_text(f"print({json.dumps(json.dumps(document))})\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_sleep.py").write_text(
        f"import time\n\ndef test_sleeps():\n    time.sleep({tests_sleep_s})\n"
    )
    return root


def test_the_first_failing_judge_cancels_the_others(tmp_path: Path) -> None:
    """The case diverges: the tests, which would run for ten minutes, are cancelled, their whole
    process group with them, and named as not run."""
    stop = threading.Event()
    root = fake_tree(tmp_path, "violation", tests_sleep_s=600)
    judged = judge_tree(root, [("m", "stateful")], ["tests/test_sleep.py"], None, stop)
    assert stop.is_set() and judged.tests is None and judged.not_run == ["tests"]
    assert [case.verdict for case in judged.cases] == ["violation"]


def test_an_error_while_judging_stops_the_judges_still_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The judges run in sessions of their own, out of reach of a signal to the audit: an
    interrupt or an error in the audit must stop them itself, or it would wait ten minutes here."""

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    stop = threading.Event()
    root = fake_tree(tmp_path, "ok", tests_sleep_s=600)
    monkeypatch.setattr(audit, "run_case", interrupted)
    with pytest.raises(KeyboardInterrupt):
        judge_tree(root, [("m", "stateful")], ["tests/test_sleep.py"], None, stop)
    assert stop.is_set()


def test_a_test_failure_names_the_failing_tests() -> None:
    output = "..F\n=== short test summary info ===\nFAILED tests/impl/test_x.py::test_y - AssertionError\n"
    report = audit.AuditReport(Change("a change", "base", ["pot_impl/x.py"], {}))
    report.tests = audit.TestsResult(["tests/impl/test_x.py", "tests/impl/test_z.py"], False, output)
    assert report.failures == ["tests failed: tests/impl/test_x.py::test_y"]


def test_an_empty_change_is_accepted_as_nothing_to_judge(tmp_path: Path) -> None:
    report = audit.AuditReport(Change("the working tree (no uncommitted change)", "base", [], {}))
    assert report.verdict == "accept"
    assert report.summary().splitlines()[0].endswith("(0 files, nothing to judge)")
    assert "nothing to judge" in html.audit(report.to_json(), "audit")


def test_with_keep_going_every_judge_finishes(tmp_path: Path) -> None:
    stop = threading.Event()
    root = fake_tree(tmp_path, "violation", tests_sleep_s=0)
    judged = judge_tree(root, [("m", "stateful")], ["tests/test_sleep.py"], None, stop, keep_going=True)
    assert not stop.is_set() and judged.not_run == []
    assert judged.tests is not None and judged.tests.passed


MODULE = (
    "import x\n\nLIMIT = 3\n\n\ndef f(a):\n    b = a + 1\n    return b\n\n\n"
    "class C:\n    def g(self):\n        return LIMIT\n"
)
"""Function bodies: lines 7-8 (f) and 13 (C.g); the rest is module-level."""

TIER = [("ledger-tiny", "replay"), ("pbft-tiny", "stateful")]


def test_function_bodies_are_the_lines_inside_defs() -> None:
    assert function_body_lines(MODULE) == {7, 8, 13}


def _unaffected(path: str, lines: set[int], executed: list[dict[str, list[int]]]) -> list[tuple[str, str]]:
    base = BaseRun([CaseResult(m, mode, "ok") for m, mode in TIER], executed)
    change = Change("a change", "base", [path], {path: lines} if path.endswith(".py") else {})
    return unaffected_cases(base, TIER, change, lambda p: MODULE, lambda p: MODULE)


def test_a_case_that_ran_no_function_of_the_changed_file_is_unaffected() -> None:
    path = "pot_impl/x.py"
    executed = [{path: [1, 3, 6, 7, 8]}, {path: [1, 3, 6, 11, 12]}]
    assert _unaffected(path, {7}, executed) == [("pbft-tiny", "stateful")]


def test_module_level_edits_and_files_outside_pot_impl_affect_every_case() -> None:
    executed: list[dict[str, list[int]]] = [{}, {}]
    assert _unaffected("pot_impl/x.py", {3}, executed) == []
    assert _unaffected("spec/x.py", {7}, executed) == []
    assert _unaffected("pot_impl/data.json", set(), executed) == []


# -- which lines a diff changes, and which tests exercise them ---------------------------------

edits = st.lists(
    st.tuples(st.sampled_from(["keep", "replace", "insert", "delete"]), st.integers(0, 3)), max_size=25
)


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=30), edits, st.integers(0, 3))
def test_changed_lines_are_the_inserted_lines_and_what_follows_a_deletion(
    old: list[str], script: list[tuple[str, int]], context: int
) -> None:
    new: list[str] = []
    source = iter(old)
    for operation, count in script:
        for _ in range(count):
            if operation == "insert":
                new.append(f"new {len(new)}")
                continue
            line = next(source, None)
            if line is not None and operation != "delete":
                new.append(line if operation == "keep" else line.upper())
    new += list(source)
    diff = difflib.unified_diff(
        [f"{line}\n" for line in old], [f"{line}\n" for line in new], "a/spec/x.py", "b/spec/x.py", n=context
    )
    # unified_diff aligns with the same SequenceMatcher, so its opcodes are the oracle.
    expected: set[int] = set()
    for tag, _, _, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes():
        if tag in ("replace", "insert"):
            expected.update(range(j1 + 1, j2 + 1))
        elif tag == "delete" and j1 < len(new):
            expected.add(j1 + 1)
    found = changed_lines("".join(diff)).get("spec/x.py", set())
    assert {line for line in found if line <= len(new)} == expected


def test_changed_lines_ignore_files_outside_the_packages() -> None:
    diff = (
        "--- a/docs/x.md\n+++ b/docs/x.md\n@@ -1 +1 @@\n-a\n+b\n"
        "--- a/spec/y.py\n+++ b/spec/y.py\n@@ -3,0 +4,2 @@\n+x\n+y\n@@ -9,2 +10,0 @@\n-z\n-w\n"
    )
    assert changed_lines(diff) == {"spec/y.py": {4, 5, 11}}


def test_the_tests_of_a_module_are_those_that_import_it_directly_or_through_other_modules() -> None:
    selected = select_tests(REPOSITORY, ["pot_impl/ledger/ledger.py"])
    assert "tests/impl/test_ledger.py" in selected
    assert "tests/model_checker/test_engine.py" not in selected
    # test_replica.py imports the replica only through its harness, and the replica's parts only
    # through the replica
    part = select_tests(REPOSITORY, ["pot_impl/pbft/normal_case.py"])
    assert "tests/impl/test_replica.py" in part and "tests/impl/test_ledger.py" not in part
    # a changed test file runs itself, and so do the tests that import it
    assert select_tests(REPOSITORY, ["tests/spec/test_ledger.py"]) == [
        "tests/spec/test_dispute.py",
        "tests/spec/test_ledger.py",
    ]


@pytest.mark.usefixtures("in_repository")
def test_without_pytest_installed_the_audit_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An install without the test runner cannot judge: exit 2, not a REJECT of the change."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pytest" else real(name, *a)
    )
    assert main(["audit"]) == 2
    assert "under pytest, which is not installed" in capsys.readouterr().err


def test_the_base_cache_keeps_the_most_recent_runs(tmp_path: Path) -> None:
    for age in range(5):
        entry = tmp_path / f"{age}.json"
        entry.write_text("{}")
        os.utime(entry, (1_000_000 - age, 1_000_000 - age))
    prune_cache(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.json", "1.json"]
