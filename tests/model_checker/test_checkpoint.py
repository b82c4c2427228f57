"""Checkpoint and resume: a search interrupted between levels and resumed is the same search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
    (tmp_path / "two-phase.checkpoint").write_bytes(b"not a pickle")
    with pytest.raises(SpecError, match="not a readable checkpoint"):
        check(two_phase(3), liveness=False, resume_dir=tmp_path)
    fresh = check(two_phase(3), liveness=False, resume_dir=tmp_path / "empty")
    assert fresh.verdict == "ok" and fresh.distinct_states == 288 and fresh.stats["resumed_at_depth"] is None


def test_an_unwritable_checkpoint_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SpecError, match="cannot write the checkpoint"):
        check(two_phase(3), liveness=False, checkpoint_dir=tmp_path / "file" / "dir", checkpoint_every_s=0)
