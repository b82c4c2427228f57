"""Trace validation on real cluster runs: faulty runs validate, tampered logs are rejected at the
tampered event."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.trace import TraceInputError, TraceReport, load_cluster_run, validate_directory
from conformance.trace.observed import EVENT_ROLES, RUNTIME_FIELDS, Role, RunLogs
from conformance.trace.scenarios import ScenarioRun, run_scenario
from conformance.trace.sim import ADVERSARIES, check_adversary, check_seed
from conformance.trace.validate import TraceValidator
from pot.cli import main as pot_main
from pot_impl.runtime.cluster import LocalCluster
from pot_impl.runtime.events import EVENT_KINDS, RUNTIME_EVENT_KINDS

Tamper = Callable[[list[dict[str, object]]], int]
"""Edits one node's events in place and returns the (0-based) line it made unexplainable."""


@pytest.fixture(scope="module")
def crash_run(tmp_path_factory: pytest.TempPathFactory) -> ScenarioRun:
    return run_scenario("crash-restart", tmp_path_factory.mktemp("trace") / "crash")


def events_of(run: ScenarioRun, replica: int) -> list[dict[str, object]]:
    path = run.directory / "events" / f"replica{replica}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def tampered_copy(run: ScenarioRun, where: Path, replica: int, tamper: Tamper) -> tuple[Path, str]:
    """A copy of the run with one node's log edited; returns it and the ``path:line`` tampered."""
    shutil.copytree(run.directory, where)
    path = where / "events" / f"replica{replica}.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    line = tamper(events)
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return where, f"{path}:{line + 1}"


def assert_conforms(report: TraceReport) -> None:
    assert report.conforms, report.summary()
    assert report.matched == report.events > 0
    assert report.spec_steps > 0


def test_crash_and_restart_run_is_a_spec_behaviour(crash_run: ScenarioRun) -> None:
    assert crash_run.accepted > 0 and crash_run.timeouts == 0
    kinds = {e["event"] for e in events_of(crash_run, 1)}
    assert {"view-change", "new-view", "executed"} <= kinds, "the primary's crash forced a view change"
    assert_conforms(validate_directory(crash_run.directory))


def test_equivocating_primary_run_is_a_spec_behaviour(tmp_path: Path) -> None:
    run = run_scenario("equivocation", tmp_path / "equivocation")
    assert run.accepted > 0
    logs = load_cluster_run(run.directory)
    assert logs.byzantine == {0} and 0 not in logs.logs
    accepted: dict[object, set[object]] = {}
    for replica in (1, 2, 3):
        for event in events_of(run, replica):
            if event["event"] == "pre-prepared" and event["view"] == 0:
                accepted.setdefault(event["seq"], set()).add(event["digest"])
    assert any(len(digests) > 1 for digests in accepted.values()), "the primary equivocated"
    assert_conforms(validate_directory(run.directory))


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["partition", "lossy", "training"])
def test_faulty_runs_are_spec_behaviours(scenario: str, tmp_path: Path) -> None:
    run = run_scenario(scenario, tmp_path / scenario)
    # Safety is what is validated here; a request timing out (liveness on a loaded machine) is not.
    assert run.accepted > 0
    if scenario == "training":
        assert run.receipts == ("ok", "ok", "ok"), "register, order and the real trainer's claim applied"
    assert_conforms(validate_directory(run.directory))


@pytest.mark.parametrize("seed", range(4))
def test_crash_only_simulations_are_spec_behaviours(seed: int) -> None:
    """Odd seeds kill the first primary at once, so view changes are exercised too."""
    check = check_seed(seed)
    assert check.violations == ()
    assert_conforms(check.trace)
    if seed % 2:
        assert check.trace.constants["max_view"] >= 1


@pytest.mark.parametrize("adversary", sorted(ADVERSARIES))
def test_adversarial_primaries_are_spec_behaviours(adversary: str) -> None:
    check = check_adversary(0, adversary)
    assert check.violations == ()
    assert_conforms(check.trace)
    assert check.trace.constants["byzantine"] == [0]


