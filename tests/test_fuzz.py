"""Fuzzing the whole path: whatever is logged, emit never raises and Discord accepts the payload."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from discord_schema import validate_webhook_payload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import FAILSAFE

from discord_logging import DiscordHandler
from discord_logging.capture.direct import build_notification
from discord_logging.render.message_limits import (
    EMBEDS_PER_MESSAGE,
    MESSAGE_EMBED_TOTAL,
    embed_length,
)
from discord_logging.render.packing import pack
from discord_logging.render.payload import build_payload
from discord_logging.render.templating import EmbedRenderer
from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # long models (hypothesis runs of many examples)

any_text = st.text(st.characters(codec=None, categories=None), max_size=300)
weird = st.sampled_from(["\u202e", "\u200b", "\ud800", "😀" * 50, "@everyone", "```", "%s%d"])
texts = st.one_of(any_text, weird, st.builds(lambda s, n: s * n, weird, st.integers(1, 20_000)))
STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
extras = st.dictionaries(
    st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).filter(lambda k: k not in STANDARD),
    st.one_of(texts, st.integers(), st.none(), st.lists(st.integers(), max_size=3)),
    max_size=6,
)
args = st.one_of(
    st.none(),
    st.lists(st.one_of(texts, st.integers(), st.floats(allow_nan=True)), max_size=3).map(tuple),
)


def chained_exception(depth: int, text: str) -> BaseException:
    """An exception with a __cause__ chain ``depth`` long, raised so it has tracebacks."""
    error: BaseException | None = None
    for level in range(depth + 1):
        try:
            if error is None:
                raise ValueError(text)
            raise RuntimeError(f"level {level}") from error
        except (ValueError, RuntimeError) as exc:
            error = exc
    assert error is not None
    return error


exceptions = st.one_of(st.none(), st.builds(chained_exception, st.integers(0, 6), texts))


@pytest.fixture(scope="module")
def wired(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FakeDiscord, DiscordHandler, logging.Logger]]:
    """One FakeDiscord and handler for the whole module (hypothesis runs many examples)."""
    with FakeDiscord(webhook_limit=1000, channel_limit=1000, global_limit=1000) as fake:
        handler = DiscordHandler(
            webhooks={"general": fake.add_webhook(), "critical": fake.add_webhook()},
            allowed_hosts=fake.host,
            aggregate_window=0,
            queue_size=10_000,
            rate_limit=1000,
            store_path=str(tmp_path_factory.mktemp("fuzz-store")),
        )
        # A logger outside the hierarchy: nothing propagates to pytest's capture handlers,
        # which would choke on the malformed records this test sends on purpose.
        logger = logging.Logger("fuzz", logging.DEBUG)
        logger.addHandler(handler)
        yield fake, handler, logger
        handler.close()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    msg=texts,
    megabyte=st.booleans(),
    msg_args=args,
    extra=extras,
    exc=exceptions,
    level=st.sampled_from([10, 20, 30, 40, 50]),
    alert_type=st.one_of(st.none(), st.sampled_from(["critical", "nope!", "billing"])),
)
def test_emit_never_raises_and_every_payload_is_valid(
    wired: tuple[FakeDiscord, DiscordHandler, logging.Logger],
    msg: str,
    megabyte: bool,
    msg_args: Any,
    extra: dict[str, Any],
    exc: BaseException | None,
    level: int,
    alert_type: str | None,
) -> None:
    """Any message, args, extras, exception chain and unicode: emit returns, Discord accepts."""
    fake, handler, logger = wired
    if megabyte:  # built here, not drawn: hypothesis would print a 1 MB repr
        msg = "é" * 1_000_000 + msg
    if alert_type is not None:
        extra = {**extra, "alert_type": alert_type}
    record = logger.makeRecord("fuzz", level, "/app/f.py", 1, msg, None, None, extra=extra)
    record.args = msg_args
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    logger.handle(record)  # must not raise
    assert handler.flush(FAILSAFE)
    assert fake.count_status(400) == 0
    for message in fake.messages[-3:]:
        validate_webhook_payload(message.payload)
    stats = handler.stats()
    assert stats["template_errors"] == 0
    assert stats["store_errors"] == 0
    assert stats["dropped"] == {}


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    bodies=st.lists(st.tuples(texts, texts, st.booleans()), min_size=1, max_size=120),
)
def test_any_backlog_packs_into_a_valid_message(bodies: list[tuple[str, str, bool]]) -> None:
    """Whatever waits in a lane, the packed message keeps <= 10 embeds and <= 6000 characters."""
    renderer = EmbedRenderer()
    backlog = [
        renderer.render(
            build_notification(
                "general", title or "t", message, exc=ValueError(message) if boom else None
            )
        )
        for title, message, boom in bodies
    ]
    message = pack(backlog, renderer.digest_field, now=0.0)
    assert 1 <= len(message.notifications) <= len(backlog)
    assert len(message.embeds) <= EMBEDS_PER_MESSAGE
    assert sum(embed_length(e) for e in message.embeds) <= MESSAGE_EMBED_TOTAL
    validate_webhook_payload(build_payload(list(message.embeds)))
    if message.attachment is not None:
        assert len(message.attachment[1]) <= 10 * 1024 * 1024
