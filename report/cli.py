"""`pot report`, and the writer behind ``--html FILE`` of `pot check`, `pot conform`, `pot audit`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from report.documents import Document, DocumentError, kind_of, load
from report.page import render

EXIT_OK, EXIT_ERROR = 0, 2


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `report` to `pot`."""
    parser = sub.add_parser(
        "report",
        help="write one self-contained HTML page from JSON results",
        description="Render the --json output of pot check, pot conform and pot audit, ITF traces and "
        "benchmark results as one HTML file that needs no network to view.",
    )
    parser.add_argument(
        "documents", nargs="+", metavar="FILE.json", help="documents to show, in this order (- reads stdin)"
    )
    parser.add_argument(
        "--out", default="report.html", metavar="FILE", help="the HTML file to write (default: report.html)"
    )
    parser.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    """0 when the page is written; 2 when a document or the output cannot be used."""
    try:
        target = writable(args.out)
        documents = [load(source) for source in args.documents]
    except ValueError as error:
        print(f"pot report: --out {error}", file=sys.stderr)
        return EXIT_ERROR
    except DocumentError as error:
        print(f"pot report: {error}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK if _write(target, documents, "pot report") else EXIT_ERROR


def writable(path: str) -> Path:
    """``path``, once it is known that a file can be written there; ValueError says why not."""
    target = Path(path)
    folder = target.resolve().parent
    if target.is_dir():
        raise ValueError(f"{path} is a directory")
    if not folder.is_dir():
        raise ValueError(f"{path}: no such directory {folder}")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ValueError(f"{path}: not writable")
    return target


def html_report(path: str) -> Callable[[dict[str, Any]], None]:
    """For ``--html FILE``: checks FILE now, before the run (ValueError says why it cannot be
    written), and returns the function that writes the run's JSON document there as a page."""
    target = writable(path)

    def write(document: dict[str, Any]) -> None:
        kind = kind_of(document)
        if kind is None:
            raise ValueError("pot report does not know this command's JSON document")
        _write(target, [Document("this run", kind, document)], "pot")

    return write


def _write(target: Path, documents: list[Document], program: str) -> bool:
    """Write the page; a failure is one line on stderr (the run's verdict still stands)."""
    try:
        target.write_text(render(documents), encoding="utf-8")
    except OSError as error:
        print(f"{program}: cannot write {target}: {error.strerror or error}", file=sys.stderr)
        return False
    print(f"report written to {target}", file=sys.stderr)
    return True
