"""`pot check --config run.toml`: the run the equivalent flags give, flags winning, each mistake one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pot.cli import main

STABLE_KEYS = (
    "model",
    "mode",
    "verdict",
    "distinct_states",
    "generated_states",
    "depth",
    "properties",
    "coverage",
    "counterexample",
    "incomplete_reason",
    "constants",
    "warnings",
)
"""The report's fields that do not depend on timing or memory."""


def check_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    status = main(["check", *argv, "--json"])
    report = json.loads(capsys.readouterr().out)
    return status, {key: report[key] for key in STABLE_KEYS}


def write(folder: Path, text: str, name: str = "run.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("config", "flags"),
    [
        (
            'model = "two-phase"\ninvariants = ["TCConsistent"]\ndeadlock = false\ncontinue = true\n'
            "max_depth = 9\nworkers = 1\n[constants]\nRM = 2\ncommit_needs_all_prepared = false\n",
            [
                "two-phase",
                "--invariant",
                "TCConsistent",
                "--no-deadlock",
                "--continue",
                "--max-depth",
                "9",
                "--workers",
                "1",
                "--const",
                "RM=2",
                "--const",
                "commit_needs_all_prepared=False",
            ],
        ),
        (
            'model = "mutex"\nproperties = ["EventuallyCritical"]\nconstants = { enter = "weak" }\n',
            ["mutex", "--property", "EventuallyCritical", "--const", "enter=weak"],
        ),
        (
            'model = "two-phase"\nliveness = false\nmax_states = 40\n',
            ["two-phase", "--no-liveness", "--max-states", "40"],
        ),
        (
            'model = "two-phase"\nsimulate = 20\ndepth = 12\nseed = 5\n'
            "[constants]\ncommit_needs_all_prepared = false\n",
            [
                "two-phase",
                "--simulate",
                "20",
                "--depth",
                "12",
                "--seed",
                "5",
                "--const",
                "commit_needs_all_prepared=False",
            ],
        ),
        (
            'model = "pbft-tiny"\nmax_states = 30\nliveness = false\n'
            '[constants]\nbug = "commit_at_f_plus_1"\nbyzantine = [0]\n',
            [
                "pbft-tiny",
                "--max-states",
                "30",
                "--no-liveness",
                "--const",
                "bug=commit_at_f_plus_1",
                "--const",
                "byzantine={0}",
            ],
        ),
    ],
)
def test_a_config_run_reports_what_the_equivalent_flags_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, flags: list[str]
) -> None:
    from_file = check_json(capsys, ["--config", str(write(tmp_path, config))])
    from_flags = check_json(capsys, flags)
    assert from_file == from_flags


def test_the_command_line_wins_over_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, 'model = "countdown"\nmax_depth = 2\n[constants]\nRM = 2\n')
    status, report = check_json(capsys, ["two-phase", "--config", str(config), "--max-depth", "4"])
    assert status == 0 and report["model"] == "two-phase" and report["depth"] == 4
    assert report["constants"] == {"RM": 2, "commit_needs_all_prepared": True}
    config = write(tmp_path, 'model = "two-phase"\ndeadlock = false\n[constants]\nRM = 2\n')
    _, report = check_json(capsys, ["--config", str(config), "--const", "RM=3"])
    assert report["constants"]["RM"] == 3 and report["distinct_states"] == 288
    assert "deadlock" not in [p["name"] for p in report["properties"]]


def test_trace_out_is_relative_to_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runs").mkdir()
    config = write(
        tmp_path / "runs",
        'model = "two-phase"\ntrace_out = "cex.itf.json"\n[constants]\ncommit_needs_all_prepared = false\n',
    )
    assert main(["check", "--config", str(config), "--json"]) == 1
    capsys.readouterr()
    assert json.loads((tmp_path / "runs" / "cex.itf.json").read_text())["#meta"]["property"] == "TCConsistent"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_state = 3\n", "unknown key 'max_state' (known: model, constants, invariants, properties,"),
        ('max_depth = "3"\n', 'max_depth must be an integer, got "3"'),
        ("max_states = true\n", "max_states must be an integer, got true"),
        ("deadlock = 0\n", "deadlock must be true or false, got 0"),
        ('invariants = "TCConsistent"\n', 'invariants must be a list of strings, got "TCConsistent"'),
        ("properties = [1]\n", "properties must be a list of strings, got [1]"),
        ("constants = 3\n", "constants must be a table, got 3"),
        ("model = 3\n", "model must be a string, got 3"),
        ("max_depth = \n", "not valid TOML: Invalid value (at line 2, column 13)"),
        ("max_depth = 0\n", "--max-depth must be at least 1, got 0"),
        ("[constants]\nRM = true\n", "constant RM of two-phase expects int (default 3), got True"),
        ("[constants]\nNOPE = 1\n", "model two-phase has no constant NOPE; its constants are RM,"),
    ],
)
def test_a_bad_file_is_named_in_one_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    config = write(tmp_path, 'model = "two-phase"\n' + text if "model =" not in text else text)
    assert main(["check", "two-phase", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert message in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), (b'model = "\xff"\n', "not UTF-8 text (byte 9)"), ("folder", "cannot read")],
)
def test_an_unreadable_file_is_named_in_one_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | str | None, message: str
) -> None:
    path = tmp_path / "run.toml"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pot check: {path}: {message}") and err.count("\n") == 1


def test_a_model_is_needed_from_the_command_line_or_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check"]) == 2
    assert "no MODEL" in capsys.readouterr().err
    assert main(["check", "--config", str(write(tmp_path, "max_depth = 2\n"))]) == 2
    assert "no MODEL" in capsys.readouterr().err


def test_property_selects_temporal_properties(capsys: pytest.CaptureFixture[str]) -> None:
    _, report = check_json(capsys, ["two-phase", "--property", "CommitLeadsToAllCommitted"])
    names = [p["name"] for p in report["properties"]]
    assert names == ["TPTypeOK", "TCConsistent", "deadlock", "CommitLeadsToAllCommitted"]
    assert main(["check", "two-phase", "--property", "Nope"]) == 2
    err = capsys.readouterr().err
    assert "no temporal property Nope" in err and "AllDecide" in err and err.count("\n") == 1
    for conflicting in (["--no-liveness"], ["--simulate", "3"]):
        assert main(["check", "two-phase", "--property", "AllDecide", *conflicting]) == 2
        assert "--property" in capsys.readouterr().err