def executed_lines(events: list[dict[str, object]]) -> list[int]:
    return [i for i, e in enumerate(events) if e["event"] == "executed"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_an_executed_digest_changed_on_one_honest_node_is_the_first_unmatched_event(
    crash_run: ScenarioRun, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    replica = data.draw(st.sampled_from([1, 3]), label="replica")
    events = events_of(crash_run, replica)
    lines = executed_lines(events)
    target = data.draw(st.sampled_from(lines), label="executed event")
    others = sorted({str(events[i]["digest"]) for i in lines} - {str(events[target]["digest"])})
    replacement = data.draw(st.sampled_from(others), label="other digest")

    def swap_digest(log: list[dict[str, object]]) -> int:
        log[target]["digest"] = replacement
        return target

    where, source = tampered_copy(crash_run, tmp_path_factory.mktemp("tamper") / "run", replica, swap_digest)
    report = validate_directory(where)
    assert not report.conforms
    assert report.unmatched is not None and report.unmatched.event.source == source
    assert report.unmatched.event.kind == "executed"


def test_prepared_moved_before_its_pre_prepare_is_rejected_there(
    crash_run: ScenarioRun, tmp_path: Path
) -> None:
    def swap(log: list[dict[str, object]]) -> int:
        prepared = next(i for i, e in enumerate(log) if e["event"] == "prepared")
        pre_prepared = max(
            i
            for i in range(prepared)
            if log[i]["event"] == "pre-prepared" and log[i]["seq"] == log[prepared]["seq"]
        )
        log[prepared]["t"], log[pre_prepared]["t"] = log[pre_prepared]["t"], log[prepared]["t"]
        log[prepared], log[pre_prepared] = log[pre_prepared], log[prepared]
        return pre_prepared

    where, source = tampered_copy(crash_run, tmp_path / "reordered", 1, swap)
    report = validate_directory(where)
    assert not report.conforms
    assert report.unmatched is not None and report.unmatched.event.source == source
    assert report.unmatched.event.kind == "prepared"
    assert "Commit" in report.unmatched.reason


def test_a_message_received_before_its_sender_sent_it_is_rejected(
    crash_run: ScenarioRun, tmp_path: Path
) -> None:
    """Node 1 claims to receive a COMMIT from node 3 for a sequence number node 3 never prepared."""
    seqs = [int(str(e["seq"])) for e in events_of(crash_run, 3) if e["event"] == "prepared"]

    def forge(log: list[dict[str, object]]) -> int:
        line = next(i for i, e in enumerate(log) if e["event"] == "received" and e["message"] == "Commit")
        log[line]["peer"], log[line]["seq"] = 3, max(seqs) + 5
        return line

    where, source = tampered_copy(crash_run, tmp_path / "forged", 1, forge)
    report = validate_directory(where)
    assert report.unmatched is not None and report.unmatched.event.source == source
    assert "had not sent a Commit" in report.unmatched.reason


def test_unreadable_runs_are_one_line_errors(crash_run: ScenarioRun, tmp_path: Path) -> None:
    with pytest.raises(TraceInputError, match="no such cluster directory"):
        validate_directory(tmp_path / "missing")
    broken = tmp_path / "broken"
    shutil.copytree(crash_run.directory, broken)
    with (broken / "events" / "replica2.jsonl").open("a") as log:
        log.write("{not json\n")
    with pytest.raises(TraceInputError, match=r"replica2\.jsonl:\d+: not a JSON object"):
        validate_directory(broken)
    command = [sys.executable, "-m", "conformance.trace", str(tmp_path / "missing")]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    assert finished.returncode == 2
    assert finished.stderr.count("\n") == 1 and "Traceback" not in finished.stderr


def test_json_report_names_the_verdict_and_the_evidence(crash_run: ScenarioRun) -> None:
    command = [sys.executable, "-m", "conformance.trace", str(crash_run.directory), "--json"]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert report["mode"] == "trace" and report["verdict"] == "conforms" and report["unmatched"] is None
    assert report["constants"]["replicas"] == 4 and report["constants"]["byzantine"] == []


def test_every_event_kind_a_node_writes_is_classified() -> None:
    assert set(EVENT_ROLES) == EVENT_KINDS, "a new event kind needs a row in observed.EVENT_ROLES"
    steps = {kind for kind, role in EVENT_ROLES.items() if role is Role.STEP}
    assert steps == _table_kinds(), "each spec-step kind has a matcher in the validator's table"
    assert set(RUNTIME_FIELDS) == RUNTIME_EVENT_KINDS


def _table_kinds() -> set[str]:
    validator = TraceValidator(RunLogs(4, 1, frozenset(), 4, 16, {}))
    return set(validator.table)


def test_a_run_under_hostile_input_is_a_spec_behaviour(tmp_path: Path) -> None:
    """Malformed frames and abuse floods across a primary's crash and a partition: the nodes write
    every kind of event they can, and the log validates. Two kinds depend on timing and are driven
    by tests/impl/test_catch_up.py: a caught-up batch (a timer firing at the right moment) and a
    state transfer (the partitioned replica falling a whole checkpoint behind while admission
    control paces the hostile clients)."""
    run = run_scenario("hostile", tmp_path / "hostile")
    assert run.accepted > 0
    kinds: set[object] = set()
    for replica in range(4):
        kinds |= {e["event"] for e in events_of(run, replica)}
    assert kinds >= set(EVENT_ROLES) - {"caught-up", "state-transfer"}
    assert_conforms(validate_directory(run.directory))


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('{"node": 2, "n": 1, "t": 1.0, "event": "warp"}', "unknown event kind 'warp'"),
        ('{"node": 2, "n": 1, "t": 1.0, "event": "dropped", "peer": 7}', "field 'peer' of a dropped event"),
        ('{"node": 2, "n": 1, "t": 1.0, "event": "executed", "seq": "x"}', "event lacks a well-typed field"),
    ],
)
def test_ill_typed_events_are_one_line_errors_naming_file_and_line(
    crash_run: ScenarioRun, tmp_path: Path, line: str, error: str
) -> None:
    broken, number = _appended(crash_run, tmp_path, (line + "\n").encode())
    with pytest.raises(TraceInputError, match=rf"replica2\.jsonl:{number}: {re.escape(error)}"):
        validate_directory(broken)


