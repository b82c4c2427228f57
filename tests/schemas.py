"""Every `--json` document the tests read is checked against the schema the package ships."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator


@cache
def validator(command: str) -> Draft202012Validator:
    """The validator of ``pot COMMAND --json``, from the installed package's schema file."""
    text = resources.files("pot").joinpath("schemas", f"{command}.schema.json").read_text(encoding="utf-8")
    return Draft202012Validator(json.loads(text))


def assert_schema(document: Any, command: str) -> Any:
    """``document`` itself, after checking it is a valid ``pot COMMAND --json`` document."""
    errors = sorted(validator(command).iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "; ".join(f"{list(e.absolute_path)}: {e.message}"[:300] for e in errors[:5])
    version = validator(command).schema["$id"].rsplit(":", 1)[1]
    assert document["schema"] == f"pot-{command}/{version}"
    return document
