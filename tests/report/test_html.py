"""`pot report` and `--html`: each kind of document shows its key facts, on a page that needs no network."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import conformance.audit
import conformance.runner
from conformance.audit import AuditReport, CaseResult, Change
from conformance.bridge_core import Divergence, FieldDiff
from conformance.runner import ConformanceReport
from pot.cli import main
from report import itf
from report.documents import Document, kind_of, parse
from report.markup import esc
from report.page import render
from tests.report.conftest import LASSO

REPOSITORY = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted((REPOSITORY / "benchmarks" / "results").glob("*.json"))


class Steps(HTMLParser):
    """Per explorer step: the fields marked changed, and the loop markers shown."""

    def __init__(self) -> None:
        super().__init__()
        self.changed: dict[int, set[str]] = {}
        self.badges: dict[int, set[str]] = {}
        self.current: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = set((attributes.get("class") or "").split())
        if tag == "article" and "step" in classes:
            self.current = int(attributes["data-step"] or 0)
            self.changed[self.current] = set()
            self.badges[self.current] = set()
        elif self.current is not None and tag == "tr" and "changed" in classes:
            self.changed[self.current].add(attributes["data-var"] or "")
        elif self.current is not None and tag == "span":
            self.badges[self.current] |= classes & {"cycle-start-badge", "in-cycle-badge"}


def page(*documents: dict[str, Any]) -> str:
    return render([parse(f"doc{i}.json", json.dumps(d)) for i, d in enumerate(documents)])


def changed_fields(trace: dict[str, Any], step: int) -> set[str]:
    """The variables whose value differs from the previous state's, straight from the ITF."""
    if step == 0:
        return set()
    before, after = trace["states"][step - 1], trace["states"][step]
    return {name for name in trace["vars"] if before[name] != after[name]}


def conform_document(divergent: bool = True) -> dict[str, Any]:
    divergence = Divergence(
        9,
        "Finalize(order=0)",
        (FieldDiff("balances[0]", "2", "4"),),
        ("Init", "PlaceOrder(client=0)", "Finalize(order=0)"),
    )
    report = ConformanceReport(
        "ledger-tiny",
        "replay",
        steps=283,
        transitions_covered=197,
        transitions_total=1208,
        graph="unreduced",
        divergences=[divergence.to_json()] if divergent else [],
        mutants=[
            {"name": "skip-quorum", "outcome": "killed", "mode": "replay", "steps": 4, "detail": ""},
            {"name": "lazy-finalize", "outcome": "survived", "mode": None, "steps": 0, "detail": ""},
        ],
    )
    report.gaps[("Crash(replica=1)", "the node cannot crash mid-step")] += 3
    return report.to_json()


def audit_document() -> dict[str, Any]:
    change = Change("HEAD (fix the quorum)", "0123456789abcdef", ["pot_impl/pbft/replica.py"], {})
    case = CaseResult("pbft-tiny", "stateful", "ok", steps=1976, transitions_covered=475)
    report = AuditReport(
        change,
        cases=[case],
        base_cases=[CaseResult("pbft-tiny", "stateful", "ok", steps=1976, transitions_covered=470)],
        tests=conformance.audit.TestsResult(["tests/impl/test_replica.py"], True),
        unexecuted={"pot_impl/pbft/replica.py": [311, 42]},
    )
    return report.to_json()


# --------------------------------------------------------------------------- the page


def test_the_page_fetches_nothing(safety_check: dict[str, Any], lasso_check: dict[str, Any]) -> None:
    benchmarks = [json.loads(path.read_text()) for path in BENCHMARKS]
    html = page(safety_check, lasso_check, conform_document(), audit_document(), *benchmarks)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z]+:)?//""", html, re.IGNORECASE)
    assert not re.search(r"<link\b|@import|url\(|<iframe|<img", html, re.IGNORECASE)
    assert "<style>" in html and "<script>" in html and "<script src" not in html


def test_verdicts_lead_the_page(safety_check: dict[str, Any]) -> None:
    error = {"schema": "pot-conform/1", "verdict": "error", "error": "unknown model 'nope'"}
    html = page(safety_check, conform_document(), audit_document(), error)
    board = html[html.index('<nav class="board">') : html.index("</nav>")]
    for verdict in ("violation", "UNVERIFIED", "error"):
        assert f">{verdict}</span>" in board
    assert "unknown model &#x27;nope&#x27;" in html


# --------------------------------------------------------------------------- pot check


