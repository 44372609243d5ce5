"""Rate-limit arithmetic: header parsing, 429 reading, and the reference models (the webhook
bucket and the sliding window, tests/rate_oracle.py) the live ledger is checked against.

Every test passes ``now`` explicitly: no sleeping, no real clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rate_oracle import SlidingWindow, WebhookBucket

from discord_logging.coordination.ledger import WindowState
from discord_logging.transport.headers import (
    BAN_COOLDOWN,
    RateLimitHeaders,
    parse_rate_limit_headers,
    parse_too_many_requests,
)

FULL = {
    "X-RateLimit-Limit": "5",
    "X-RateLimit-Remaining": "4",
    "X-RateLimit-Reset": "1470173023.123",
    "X-RateLimit-Reset-After": "1.5",
    "X-RateLimit-Bucket": "abcd1234",
}
VIA = {"Via": "1.1 google"}


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def _body(retry_after: object, *, is_global: bool = False) -> bytes:
    return json.dumps(
        {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
    ).encode()


# --------------------------------------------------------------------------- header parsing


HEADER_CASES = [
    pytest.param(
        FULL,
        RateLimitHeaders(limit=5, remaining=4, reset_after=1.5, bucket="abcd1234"),
        id="full",
    ),
    pytest.param({}, RateLimitHeaders(), id="missing-all"),
    pytest.param(
        {"X-RateLimit-Remaining": "0"}, RateLimitHeaders(remaining=0), id="only-remaining-zero"
    ),
    pytest.param(
        {"X-RateLimit-Limit": "abc", "X-RateLimit-Remaining": "abc", "X-RateLimit-Reset-After": ""},
        RateLimitHeaders(),
        id="malformed-abc-and-empty",
    ),
    pytest.param(
        {"X-RateLimit-Limit": "-1", "X-RateLimit-Remaining": "-1", "X-RateLimit-Reset-After": "-1"},
        RateLimitHeaders(),
        id="malformed-negative",
    ),
    pytest.param(
        {
            "X-RateLimit-Limit": "inf",
            "X-RateLimit-Remaining": "inf",
            "X-RateLimit-Reset-After": "inf",
        },
        RateLimitHeaders(),
        id="malformed-inf",
    ),
    pytest.param(
        {
            "X-RateLimit-Limit": "nan",
            "X-RateLimit-Remaining": "nan",
            "X-RateLimit-Reset-After": "nan",
        },
        RateLimitHeaders(),
        id="malformed-nan",
    ),
    pytest.param(
        {"X-RateLimit-Remaining": "2.0", "X-RateLimit-Reset-After": "0"},
        RateLimitHeaders(remaining=2, reset_after=0.0),
        id="decimal-remaining-and-zero-reset",
    ),
    pytest.param(
        {"X-RateLimit-Scope": "user", "X-RateLimit-Global": "true"},
        RateLimitHeaders(scope="user", is_global=True),
        id="scope-and-global-true",
    ),
    pytest.param(
        {"X-RateLimit-Global": "True"}, RateLimitHeaders(is_global=True), id="global-title-case"
    ),
    pytest.param(
        {"X-RateLimit-Global": "false", "X-RateLimit-Scope": "shared"},
        RateLimitHeaders(scope="shared"),
        id="global-false-shared",
    ),
    pytest.param({"X-RateLimit-Global": "yes"}, RateLimitHeaders(), id="global-garbage-is-false"),
]


@pytest.mark.parametrize(("headers", "expected"), HEADER_CASES)
def test_parse_rate_limit_headers_plain_dict(
    headers: dict[str, str], expected: RateLimitHeaders
) -> None:
    """Canonical-case dict headers parse; malformed values become None and never raise."""
    assert parse_rate_limit_headers(headers) == expected


@pytest.mark.parametrize(("headers", "expected"), HEADER_CASES)
def test_parse_rate_limit_headers_lower_case_dict(
    headers: dict[str, str], expected: RateLimitHeaders
) -> None:
    """A plain dict with lower-case keys (as HTTP/2 sends them) parses the same."""
    assert parse_rate_limit_headers(_lower(headers)) == expected


@pytest.mark.parametrize(("headers", "expected"), HEADER_CASES)
@pytest.mark.parametrize("transform", [str, str.lower, str.upper], ids=["as-is", "lower", "upper"])
def test_parse_rate_limit_headers_httpx_any_case(
    headers: dict[str, str], expected: RateLimitHeaders, transform: Callable[[str], str]
) -> None:
    """httpx.Headers is case-insensitive, whatever the case the server used."""
    cased = httpx.Headers({transform(key): value for key, value in headers.items()})
    assert parse_rate_limit_headers(cased) == expected


# --------------------------------------------------------------------------- 429 parsing


DISCORD_429 = [
    pytest.param(VIA, _body(0.5), 0.5, False, None, id="local-float"),
    pytest.param(VIA, _body(1.234), 1.234, False, None, id="local-float-decimals"),
    pytest.param(VIA, _body(2.0, is_global=True), 2.0, True, None, id="body-global-true"),
    pytest.param(
        {**VIA, "X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"},
        _body(3.0),
        3.0,
        True,
        "global",
        id="header-global-true",
    ),
    pytest.param(
        {**VIA, "X-RateLimit-Scope": "user"}, _body(0.75), 0.75, False, "user", id="scope-user"
    ),
    pytest.param(
        {**VIA, "X-RateLimit-Scope": "shared"}, _body(4.5), 4.5, False, "shared", id="scope-shared"
    ),
    pytest.param(VIA, _body(0.0), 0.05, False, None, id="zero-clamped-to-min-wait"),
    pytest.param(VIA, _body("1.5"), 1.5, False, None, id="retry-after-as-string"),
    pytest.param(
        {**VIA, "Retry-After": "2"}, _body(1.2), 1.2, False, None, id="body-float-beats-header"
    ),
]


@pytest.mark.parametrize(("headers", "body", "retry_after", "is_global", "scope"), DISCORD_429)
def test_discord_429_is_a_normal_rate_limit(
    headers: dict[str, str], body: bytes, retry_after: float, is_global: bool, scope: str | None
) -> None:
    """A 429 with Via and a JSON retry_after is Discord's: wait retry_after, not a ban."""
    for variant in (headers, _lower(headers), httpx.Headers(headers)):
        result = parse_too_many_requests(variant, body)
        assert result.cloudflare is False
        assert result.retry_after == pytest.approx(retry_after)
        assert result.is_global is is_global
        assert result.scope == scope


