"""The shared limits' arithmetic, from tables, with ``now`` passed in."""

from __future__ import annotations

import pytest

from discord_logging.coordination import ledger
from discord_logging.coordination.ledger import (
    IN_FLIGHT_POLL,
    MAX_HOLD,
    BucketState,
    Limits,
    PauseState,
    SlotState,
    WindowState,
)
from discord_logging.transport.headers import RateLimitHeaders

from .conftest import SMALL

KNOWN = RateLimitHeaders(limit=5, remaining=4, reset_after=2.0)


def fresh() -> SlotState:
    return SlotState(PauseState(), WindowState(), WindowState(), BucketState())


def take(state: SlotState, slot: str, now: float, limits: Limits = SMALL) -> float:
    """Acquire and, when granted, answer at once with a roomy bucket."""
    wait = ledger.acquire(state, limits, slot, now)
    if wait == 0:
        ledger.complete(state, slot, RateLimitHeaders(limit=50, remaining=50, reset_after=1), now)
    return wait


def test_channel_window_holds_the_limit_in_any_span() -> None:
    """The 4th slot in 10 s waits until the oldest stamp leaves (a sliding window)."""
    state = fresh()
    assert [take(state, s, t) for s, t in (("a", 0.0), ("b", 3.0), ("c", 4.0))] == [0, 0, 0]
    assert take(state, "d", 5.0, Limits(3, 10.0, 50, 1.0)) == pytest.approx(5.0)
    assert take(state, "d", 10.0, Limits(3, 10.0, 50, 1.0)) == 0.0


def test_global_window_counts_every_channel() -> None:
    """Slots into different channels share the global window."""
    limits = Limits(channel_limit=30, channel_window=60, global_limit=2, global_window=1.0)
    shared_global = WindowState()
    waits = []
    for n in range(3):
        state = SlotState(PauseState(), shared_global, WindowState(), BucketState())
        waits.append(ledger.acquire(state, limits, f"s{n}", 0.0))
    assert waits == [0.0, 0.0, pytest.approx(1.0)]


def test_restamp_moves_the_slot_to_response_time() -> None:
    """A slot answered 4 s after it was taken counts from the answer on."""
    limits = Limits(channel_limit=1, channel_window=10.0, global_limit=50, global_window=1.0)
    state = fresh()
    assert ledger.acquire(state, limits, "a", 0.0) == 0.0
    ledger.complete(state, "a", KNOWN, 4.0)
    assert ledger.acquire(state, limits, "b", 11.0) == pytest.approx(3.0)


def test_restamp_never_moves_a_slot_earlier() -> None:
    """Completing with an earlier clock keeps the later stamp."""
    state = fresh()
    ledger.acquire(state, SMALL, "a", 5.0)
    ledger.complete(state, "a", None, 4.0)
    assert state.channel.stamps["a"] == 5.0


def test_give_back_frees_the_slot_everywhere() -> None:
    """A request that never reached Discord counts in no window and holds no bucket."""
    limits = Limits(channel_limit=1, channel_window=10.0, global_limit=1, global_window=10.0)
    state = fresh()
    assert ledger.acquire(state, limits, "a", 0.0) == 0.0
    ledger.give_back(state, "a")
    assert state.bucket.in_flight == {}
    assert ledger.acquire(state, limits, "b", 0.0) == 0.0


@pytest.mark.parametrize(
    ("bucket", "now", "expected"),
    [
        # nothing known yet: one request at a time brings the headers
        (BucketState(), 0.0, 0.0),
        (BucketState(in_flight={"x": 0.0}), 0.1, IN_FLIGHT_POLL),
        # remaining 0: wait for the reset
        (BucketState(remaining=0, limit=5, reset_at=2.0), 0.5, 1.5),
        # the window reset: the whole allowance is back, in flight or not
        (BucketState(remaining=0, limit=5, reset_at=2.0, in_flight={"x": 2.0}), 2.5, 0.0),
        # requests in flight spend the remaining allowance
        (BucketState(remaining=2, limit=5, reset_at=2.0, in_flight={"x": 0, "y": 0}), 1.0, 0.05),
        (BucketState(remaining=3, limit=5, reset_at=2.0, in_flight={"x": 0, "y": 0}), 1.0, 0.0),
        # a 429 hold
        (BucketState(remaining=4, limit=5, reset_at=2.0, blocked_until=7.0), 1.0, 6.0),
        # an in-flight slot of a dead process stops holding after the ttl
        (BucketState(in_flight={"x": 0.0}), SMALL.in_flight_ttl + 1, 0.0),
        # a hold from a clock that jumped is dropped, not obeyed for hours
        (BucketState(blocked_until=MAX_HOLD + 10.0), 0.0, 0.0),
    ],
)
def test_bucket_delay(bucket: BucketState, now: float, expected: float) -> None:
    """How long the webhook's announced bucket holds the next request."""
    assert bucket.delay(now, SMALL.in_flight_ttl) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("before", "headers", "now", "remaining", "reset_at"),
    [
        (BucketState(), RateLimitHeaders(limit=5, remaining=4, reset_after=2.0), 0.0, 4, 2.0),
        # same window, answers out of order: the lowest count is the latest
        (BucketState(remaining=2, reset_at=2.0), KNOWN, 1.0, 2, 3.0),
        # a new window: the new count
        (BucketState(remaining=0, reset_at=2.0), KNOWN, 2.5, 4, 4.5),
        # no headers: nothing changes
        (BucketState(remaining=1, reset_at=2.0), RateLimitHeaders(), 1.0, 1, 2.0),
    ],
)
def test_bucket_update(
    before: BucketState, headers: RateLimitHeaders, now: float, remaining: int, reset_at: float
) -> None:
    """What the fleet believes about a bucket after one more answer."""
    before.update(headers, now)
    assert (before.remaining, before.reset_at) == (remaining, pytest.approx(reset_at))


