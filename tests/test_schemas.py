"""The `--json` contract: one shipped, versioned JSON Schema per command, errors as JSON too.

The command tests validate every document they read against these schemas
(tests/schemas.py); this module checks the schemas themselves and the
documents no other test reads: error documents, `pot models`, `pot prove`.
"""

from __future__ import annotations

import json
import subprocess
from importlib import metadata, resources
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import conformance.audit
import conformance.runner
import model_checker.checker
import model_checker.cli
import pot_impl.cli
import spec.cli
from pot import __version__
from pot.cli import SCHEMAS, main
from pot.registry import all_models
from tests.schemas import assert_schema

IN_CODE = {
    "check": model_checker.checker.SCHEMA,
    "conform": conformance.runner.SCHEMA,
    "audit": conformance.audit.SCHEMA,
    "prove": spec.cli.SCHEMA,
    "models": model_checker.cli.MODELS_SCHEMA,
    "status": pot_impl.cli.STATUS_SCHEMA,
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_every_command_with_json_ships_a_valid_schema_naming_its_version() -> None:
    shipped = {
        entry.name.removesuffix(".schema.json")
        for entry in resources.files("pot").joinpath("schemas").iterdir()
        if entry.name.endswith(".schema.json")
    }
    assert shipped == set(SCHEMAS) == set(IN_CODE)
    for command in SCHEMAS:
        text = resources.files("pot").joinpath("schemas", f"{command}.schema.json").read_text("utf-8")
        schema = json.loads(text)
        Draft202012Validator.check_schema(schema)
        name, _, version = IN_CODE[command].partition("/")
        assert name == f"pot-{command}" and version.isdigit()
        assert schema["$id"] == f"urn:pot-verify:schema:{command}:{version}"


@pytest.mark.parametrize("command", SCHEMAS)
def test_pot_schema_prints_the_shipped_schema(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "schema", command)
    version = IN_CODE[command].partition("/")[2]
    assert status == 0 and json.loads(out)["$id"] == f"urn:pot-verify:schema:{command}:{version}"


@pytest.mark.parametrize(
    ("argv", "command", "says"),
    [
        (["check", "no-such-model"], "check", "unknown model 'no-such-model'"),
        (["check", "two-phase", "--max-states", "0"], "check", "--max-states must be at least 1"),
        (["check", "two-phase", "--bogus"], "check", "unrecognized arguments: --bogus"),
        (["conform", "no-such-model"], "conform", "unknown model 'no-such-model'"),
        (["conform", "tiny", "--mode", "sideways"], "conform", "invalid choice: 'sideways'"),
        (["prove", "--bogus"], "prove", "unrecognized arguments: --bogus"),
        (["models", "--bogus"], "models", "unrecognized arguments: --bogus"),
        (["audit", "--rev", "no-such-revision-xyz"], "audit", "unknown revision"),
    ],
)
def test_errors_with_json_are_error_documents_and_one_line_on_stderr(
    argv: list[str],
    command: str,
    says: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In a repository of its own: the audit judges the one it runs in, and this checkout need not be
    # one (the audit runs these tests in an extracted tree).
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, *argv, "--json")
    document = assert_schema(json.loads(out), command)
    assert status == 2 and document["verdict"] == "error" and says in document["error"]
    assert says in err.splitlines()[-1]


def test_models_lists_every_registered_model(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "models", "--json")
    document = assert_schema(json.loads(out), "models")
    assert status == 0 and [m["name"] for m in document["models"]] == list(all_models())


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.strip() == f"pot {__version__}" == f"pot {metadata.version('pot-verify')}"
