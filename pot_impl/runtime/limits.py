"""Rate limits for what peers may make a node do: per-key token buckets and bounded reporting.

Both are plain objects driven by the caller's clock, so they are tested without
waiting and hold no timers of their own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class TokenBuckets:
    """One token bucket per key: ``rate`` tokens a second, at most ``burst`` saved up.

    At most ``capacity`` keys are remembered (the least recently used is forgotten), so a peer
    inventing keys costs bounded memory; a forgotten key starts again with a full bucket.
    """

    def __init__(self, rate: float, burst: float, capacity: int) -> None:
        self.rate = rate
        self.burst = burst
        self.capacity = capacity
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def allow(self, key: Hashable, now: float) -> bool:
        """Take one token from ``key``'s bucket; False (nothing taken) when it is empty."""
        tokens, updated = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > self.capacity:
            self._buckets.popitem(last=False)
        return allowed


class BoundedReport:
    """Lets the first ``burst`` reports of every ``interval_s`` through and counts the others.

    A flood of bad input then costs a bounded number of log lines: the caller writes each report
    let through, and once per interval one line for the ones held back (``take_held_back``).
    """

    def __init__(self, burst: int, interval_s: float) -> None:
        self.burst = burst
        self.interval_s = interval_s
        self._window_start = float("-inf")
        self._in_window = 0
        self._held_back = 0
        self._example = ""

    def admit(self, now: float, reason: str) -> bool:
        """True if this report should be written; otherwise it is counted (``reason`` kept as an
        example when it is the first held back since the last ``take_held_back``)."""
        if now - self._window_start >= self.interval_s:
            self._window_start, self._in_window = now, 0
        self._in_window += 1
        if self._in_window <= self.burst:
            return True
        if not self._held_back:
            self._example = reason
        self._held_back += 1
        return False

    @property
    def held_back(self) -> int:
        return self._held_back

    def take_held_back(self) -> tuple[int, str]:
        """How many reports were held back since the last call, and the first one's reason."""
        taken = self._held_back, self._example
        self._held_back, self._example = 0, ""
        return taken
