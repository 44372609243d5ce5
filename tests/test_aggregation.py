"""Storm aggregation as pure logic with an injected clock."""

from __future__ import annotations

from discord_logging.aggregation import Release, StormAggregator


def run(
    aggregator: StormAggregator[str], items: list[tuple[str, str, float]]
) -> tuple[list[Release[str]], int]:
    """Offer (key, item, now) triples; created is now + 1000 (a wall clock)."""
    sent: list[Release[str]] = []
    folded = 0
    for key, item, now in items:
        out, n = aggregator.offer(key, item, now + 1000, now)
        sent += out
        folded += n
    return sent, folded


def test_first_sent_repeats_held_then_summarised() -> None:
    """The first occurrence goes at once; at the window's end the last repeat carries the count."""
    agg: StormAggregator[str] = StormAggregator(60)
    sent, folded = run(agg, [("fp", f"t{i}", i * 0.001) for i in range(512)])
    assert [r.item for r in sent] == ["t0"]
    assert folded == 510  # the held 511th repeat is replaced by the summary
    assert agg.next_due(1.0) == 59.0
    assert agg.due(59.0) == []
    (summary,) = agg.due(60.0)
    assert (summary.item, summary.count, summary.first_seen) == ("t511", 512, 1000.0)
    assert len(agg) == 0


def test_books_balance() -> None:
    """released + folded == offered, for any mix."""
    agg: StormAggregator[str] = StormAggregator(10)
    items = [(key, str(i), float(i % 25)) for i, key in enumerate(["a", "b", "a", "c"] * 50)]
    items.sort(key=lambda triple: triple[2])
    sent, folded = run(agg, items)
    sent += agg.drain()
    assert len(sent) + folded == len(items)


def test_new_window_after_expiry_sends_summary_then_new_first() -> None:
    """A repeat after the window ends releases the old summary and opens a new window."""
    agg: StormAggregator[str] = StormAggregator(5)
    run(agg, [("k", "t0", 0.0), ("k", "t1", 1.0)])
    out, folded = agg.offer("k", "t2", 1006.0, 6.0)
    assert [(r.item, r.count) for r in out] == [("t1", 2), ("t2", 1)]
    assert folded == 0


def test_single_occurrence_needs_no_summary() -> None:
    """A key seen once produces no summary."""
    agg: StormAggregator[str] = StormAggregator(5)
    run(agg, [("k", "t", 0.0)])
    assert agg.due(10.0) == []
    assert agg.next_due(0.0) is None


def test_zero_window_or_empty_key_passes_everything() -> None:
    """window 0 turns aggregation off; an empty key is never folded."""
    sent, folded = run(StormAggregator(0), [("k", "t", 0.0)] * 5)
    assert len(sent) == 5
    assert folded == 0
    sent, _ = run(StormAggregator(60), [("", "t", 0.0)] * 3)
    assert len(sent) == 3


def test_tracking_is_bounded() -> None:
    """Past max_tracked keys the oldest storm is summarised and forgotten."""
    agg: StormAggregator[str] = StormAggregator(60, max_tracked=2)
    sent, _ = run(agg, [("a", "a0", 0), ("a", "a1", 0), ("b", "b0", 0), ("c", "c0", 0)])
    assert [(r.item, r.count) for r in sent] == [("a0", 1), ("b0", 1), ("c0", 1), ("a1", 2)]
    assert len(agg) == 2


def test_release_held_for_a_flush_keeps_the_window() -> None:
    """A flush releases held repeats now; later repeats are counted afresh in the same window."""
    agg: StormAggregator[str] = StormAggregator(60)
    run(agg, [("k", "t0", 0.0), ("k", "t1", 1.0), ("k", "t2", 2.0)])
    (held,) = agg.release_held(created=5000.0)
    assert (held.item, held.count) == ("t2", 3)
    out, folded = agg.offer("k", "t3", 1003.0, 3.0)
    assert (out, folded) == ([], 0)
    (summary,) = agg.due(60.0)
    assert (summary.item, summary.count, summary.first_seen) == ("t3", 1, 5000.0)
