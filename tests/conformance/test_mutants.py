"""The mutation catalogue: every patch still applies, the working tree is never patched, and the
suite kills representative mutants (the full catalogue runs under -m slow)."""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import runner
from conformance.checkout import CheckoutError, copy_sources
from conformance.mutants import CATALOGUE, Edit, Mutant, MutantError, default_modes, run_catalogue
from conformance.mutants.campaign import Calibration, CaseOutcome, Mode, calibrate, judge
from conformance.mutants.plan_differential import compare

REQUIRED_BUGS = 16
REPOSITORY = Path(__file__).resolve().parents[2]


def sim_modes(sim_seeds: int, adversary_seeds: int) -> list[Mode]:
    """The simulator-backed modes only, on few seeds, for the fast tier."""
    wanted = {"sim-trace", "sim-adversary"}
    return [
        m for m in default_modes(sim_seeds=sim_seeds, adversary_seeds=adversary_seeds) if m.name in wanted
    ]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_catalogue_covers_the_issue() -> None:
    names = [m.name for m in CATALOGUE]
    assert len(names) == len(set(names)) >= REQUIRED_BUGS
    assert all(m.path.startswith("pot_impl/") for m in CATALOGUE)


@pytest.mark.parametrize("mutant", CATALOGUE, ids=lambda m: m.name)
def test_every_mutant_still_applies_to_the_current_implementation(mutant: Mutant) -> None:
    original = (REPOSITORY / mutant.path).read_text(encoding="utf-8")
    patched = mutant.patched(original)
    assert patched != original
    compile(patched, mutant.path, "exec")


@given(st.text(alphabet="abc\n ", min_size=1, max_size=40), st.integers(min_value=0, max_value=3))
def test_an_edit_applies_only_when_its_search_text_is_unique(search: str, copies: int) -> None:
    text = "x" + "\0".join([search] * copies) + "y"
    mutant = Mutant("probe", "pot_impl/none.py", (Edit(search, "\1"),), "test")
    if text.count(search) == 1:
        assert mutant.patched(text).count("\1") == 1
    else:
        with pytest.raises(MutantError):
            mutant.patched(text)


def test_representative_mutants_are_killed_and_the_tree_is_untouched() -> None:
    names = ["prepare-quorum-off-by-one", "checkpoint-stable-at-f-plus-1", "two-pre-prepares-accepted"]
    paths = {REPOSITORY / m.path for m in CATALOGUE if m.name in names}
    before = {path: digest(path) for path in paths}
    results, calibration = run_catalogue(names, modes=sim_modes(sim_seeds=3, adversary_seeds=1))
    assert {m.name for m in calibration.modes} == {"sim-trace", "sim-adversary"}
    assert {path: digest(path) for path in paths} == before
    killed = {r.name: r for r in results}
    assert all(r.killed for r in results), [r for r in results if not r.killed]
    assert killed["two-pre-prepares-accepted"].mode == "sim-adversary"
    assert killed["checkpoint-stable-at-f-plus-1"].detail, "a kill says what diverged"


@pytest.mark.parametrize("seed", range(3))
def test_new_view_plans_of_the_implementation_equal_the_spec(seed: int) -> None:
    assert compare(300, seed) == (300, None)


def test_an_equivalent_mutant_survives() -> None:
    """A patch that changes no behaviour must not be reported killed (no false kills)."""
    equivalent = Mutant(
        "docstring-only",
        "pot_impl/pbft/quorums.py",
        (Edit('"""f: the most Byzantine replicas', '"""f: the largest number of Byzantine replicas'),),
        "changes a docstring only",
    )
    results, _ = run_catalogue(mutants=[equivalent], modes=sim_modes(sim_seeds=2, adversary_seeds=1))
    assert [r.outcome for r in results] == ["survived"]


def test_a_mutant_that_only_times_out_is_undecided_not_killed() -> None:
    """No verdict in time says nothing about the mutant: it is neither killed nor survived."""
    slow = Mode(
        "sleeps",
        ("forever",),
        lambda cases, stop: [sys.executable, "-c", "import time; time.sleep(60)"],
        lambda finished, cases: [CaseOutcome(cases[0], True)],
        timeout_s=0.5,
    )
    mutant = next(m for m in CATALOGUE if m.name == "prepare-quorum-off-by-one")
    calibration = Calibration(modes=[slow])
    with tempfile.TemporaryDirectory() as scratch:
        root = copy_sources(REPOSITORY, Path(scratch))
        result = judge(mutant, calibration, root, timeout_s=0.5)
    assert result.outcome == "undecided" and not result.killed
    assert result.mode == "sleeps" and "no verdict within" in result.detail


def test_a_mode_no_case_conforms_in_on_the_unpatched_copy_is_dropped_saying_why(tmp_path: Path) -> None:
    broken = Mode(
        "broken",
        ("only",),
        lambda cases, stop: [sys.executable, "-c", "raise SystemExit('ImportError: no _codec here')"],
        lambda finished, cases: [CaseOutcome(cases[0], False, None, finished.stderr.strip())],
    )
    calibration = calibrate([broken], tmp_path, timeout_s=60)
    assert calibration.modes == []
    assert "(only: ImportError: no _codec here)" in calibration.skipped["broken"]


def test_pot_conform_mutants_notes_the_modes_it_could_not_use(monkeypatch: pytest.MonkeyPatch) -> None:
    skipped = Calibration(skipped={"ledger-replay": "no case conforms on the unpatched implementation"})
    monkeypatch.setattr(runner, "run_catalogue", lambda **options: ([], skipped))
    report = runner.ConformanceReport("pbft-tiny", "stateful")
    runner.run_mutant_catalogue(report, "pbft-tiny", 0)
    assert report.notes == [
        "mutation mode ledger-replay not used: no case conforms on the unpatched implementation"
    ]
    assert "note: mutation mode ledger-replay not used" in report.summary()


def test_the_catalogue_needs_a_checkout_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckoutError, match="not inside a git repository"):
        run_catalogue(["prepare-quorum-off-by-one"], modes=[])


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 21 mutants take about 6 minutes here, past the project's 300 s
def test_the_whole_catalogue_is_killed() -> None:
    results, calibration = run_catalogue()
    survivors = [r.name for r in results if not r.killed]
    assert survivors == [], f"modes used: {[m.name for m in calibration.modes]}"
    assert all(r.mode and r.detail for r in results)
