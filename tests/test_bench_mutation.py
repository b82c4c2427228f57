"""bench_mutation's judgement of a mutant: what counts as a kill, and how survivors are triaged."""

from __future__ import annotations

from pathlib import Path

from benchmarks.bench_mutation import REPOSITORY, killed_by, load_triage, sites
from conformance import audit
from conformance.audit import CaseResult, Judgement


def test_a_mutant_every_judge_passes_survives() -> None:
    passing = Judgement([CaseResult("pbft-tiny", "stateful", "ok")], audit.TestsResult(["t.py"], True), [])
    assert killed_by(passing) is None


def test_a_diverging_case_or_a_failing_test_kills() -> None:
    diverging = Judgement([CaseResult("pbft-tiny", "stateful", "violation")], None, ["tests"])
    assert killed_by(diverging) == "conformance: pbft-tiny stateful diverges"
    failing = Judgement([CaseResult("pbft-tiny", "stateful", "ok")], audit.TestsResult(["t.py"], False), [])
    assert killed_by(failing) == "tests"


def test_each_site_carries_its_source_line() -> None:
    path = "pot_impl/pbft/quorums.py"
    lines = (REPOSITORY / path).read_text().splitlines()
    found = sites(path)
    assert found and all(site.code == lines[site.line - 1].strip() for site in found)


def test_triage_is_keyed_by_file_source_line_and_mutation(tmp_path: Path) -> None:
    triage = tmp_path / "triage.toml"
    triage.write_text(
        '[[survivor]]\npath = "a.py"\ncode = "return x"\nmutation = "returns None"\n'
        'verdict = "equivalent"\nreason = "the caller ignores it"\n'
    )
    found = load_triage(triage)
    assert found[("a.py", "return x", "returns None")].verdict == "equivalent"
    assert load_triage(tmp_path / "missing.toml") == {}
