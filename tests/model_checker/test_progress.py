"""Progress on stderr: plain lines in logs, none with --json there, a live line on a terminal."""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterator
from io import StringIO

import pytest
from rich.console import Console

from model_checker.cli import register
from model_checker.engine import Progress
from model_checker.model import Action, Model, ModelSpec
from model_checker.progress import LiveLine, plain_line, progress_reporter

PLAIN = re.compile(r"^ +\d+\.\d s  distinct [\d,]+  queue [\d,]+  depth \d+  [\d,]+ states/s$")


class Terminal(StringIO):
    """A stream that says it is a terminal, as stderr does in an interactive shell."""

    def isatty(self) -> bool:
        return True


def slow_counter(steps: int = 8, pause: float = 0.2) -> Model[int]:
    """A chain of ``steps`` states, each step taking ``pause`` seconds: a search that runs over a second."""

    def advance(n: int) -> Iterator[tuple[tuple[()], int]]:
        if n < steps:
            time.sleep(pause)
            yield (), n + 1

    return Model("slow", init=lambda: [0], actions=(Action("Advance", advance),), constants={"steps": steps})


def run_check(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    spec = ModelSpec("slow", slow_counter, {"steps": 8, "pause": 0.2}, "a slow chain")
    register(parser.add_subparsers(), lambda: {"slow": spec})
    args = parser.parse_args(["check", "slow", "--workers", "1", "--no-deadlock", *argv])
    status: int = args.run(args)
    return status


def test_a_log_gets_one_plain_line_per_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check([]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(PLAIN.match(line) for line in lines), lines


def test_a_log_gets_no_progress_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check(["--json"]) == 0
    assert capsys.readouterr().err == ""


def test_the_plain_line_shape() -> None:
    line = plain_line(Progress(distinct=12_345, queue=678, depth=9, seconds=2.5))
    assert line == "     2.5 s  distinct 12,345  queue 678  depth 9  4,938 states/s"


def test_which_reporter_each_stream_gets() -> None:
    log = StringIO()
    with progress_reporter(None, machine_readable=False, stream=log) as report:
        assert report is not None
        report(Progress(10, 2, 1, 1.0))
    assert PLAIN.match(log.getvalue().rstrip("\n"))
    with progress_reporter(None, machine_readable=True, stream=StringIO()) as report:
        assert report is None
    terminal = Terminal()
    with progress_reporter(100, machine_readable=True, stream=terminal) as report:
        assert isinstance(report, LiveLine)
        report(Progress(25, 4, 2, 1.0))
    assert "distinct" in terminal.getvalue() and "\x1b[" in terminal.getvalue()


def live_output(max_states: int | None, *reports: Progress) -> str:
    screen = StringIO()
    line = LiveLine(Console(force_terminal=True, file=screen, width=200), max_states)
    with line.live:
        for report in reports:
            line(report)
    return screen.getvalue()


def test_the_live_line_shows_rate_figures_elapsed_and_the_eta_of_a_bounded_run() -> None:
    screen = live_output(1_000, Progress(250, 10, 3, 2.0), Progress(500, 12, 4, 4.0))
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert "125 states/s  distinct 250  queue 10  depth 3  elapsed 0:02  ETA 0:06" in plain
    assert "distinct 500  queue 12  depth 4  elapsed 0:04  ETA 0:04" in plain and "50%" in plain
    assert screen.endswith("\x1b[2K")  # erased when the search ends: the report stands alone


def test_the_live_line_of_an_unbounded_run_has_no_eta() -> None:
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", live_output(None, Progress(7_200_000, 5, 30, 3_700.0)))
    assert "1,946 states/s  distinct 7,200,000  queue 5  depth 30  elapsed 1:01:40" in plain
    assert "ETA" not in plain