def test_check_shows_properties_coverage_and_every_step(safety_check: dict[str, Any]) -> None:
    html = page(safety_check)
    for prop in safety_check["properties"]:
        assert f"<code>{prop['name']}</code>" in html
    never = [c["action"] for c in safety_check["coverage"] if c["never_enabled"]]
    assert never, "the planted-bug model leaves an action never enabled"
    for action in never:
        assert f"<tr class='never'><td><code>{action}</code> <span class=\"badge bad\">never enabled" in html
    states = safety_check["counterexample"]["states"]
    steps = Steps()
    steps.feed(html)
    assert sorted(steps.changed) == list(range(len(states)))
    for index, state in enumerate(states[1:], start=1):
        assert esc(state["#meta"]["action"]) in html
        assert steps.changed[index] == changed_fields(safety_check["counterexample"], index)


def integers(value: Any, strict: bool) -> Any:
    """``value`` with every integer a ``#bigint`` (strict ITF) or a plain JSON number (ITF that allows it)."""
    if isinstance(value, bool) or not isinstance(value, (int, list, dict)):
        return value
    if isinstance(value, int) or (isinstance(value, dict) and set(value) == {"#bigint"}):
        number = int(value["#bigint"]) if isinstance(value, dict) else value
        return {"#bigint": str(number)} if strict else number
    if isinstance(value, list):
        return [integers(item, strict) for item in value]
    return {key: item if key == "#meta" else integers(item, strict) for key, item in value.items()}


def test_bigints_and_plain_numbers_read_and_compare_alike(safety_check: dict[str, Any]) -> None:
    trace = safety_check["counterexample"]
    strict, loose = ({**trace, "states": integers(trace["states"], flag)} for flag in (True, False))
    assert strict != loose
    assert [itf.text(state["replicas"]) for state in strict["states"]] == [
        itf.text(state["replicas"]) for state in loose["states"]
    ]
    for document in (strict, loose):
        steps = Steps()
        steps.feed(itf.explorer(document, "explorer"))
        for index in range(len(trace["states"])):
            assert steps.changed[index] == changed_fields(trace, index)


def test_a_lasso_marks_where_its_cycle_starts(lasso_check: dict[str, Any]) -> None:
    trace = lasso_check["counterexample"]
    loop = trace["loop"]
    steps = Steps()
    steps.feed(page(lasso_check))
    for index in range(len(trace["states"])):
        expected = {"in-cycle-badge"} if index >= loop else set()
        if index == loop:
            expected.add("cycle-start-badge")
        assert steps.badges[index] == expected, index
    closing = f"then back to step {loop + 1} by <code>{trace['#meta']['loop_action']}</code>, forever"
    assert closing in page(lasso_check)


def test_companions_render_with_their_own_counterexample(lasso_check: dict[str, Any]) -> None:
    two_phase = {**lasso_check, "model": "two-phase", "verdict": "ok", "counterexample": None}
    suite = {
        **two_phase,
        "verdict": "violation",
        "properties": [{**p, "model": "mutex"} for p in lasso_check["properties"]],
        "companions": [lasso_check],
    }
    html = page(suite)
    assert "Companion: mutex" in html and html.count('class="explorer"') == 1
    assert "<th>model</th>" in html


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({"#tup": [1, {"#bigint": "123456789012345678901"}]}, "<<1, 123456789012345678901>>"),
        ({"#set": [{"#bigint": "1"}, 2]}, "{1, 2}"),
        ({"#map": [[{"#bigint": "0"}, "IDLE"], [1, "WAITING"]]}, "[0 ↦ IDLE, 1 ↦ WAITING]"),
        ({"view": 0, "changing": False}, "[view ↦ 0, changing ↦ FALSE]"),
        ([{"#tup": []}, {"#set": []}], "<<<<>>, {}>>"),
        ({"#unserializable": "<object>"}, "<object>"),
    ],
)
def test_itf_values_read_as_tla(value: Any, shown: str) -> None:
    assert itf.text(value) == shown


def test_a_change_marks_only_what_changed() -> None:
    before = {"#tup": [{"view": 0, "log": {"#set": [1, 2]}}, {"view": 0, "log": {"#set": []}}]}
    after = {"#tup": [{"view": 1, "log": {"#set": [2, 3]}}, {"view": 0, "log": {"#set": []}}]}
    html = itf.render(after, before)
    assert '<span class="delta">1</span> <span class="was">0</span>' in html
    assert '<span class="added">3</span>' in html and '<span class="removed">1</span>' in html
    assert html.count("class=changed") == 2  # row 0's two cells; row 1 unchanged
    assert [path for path, _, _ in itf.changes(before, after, "replicas")] == [
        "replicas[0].view",
        "replicas[0].log",
    ]
    assert itf.changes({"#bigint": "5"}, {"#bigint": "5"}, "x") == []


# --------------------------------------------------------------------------- pot conform, pot audit


