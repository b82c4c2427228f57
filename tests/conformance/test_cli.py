"""`pot conform`: the JSON contract and exit statuses (0 conforms, 1 diverges, 2 usage errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pot_impl.ledger.ledger as impl_ledger
from pot.cli import main
from tests.schemas import assert_schema

REPOSITORY = Path(__file__).resolve().parents[2]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    status = main(["conform", *argv, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, "--json prints exactly one object"
    return status, assert_schema(json.loads(out[0]), "conform")


def test_replay_conforms_with_full_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = run_json(capsys, "ledger-tiny", "--mode", "replay")
    assert status == 0
    assert report["verdict"] == "ok" and report["divergences"] == [] and report["mutants"] == []
    assert report["transitions_covered"] == report["transitions_total"]
    assert isinstance(report["steps"], int) and report["steps"] >= report["transitions_total"]


def test_constants_are_overridden_as_pot_check_does(capsys: pytest.CaptureFixture[str]) -> None:
    """A richer fee than the model's default: the spec and the real ledger split it alike."""
    status, report = run_json(capsys, "ledger-tiny", "--mode", "replay", "--const", "fee=3")
    assert status == 0 and report["verdict"] == "ok"
    assert report["transitions_covered"] == report["transitions_total"]
    assert "constants: fee=3" in report["notes"]


def test_divergence_exits_1_with_step_action_and_diff(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(impl_ledger, "_vote_proved_right", lambda vote, proved, upheld: False)
    status, report = run_json(capsys, "ledger-tiny", "--mode", "replay")
    assert status == 1 and report["verdict"] == "violation"
    divergences = report["divergences"]
    assert isinstance(divergences, list) and divergences
    first = divergences[0]
    assert {"step", "action", "diff"} <= set(first)
    assert first["action"].startswith("Finalize(")
    assert all({"field", "spec", "impl"} == set(d) for d in first["diff"])


def test_stateful_mode_reports_steps(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = run_json(capsys, "pbft-tiny", "--mode", "stateful", "--examples", "10", "--seed", "4")
    assert status == 0 and report["mode"] == "stateful" and report["steps"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no-such-model"], "unknown model"),
        (["default", "--mode", "trace"], "--log"),
        (["default", "--mode", "trace", "--log", "/no/such/dir"], "--log"),
        (["ledger-tiny", "--const", "nosuch=3"], "has no constant nosuch"),
        (["ledger-tiny", "--const", "fee"], "--const expects NAME=VALUE"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["conform", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("pot conform:")


@pytest.mark.parametrize(
    "argv",
    [["--examples", "0"], ["--examples", "-1"], ["--budget", "0"], ["--budget", "-5"], ["--budget", "x"]],
)
def test_counts_and_budgets_that_run_nothing_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["conform", "tiny", *argv])
    assert exit_info.value.code == 2
    assert "expected a" in capsys.readouterr().err


def test_bad_option_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["conform", "ledger-tiny", "--mode", "sideways"])
    assert exit_info.value.code == 2


def test_runner_module_runs_against_the_importable_pot_impl(tmp_path: Path) -> None:
    """`python -m conformance.runner` is what mutants and audits start with PYTHONPATH at a copy."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance.runner",
            "pbft-tiny",
            "--mode",
            "stateful",
            "--examples",
            "5",
            "--json",
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout.strip().splitlines()[-1])["verdict"] == "ok"
