"""The checkout being judged: found from the current directory, copied, built.

``pot audit`` and ``pot conform --mutants`` judge source code, so they act on
the git checkout of the current directory, never on the installed package
(which has no tests and may be another version). A copy is built in place
(the C extensions its pyproject.toml declares), so the judged tree runs its own
compiled code.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

PACKAGES = ("pot", "spec", "model_checker", "pot_impl", "conformance", "report")
COPIED = (*PACKAGES, "tests", "pyproject.toml", "README.md")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", ".hypothesis", ".pytest_cache")


class CheckoutError(Exception):
    """The current directory is not a checkout that can be judged: one line, exit 2."""


def checkout_root(cwd: Path | None = None) -> Path:
    """The top of the git working tree containing ``cwd`` (default: the current directory)."""
    where = cwd or Path.cwd()
    found = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=where, capture_output=True, text=True, check=False
    )
    if found.returncode:
        raise CheckoutError(f"{where} is not inside a git repository: run this in the checkout to judge")
    return Path(found.stdout.strip())


def project_checkout(cwd: Path | None = None) -> Path:
    """The checkout containing ``cwd``, which must hold the project's sources and tests."""
    root = checkout_root(cwd)
    missing = [name for name in ("pot_impl", "tests") if not (root / name).is_dir()]
    if missing:
        raise CheckoutError(f"{root} is not a checkout of pot-verify (no {' or '.join(missing)}/ there)")
    return root


def copy_sources(source: Path, destination: Path) -> Path:
    """Copy the packages, tests and project file (not .git, .venv, caches or builds) to ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        origin = source / name
        if origin.is_dir():
            shutil.copytree(origin, destination / name, ignore=IGNORED)
        elif origin.exists():
            shutil.copy2(origin, destination / name)
    return destination


def extensions(root: Path) -> list[tuple[str, list[str], list[str]]]:
    """The compiled parts the tree at ``root`` declares in its pyproject.toml (module, sources,
    compiler flags): the judged tree's own, so a change that adds or edits one is built as it says.
    Raises ValueError, saying why, when the file cannot be read as such."""
    source = root / "pyproject.toml"
    try:
        declared = tomllib.loads(source.read_text(encoding="utf-8"))
        modules = declared.get("tool", {}).get("setuptools", {}).get("ext-modules", [])
        return [(m["name"], list(m["sources"]), list(m.get("extra-compile-args", []))) for m in modules]
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as error:  # TOML and UTF-8 errors
        raise ValueError(f"{source}: cannot read its C extensions ({error!r})") from None


def build_extensions(root: Path) -> str | None:
    """Build the compiled parts of the tree at ``root`` in place; an error message, or None."""
    try:
        present = extensions(root)
    except ValueError as error:
        return str(error)
    if not present:
        return None
    modules = ", ".join(
        f"Extension({name!r}, {sources!r}, extra_compile_args={flags!r})" for name, sources, flags in present
    )
    program = (
        "from setuptools import Distribution, Extension\n"
        f"dist = Distribution({{'ext_modules': [{modules}],"
        " 'script_args': ['build_ext', '--inplace', '--quiet']})\n"
        "dist.parse_command_line()\n"
        "dist.run_commands()\n"
    )
    built = subprocess.run(
        [sys.executable, "-c", program], cwd=root, capture_output=True, text=True, check=False
    )
    if built.returncode:
        tail = "\n".join((built.stderr or built.stdout).strip().splitlines()[-20:])
        return f"building {', '.join(name for name, _, _ in present)} failed:\n" + tail
    return None
