"""Operator mistakes end with one line on stderr that names what to fix and exit status 2."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from pot.cli import main
from pot_impl.runtime.cluster import LocalCluster

Edit = Callable[[LocalCluster], None]


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``pot argv``; assert it failed with status 2 and exactly one line on stderr, return it."""
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def cluster_files(tmp_path: Path) -> LocalCluster:
    """Configs and keys of a cluster that is not running."""
    cluster = LocalCluster(tmp_path / "c", 4)
    cluster.create()
    return cluster


def set_node_path(cluster: LocalCluster, key: str, value: str) -> None:
    path = cluster.node_config_path(0)
    lines = [
        f'{key} = "{value}"' if line.startswith(f"{key} =") else line for line in path.read_text().split("\n")
    ]
    path.write_text("\n".join(lines))


def new_database(cluster: LocalCluster, schema: str) -> Path:
    """replica 0's store, created as an SQLite database with ``schema`` and a few hundred rows."""
    store = cluster.directory / "data" / "replica0" / "node.db"
    store.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(store)) as db:
        db.execute(schema)
        db.executemany(
            "INSERT INTO records VALUES (?, ?, ?)", [("log", bytes([i]), b"v" * 500) for i in range(200)]
        )
        db.commit()
    return store


def damage_store(cluster: LocalCluster) -> None:
    store = new_database(cluster, "CREATE TABLE records (kind TEXT, key BLOB, value BLOB)")
    data = bytearray(store.read_bytes())
    data[4096:8192] = b"\x5a" * 4096  # the second page: the table's b-tree
    store.write_bytes(bytes(data))


def foreign_store(cluster: LocalCluster) -> None:
    new_database(cluster, "CREATE TABLE records (a INTEGER, b BLOB, c BLOB)")


def data_dir_under_a_file(cluster: LocalCluster) -> None:
    (cluster.directory / "a-file").write_text("not a directory")
    set_node_path(cluster, "data_dir", "a-file/data")


def event_log_is_a_directory(cluster: LocalCluster) -> None:
    (cluster.directory / "events-dir").mkdir()
    set_node_path(cluster, "event_log", "events-dir")


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        (damage_store, "node.db: the database is damaged"),
        (foreign_store, "node.db: not a node store"),
        (data_dir_under_a_file, "cannot create the data directory (Not a directory)"),
        (event_log_is_a_directory, "node.event_log: cannot open"),
    ],
)
def test_node_run_on_a_bad_store_or_log_path(
    cluster_files: LocalCluster, capsys: pytest.CaptureFixture[str], mistake: Edit, message: str
) -> None:
    mistake(cluster_files)
    config = str(cluster_files.node_config_path(0))
    assert message in one_line_error(["node", "run", "--config", config], capsys)


def test_a_config_that_is_not_utf8_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "node.toml"
    config.write_bytes(b"\xff\xfe[node]\n")
    assert f"{config}: not UTF-8 text" in one_line_error(["node", "run", "--config", str(config)], capsys)


def test_cluster_up_under_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    err = one_line_error(["cluster", "up", "--dir", str(tmp_path / "a-file" / "c")], capsys)
    assert "cannot create the cluster directory" in err


def test_an_integer_beyond_64_bits_names_the_field(
    cluster_files: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    tx = json.dumps({"type": "Finalize", "order_id": 2**64})
    config, key = str(cluster_files.cluster_config_path), str(cluster_files.client_key_path)
    err = one_line_error(["submit", "--config", config, "--key", key, "--tx", tx], capsys)
    assert err.startswith("pot submit: --tx.order_id: 18446744073709551616 is outside")


def test_a_request_over_the_size_limit_is_refused_before_sending(
    cluster_files: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listens here: the client refuses before it would need the cluster."""
    assert cluster_files.config is not None
    size = cluster_files.config.protocol.max_request_bytes
    config, key = str(cluster_files.cluster_config_path), str(cluster_files.client_key_path)
    argv = ["submit", "--config", config, "--key", key, "--operation-hex", "00" * size, "--timeout", "1"]
    assert "exceeds the cluster's protocol.max_request_bytes" in one_line_error(argv, capsys)
