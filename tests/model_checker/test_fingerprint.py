"""Fingerprints are process-stable: identical under different PYTHONHASHSEED values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import hashlib
from model_checker.examples.two_phase import two_phase
from model_checker.graph import explore
graph = explore(two_phase(3))
print(graph.num_states, hashlib.sha256(graph.fingerprints.tobytes()).hexdigest())
print(hashlib.sha256(graph.targets.tobytes() + graph.labels.tobytes()).hexdigest())
"""


def _run(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_fingerprints_do_not_depend_on_the_hash_seed() -> None:
    outputs = {_run(seed) for seed in ("0", "1", "4242")}
    assert len(outputs) == 1
    assert outputs.pop().startswith("288 ")


def test_string_hashes_do_differ_so_the_test_can_fail() -> None:
    program = "print(hash('TwoPhase'))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", program],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 2
