"""Progress of a long search on stderr: a live line on a terminal, plain lines in logs.

A person at a terminal gets one line redrawn in place (rich) with the rate,
distinct states, queue, depth, elapsed time and, when ``--max-states`` bounds
the run, a bar and the time left to that bound (the search may end sooner),
all on one line cut to the terminal's width; it is erased when the search
ends, so the report stands alone. A log (stderr not a terminal) gets one plain
line per report, which CI keeps readable, except with ``--json``: there the
reader is a program and stderr keeps only errors. The engine reports at most
once a second, so short runs show nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from model_checker.engine import Progress

Reporter = Callable[[Progress], None]

BAR_WIDTH = 16
"""Characters of the bar a run bounded by ``--max-states`` shows."""


def plain_line(progress: Progress) -> str:
    """One progress report as a line of a log."""
    return (
        f"  {progress.seconds:6.1f} s  distinct {progress.distinct:,}  queue {progress.queue:,}  "
        f"depth {progress.depth}  {_rate(progress):,.0f} states/s"
    )


class LiveLine:
    """The terminal's progress line; ``max_states`` adds a bar and the time left to that bound."""

    def __init__(self, console: Console, max_states: int | None) -> None:
        self.max_states = max_states
        # Redrawn on each report only (no refresh thread to fork into --workers processes),
        # and leaving sys.stdout and sys.stderr as they are.
        self.live = Live(
            console=console, auto_refresh=False, transient=True, redirect_stdout=False, redirect_stderr=False
        )

    def __call__(self, progress: Progress) -> None:
        self.live.update(self.render(progress), refresh=True)

    def render(self, progress: Progress) -> Text:
        """One report as a line cut to the terminal's width; a bounded run's ETA, then its bar, come last."""
        rate = _rate(progress)
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{rate:,.0f}", style="bold")
        line.append(" states/s  distinct ")
        line.append(f"{progress.distinct:,}", style="bold")
        line.append(f"  queue {progress.queue:,}  depth {progress.depth}  elapsed {_clock(progress.seconds)}")
        if self.max_states is not None:
            left = (self.max_states - progress.distinct) / rate if rate else None
            line.append(f"  ETA {'?' if left is None else _clock(max(left, 0.0))}  ")
            done = min(progress.distinct / self.max_states, 1.0)
            filled = round(BAR_WIDTH * done)
            line.append("━" * filled, style="magenta")
            line.append("━" * (BAR_WIDTH - filled), style="bright_black")
            line.append(f" {done:.0%}")
        return line


@contextmanager
def progress_reporter(
    max_states: int | None, machine_readable: bool, stream: TextIO | None = None
) -> Iterator[Reporter | None]:
    """What reports a search's progress to ``stream`` (stderr), for as long as the search runs."""
    stream = sys.stderr if stream is None else stream
    if stream.isatty():
        line = LiveLine(Console(file=stream), max_states)
        with line.live:
            yield line
    elif machine_readable:
        yield None
    else:
        yield lambda progress: print(plain_line(progress), file=stream, flush=True)


def _rate(progress: Progress) -> float:
    return progress.distinct / progress.seconds if progress.seconds else 0.0


def _clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