CLOUDFLARE_429 = [
    pytest.param({}, b"error code: 1015", id="no-via-html-1015"),
    pytest.param(
        {"Content-Type": "text/html"},
        b"<html><body><h1>Error 1015</h1>You are being rate limited</body></html>",
        id="no-via-html-page",
    ),
    pytest.param({}, b"", id="no-via-empty-body"),
    pytest.param({}, _body(1.0), id="no-via-but-discord-json"),
    pytest.param({}, b'{"message": "You are being rate limited."}', id="no-via-json-no-retry"),
    pytest.param(VIA, b'{"message": "You are being rate limited."}', id="via-json-no-retry"),
    pytest.param(VIA, b"error code: 1015", id="via-html-body"),
    pytest.param(VIA, _body(-1), id="via-negative-retry"),
    pytest.param(VIA, _body(None), id="via-null-retry"),
    pytest.param(VIA, b"[1, 2]", id="via-json-list"),
    pytest.param(VIA, b"\xff\xfe\x00", id="via-undecodable-bytes"),
    pytest.param({"Retry-After": "10"}, b"error code: 1015", id="small-retry-after-header"),
    pytest.param({"Retry-After": "abc"}, b"error code: 1015", id="malformed-retry-after-header"),
]


@pytest.mark.parametrize(("headers", "body"), CLOUDFLARE_429)
def test_cloudflare_429_is_a_ban(headers: dict[str, str], body: bytes) -> None:
    """A 429 without Via or without retry_after is a Cloudflare ban: global, >= the cooldown."""
    for variant in (headers, _lower(headers), httpx.Headers(headers)):
        result = parse_too_many_requests(variant, body)
        assert result.cloudflare is True
        assert result.is_global is True
        assert result.scope == "cloudflare"
        assert result.retry_after >= BAN_COOLDOWN
        assert result.retry_after == BAN_COOLDOWN


