"""`pot prove`: the quorum facts hold for all f >= 1 and n >= 3f + 1, and fail concretely when a
threshold is wrong."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from pot.cli import main
from spec import quorum
from spec.prove import FACTS, prove, prove_all
from tests.schemas import assert_schema


def thresholds_with(**replaced: Any) -> SimpleNamespace:
    """spec.quorum's functions with some replaced (a deliberately wrong spec)."""
    functions = {name: getattr(quorum, name) for name in dir(quorum) if not name.startswith("_")}
    return SimpleNamespace(**{**functions, **replaced})


def test_every_fact_is_proved_for_the_spec_thresholds() -> None:
    outcomes = prove_all()
    assert [o.name for o in outcomes] == [f.name for f in FACTS]
    assert all(o.proved for o in outcomes), [o for o in outcomes if not o.proved]


def test_literal_two_f_plus_one_quorum_fails_with_a_concrete_counterexample() -> None:
    wrong = thresholds_with(quorum=lambda n, f: 2 * f + 1)
    fact = next(f for f in FACTS if f.name == "QuorumIntersection")
    outcome = prove(fact, wrong)
    assert not outcome.proved and outcome.counterexample is not None
    n, f = outcome.counterexample["n"], outcome.counterexample["f"]
    # The counterexample is in the domain and really breaks the claim, evaluated with ints.
    assert f >= 1 and n >= 3 * f + 1
    assert 2 * (2 * f + 1) - n < f + 1


@pytest.mark.parametrize(
    ("fact_name", "replaced"),
    [
        ("RepliesIncludeHonest", {"reply_quorum": lambda f: f}),
        ("QuorumHasHonest", {"quorum": lambda n, f: f}),
        ("PreparedCertificateIsQuorum", {"prepare_quorum": lambda n, f: 2 * f - 1}),
        ("ValidationQuorumHasHonest", {"validation_quorum": lambda n, f: f}),
        ("ViewChangeJoinIncludesHonest", {"view_change_join": lambda f: f}),
    ],
)
def test_weakening_a_threshold_breaks_its_fact(fact_name: str, replaced: dict[str, Any]) -> None:
    fact = next(f for f in FACTS if f.name == fact_name)
    outcome = prove(fact, thresholds_with(**replaced))
    assert not outcome.proved and outcome.counterexample is not None
    assert set(outcome.counterexample) == {"n", "f"}
    assert outcome.counterexample["f"] >= 1


def test_cli_exits_zero_when_proved(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert_schema(report, "prove")
    assert report["verdict"] == "ok" and all(f["counterexample"] is None for f in report["facts"])
    assert {f["name"] for f in report["facts"]} == {f.name for f in FACTS}


def test_cli_exits_one_with_counterexample_when_spec_threshold_changes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(quorum, "quorum", lambda n, f: 2 * f + 1)
    assert main(["prove"]) == 1
    out = capsys.readouterr().out
    assert "FAILED  QuorumIntersection" in out
    assert "counterexample: n = " in out
    assert main(["prove", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert_schema(report, "prove")
    assert report["verdict"] == "violation"
    failed = [f for f in report["facts"] if not f["proved"]]
    assert failed and all(set(f["counterexample"]) == {"n", "f"} for f in failed)
