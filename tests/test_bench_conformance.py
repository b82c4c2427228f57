"""bench_conformance prints the mutants' table from what the campaign returns."""

from __future__ import annotations

import pytest

from benchmarks.bench_conformance import print_mutants
from conformance.mutants import MutantResult


def test_the_mutants_table_prints_each_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    results = [
        MutantResult("commit-at-2f", "a bug", "killed", "sim-trace", 31, 0.2, "0", "diverged"),
        MutantResult("slow-one", "a bug", "undecided", "replay", None, 60.0, "pbft-tiny", "no verdict"),
        MutantResult("equivalent", "no bug", "survived", None, None, 9.5),
    ]
    catalogue = {"modes": ["sim-trace", "replay"], "killed": 1, "results": [r.to_json() for r in results]}
    print_mutants(catalogue)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "mutants (1/3 killed; modes sim-trace, replay)"
    assert lines[2].split() == ["commit-at-2f", "killed", "sim-trace", "31", "0.2"]
    assert lines[3].split() == ["slow-one", "undecided", "replay", "60.0"]
    assert lines[4].split() == ["equivalent", "survived", "-", "9.5"]
