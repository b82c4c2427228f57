"""The import rules of DESIGN.md, enforced on the source tree."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("spec", "model_checker", "pot_impl", "conformance", "pot", "report")

# room -> project rooms it must never import
FORBIDDEN = {
    "model_checker": {"spec", "pot_impl", "conformance", "pot", "report"},
    "spec": {"pot_impl", "conformance", "pot", "report"},
    "pot_impl": {"spec", "model_checker", "conformance", "pot", "report"},
    "conformance": {"pot", "report"},
    "report": {"spec", "model_checker", "pot_impl", "conformance", "pot"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages imported anywhere in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def imported_rooms(path: Path) -> set[str]:
    """Top-level project rooms imported anywhere in one file."""
    return imported_packages(path) & set(ROOMS)


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_room_respects_import_rules(room: str) -> None:
    violations = [
        f"{path.relative_to(ROOT)} imports {bad}"
        for path in sorted((ROOT / room).rglob("*.py"))
        for bad in sorted(imported_rooms(path) & FORBIDDEN[room])
    ]
    assert violations == []


def test_spec_imports_only_stdlib_and_checker_interface() -> None:
    allowed_third_party = {"z3"}  # `pot prove` only; the spec's states and actions stay stdlib-only
    for path in sorted((ROOT / "spec").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module.split(".")[0]]
            for name in names:
                ok = (
                    name in sys.stdlib_module_names
                    or name in {"spec", "model_checker", "__future__"}
                    or name in allowed_third_party
                )
                assert ok, f"{path.relative_to(ROOT)} imports {name}"


def test_report_imports_only_the_standard_library() -> None:
    """The report renders JSON documents; it must open on a machine with nothing else installed."""
    for path in sorted((ROOT / "report").rglob("*.py")):
        outside = imported_packages(path) - set(sys.stdlib_module_names) - {"report", "__future__"}
        assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}"
