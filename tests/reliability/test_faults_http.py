"""Fault matrix, HTTP side: logging -> DiscordHandler -> FakeDiscord over real HTTP, with the
server failing in every way Discord does. Each test checks that the books balance and that
no logger call ever waited on the network."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any

import httpx
import jinja2
import pytest
from waiting import FAILSAFE

from discord_logging.store import Store
from discord_logging.testing import FakeDiscord

from .faultkit import (
    DEADLINE,
    FAST,
    TimedLogger,
    assert_books_balance,
    fast_fake,
    make_handler,
    marked,
    message_text,
    requests_after,
    wait_until,
    warm_up,
    webhook_id,
)

# Seconds close() may take beyond close_timeout (thread join, store close, and a loaded
# machine's scheduling); without its deadline, close would wait out every hung request's
# retries instead (seconds per record).
SLACK = 2.0
TOLERANCE = 0.005  # clock noise when comparing request times with a wait


def kept_letters(path: Any) -> list[Any]:
    """The dead letters in the store at ``path``, read by a fresh Store (durability)."""
    store = Store(path)
    try:
        return store.dead_letters.letters()
    finally:
        store.close()


def gaps(times: list[float]) -> list[float]:
    """Differences between consecutive times."""
    return [b - a for a, b in itertools.pairwise(times)]


# -- 5xx ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "records"),
    [(1, 30), (2, 30), pytest.param(4, 300, marks=pytest.mark.long)],
)
def test_5xx_burst_then_recovery_delivers_everything(
    fake: FakeDiscord, failures: int, records: int
) -> None:
    """503 x N then recovery: every record delivered after retries, none dead-lettered."""
    handler = make_handler(
        {"general": fake.add_webhook()},
        fake.host,
        engine={"retry_deadline": 30},
        retry_attempts=failures + 2,
        queue_size=1000,
    )
    log = TimedLogger(handler)
    warm_up(log, fake)
    fake.fail_next(failures, 503)
    for i in range(records):
        log.error("burst rec#%d#", i)
    assert handler.flush(DEADLINE + 2**failures)
    handler.close()
    stats = handler.stats()
    assert_books_balance(stats, log.calls)
    assert stats["delivered"] == log.calls
    assert stats["dead_lettered"] == 0
    assert stats["retried"] >= failures
    assert fake.count_status(503) == failures
    assert marked(message_text(fake)) == set(range(records))
    log.assert_never_blocked()


def test_5xx_past_retry_attempts_is_redelivered_after_recovery(fake: FakeDiscord) -> None:
    """A 503 that exhausts retry_attempts dead-letters; the next success redelivers it."""
    handler = make_handler({"general": fake.add_webhook()}, fake.host, retry_attempts=1)
    log = TimedLogger(handler)
    warm_up(log, fake)
    fake.fail_next(1, 503)
    log.error("first rec#0#")
    wait_until(lambda: handler.stats()["dead_lettered"] == 1)
    for i in range(1, 10):
        log.error("later rec#%d#", i)
    wait_until(lambda: handler.stats()["redelivered"] == 1)
    assert handler.flush(DEADLINE)
    handler.close()
    stats = handler.stats()
    assert marked(message_text(fake)) == set(range(10))
    assert stats["dead_letters_kept"] == 0
    assert kept_letters(handler.settings.store_path) == []
    assert stats["redelivered"] == stats["dead_lettered"] == 1
    assert_books_balance(stats, log.calls)
    log.assert_never_blocked()


def test_books_balance_after_redelivery(fake: FakeDiscord) -> None:
    """After a dead letter is redelivered, delivered + aggregated + dead_lettered == emitted."""
    handler = make_handler({"general": fake.add_webhook()}, fake.host, retry_attempts=1)
    log = TimedLogger(handler)
    warm_up(log, fake)
    fake.fail_next(1, 503)
    log.error("first rec#0#")
    wait_until(lambda: handler.stats()["dead_lettered"] == 1)
    log.error("second rec#1#")
    wait_until(lambda: handler.stats()["redelivered"] == 1)
    assert handler.flush(DEADLINE)
    handler.close()
    assert_books_balance(handler.stats(), log.calls)


# -- timeouts and hangs ------------------------------------------------------------------------


@pytest.mark.parametrize("records", [20, pytest.param(500, marks=pytest.mark.long)])
def test_hanging_server_is_dead_lettered_by_the_close_deadline(
    fake: FakeDiscord, records: int
) -> None:
    """A server that never answers: close() returns by close_timeout, every record kept."""
    close_timeout = 0.5
    urls = {"general": fake.add_webhook(), "error": fake.add_webhook()}
    handler = make_handler(
        urls,
        fake.host,
        timeout=0.2,
        close_timeout=close_timeout,
        retry_attempts=5,
        queue_size=1000,
    )
    log = TimedLogger(handler)
    warm_up(log, fake)
    fake.set_hang(True)
    for i in range(records):
        (log.error if i % 2 else log.info)("hung rec#%d#", i)
    wait_until(lambda: fake.pending >= 2)  # both lanes have a request stuck
    started = time.monotonic()
    handler.close()
    took = time.monotonic() - started
    fake.set_hang(False)
    stats = handler.stats()
    assert took < close_timeout + SLACK
    assert_books_balance(stats, log.calls)
    assert stats["delivered"] == 1  # the warm-up
    assert stats["dead_lettered"] == records
    # A request that timed out waiting for an answer may exist in Discord: uncertain.
    assert set(stats["dead_lettered_by_reason"]) <= {"shutdown", "retries_exhausted", "uncertain"}
    letters = kept_letters(handler.settings.store_path)
    assert marked(" ".join(letter.notification.message for letter in letters)) == set(
        range(records)
    )
    log.assert_never_blocked()


def test_timeouts_exhaust_retries_into_dead_letters(fake: FakeDiscord) -> None:
    """Every request times out: records retried, then dead-lettered, never raised; each is
    kept as uncertain (the requests went out whole: Discord may have posted them)."""
    handler = make_handler({"general": fake.add_webhook()}, fake.host, timeout=0.2)
    log = TimedLogger(handler)
    warm_up(log, fake)
    fake.set_hang(True)
    for i in range(10):
        log.error("slow rec#%d#", i)
    wait_until(lambda: handler.stats()["dead_lettered"] == 10, timeout=DEADLINE)
    assert handler.flush(DEADLINE)
    handler.close()
    fake.set_hang(False)
    stats = handler.stats()
    assert_books_balance(stats, log.calls)
    assert stats["dead_lettered_by_reason"] == {"uncertain": 10}
    assert stats["retried"] >= 10
    log.assert_never_blocked()


# -- connection refused ------------------------------------------------------------------------


def test_connection_refused_is_dead_lettered_never_raised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Nothing listens at the webhook's address: records dead-lettered, nothing raised."""
    with fast_fake() as gone:
        url, host = gone.add_webhook(), gone.host
    handler = make_handler({"general": url}, host, timeout=0.2, retry_attempts=2)
    log = TimedLogger(handler)
    for i in range(20):
        log.error("refused rec#%d#", i)
    assert handler.flush(DEADLINE)
    handler.close()
    stats = handler.stats()
    assert_books_balance(stats, log.calls)
    assert stats["dead_lettered_by_reason"] == {"retries_exhausted": 20}
    letters = kept_letters(handler.settings.store_path)
    assert len(letters) == 20
    assert all("Connect" in (letter.error or "") for letter in letters)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "Logging error" not in err
    log.assert_never_blocked()


