"""The judged copy of a checkout builds the C extensions its own pyproject.toml declares, and runs
them rather than any other tree's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conformance.checkout import build_extensions, copy_sources, extensions

REPOSITORY = Path(__file__).resolve().parents[2]


def test_a_copy_builds_and_imports_every_extension_its_pyproject_declares(tmp_path: Path) -> None:
    root = copy_sources(REPOSITORY, tmp_path / "copy")
    declared = [name for name, _, _ in extensions(root)]
    assert "model_checker._codec" in declared and "model_checker._fingerprint" in declared
    assert build_extensions(root) is None
    program = (
        "import importlib, sys\nfor name in sys.argv[1:]:\n    print(importlib.import_module(name).__file__)"
    )
    environment = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    loaded = subprocess.run(
        [sys.executable, "-c", program, *declared], cwd=root, env=environment, capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr
    assert all(Path(path).is_relative_to(root) for path in loaded.stdout.split()), loaded.stdout


def test_a_pyproject_that_cannot_be_read_is_a_one_line_build_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[[tool.setuptools.ext-modules]]\nname = \n")
    error = build_extensions(tmp_path)
    assert error is not None and "cannot read its C extensions" in error and "\n" not in error
    (tmp_path / "pyproject.toml").write_text('[[tool.setuptools.ext-modules]]\nname = "m"\n')
    error = build_extensions(tmp_path)
    assert error is not None and "KeyError('sources')" in error