def test_pause_and_block_hold_and_expire() -> None:
    """A pause holds every slot; a per-webhook 429 holds that webhook; both end."""
    state = fresh()
    ledger.pause(state.pause, 30.0, 0.0)
    assert ledger.acquire(state, SMALL, "a", 10.0) == pytest.approx(20.0)
    ledger.block(state.bucket, 5.0, 30.0)
    assert ledger.acquire(state, SMALL, "a", 31.0) == pytest.approx(4.0)
    assert ledger.acquire(state, SMALL, "a", 35.0) == 0.0


def test_window_drops_stamps_from_a_clock_that_jumped() -> None:
    """Stamps far in the future (another boot's monotonic clock, a wall-clock jump) expire."""
    window = WindowState({"a": 5.0 + MAX_HOLD * 2})
    assert window.delay(1, 10.0, 5.0) == 0.0


@pytest.mark.parametrize(
    ("fleet", "channel", "global_"), [(1, 30, 50), (4, 7, 12), (8, 3, 6), (100, 1, 1), (0, 30, 50)]
)
def test_share_of_a_fleet(fleet: int, channel: int, global_: int) -> None:
    """The local share while the fleet cannot coordinate: limit // fleet, at least 1."""
    share = Limits().share(fleet)
    assert (share.channel_limit, share.global_limit) == (channel, global_)


def test_json_round_trip() -> None:
    """Every state comes back from its JSON as it was stored."""
    state = fresh()
    ledger.acquire(state, SMALL, "a", 1.0)
    ledger.complete(state, "a", KNOWN, 1.5)
    ledger.pause(state.pause, 3.0, 1.5)
    keys = ledger.state_keys("channel:1", "2")[:4]
    states = [state.pause, state.global_window, state.channel, state.bucket]
    again = [ledger.from_json(k, s.to_json()) for k, s in zip(keys, states, strict=True)]
    assert again == states


@pytest.mark.parametrize(
    "kwargs", [{"channel_limit": 0}, {"global_window": 0.0}, {"in_flight_ttl": -1.0}]
)
def test_limits_refuse_nonsense(kwargs: dict[str, float]) -> None:
    """A limit of 0 or a window of 0 s is a configuration error, said at once."""
    with pytest.raises(ValueError, match="shared"):
        Limits(**kwargs)  # type: ignore[arg-type]


def test_an_answer_after_the_window_counts_again() -> None:
    """A request in flight longer than the window is stamped anew when its answer comes."""
    limits = Limits(channel_limit=1, channel_window=1.0, global_limit=50, global_window=1.0)
    state = fresh()
    assert ledger.acquire(state, limits, "a", 0.0) == 0.0
    state.channel.expire(limits.channel_window, 5.0)
    ledger.complete(state, "a", None, 5.0)
    assert ledger.acquire(state, limits, "b", 5.5) == pytest.approx(0.5)


def test_holders_words_round_trip_and_a_bad_row_counts_as_empty() -> None:
    """What holders said they still have to send is stored with the window's stamps, read
    back as written; a row without it (or with a word that is not ours) reads as empty."""
    window = WindowState({"a": 1.0})
    ledger.declare(window, "p1.x.7", 4, 2.0)
    ledger.declare(window, "p2.y.7", 3, 2.5)
    ledger.declare(window, "p2.y.7", 0, 3.0)  # taken back
    back = ledger.decode("window:channel:1", ledger.encode(window))
    assert isinstance(back, WindowState)
    assert back.wants == {"p1.x.7": (4, 2.0)}
    assert ledger.wanted_by_others(back, "p9.z.7", 3.0) == 4
    assert ledger.wanted_by_others(back, "p1.x.7", 3.0) == 0
    assert ledger.wanted_by_others(back, "p9.z.7", 2.0 + ledger.DEMAND_TTL) == 0
    assert ledger.encode(WindowState({"a": 1.0})) == '{"s":{"a":1.0}}'
    for planted in ('{"s":{},"w":{"x":[]}}', '{"s":{},"w":{"x":"y"}}', '{"s":{},"w":[1]}'):
        assert ledger.decode("window:channel:1", planted) == WindowState()
