"""Which JSON document is which: by its ``schema`` when it has one, else by its shape.

Recognising the shape as well keeps older documents (written before ``schema`` existed) and
the benchmark results (which have none) renderable.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("check", "conform", "audit", "error", "trace", "benchmark")

SCHEMAS = {"pot-check": "check", "pot-conform": "conform", "pot-audit": "audit"}
"""``schema`` names (the part before ``/version``) and the kind of document each one is."""


class DocumentError(Exception):
    """A file that cannot be rendered; the message names the file and says why."""


@dataclass(frozen=True)
class Document:
    source: str
    """Where it came from, as the user named it."""
    kind: str
    data: dict[str, Any]

    @property
    def verdict(self) -> str | None:
        verdict = self.data.get("verdict")
        return str(verdict) if verdict is not None else None


def kind_of(data: Any) -> str | None:
    """The kind of a parsed document, or None when it is none of ours."""
    if not isinstance(data, dict):
        return None
    if data.get("verdict") == "error" and "error" in data:
        return "error"
    schema = data.get("schema")
    if isinstance(schema, str) and schema.split("/")[0] in SCHEMAS:
        return SCHEMAS[schema.split("/")[0]]
    if isinstance(data.get("properties"), list) and isinstance(data.get("coverage"), list):
        return "check"
    if "transitions_covered" in data and isinstance(data.get("divergences"), list):
        return "conform"
    if "changed_statements_not_executed" in data or {"cases", "reasons"} <= data.keys():
        return "audit"
    if isinstance(data.get("states"), list) and isinstance(data.get("vars"), list):
        return "trace"
    if "benchmark" in data or "machine" in data or "environment" in data:
        return "benchmark"
    return None


def parse(source: str, text: str) -> Document:
    """A document from its JSON text; ``source`` names it in messages."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise DocumentError(f"{source}: not JSON ({error})") from None
    kind = kind_of(data)
    if kind is None:
        what = f"schema {data['schema']!r}" if isinstance(data, dict) and "schema" in data else "its shape"
        raise DocumentError(
            f"{source}: not a document pot report knows ({what}); expected the --json output of "
            "pot check, pot conform or pot audit, an ITF trace, or a benchmark result"
        )
    return Document(source, kind, data)


def load(source: str) -> Document:
    """The document in file ``source`` (``-`` reads standard input)."""
    if source == "-":
        return parse("<stdin>", sys.stdin.read())
    try:
        text = Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DocumentError(f"{source}: cannot read it ({error})") from None
    return parse(source, text)
