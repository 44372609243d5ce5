"""Storm aggregation as pure logic with an injected clock."""

from __future__ import annotations

from discord_logging.delivery.aggregation import (
    KEPT_TEXT_LIMIT,
    MAX_INCIDENT_AGE,
    Release,
    StormAggregator,
)


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


# -- incidents kept current (edit_interval) ----------------------------------------------------


def incident(window: float = 60.0, interval: float = 10.0) -> StormAggregator[str]:
    return StormAggregator(window, edit_interval=interval)


def test_incident_releases_running_updates_standing_for_no_record() -> None:
    """Repeats hold the latest record back; every edit_interval a running update shows the
    count so far and stands for no record; it is not repeated without new repeats."""
    agg = incident()
    sent, folded = run(agg, [("k", f"t{i}", i * 1.0) for i in range(12)])
    assert [r.item for r in sent] == ["t0"]
    assert folded == 10  # t11 is held
    assert agg.next_due(11.0) == 0.0  # the first update is due since t=10
    (update,) = agg.due(11.0)
    assert (update.item, update.count, update.record, update.ongoing) == ("t11", 12, False, True)
    assert (update.first_seen, update.last_seen) == (1000.0, 1011.0)
    assert [text for _, text in update.samples] == [f"t{i}" for i in range(12)]
    assert agg.due(30.0) == []  # no repeat since: nothing new to show
    assert agg.next_due(30.0) == 41.0  # quiet 60 s after the last repeat (t=11)


def test_incident_goes_quiet_with_its_held_record() -> None:
    """A window without repeats ends the incident: its last update carries the held record,
    says it is quiet, and the key is forgotten."""
    agg = incident(window=5.0)
    sent, folded = run(agg, [("k", "t0", 0.0), ("k", "t1", 1.0), ("k", "t2", 4.0)])
    assert (len(sent), folded) == (1, 1)
    assert agg.due(8.9) == []  # the window slides with each repeat
    (last,) = agg.due(9.0)
    assert (last.item, last.count, last.quiet, last.record) == ("t2", 3, True, True)
    assert len(agg) == 0
    assert agg.kept == 0


def test_quiet_update_stands_for_no_record_when_a_flush_took_it() -> None:
    """A flush releases the held record as a running update carrying it; when the incident
    goes quiet later, its last update carries no record (none is held)."""
    agg = incident(window=5.0)
    run(agg, [("k", "t0", 0.0), ("k", "t1", 1.0)])
    (flushed,) = agg.release_repeats(1001.0)
    assert (flushed.item, flushed.count, flushed.record, flushed.ongoing) == ("t1", 2, True, True)
    assert agg.release_repeats(1002.0) == []  # nothing held any more
    (last,) = agg.due(6.0)
    assert (last.item, last.count, last.quiet, last.record) == ("t1", 2, True, False)


def test_lone_record_and_books_of_incidents() -> None:
    """A key seen once ends with nothing to release; over any mix, records released with
    record=True plus those folded equal those offered."""
    agg = incident(window=5.0, interval=1.0)
    run(agg, [("once", "x", 0.0)])
    assert agg.due(5.0) == []
    items = [(key, str(i), i * 0.5) for i, key in enumerate(["a", "b", "a", "c", "a"] * 20)]
    sent, folded = run(agg, items)
    for step in range(0, 120):
        sent += agg.due(step * 0.5)
    sent += agg.drain()
    assert sum(1 for r in sent if r.record) + folded == len(items)
    assert any(not r.record for r in sent)


def test_drain_and_overflow_close_incidents_not_quiet() -> None:
    """At shutdown, or when too many keys are tracked, an incident's last update is released
    without saying quiet (it may go on)."""
    agg = StormAggregator(60.0, max_tracked=1, edit_interval=10.0)
    run(agg, [("a", "a0", 0.0), ("a", "a1", 1.0)])
    out, _ = agg.offer("b", "b0", 1002.0, 2.0)
    assert [(r.item, r.count, r.quiet, r.record) for r in out] == [
        ("b0", 1, False, True),
        ("a1", 2, False, True),
    ]
    run(agg, [("b", "b1", 3.0)])
    (last,) = agg.drain()
    assert (last.item, last.quiet, last.record) == ("b1", False, True)


def test_incident_is_closed_after_a_day() -> None:
    """Repeats that never stop: after MAX_INCIDENT_AGE the incident ends and a new one
    starts with its own first post."""
    agg = incident(window=60.0)
    run(agg, [("k", "t0", 0.0), ("k", "t1", 30.0)])
    out, _ = agg.offer("k", "t2", 1000.0 + MAX_INCIDENT_AGE, MAX_INCIDENT_AGE)
    assert [(r.item, r.count) for r in out] == [("t1", 2), ("t2", 1)]