@pytest.mark.parametrize(
    ("retry_after_header", "cooldown", "expected"),
    [
        pytest.param("900", 300.0, 900.0, id="header-900-beats-300"),
        pytest.param("301", 300.0, 301.0, id="header-just-above"),
        pytest.param("300", 300.0, 300.0, id="header-equal"),
        pytest.param("120", 300.0, 300.0, id="cooldown-beats-header"),
        pytest.param("5", 1.0, 5.0, id="custom-cooldown-smaller"),
        pytest.param(None, 42.0, 42.0, id="custom-cooldown-no-header"),
    ],
)
def test_cloudflare_ban_takes_the_larger_of_header_and_cooldown(
    retry_after_header: str | None, cooldown: float, expected: float
) -> None:
    """On a ban, a Retry-After header longer than the cooldown wins; otherwise the cooldown."""
    headers = {} if retry_after_header is None else {"Retry-After": retry_after_header}
    result = parse_too_many_requests(headers, b"error code: 1015", ban_cooldown=cooldown)
    assert result.cloudflare is True
    assert result.retry_after == expected


# --------------------------------------------------------------------------- WebhookBucket


def test_bucket_starts_open() -> None:
    """A fresh bucket never delays and knows no remaining count."""
    bucket = WebhookBucket()
    assert bucket.delay(0.0) == 0.0
    assert bucket.delay(1e9) == 0.0
    assert bucket.remaining is None


@pytest.mark.parametrize(
    ("headers", "now", "blocked_until"),
    [
        pytest.param(
            RateLimitHeaders(remaining=0, reset_after=1.5), 100.0, 101.5, id="zero-blocks"
        ),
        pytest.param(RateLimitHeaders(remaining=0, reset_after=0.0), 100.0, 100.0, id="zero-reset"),
        pytest.param(RateLimitHeaders(remaining=1, reset_after=1.5), 100.0, 0.0, id="one-left"),
        pytest.param(RateLimitHeaders(remaining=4, reset_after=2.0), 100.0, 0.0, id="four-left"),
        pytest.param(RateLimitHeaders(remaining=0), 100.0, 0.0, id="zero-no-reset-after"),
        pytest.param(RateLimitHeaders(reset_after=2.0), 100.0, 0.0, id="no-remaining"),
        pytest.param(RateLimitHeaders(), 100.0, 0.0, id="no-headers"),
    ],
)
def test_bucket_update_blocks_only_when_exhausted(
    headers: RateLimitHeaders, now: float, blocked_until: float
) -> None:
    """Remaining 0 with Reset-After blocks until now + reset_after; Remaining > 0 does not."""
    bucket = WebhookBucket()
    bucket.update(headers, now)
    assert bucket.blocked_until == pytest.approx(blocked_until)
    assert bucket.delay(now) == pytest.approx(max(0.0, blocked_until - now))


