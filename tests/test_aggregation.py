"""Storm aggregation as pure logic with an injected clock."""

from __future__ import annotations

from discord_logging.delivery.aggregation import KEPT_TEXT_LIMIT, Release, StormAggregator


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
    (held,) = agg.release_repeats(created=5000.0)
    assert (held.item, held.count) == ("t2", 3)
    out, folded = agg.offer("k", "t3", 1003.0, 3.0)
    assert (out, folded) == ([], 0)
    (summary,) = agg.due(60.0)
    assert (summary.item, summary.count, summary.first_seen) == ("t3", 1, 5000.0)


def test_summary_carries_each_records_time_and_text() -> None:
    """A summary keeps (created, text) of every record it counts, the first one included."""
    agg: StormAggregator[str] = StormAggregator(60)
    run(agg, [("fp", f"order {1000 + i} failed", i * 0.01) for i in range(100)])
    (summary,) = agg.due(60.0)
    assert summary.count == 100
    assert [text for _, text in summary.samples] == [f"order {n} failed" for n in range(1000, 1100)]
    assert summary.samples[0][0] == 1000.0
    assert summary.samples[-1][0] == 1000.0 + 99 * 0.01
    assert agg.kept == 0  # released with the summary


def test_items_with_a_message_keep_that_text() -> None:
    """Items that are not strings are sampled by their ``message`` (snapshots are)."""

    class Item:
        def __init__(self, message: str) -> None:
            self.message = message

    agg: StormAggregator[Item] = StormAggregator(60)
    for i in range(3):
        agg.offer("k", Item(f"m{i}"), 1000.0 + i, float(i))
    (summary,) = agg.drain()
    assert [text for _, text in summary.samples] == ["m0", "m1", "m2"]


def test_a_huge_storm_keeps_a_bounded_sample() -> None:
    """100,000 repeats: the count is exact, the first ``keep`` texts are kept, no more."""
    agg: StormAggregator[str] = StormAggregator(60, keep=1_000)
    for i in range(100_000):
        agg.offer("k", f"order {i}", 1000.0 + i * 1e-5, i * 1e-5)
    assert agg.kept == 1_000
    (summary,) = agg.due(60.0)
    assert summary.count == 100_000
    assert len(summary.samples) == 1_000
    assert summary.samples[-1][1] == "order 999"
    assert agg.kept == 0


def test_kept_samples_are_bounded_over_all_storms() -> None:
    """``keep_total`` caps the texts held by every storm together; counts stay exact."""
    agg: StormAggregator[str] = StormAggregator(60, keep=10, keep_total=15)
    run(agg, [(key, f"{key}{i}", i * 0.01) for key in ("a", "b") for i in range(20)])
    assert agg.kept == 15
    a, b = agg.drain()
    assert (a.count, len(a.samples)) == (20, 10)
    assert (b.count, len(b.samples)) == (20, 5)
    assert agg.kept == 0


def test_kept_text_is_cut() -> None:
    """Each kept text is cut to KEPT_TEXT_LIMIT characters, so a 100 KB message is not held."""
    agg: StormAggregator[str] = StormAggregator(60)
    run(agg, [("k", "x" * 100_000, 0.0), ("k", "y" * 100_000, 1.0)])
    (summary,) = agg.drain()
    assert [len(text) for _, text in summary.samples] == [KEPT_TEXT_LIMIT] * 2


def test_samples_are_freed_when_a_storm_is_forgotten() -> None:
    """A key seen once, evicted or expired, gives its kept text back to the budget."""
    agg: StormAggregator[str] = StormAggregator(5, max_tracked=2)
    run(agg, [("a", "a0", 0.0), ("b", "b0", 0.0), ("c", "c0", 0.0)])
    assert agg.kept == 2  # "a" was evicted
    assert agg.due(10.0) == []
    assert agg.kept == 0


def test_release_held_sends_the_samples_and_starts_afresh() -> None:
    """A flush's summary carries the records so far; the next one only those after it."""
    agg: StormAggregator[str] = StormAggregator(60)
    run(agg, [("k", "t0", 0.0), ("k", "t1", 1.0), ("k", "t2", 2.0)])
    (held,) = agg.release_repeats(created=5000.0)
    assert [text for _, text in held.samples] == ["t0", "t1", "t2"]
    run(agg, [("k", "t3", 3.0), ("k", "t4", 4.0)])
    (summary,) = agg.due(60.0)
    assert (summary.count, [text for _, text in summary.samples]) == (2, ["t3", "t4"])


def test_a_summary_of_one_record_has_no_samples() -> None:
    """After a flush a lone repeat goes out as a plain record, without samples."""
    agg: StormAggregator[str] = StormAggregator(60)
    run(agg, [("k", "t0", 0.0), ("k", "t1", 1.0)])
    agg.release_repeats(created=5000.0)
    run(agg, [("k", "t2", 2.0)])
    (summary,) = agg.due(60.0)
    assert (summary.count, summary.samples) == (1, ())