# -- 429 storms --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "storm", "records"),
    [
        ("webhook", 12, 30),
        ("global", 12, 30),
        pytest.param("webhook", 100, 300, marks=pytest.mark.long),
        pytest.param("global", 100, 300, marks=pytest.mark.long),
    ],
)
def test_429_storm_is_waited_out_and_delivered(
    fake: FakeDiscord, scope: str, storm: int, records: int
) -> None:
    """A 429 storm (webhook or global): each retry_after honoured, all delivered, no extra 429s."""
    retry_after = 0.05
    urls = {"general": fake.add_webhook(), "error": fake.add_webhook()}
    handler = make_handler(urls, fake.host, retry_attempts=20, queue_size=1000)
    log = TimedLogger(handler)
    warm_up(log, fake)
    if scope == "global":
        fake.force_global_429(storm, retry_after=retry_after)
    else:
        fake.force_429(storm, retry_after=retry_after)
    for i in range(records):
        (log.error if i % 2 else log.info)("storm rec#%d#", i)
    assert handler.flush(DEADLINE + storm * retry_after)
    handler.close()
    stats = handler.stats()
    # A storm longer than retry_attempts (20 at most) dead-letters records, and the first
    # success after it redelivers them (counted as redelivered, not again as delivered).
    assert_books_balance(stats, log.calls)
    assert stats["delivered"] + stats["redelivered"] == log.calls
    assert stats["rate_limited"] == storm
    assert fake.count_status(429) == storm
    assert {r.status for r in fake.requests} == {200, 429}
    posts = [r for r in fake.requests if r.method == "POST"]  # not the channel lookups
    assert len(posts) == storm + len(fake.messages)
    for url in urls.values():
        mine = [r for r in posts if r.webhook_id == webhook_id(url)]
        for limited, following in itertools.pairwise(mine):
            if limited.status == 429:
                assert following.time - limited.time >= retry_after - TOLERANCE
    assert marked(message_text(fake)) == set(range(records))
    log.assert_never_blocked()