@pytest.mark.parametrize("verdict", ["violation", "diverges"])
def test_conform_shows_coverage_divergence_and_mutants(verdict: str) -> None:
    document = {**conform_document(), "verdict": verdict}
    document.pop("schema")  # older documents are recognised by their shape
    assert kind_of(document) == "conform"
    html = page(document)
    assert f'class="badge bad big">{verdict}</span>' in html
    assert "197 / 1,208 (16%)" in html
    assert "<code>balances[0]</code>" in html and '<code class="spec">2</code>' in html
    assert '<code class="impl">4</code>' in html
    assert "<li class=diverged><code>Finalize(order=0)</code></li>" in html
    assert "1 of 2 killed" in html and ">survived</span>" in html
    assert "the node cannot crash mid-step" in html


def test_audit_shows_verdict_reasons_cases_and_unexecuted_lines() -> None:
    document = audit_document()
    html = page(document)
    assert 'class="badge warn big">UNVERIFIED</span>' in html
    assert "<code>pot_impl/pbft/replica.py</code></td><td>42, 311</td>" in html
    assert "2 statements: nothing judged them" in html
    assert '475 <span class="note">base 470</span>' in html
    rejected = {**document, "verdict": "reject", "reasons": ["tests failed: tests/impl/test_replica.py"]}
    assert "<li>tests failed: tests/impl/test_replica.py</li>" in page(rejected)


# --------------------------------------------------------------------------- benchmarks


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda path: path.name)
def test_every_benchmark_result_renders_as_tables(path: Path) -> None:
    document = parse(path.name, path.read_text())
    assert document.kind == "benchmark"
    assert "<table>" in render([document])


def test_benchmark_rows_are_charted_by_their_headline_measures() -> None:
    rows = [
        {"model": "two-phase", "workers": 1, "seconds": 7.4, "speedup": 1.0},
        {"model": "two-phase", "workers": 2, "seconds": 5.0, "speedup": 1.47},
    ]
    html = render([Document("workers.json", "benchmark", {"benchmark": "workers", "rows": rows})])
    charts = re.findall(r"<figcaption>(\w+)</figcaption>(<svg.*?</svg>)", html)
    assert [name for name, _ in charts] == ["speedup", "seconds"]
    assert all(svg.count("<rect") == 2 for _, svg in charts)
    assert "two-phase workers=2: 1.47" in html


# --------------------------------------------------------------------------- the commands


def test_pot_report_writes_one_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, safety_check: dict[str, Any], lasso_check: dict[str, Any]
) -> None:
    source, trace = tmp_path / "check.json", tmp_path / "lasso.itf.json"
    source.write_text(json.dumps(safety_check))
    trace.write_text(json.dumps(lasso_check["counterexample"]))
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(conform_document())))
    out = tmp_path / "report.html"
    assert main(["report", str(source), str(trace), "-", str(BENCHMARKS[0]), "--out", str(out)]) == 0
    html = out.read_text()
    assert html.startswith("<!doctype html>") and html.count('<section class="document"') == 4
    kinds = re.findall(r'<header class="doc-head"><div><div class="kind">([^<]+)</div>', html)
    assert kinds == ["Model check", "Counterexample trace", "Conformance", "Benchmark"]
    assert html.count('class="explorer"') == 2 and "&lt;stdin&gt;" in html


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        ('{"hello": "world"}', "not a document pot report knows"),
        ('{"schema": "pot-unknown/1"}', "schema 'pot-unknown/1'"),
    ],
)
def test_unusable_documents_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    source = tmp_path / "input.json"
    if content is not None:
        source.write_text(content)
    assert main(["report", str(source), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pot report: ") and message in err[0]
    assert not (tmp_path / "r.html").exists()


def test_check_html_writes_the_runs_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "check.html"
    assert main([*LASSO, "--html", str(out)]) == 1
    html = out.read_text()
    assert 'class="badge bad big">violation</span>' in html and 'class="explorer"' in html


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "no-such-model"],
        ["conform", "no-such-model"],
        ["audit", "--rev", "no-such-revision"],
    ],
)
def test_an_unwritable_html_target_stops_the_command_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    target = tmp_path / "missing" / "report.html"
    assert main([*argv, "--html", str(target)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "--html" in err[0] and "no such directory" in err[0]
    assert captured.out == ""


def test_conform_and_audit_html_write_their_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conform = ConformanceReport("tiny", "replay", steps=10, transitions_covered=10, transitions_total=10)
    monkeypatch.setattr(conformance.runner, "run_mode", lambda *args, **kwargs: conform)
    assert main(["conform", "tiny", "--mode", "replay", "--html", str(tmp_path / "c.html")]) == 0
    assert "10 / 10 (100%)" in (tmp_path / "c.html").read_text()
    audited = AuditReport(Change("HEAD", "abc", ["pot_impl/x.py"], {}))
    monkeypatch.setattr(conformance.audit, "audit", lambda *args, **kwargs: audited)
    assert main(["audit", "--html", str(tmp_path / "a.html")]) == 0
    assert 'class="badge good big">ACCEPT</span>' in (tmp_path / "a.html").read_text()
