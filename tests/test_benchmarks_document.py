"""docs/benchmarks.md is generated from benchmarks/results, and says which benchmark wrote each file."""

from __future__ import annotations

from benchmarks.document import DOCUMENT, RESULTS, render, writers


def test_the_committed_page_is_what_the_committed_results_give() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == render(), "run `python -m benchmarks.document`"


def test_every_result_file_names_the_benchmark_that_writes_it() -> None:
    assert set(writers()) == {path.name for path in RESULTS.glob("*.json")}