@pytest.mark.parametrize("scope", ["webhook", "global"])
def test_429_storm_longer_than_retry_attempts_is_kept_as_rate_limited(
    fake: FakeDiscord, scope: str
) -> None:
    """A 429 storm past retry_attempts: kept as rate_limited, no record sent more often."""
    attempts, records = 3, 20
    handler = make_handler({"general": fake.add_webhook()}, fake.host, retry_attempts=attempts)
    log = TimedLogger(handler)
    warm_up(log, fake)
    if scope == "global":
        fake.force_global_429(10_000, retry_after=0.05)
    else:
        fake.force_429(10_000, retry_after=0.05)
    for i in range(records):
        log.error("storm rec#%d#", i)
    assert handler.flush(DEADLINE)
    handler.close()
    stats = handler.stats()
    assert_books_balance(stats, log.calls)
    assert stats["dead_lettered_by_reason"] == {"rate_limited": records}
    assert attempts <= fake.count_status(429) <= attempts * records
    assert all(letter.attempts == attempts for letter in kept_letters(handler.settings.store_path))
    log.assert_never_blocked()


# -- Cloudflare ban ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bans", "records"), [(3, 20), pytest.param(8, 300, marks=pytest.mark.long)]
)
def test_cloudflare_ban_keeps_records_until_it_lifts(
    fake: FakeDiscord, bans: int, records: int
) -> None:
    """A Cloudflare ban: records stay queued, <= 1 request per cooldown, all delivered after."""
    cooldown = FAST["ban_cooldown"]
    handler = make_handler(
        {"general": fake.add_webhook()}, fake.host, retry_attempts=2, queue_size=1000
    )
    log = TimedLogger(handler)
    warm_up(log, fake)
    fake.set_ban(True, retry_after=0)  # Retry-After 0: the handler's ban_cooldown applies
    banned_at = time.monotonic()
    for i in range(records):
        log.error("ban rec#%d#", i)
    wait_until(lambda: handler.stats()["banned"] >= bans)
    during = handler.stats()
    fake.set_ban(False)
    lifted_at = time.monotonic()
    assert during["dead_lettered"] == 0
    assert during["queue_depth"] == records
    assert handler.flush(DEADLINE)
    handler.close()
    stats = handler.stats()
    assert_books_balance(stats, log.calls)
    assert stats["delivered"] == log.calls
    ban_answers = [
        r.time for r in fake.requests if r.status == 429 and not r.had_via and r.method == "POST"
    ]
    assert len(ban_answers) <= 1 + (lifted_at - banned_at) / cooldown
    assert all(gap >= cooldown - TOLERANCE for gap in gaps(ban_answers))
    assert marked(message_text(fake)) == set(range(records))
    log.assert_never_blocked()


# -- disabled webhooks: deleted (404), wrong token (401) ---------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "seconds"),
    [
        ("deleted", 404, 1.0),
        ("wrong_token", 401, 1.0),
        pytest.param("deleted", 404, 4.0, marks=pytest.mark.long),
        pytest.param("wrong_token", 401, 4.0, marks=pytest.mark.long),
    ],
)
def test_disabled_webhook_gets_at_most_one_probe_per_interval(
    fake: FakeDiscord, fault: str, status: int, seconds: float
) -> None:
    """Deleted (404) or bad-token (401) webhook: webhook_disabled, <= 1 probe per interval."""
    interval = FAST["probe_interval"]
    bad = fake.add_webhook()
    if fault == "wrong_token":
        bad = bad.rsplit("/", 1)[0] + "/" + "w" * 68
    bad_id = webhook_id(bad)
    handler = make_handler({"general": bad, "error": fake.add_webhook()}, fake.host)
    log = TimedLogger(handler)
    warm_up(log, fake)  # error -> the healthy webhook
    before = 0
    if fault == "deleted":
        for i in range(5):
            log.info("before rec#%d#", i)
        assert handler.flush(DEADLINE)
        before = 5
        assert len(fake.messages_for(bad_id)) >= 1
        # the channel lookup (a GET) follows the first delivery
        looked_up = time.monotonic() + FAILSAFE
        while time.monotonic() < looked_up and not any(
            r.method == "GET" and r.webhook_id == bad_id for r in fake.requests
        ):
            time.sleep(0.01)
        fake.delete_webhook(bad_id)
    count = 0
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        log.info("lost rec#%d#", count)
        log.error("healthy rec#%d#", count)
        count += 1
        time.sleep(0.05)
    assert handler.flush(DEADLINE)
    handler.close()
    stats = handler.stats()
    assert_books_balance(stats, log.calls)
    assert stats["dead_lettered_by_reason"] == {"webhook_disabled": count}
    assert stats["delivered"] == 1 + before + count
    first, later = requests_after(fake, bad_id, status)
    assert first is not None
    assert len(later) <= 1 + seconds / interval
    assert all(gap >= interval - TOLERANCE for gap in gaps([first, *later]))
    log.assert_never_blocked()


