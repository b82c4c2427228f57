"""``--ray HOST:PORT`` on a cluster of two Ray nodes: a head and a second node joined to it, each
started by ``ray start`` as it would be on its own machine (here both on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_checker.checker import check
from model_checker.examples.two_phase import two_phase

BIN = Path(sys.executable).parent

LOCAL = {**os.environ, "RAY_AUTH_MODE": "disabled"}
"""Without the token authentication Ray enables by default: every node here is this machine."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ray(*arguments: str) -> None:
    subprocess.run([str(BIN / "ray"), *arguments], check=True, capture_output=True, timeout=120, env=LOCAL)


@pytest.fixture
def two_nodes() -> Iterator[str]:
    """The head's address; each node offers one CPU, so the two actors run on different nodes."""
    port = _free_port()
    node = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    try:
        _ray("start", "--head", f"--port={port}", "--include-dashboard=false", *node)
        _ray("start", f"--address=127.0.0.1:{port}", *node)
        yield f"127.0.0.1:{port}"
    finally:
        _ray("stop", "--force")


@pytest.mark.slow
def test_a_search_on_two_ray_nodes_is_the_one_process_search(two_nodes: str) -> None:
    command = [str(BIN / "pot"), "check", "two-phase", "--const", "RM=6", "--no-liveness", "--json"]
    command += ["--ray", two_nodes, "--workers", "3"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True, env=LOCAL)
    report = json.loads(run.stdout)
    one = check(two_phase(6), liveness=False)
    assert report["workers"] == 3 and report["ray"] == two_nodes and report["verdict"] == "ok"
    counts = (report["distinct_states"], report["generated_states"], report["depth"])
    assert counts == (one.distinct_states, one.generated_states, one.depth)
