"""The `pot check` / `pot models` contract: output, JSON keys, exit codes, error messages."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from model_checker.cli import register
from model_checker.examples.liveness import MUTEX
from model_checker.examples.two_phase import TWO_PHASE
from model_checker.model import ModelSpec
from pot.cli import main
from pot.registry import all_models
from tests.itf_reader import assert_valid_itf
from tests.schemas import assert_schema

ROOT = Path(__file__).resolve().parents[2]
BUGGY = "model_checker.examples.two_phase:two_phase"


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, object]]:
    status = main(["check", *argv, "--json"])
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object
    return status, assert_schema(json.loads(out), "check")


def test_ok_run_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _json(capsys, ["two-phase"])
    assert status == 0
    assert report["verdict"] == "ok" and report["distinct_states"] == 288 and report["depth"] == 11
    assert report["counterexample"] is None
    expected = {"name": "TCConsistent", "kind": "invariant", "status": "holds", "counterexample": None}
    assert expected in report["properties"]  # type: ignore[operator]


def test_const_override_and_violation_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _json(capsys, [BUGGY, "--const", "RM=2", "--const", "commit_needs_all_prepared=False"])
    assert status == 1
    assert report["verdict"] == "violation"
    example = report["counterexample"]
    assert isinstance(example, dict) and example["#meta"]["property"] == "TCConsistent"
    assert len(example["states"]) == 4


def test_text_output_has_summary_and_trace(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", BUGGY, "--const", "commit_needs_all_prepared=False"])
    out = capsys.readouterr().out
    assert status == 1
    assert "Verdict: violation" in out and "distinct states" in out and "B per state above" in out
    assert "collision chance" in out
    assert "Counterexample to invariant TCConsistent" in out and "   2. TMCommit()" in out
    assert "\x1b[" not in out  # not a terminal


def test_bounds_are_incomplete_with_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _json(capsys, ["two-phase", "--max-depth", "3"])
    assert status == 0 and report["verdict"] == "incomplete" and report["depth"] == 3
    status, report = _json(capsys, ["two-phase", "--max-states", "50"])
    assert status == 0 and report["verdict"] == "incomplete" and report["distinct_states"] == 50


def test_invariant_selection_and_unknown_invariant(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _json(capsys, ["two-phase", "--invariant", "TPTypeOK"])
    assert status == 0
    names = [p["name"] for p in report["properties"]]  # type: ignore[attr-defined]
    assert names == ["TPTypeOK", "deadlock", "AllDecide", "CommitLeadsToAllCommitted"]
    assert main(["check", "two-phase", "--invariant", "Nope"]) == 2
    err = capsys.readouterr().err
    assert "Nope" in err and "TPTypeOK" in err and "TCConsistent" in err
    assert "Traceback" not in err


def test_unknown_model_lists_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'no-such-model'" in err and "two-phase" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["two-phase", "--const", "RM"], "NAME=VALUE"),
        (["two-phase", "--const", "RM=(1,"], "neither a literal"),
        (["two-phase", "--const", "RM=three"], "expects int (default 3), got 'three'"),
        (["two-phase", "--const", "NOPE=1"], "has no constant NOPE"),
        (["two-phase", "--const", "RM=0"], "RM must be at least 1"),
        (["pbft-tiny", "--const", "byzantine=5"], "expects a set such as {0}, got 5"),
        (["no.such.module:thing"], "cannot import"),
        (["model_checker.examples.two_phase:nothing"], "no attribute"),
        (["model_checker.examples.two_phase:COMMIT_MSG"], "not a Model"),
        (["two-phase", "--depth", "3"], "--max-depth"),
        (["two-phase", "--memory", "0"], "--memory must be a positive number"),
        (["two-phase", "--checkpoint", "/dev/null/dir"], "--checkpoint /dev/null/dir"),
        (["two-phase", "--resume", "/dev/null"], "--resume /dev/null: no such directory"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["check", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_spec_error_reports_state_and_action(tmp_path: Path) -> None:
    spec = tmp_path / "faulty_spec.py"
    spec.write_text(
        "from model_checker.model import Action, Model\n"
        "def step(s):\n"
        "    if s == 2:\n"
        "        raise KeyError('missing')\n"
        "    yield (), s + 1\n"
        "MODEL = Model(name='faulty', init=lambda: iter([0]), actions=(Action('Advance', step),))\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pot", "check", "faulty_spec:MODEL"],
        cwd=ROOT,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "action Advance() raised KeyError" in done.stderr
    assert "state = 2" in done.stderr and "Traceback" not in done.stderr


def test_trace_out_writes_itf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "cex.itf.json"
    argv = ["check", BUGGY, "--const", "commit_needs_all_prepared=False", "--trace-out", str(target)]
    assert main(argv) == 1
    document = json.loads(target.read_text())
    assert_valid_itf(document)
    assert document["vars"] == ["rmState", "tmState", "tmPrepared", "msgs"]
    assert document["#meta"]["property"] == "TCConsistent" and "loop" not in document


def test_trace_out_writes_a_lasso_with_its_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "lasso.itf.json"
    assert main(["check", "mutex", "--const", "enter=weak", "--trace-out", str(target)]) == 1
    document = json.loads(target.read_text())
    assert_valid_itf(document)
    assert document["vars"] == ["held", "phase"] and document["states"][0]["phase"] == "IDLE"
    assert 0 <= document["loop"] < len(document["states"])
    assert document["#meta"]["loop_action"] == "Release()"


@pytest.mark.parametrize(
    ("name", "beside"),
    [
        ("cex.itf.json", ["cex.EventuallyCritical.itf.json", "cex.InfinitelyOftenCritical.itf.json"]),
        ("cex.json", ["cex.EventuallyCritical.json", "cex.InfinitelyOftenCritical.json"]),
    ],
)
def test_continue_writes_one_trace_per_property_with_the_same_suffix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, beside: list[str]
) -> None:
    target = tmp_path / name
    argv = ["mutex", "--const", "enter=weak", "--continue", "--no-deadlock", "--trace-out", str(target)]
    assert main(["check", *argv]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, *beside])
    for path in tmp_path.iterdir():
        document = json.loads(path.read_text())
        assert_valid_itf(document)
        assert "loop" in document


def test_simulation_is_reproducible(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [BUGGY, "--const", "RM=4", "--const", "commit_needs_all_prepared=False", "--simulate", "50"]
    first = _json(capsys, [*argv, "--depth", "20", "--seed", "11"])
    second = _json(capsys, [*argv, "--depth", "20", "--seed", "11"])
    assert first[0] == second[0] == 1
    assert first[1]["counterexample"] == second[1]["counterexample"]
    status, report = _json(capsys, ["two-phase", "--simulate", "5", "--depth", "10"])
    assert status == 0 and report["verdict"] == "incomplete"


def test_models_lists_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "two-phase" in out and "RM=3" in out and "mutex" in out


# --------------------------------------------------------------------------- companions


def _suite_registry(enter: str) -> dict[str, ModelSpec]:
    """two-phase checked with the mutex (``enter`` fairness: 'weak' breaks its liveness) as companion."""
    mutex = replace(MUTEX, defaults={**MUTEX.defaults, "enter": enter})
    suite = replace(TWO_PHASE, name="suite", companions=("mutex",))
    return {"suite": suite, "mutex": mutex}


def _check_with(registry: dict[str, ModelSpec], argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(), lambda: registry)
    args = parser.parse_args(["check", *argv])
    status: int = args.run(args)
    return status


def test_companions_are_checked_as_parts_of_one_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert _check_with(_suite_registry(enter="strong"), ["suite", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "ok" and report["distinct_states"] == 288
    assert [part["model"] for part in report["companions"]] == ["mutex"]
    by_model = {(p["model"], p["name"]): p for p in report["properties"]}
    assert by_model[("two-phase", "TCConsistent")]["status"] == "holds"
    assert by_model[("mutex", "WaitingLeadsToCritical")]["kind"] == "leads_to"
    assert all(p["status"] == "holds" for p in report["properties"])


def test_a_failing_companion_fails_the_check_with_its_lasso(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trace_file = tmp_path / "lasso.itf.json"
    registry = _suite_registry(enter="weak")
    assert _check_with(registry, ["suite", "--json", "--trace-out", str(trace_file)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "violation" and report["counterexample"] is None  # the main model holds
    violated = [p for p in report["properties"] if p["status"] == "violated"]
    assert [p["model"] for p in violated] == ["mutex"]
    itf = json.loads(trace_file.read_text())
    assert itf["#meta"]["property"] == violated[0]["name"] and "loop" in json.dumps(itf["#meta"])
    assert _check_with(registry, ["suite"]) == 1
    text = capsys.readouterr().out
    assert "Companion of two-phase:" in text and "Overall verdict: violation (two-phase, mutex;" in text


def test_narrowed_runs_check_the_named_model_only(capsys: pytest.CaptureFixture[str]) -> None:
    registry = _suite_registry(enter="weak")
    for narrowing in (["--no-liveness"], ["--invariant", "TCConsistent"], ["--simulate", "3"]):
        assert _check_with(registry, ["suite", "--json", *narrowing]) == 0, narrowing
        assert "companions" not in json.loads(capsys.readouterr().out)


def test_every_registered_companion_exists() -> None:
    registry = all_models()
    named = {name for spec in registry.values() for name in spec.companions}
    assert named <= set(registry)


@pytest.mark.parametrize(
    "argv",
    [
        ["--max-states", "0"],
        ["--max-depth", "0"],
        ["--max-states", "-3"],
        ["--simulate", "0"],
        ["--simulate", "2", "--depth", "0"],
    ],
)
def test_bounds_that_check_nothing_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(["check", "two-phase", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must be at least 1" in err[0]


def test_a_field_without_an_itf_form_is_a_one_line_spec_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "halving_spec.py").write_text(
        "from model_checker.model import Action, Model\n"
        "STAY = Action('Stay', lambda s: iter([((), s)]))\n"
        "MODEL = Model(name='halving', init=lambda: iter([1]), actions=(STAY,),\n"
        "              invariants={'Never': lambda s: False}, fields=lambda s: {'half': s / 2})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    target = tmp_path / "cex.itf.json"
    assert main(["check", "halving_spec:MODEL", "--trace-out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "state 0: half: float 0.5 has no ITF form" in err
    assert not target.exists()


def test_an_unwritable_trace_file_is_refused_before_the_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no" / "such" / "t.itf.json"
    assert (
        main(["check", BUGGY, "--const", "commit_needs_all_prepared=False", "--trace-out", str(missing)]) == 2
    )
    captured = capsys.readouterr()
    assert captured.out == "" and "no such directory" in captured.err