# -- a slow server -----------------------------------------------------------------------------


@pytest.mark.parametrize("bursts", [3, pytest.param(30, marks=pytest.mark.long)])
def test_slow_server_never_blocks_the_caller(fake: FakeDiscord, bursts: int) -> None:
    """Every answer takes 0.2 s: logger calls still return at once, and all is delivered."""
    fake.set_latency(0.2)
    handler = make_handler({"general": fake.add_webhook()}, fake.host, queue_size=1000)
    log = TimedLogger(handler)
    for burst in range(bursts):
        for i in range(10):
            log.error("slow rec#%d#", burst * 10 + i)
        time.sleep(0.1)
    assert handler.flush(DEADLINE + bursts * 0.2)
    handler.close()
    stats = handler.stats()
    assert_books_balance(stats, log.calls)
    assert stats["delivered"] == log.calls
    assert {r.status for r in fake.requests} == {200}
    assert marked(message_text(fake)) == set(range(bursts * 10))
    log.assert_never_blocked()


# -- the first call ----------------------------------------------------------------------------


def test_first_logger_call_builds_no_templates_on_the_caller_thread(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first logger call only hands over: templates load on the worker, not the caller."""
    handler = make_handler({"general": fake.add_webhook()}, fake.host)
    log = TimedLogger(handler)
    loaded_on: list[str] = []
    get_template = jinja2.Environment.get_template

    def spy(self: jinja2.Environment, *args: Any, **kwargs: Any) -> Any:
        loaded_on.append(threading.current_thread().name)
        return get_template(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "get_template", spy)
    log.error("first")
    during_the_call = [name for name in loaded_on if name == threading.current_thread().name]
    assert handler.flush(DEADLINE)
    handler.close()
    assert loaded_on  # the worker did render the record
    assert during_the_call == []


# -- what the library itself gets wrong --------------------------------------------------------


class _FarFuture(logging.Filter):
    """Gives records marked "bad" a time no calendar can show (rendering raises ValueError)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "bad" in record.getMessage():
            record.created = 1e13
        return True


def test_unrenderable_records_are_kept_and_the_lane_carries_on(fake: FakeDiscord) -> None:
    """Records nothing can render become internal_error letters; every other record of the
    webhook, before and after them, is delivered; the books balance."""
    handler = make_handler({"general": fake.add_webhook()}, fake.host, queue_size=1000)
    handler.addFilter(_FarFuture())
    log = TimedLogger(handler)
    warm_up(log, fake)
    for i in range(30):
        log.error("mixed rec#%d# %s", i, "bad" if i % 10 == 3 else "good")
    handler.flush(DEADLINE)
    handler.close()
    stats = handler.stats()
    assert_books_balance(stats, log.calls)
    assert stats["dead_lettered_by_reason"] == {"internal_error": 3}
    assert stats["internal_errors"] == 3
    assert marked(message_text(fake)) == {i for i in range(30) if i % 10 != 3}


def test_503_blip_longer_than_the_retry_attempts_costs_seconds(fake: FakeDiscord) -> None:
    """503 x 3 with DISCORD_RETRY_ATTEMPTS=3: the record is kept, then redelivered about a
    second later without any new traffic; the books balance."""
    handler = make_handler({"general": fake.add_webhook()}, fake.host, retry_attempts=3)
    log = TimedLogger(handler)
    warm_up(log, fake)
    fake.fail_next(3, 503)
    log.error("blip rec#1#")
    wait_until(lambda: handler.stats()["redelivered"] == 1, DEADLINE)
    handler.close()
    stats = handler.stats()
    assert_books_balance(stats, log.calls)
    assert marked(message_text(fake)) == {1}


class _RaisingTransport(httpx.AsyncBaseTransport):
    """A transport failing as no httpx error does (the executor refusing work at exit)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")


def test_transport_raising_anything_is_a_retryable_failure(fake: FakeDiscord) -> None:
    """Every record meets a transport that raises RuntimeError: each is retried, then kept as
    retries_exhausted; nothing is lost and the books balance."""
    handler = make_handler(
        {"general": fake.add_webhook()}, fake.host, engine={"transport": _RaisingTransport()}
    )
    log = TimedLogger(handler)
    for i in range(5):
        log.error("raising rec#%d#", i)
    handler.flush(DEADLINE)
    handler.close()
    stats = handler.stats()
    assert_books_balance(stats, log.calls)
    assert stats["dead_lettered_by_reason"] == {"retries_exhausted": 5}
    log.assert_never_blocked()
