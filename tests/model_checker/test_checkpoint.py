"""Checkpoint and resume: a search interrupted between levels and resumed is the same search."""

from __future__ import annotations

import pickle
import sys
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_checker import checkpoint, codec
from model_checker.checker import check
from model_checker.examples.two_phase import two_phase
from model_checker.model import SpecError
from pot.registry import all_models
from tests.model_checker.helpers import Interrupted, graph_figures, interrupt_after, search_figures


@pytest.mark.parametrize(
    ("model", "options"),
    [
        (two_phase(5), {"liveness": False}),
        (two_phase(3), {"record_graph": True}),
        (all_models()["pbft-tiny"].instantiate({"bug": "commit_at_f_plus_1"}), {"liveness": False}),
    ],
    ids=["two-phase", "two-phase-graph", "pbft-tiny-bug"],
)
def test_an_interrupted_search_resumed_is_the_same_search(
    model: Any, options: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = check(model, **options)
    with monkeypatch.context() as patched:
        interrupt_after(4, patched)
        with pytest.raises(Interrupted):
            check(model, **options, checkpoint_dir=tmp_path, checkpoint_every_s=0)
    assert (tmp_path / f"{model.name}.checkpoint").exists()
    resumed = check(model, **options, resume_dir=tmp_path, memory_budget=1)
    assert resumed.stats["resumed_at_depth"] == 5 and whole.stats["resumed_at_depth"] is None
    assert search_figures(resumed) == search_figures(whole)
    if options.get("record_graph"):
        assert graph_figures(resumed) == graph_figures(whole)


def test_resuming_needs_the_same_run(tmp_path: Path) -> None:
    check(two_phase(3), liveness=False, checkpoint_dir=tmp_path, checkpoint_every_s=0, max_depth=4)
    with pytest.raises(SpecError, match="another run of two-phase"):
        check(two_phase(3), resume_dir=tmp_path)  # liveness records a graph the checkpoint lacks
    (tmp_path / "two-phase.checkpoint").write_bytes(b"not a checkpoint")
    with pytest.raises(SpecError, match="not a checkpoint of this version"):
        check(two_phase(3), liveness=False, resume_dir=tmp_path)
    fresh = check(two_phase(3), liveness=False, resume_dir=tmp_path / "empty")
    assert fresh.verdict == "ok" and fresh.distinct_states == 288 and fresh.stats["resumed_at_depth"] is None


def test_an_unwritable_checkpoint_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SpecError, match="cannot write the checkpoint"):
        check(two_phase(3), liveness=False, checkpoint_dir=tmp_path / "file" / "dir", checkpoint_every_s=0)


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of two-phase (RM = 3)'s checkpoint after four levels."""
    directory = tmp_path_factory.mktemp("saved")
    check(two_phase(3), liveness=False, checkpoint_dir=directory, checkpoint_every_s=0, max_depth=4)
    return (directory / "two-phase.checkpoint").read_bytes()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_checkpoint_is_refused_in_one_line(
    saved_checkpoint: bytes, tmp_path: Path, data: st.DataObject
) -> None:
    damaged = bytearray(saved_checkpoint)
    if data.draw(st.booleans(), label="truncated"):
        del damaged[data.draw(st.integers(len(checkpoint.MAGIC), len(damaged) - 1), label="length") :]
    else:
        at = data.draw(st.integers(len(checkpoint.MAGIC), len(damaged) - 1), label="at")
        damaged[at] ^= data.draw(st.integers(1, 255), label="bits")
    (tmp_path / "two-phase.checkpoint").write_bytes(damaged)
    with pytest.raises(SpecError, match="damaged"):
        check(two_phase(3), liveness=False, resume_dir=tmp_path)


class Colour(IntEnum):
    """A state's class that the test redefines, as a changed specification would."""

    RED = 0
    BLUE = 1


def test_a_checkpoint_whose_states_the_code_no_longer_reads_is_refused_in_one_line(
    saved_checkpoint: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    header = len(checkpoint.MAGIC) + checkpoint.DIGEST_SIZE
    saved: checkpoint.Checkpoint = pickle.loads(saved_checkpoint[header:])
    _, ids = saved.frontier[0]
    saved.frontier = [(codec.dumps([Colour.BLUE]), ids[:1])]
    model = two_phase(3)
    checkpoint.save(tmp_path, model, saved)
    monkeypatch.setattr(sys.modules[__name__], "Colour", IntEnum("Colour", {"RED": 0}))
    with pytest.raises(SpecError, match="do not decode with this code of two-phase"):
        check(model, liveness=False, resume_dir=tmp_path)
