"""The installed package works outside the repository: a wheel in a fresh virtualenv.

The wheel is built from a copy of the sources and installed without its
dependencies into a new virtualenv, which borrows them from this one through
a ``.pth`` line (so nothing is downloaded, and the project itself can only be
imported from the wheel). Every command then runs from a directory outside
the repository; the commands that judge a repository run in a clone of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from conformance.checkout import copy_sources
from tests.schemas import assert_schema

REPOSITORY = Path(__file__).resolve().parents[1]


class Installed:
    """A virtualenv holding the wheel, and a way to run its commands."""

    def __init__(self, root: Path, wheel: Path) -> None:
        self.root, self.wheel = root, wheel

    def run(self, *argv: str, cwd: Path, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.root / "bin" / argv[0]), *argv[1:]],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={"PATH": f"{self.root / 'bin'}:/usr/bin:/bin", "HOME": str(cwd)},
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    scratch = tmp_path_factory.mktemp("wheel")
    sources = copy_sources(REPOSITORY, scratch / "sources")
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(scratch / "dist"), str(sources)],
        check=True,
        capture_output=True,
    )
    wheel = next((scratch / "dist").glob("pot_verify-*.whl"))
    root = scratch / "venv"
    venv.create(root, with_pip=False)
    site = next((root / "lib").glob("python3.*/site-packages"))
    (site / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = str(root / "bin" / "python")
    subprocess.run([*pip, "--python", python, "install", "-q", "--no-deps", str(wheel)], check=True)
    return Installed(root, wheel)


def test_the_wheel_carries_schemas_and_type_markers(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for package in ("pot", "spec", "model_checker", "pot_impl", "conformance", "report"):
        assert f"{package}/py.typed" in names
    assert {f"pot/schemas/{c}.schema.json" for c in ("check", "conform", "audit")} <= names
    assert not any(name.startswith("tests/") for name in names)


def test_commands_run_from_the_wheel_outside_the_repository(installed: Installed, tmp_path: Path) -> None:
    where = installed.run(
        "python", "-c", "import pot, pot_impl; print(pot.__file__, pot.__version__)", cwd=tmp_path
    )
    assert where.stdout.startswith(str(installed.root)), where.stdout + where.stderr
    version = installed.run("pot", "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"pot {where.stdout.split()[1]}"
    check = installed.run("pot", "check", "two-phase", "--json", cwd=tmp_path)
    report = assert_schema(json.loads(check.stdout), "check")
    assert check.returncode == 0 and report["verdict"] == "ok" and report["distinct_states"] == 288
    assert assert_schema(json.loads(installed.run("pot", "models", "--json", cwd=tmp_path).stdout), "models")
    assert (
        json.loads(installed.run("pot", "schema", "audit", cwd=tmp_path).stdout)["title"]
        == "pot audit --json"
    )
    proved = installed.run("pot", "prove", "--json", cwd=tmp_path)
    assert proved.returncode == 0 and assert_schema(json.loads(proved.stdout), "prove")["verdict"] == "ok"


def test_judging_commands_act_on_the_checkout_of_the_current_directory(
    installed: Installed, tmp_path: Path
) -> None:
    outside = installed.run("pot", "conform", "tiny", "--mutants", cwd=tmp_path)
    assert outside.returncode == 2 and outside.stderr.count("\n") == 1
    assert "not inside a git repository" in outside.stderr
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPOSITORY), str(clone)], check=True)
    audit = installed.run("pot", "audit", "--json", cwd=clone / "docs")
    report = assert_schema(json.loads(audit.stdout), "audit")
    assert audit.returncode == 0 and report["verdict"] == "accept", audit.stderr
    program = (
        "from conformance.mutants import default_modes, run_catalogue\n"
        "modes = [m for m in default_modes(sim_seeds=2, adversary_seeds=1) if m.name == 'sim-trace']\n"
        "results, _ = run_catalogue(['checkpoint-stable-at-f-plus-1'], modes=modes)\n"
        "print(results[0].outcome, results[0].mode)\n"
    )
    mutants = installed.run("python", "-P", "-c", program, cwd=clone)  # -P: the wheel, not the clone
    assert mutants.stdout.split() == ["killed", "sim-trace"], mutants.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.timeout(3600)  # the project's 300 s would stop the run it allows an hour
def test_the_whole_mutant_catalogue_from_the_wheel_in_a_clone(installed: Installed, tmp_path: Path) -> None:
    """`pot conform --mutants` as the README gives it, from the wheel, on a clone (minutes)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPOSITORY), str(clone)], check=True)
    argv = ("pot", "conform", "pbft-tiny", "--mode", "stateful", "--mutants", "--json")
    run = installed.run(*argv, cwd=clone, timeout_s=3600)
    report = assert_schema(json.loads(run.stdout), "conform")
    assert run.returncode == 0, [m for m in report["mutants"] if m["outcome"] != "killed"]
    assert report["mutants"] and all(m["outcome"] == "killed" for m in report["mutants"])
