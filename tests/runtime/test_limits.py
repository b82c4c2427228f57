"""Per-key token buckets and bounded reporting, driven by an explicit clock."""

from __future__ import annotations

from pot_impl.runtime.limits import BoundedReport, TokenBuckets


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    buckets = TokenBuckets(rate=10, burst=3, capacity=100)
    assert [buckets.allow("k", 0.0) for _ in range(4)] == [True, True, True, False]
    assert not buckets.allow("k", 0.05)  # half a token
    assert buckets.allow("k", 0.1)
    assert buckets.allow("other", 0.1)  # keys do not share a bucket


def test_buckets_remember_a_bounded_number_of_keys() -> None:
    buckets = TokenBuckets(rate=1, burst=1, capacity=2)
    assert buckets.allow("a", 0.0) and buckets.allow("b", 0.0) and buckets.allow("c", 0.0)
    assert not buckets.allow("c", 0.0)
    assert buckets.allow("a", 0.0)  # forgotten, so full again: bounded memory, not a bypass of "c"


def test_a_report_lets_a_burst_through_per_interval_and_counts_the_rest() -> None:
    report = BoundedReport(burst=2, interval_s=1.0)
    written = [report.admit(0.1 * i, f"frame {i}") for i in range(10)]
    assert written == [True, True] + [False] * 8
    assert report.take_held_back() == (8, "frame 2")
    assert report.take_held_back() == (0, "")
    assert report.admit(1.0, "later") and report.admit(1.5, "later") and not report.admit(1.9, "later")