def test_bucket_update_from_parsed_headers() -> None:
    """Headers straight from a response block the bucket end to end."""
    bucket = WebhookBucket()
    headers = httpx.Headers({**FULL, "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "2"})
    bucket.update(parse_rate_limit_headers(headers), 10.0)
    assert bucket.remaining == 0
    assert bucket.delay(10.0) == pytest.approx(2.0)
    assert bucket.delay(12.0) == 0.0


def test_bucket_remaining_tracks_latest_value() -> None:
    """remaining follows the latest response and is kept when a response lacks the header."""
    bucket = WebhookBucket()
    bucket.update(RateLimitHeaders(remaining=3), 0.0)
    assert bucket.remaining == 3
    bucket.update(RateLimitHeaders(), 1.0)
    assert bucket.remaining == 3
    bucket.update(RateLimitHeaders(remaining=0, reset_after=1.0), 2.0)
    assert bucket.remaining == 0


def test_bucket_later_update_never_shortens_block() -> None:
    """A second exhausted response with a shorter reset does not shorten the wait."""
    bucket = WebhookBucket()
    bucket.update(RateLimitHeaders(remaining=0, reset_after=10.0), 0.0)
    bucket.update(RateLimitHeaders(remaining=0, reset_after=1.0), 1.0)
    assert bucket.blocked_until == 10.0
    bucket.update(RateLimitHeaders(remaining=5, reset_after=0.0), 2.0)
    assert bucket.blocked_until == 10.0


@pytest.mark.parametrize(
    ("blocks", "blocked_until"),
    [
        pytest.param([(5.0, 0.0)], 5.0, id="single"),
        pytest.param([(5.0, 0.0), (10.0, 1.0)], 11.0, id="extends"),
        pytest.param([(10.0, 0.0), (1.0, 2.0)], 10.0, id="never-shortens"),
        pytest.param([(10.0, 0.0), (0.0, 5.0)], 10.0, id="zero-is-no-op"),
        pytest.param([(3.0, 0.0), (3.0, 0.0)], 3.0, id="same-twice"),
    ],
)
def test_bucket_block_extends_and_never_shortens(
    blocks: list[tuple[float, float]], blocked_until: float
) -> None:
    """block(seconds, now) moves blocked_until to max(current, now + seconds)."""
    bucket = WebhookBucket()
    for seconds, now in blocks:
        bucket.block(seconds, now)
    assert bucket.blocked_until == blocked_until


def test_bucket_block_then_update_keeps_the_longer() -> None:
    """A 429 block is not shortened by a later exhausted response with a short reset."""
    bucket = WebhookBucket()
    bucket.block(30.0, 0.0)
    bucket.update(RateLimitHeaders(remaining=0, reset_after=2.0), 1.0)
    assert bucket.blocked_until == 30.0


@pytest.mark.parametrize(
    ("now", "delay"),
    [
        pytest.param(100.0, 4.0, id="at-start"),
        pytest.param(101.0, 3.0, id="after-1s"),
        pytest.param(103.5, 0.5, id="after-3.5s"),
        pytest.param(104.0, 0.0, id="at-end"),
        pytest.param(200.0, 0.0, id="long-after"),
        pytest.param(99.0, 5.0, id="before-start"),
    ],
)
def test_bucket_delay_decreases_with_time(now: float, delay: float) -> None:
    """delay(now) is blocked_until - now, never negative."""
    bucket = WebhookBucket()
    bucket.update(RateLimitHeaders(remaining=0, reset_after=4.0), 100.0)
    assert bucket.delay(now) == pytest.approx(delay)


def test_bucket_delay_is_monotonic_non_increasing() -> None:
    """Over a sweep of times the delay only ever goes down, reaching zero."""
    bucket = WebhookBucket()
    bucket.block(2.0, 0.0)
    delays = [bucket.delay(t / 10) for t in range(40)]
    assert delays == sorted(delays, reverse=True)
    assert delays[0] == pytest.approx(2.0)
    assert delays[-1] == 0.0


# --------------------------------------------------------------------------- SlidingWindow


@pytest.mark.parametrize(
    ("limit", "window"),
    [
        pytest.param(0, 60.0, id="limit-0"),
        pytest.param(-1, 60.0, id="limit-negative"),
        pytest.param(30, 0.0, id="window-0"),
        pytest.param(30, -1.0, id="window-negative"),
        pytest.param(0, 0.0, id="both-0"),
    ],
)
def test_sliding_window_rejects_bad_limits(limit: int, window: float) -> None:
    """A limit below 1 or a window not above 0 is refused at construction."""
    with pytest.raises(ValueError, match="limit >= 1 and window > 0"):
        SlidingWindow(limit, window)


@pytest.mark.parametrize(
    ("limit", "window", "margin"),
    [
        pytest.param(1, 1.0, 0.0, id="1-per-1s"),
        pytest.param(5, 2.0, 0.0, id="5-per-2s"),
        pytest.param(30, 60.0, 0.0, id="30-per-60s"),
        pytest.param(30, 60.0, 0.5, id="30-per-60s-margin"),
        pytest.param(50, 1.0, 0.05, id="50-per-1s-margin"),
    ],
)
def test_sliding_window_allows_limit_then_waits_for_oldest(
    limit: int, window: float, margin: float
) -> None:
    """limit events go at once; the next waits exactly until the oldest expires (+margin)."""
    sw = SlidingWindow(limit, window, margin)
    start = 1000.0
    for i in range(limit):
        now = start + i * 0.001
        assert sw.delay(now) == 0.0
        sw.record(now)
    assert len(sw) == limit
    last = start + (limit - 1) * 0.001
    assert sw.delay(last) == pytest.approx(window + margin - (last - start))
    later = start + window / 4
    assert sw.delay(later) == pytest.approx(start + window + margin - later)
    # Exactly when the oldest leaves the window, one more is allowed.
    assert sw.delay(start + window + margin) == 0.0
    assert len(sw) == limit - 1


def test_sliding_window_partial_expiry() -> None:
    """Only events older than the window are dropped; the wait tracks the new oldest."""
    sw = SlidingWindow(3, 10.0)
    for t in (0.0, 4.0, 8.0):
        sw.record(t)
    assert sw.delay(9.0) == pytest.approx(1.0)
    assert sw.delay(10.0) == 0.0
    sw.record(10.0)
    assert len(sw) == 3
    assert sw.delay(10.0) == pytest.approx(4.0)
    assert sw.delay(13.9) == pytest.approx(0.1)
    assert sw.delay(30.0) == 0.0
    assert len(sw) == 0


@pytest.mark.parametrize(
    ("stamps", "expected_last"),
    [
        pytest.param([5.0], 5.0, id="later-moves"),
        pytest.param([5.0, 3.0], 5.0, id="earlier-ignored"),
        pytest.param([0.5], 1.0, id="before-record-ignored"),
        pytest.param([1.0], 1.0, id="same-time"),
        pytest.param([2.0, 4.0, 3.0], 4.0, id="ratchets"),
    ],
)
def test_restamp_last_moves_later_never_earlier(stamps: list[float], expected_last: float) -> None:
    """restamp_last(now) sets the last event to max(its time, now); only the last one moves."""
    sw = SlidingWindow(2, 10.0)
    sw.record(0.0)
    sw.record(1.0)
    for stamp in stamps:
        sw.restamp_last(stamp)
    # The first event still expires at 10; the last (restamped) one at expected_last + 10.
    assert sw.delay(9.9) == pytest.approx(0.1)
    sw.record(10.0)
    assert sw.delay(10.0) == pytest.approx(expected_last)


def test_restamp_last_delays_the_next_slot() -> None:
    """Restamping to the response time pushes the next free slot to receipt + window."""
    sw = SlidingWindow(1, 60.0)
    sw.record(0.0)
    sw.restamp_last(0.8)
    assert sw.delay(60.0) == pytest.approx(0.8)
    assert sw.delay(60.8) == 0.0


def test_restamp_last_on_empty_window_is_a_no_op() -> None:
    """Nothing recorded: restamping does nothing and does not fail."""
    sw = SlidingWindow(1, 1.0)
    sw.restamp_last(5.0)
    assert len(sw) == 0
    assert sw.delay(5.0) == 0.0


@pytest.mark.parametrize(
    "latency",
    [pytest.param(0.0, id="instant"), pytest.param(0.25, id="latency-250ms")],
)
def test_sliding_window_simulation_ten_minutes(latency: float) -> None:
    """30/60 s driven flat out for 10 simulated minutes: never over 30 per window, ~30/min."""
    limit, window, duration = 30, 60.0, 600.0
    sw = SlidingWindow(limit, window)
    sends: list[float] = []
    receipts: list[float] = []
    now = 0.0
    for _ in range(100_000):  # guard: the loop must terminate long before this
        if now >= duration:
            break
        wait = sw.delay(now)
        if wait > 0:
            now += wait
            continue
        if now >= duration:
            break
        sw.record(now)
        sends.append(now)
        now += latency  # the response arrives; Discord counted the request in between
        sw.restamp_last(now)
        receipts.append(now)
    else:
        pytest.fail("simulation did not finish")

    assert len(sends) >= 295
    assert len(sends) <= 10 * limit
    # Discord counts a request somewhere in [send, receipt]. Worst case for the window:
    # request i counted at its receipt, request i+limit at its send. Even then the two are a
    # full window apart, so no half-open window [t, t + 60) ever holds more than `limit`.
    for i in range(len(sends) - limit):
        assert sends[i + limit] - receipts[i] >= window - 1e-9
    # Cross-check by brute force on the send times.
    for t in sends:
        assert sum(1 for s in sends if t <= s < t + window) <= limit


@given(
    limit=st.integers(1, 8),
    window=st.sampled_from([1.0, 2.0, 60.0]),
    gaps=st.lists(st.floats(0.0, 30.0, allow_nan=False), min_size=1, max_size=60),
)
def test_ledger_window_agrees_with_the_sliding_window_oracle(
    limit: int, window: float, gaps: list[float]
) -> None:
    """The fleet ledger's window waits exactly as long as the one-process oracle, whatever
    the spacing of requests (each taken as soon as both say it may go)."""
    oracle = SlidingWindow(limit, window)
    live = WindowState()
    now = 1000.0
    for i, gap in enumerate(gaps):
        now += gap
        expected = oracle.delay(now)
        assert live.delay(limit, window, now) == pytest.approx(expected)
        if expected == 0.0:
            oracle.record(now)
            live.stamps[f"slot-{i}"] = now