def test_a_log_that_is_not_utf8_names_its_line(crash_run: ScenarioRun, tmp_path: Path) -> None:
    broken, number = _appended(crash_run, tmp_path, b'{"event": "\xff"}\n')
    with pytest.raises(TraceInputError, match=rf"replica2\.jsonl:{number}: not UTF-8"):
        validate_directory(broken)


def _appended(run: ScenarioRun, tmp_path: Path, data: bytes) -> tuple[Path, int]:
    """A copy of ``run`` with ``data`` appended to replica 2's log, and the number of its line."""
    broken = tmp_path / "broken"
    shutil.copytree(run.directory, broken)
    log = broken / "events" / "replica2.jsonl"
    number = log.read_bytes().count(b"\n") + 1
    with log.open("ab") as out:
        out.write(data)
    return broken, number


def test_drop_events_read_as_skipped_steps(crash_run: ScenarioRun, tmp_path: Path) -> None:
    """The runtime's ``dropped`` names a connection as its peer; the reader keeps it as context."""
    copy = tmp_path / "with-drops"
    shutil.copytree(crash_run.directory, copy)
    log = copy / "events" / "replica1.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    at = len(events) // 2
    dropped = {
        "node": 1,
        "n": 0,
        "t": events[at]["t"],
        "event": "dropped",
        "peer": "in-7",
        "reason": "malformed",
    }
    events.insert(at, {**dropped, "principal": "client:ab"})
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    observed = load_cluster_run(copy).logs[1]
    assert (
        observed[at].kind == "dropped" and observed[at].reason == "peer in-7, principal client:ab, malformed"
    )
    assert_conforms(validate_directory(copy))


def test_a_run_with_more_than_f_byzantine_replicas_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pot cluster up --allow-over-f` runs such a cluster; the spec (n >= 3f + 1) cannot model it."""
    directory = tmp_path / "over-f"
    LocalCluster(directory, 4, byzantine={0: "equivocate", 1: "silent"}).create()
    (directory / "events").mkdir(exist_ok=True)
    for honest in (2, 3):
        (directory / "events" / f"replica{honest}.jsonl").touch()
    with pytest.raises(TraceInputError, match="2 Byzantine replicas exceed faulty=1"):
        validate_directory(directory)
    assert pot_main(["conform", "default", "--mode", "trace", "--log", str(directory)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pot conform: --log {directory}: the spec cannot model this run")
    assert err.count("\n") == 1
