"""The runtime's CLI: one-line errors with exit status 2 for user mistakes, and the documented happy path."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pot.cli import main
from pot_impl.cli import _parse_byzantine
from pot_impl.runtime.cluster import LocalCluster
from tests.schemas import assert_schema


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def cluster_files(tmp_path: Path) -> LocalCluster:
    """Configs and keys of a cluster that is not running."""
    cluster = LocalCluster(tmp_path / "c", 4)
    cluster.create()
    return cluster


def test_keys_writes_a_pair_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "me.key"
    status, out, _ = run_main(["keys", "--out", str(path)], capsys)
    assert status == 0 and path.exists() and (tmp_path / "me.key.pub").read_text().strip() in out
    status, _, err = run_main(["keys", "--out", str(path)], capsys)
    assert status == 2 and err.count("\n") == 1 and "refusing to overwrite" in err


@pytest.mark.parametrize("where", ["missing/dir/me.key", "a-file/me.key"])
def test_keys_under_a_missing_directory_or_a_file_is_refused_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    status, _, err = run_main(["keys", "--out", str(tmp_path / where)], capsys)
    assert status == 2 and err.count("\n") == 1 and "is not a directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("checkpoint_interval = 16", "checkpoint_interval = 0", "protocol.checkpoint_interval"),
        ('address = "127.0.0.1:', 'address = "127.0.0.1;', "replicas[0].address"),
        ("[node]\nid = 0", "[node]\nid = 99", "node.id"),
        ("[protocol]", "[mystery]\n[protocol]", "mystery"),
    ],
)
def test_node_run_with_a_bad_config_names_the_field(
    cluster_files: LocalCluster, capsys: pytest.CaptureFixture[str], old: str, new: str, field: str
) -> None:
    path = cluster_files.node_config_path(0)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    status, _, err = run_main(["node", "run", "--config", str(path)], capsys)
    assert status == 2
    assert err.count("\n") == 1 and f"{field}:" in err


def test_node_run_with_someone_elses_key_is_refused(
    cluster_files: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cluster_files.node_config_path(1)
    path.write_text(path.read_text().replace("keys/replica1.key", "keys/replica2.key"))
    status, _, err = run_main(["node", "run", "--config", str(path)], capsys)
    assert status == 2 and "node.key_file" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("tx", "message"),
    [
        ("{", "--tx: not valid JSON"),
        ('{"type": "Steal"}', "--tx.type"),
        ('{"type": "Finalize"}', "--tx.order_id: missing"),
        ('{"type": "Finalize", "order_id": "one"}', "--tx.order_id: expected an integer"),
        ('{"type": "Register", "role": 1, "public_key": "zz", "stake": 1}', "--tx.public_key: not hex"),
    ],
)
def test_submit_with_a_bad_transaction_says_which_field(
    cluster_files: LocalCluster, capsys: pytest.CaptureFixture[str], tx: str, message: str
) -> None:
    config, key = str(cluster_files.cluster_config_path), str(cluster_files.client_key_path)
    status, _, err = run_main(["submit", "--config", config, "--key", key, "--tx", tx], capsys)
    assert status == 2 and message in err and err.count("\n") == 1


def test_missing_files_and_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_main(["status", "--config", str(tmp_path / "none.toml")], capsys)
    assert status == 2 and "none.toml" in err
    status, out, _ = run_main(["status", "--config", str(tmp_path / "none.toml"), "--json"], capsys)
    assert status == 2 and "none.toml" in assert_schema(json.loads(out), "status")["error"]
    status, _, err = run_main(["cluster", "up", "--nodes", "3", "--dir", str(tmp_path / "c")], capsys)
    assert status == 2 and "--nodes" in err
    byzantine = ["cluster", "up", "--byzantine", "9:equivocate", "--dir", str(tmp_path / "c")]
    status, _, err = run_main(byzantine, capsys)
    assert status == 2 and "--byzantine" in err


def test_cluster_up_submit_status_down(tmp_path: Path) -> None:
    """The README's walk-through, as separate processes."""
    directory = tmp_path / "walkthrough"
    pot = [sys.executable, "-m", "pot"]

    def pot_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*pot, *args], capture_output=True, text=True, timeout=60)

    up = pot_run("cluster", "up", "--nodes", "4", "--dir", str(directory))
    try:
        assert up.returncode == 0, up.stderr
        submit_line = next(line for line in up.stdout.splitlines() if line.startswith("submit:"))
        tx = submit_line.split("--tx ", 1)[1].strip("'")
        config, key = str(directory / "cluster.toml"), str(directory / "keys" / "client.key")
        first = pot_run("submit", "--config", config, "--key", key, "--tx", tx)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["receipt"]["reason"] == "ok"
        again = pot_run("submit", "--config", config, "--key", key, "--tx", tx)
        assert json.loads(again.stdout)["receipt"]["reason"] != "ok"  # registering twice is refused
        status = pot_run("status", "--config", config, "--json")
        document = json.loads(status.stdout)
        assert_schema(document, "status")
        reports = document["replicas"]
        assert {r["last_executed"] for r in reports.values()} == {2}
        assert len({r["ledger"]["state_digest"] for r in reports.values()}) == 1
    finally:
        down = pot_run("cluster", "down", "--dir", str(directory))
    assert down.returncode == 0 and "stopped 4" in down.stdout


def test_a_second_node_on_a_running_replicas_store_exits_2_and_touches_nothing(
    make_cluster: Callable[..., LocalCluster], capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = make_cluster(4)
    log = cluster.event_log_path(0)
    before = log.read_bytes()
    status, _, err = run_main(["node", "run", "--config", str(cluster.node_config_path(0))], capsys)
    assert status == 2 and err.count("\n") == 1 and "in use by another node" in err
    assert log.read_bytes()[: len(before)] == before


def test_cluster_up_refuses_more_than_f_byzantine_replicas_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "c"
    over_f = ["cluster", "up", "--nodes", "4", "--byzantine", "0:equivocate", "--byzantine", "1:silent"]
    status, out, err = run_main([*over_f, "--dir", str(directory)], capsys)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "2 Byzantine replicas exceed f = 1 of n = 4" in err and "--allow-over-f" in err
    assert not directory.exists()
    allowed = _parse_byzantine(["0:equivocate", "1:silent"], 4, allow_over_f=True)
    assert allowed == {0: "equivocate", 1: "silent"}
    assert "warning: 2 Byzantine replicas exceed f = 1" in capsys.readouterr().err
