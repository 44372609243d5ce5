"""Storm summaries show what differed: a sample of distinct messages, every record in a file."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

import pytest
from discord_schema import validate_webhook_payload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import FAILSAFE

from discord_logging import DiscordHandler
from discord_logging.notification import Notification
from discord_logging.render.message_limits import (
    EMBED_DESCRIPTION,
    FIELD_VALUE,
    MESSAGE_EMBED_TOTAL,
    embed_length,
    text_length,
)
from discord_logging.render.packing import pack
from discord_logging.render.payload import build_payload
from discord_logging.render.storm_summary import (
    SAMPLE_LINE_UNITS,
    SAMPLE_LINES,
    STORM_ATTACHMENT,
    DistinctMessage,
    distinct_messages,
    listing,
    needs_listing,
    pick,
)
from discord_logging.render.templating import EmbedRenderer, sample_notification
from discord_logging.testing import FakeDiscord

T0 = 8 * 3600 + 50 * 60 + 1.0  # 08:50:01 UTC on 1970-01-01


def summary(texts: list[str], count: int | None = None, **changes: object) -> Notification:
    """A storm summary of ``texts`` (one record each, 10 ms apart), counting ``count``."""
    base = sample_notification("error")
    values: dict[str, object] = {
        "title": texts[-1],
        "message": texts[-1],
        "exc_text": None,
        "exc_type": None,
        "created": T0 + (len(texts) - 1) * 0.01,
        "count": count if count is not None else len(texts),
        "first_seen": T0,
        "samples": tuple((T0 + i * 0.01, text) for i, text in enumerate(texts)),
    }
    return replace(base, **{**values, **changes})  # type: ignore[arg-type]


ORDERS = [f"order {n} failed: card declined" for n in range(1000, 1100)]


# -- pure parts --------------------------------------------------------------------------------


def test_distinct_messages_keep_first_time_and_count() -> None:
    """Repeated texts become one entry with the time it first came and how often."""
    samples = [(1.0, "a"), (2.0, "b"), (3.0, "a"), (4.0, "a")]
    assert distinct_messages(samples) == [
        DistinctMessage(1.0, "a", 3),
        DistinctMessage(2.0, "b", 1),
    ]


@pytest.mark.parametrize(
    ("available", "lines", "expected"),
    [
        (3, 8, [0, 1, 2]),
        (8, 8, list(range(8))),
        (100, 8, [0, 14, 28, 42, 57, 71, 85, 99]),
        (10, 2, [0, 9]),
        (10, 1, [0]),
    ],
)
def test_pick_spreads_from_first_to_last(available: int, lines: int, expected: list[int]) -> None:
    """The sample spans the storm: the first and the last distinct message, evenly between."""
    distinct = [DistinctMessage(float(i), str(i), 1) for i in range(available)]
    assert [int(d.text) for d in pick(distinct, lines)] == expected


@pytest.mark.parametrize(
    ("texts", "count", "needed"),
    [
        (["a", "b"], 2, False),  # each record has its own line
        (["a", "a"], 2, True),  # one line stands for two records at different times
        ([str(i) for i in range(SAMPLE_LINES)], SAMPLE_LINES, False),
        ([str(i) for i in range(SAMPLE_LINES + 1)], SAMPLE_LINES + 1, True),
        (["a", "b"], 5, True),  # three records were counted but not kept
        (["x" * (SAMPLE_LINE_UNITS + 1), "b"], 2, True),  # a line is cut in the embed
    ],
)
def test_needs_listing(texts: list[str], count: int, needed: bool) -> None:
    """The file goes along exactly when the embed cannot show each record whole."""
    assert needs_listing(summary(texts, count)) is needed


def test_listing_has_one_line_per_record_and_says_what_was_not_kept() -> None:
    """time and message per line; line breaks marked; records not kept are counted."""
    text = listing(summary(["order 1", "two\nlines"], count=5))
    assert text.splitlines() == [
        "5 records since 1970-01-01 08:50:01.000 UTC; the first 2 are listed:",
        "1970-01-01 08:50:01.000 UTC  order 1",
        "1970-01-01 08:50:01.010 UTC  two ⏎ lines",
        "… and 3 more not kept",
    ]


def test_no_listing_for_a_plain_notification() -> None:
    """A notification that is not a summary with samples lists nothing."""
    assert listing(replace(sample_notification("error"), count=1)) == ""
    assert listing(replace(sample_notification("error"), samples=())) == ""


# -- rendering ---------------------------------------------------------------------------------


def test_summary_embed_shows_count_since_and_a_sample() -> None:
    """x 100 in the title; since when, as a Discord timestamp, and 8 distinct orders with
    their times in the description; the file listed."""
    rendered = EmbedRenderer().render(summary(ORDERS))
    embed = rendered.embed
    assert embed["title"] == "order 1099 failed: card declined (x 100)"
    lines = embed["description"].splitlines()
    assert lines[0] == "**100 records** since <t:31801:f>, the latest at <t:31801:T>."
    assert lines[1] == "100 distinct messages (8 shown):"
    assert lines[2] == "<t:31801:T> order 1000 failed: card declined"
    assert lines[9] == "<t:31801:T> order 1099 failed: card declined"
    assert lines[10] == f"Every record kept is listed in {STORM_ATTACHMENT}."
    assert rendered.attachment_name == STORM_ATTACHMENT
    assert rendered.full_text is not None
    for order in ORDERS:
        assert f"UTC  {order}" in rendered.full_text
    validate_webhook_payload(build_payload([embed]))


def test_identical_repeats_are_one_sample_line_with_a_count() -> None:
    """A storm of one text shows it once, with how often, and what was not kept."""
    embed = EmbedRenderer().render(summary(["db down"] * 1000, count=50_000)).embed
    assert embed["description"].splitlines() == [
        "**50000 records** since <t:31801:f>, the latest at <t:31810:T>.",
        "1 distinct message:",
        "<t:31801:T> db down (x 1000)",
        "… and 49000 more not kept",
        f"Every record kept is listed in {STORM_ATTACHMENT}.",
    ]


def test_small_storm_needs_no_file() -> None:
    """Two different records are both shown: no file, no mention of one."""
    rendered = EmbedRenderer().render(summary(["order 1 failed", "order 2 failed"]))
    assert rendered.full_text is None
    assert STORM_ATTACHMENT not in rendered.embed["description"]
    assert "<t:31801:T> order 1 failed" in rendered.embed["description"]


def test_without_attachments_the_embed_promises_no_file() -> None:
    """attach_full_text off: the sample is shown, no file is announced."""
    embed = EmbedRenderer(attach_full_text=False).render(summary(ORDERS)).embed
    assert "(8 shown)" in embed["description"]
    assert STORM_ATTACHMENT not in embed["description"]


def test_samples_cannot_ping_or_break_the_embed() -> None:
    """@everyone, mentions, fences and our section separator in samples are made harmless."""
    texts = [
        "@everyone order 1 failed",
        "<@&123> order 2 ```py",
        "order 3 \x1e forged section",
        "@here order 4",
    ] * 3
    rendered = EmbedRenderer().render(summary(texts))
    description = rendered.embed["description"]
    assert "@\u200beveryone order 1" in description
    assert "@\u200bhere order 4" in description
    assert "<@\u200b&123>" in description
    assert "```" not in description
    assert "\x1e" not in description
    assert "order 3  forged section" in description
    assert "Every record kept" in description  # the footer section was not forged
    assert rendered.embed["footer"]["text"] == "discord-logging Error Alert"


def test_huge_samples_stay_within_every_discord_limit() -> None:
    """1,000 distinct 500-character samples of wide characters, plus a long message and a
    traceback: every limit holds, the file lists them all."""
    texts = [f"{i} " + "\U0001d518" * 240 + "@everyone" for i in range(1000)]
    notification = summary(
        texts,
        count=100_000,
        message="first line\n" + "m" * 9000,
        exc_text="Traceback (most recent call last):\n" + "  frame\n" * 2000 + "ValueError: x",
        extra=tuple((f"key{i}", "v" * 1000) for i in range(30)),
    )
    rendered = EmbedRenderer().render(notification)
    embed = rendered.embed
    assert embed_length(embed) <= MESSAGE_EMBED_TOTAL
    assert text_length(embed["description"]) <= EMBED_DESCRIPTION
    assert all(text_length(f["value"]) <= FIELD_VALUE for f in embed.get("fields", []))
    validate_webhook_payload(build_payload([embed]))
    assert rendered.full_text is not None
    assert rendered.full_text.count("\n1970-01-01 ") == 1000
    assert "… and 99000 more not kept" in rendered.full_text


def test_sample_comes_before_a_long_message() -> None:
    """The last record's long message cannot push the sample out of the embed."""
    embed = EmbedRenderer().render(summary(ORDERS, message="x\n" + "m" * 9000)).embed
    assert embed["description"].startswith("**100 records** since <t:31801:f>")
    assert "<t:31801:T> order 1099 failed: card declined" in embed["description"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(
        st.one_of(
            st.text(st.characters(codec=None, categories=None), max_size=500),
            st.sampled_from(["@everyone", "```", "\x1e", "\ud800", "😀" * 250, "<@&1>"]),
        ),
        min_size=1,
        max_size=60,
    ),
    extra_count=st.integers(0, 10**6),
)
def test_any_samples_give_a_valid_embed(texts: list[str], extra_count: int) -> None:
    """Whatever the sampled texts, the summary embed is valid for Discord and cannot ping."""
    rendered = EmbedRenderer().render(summary(texts, count=len(texts) + extra_count + 1))
    embed = rendered.embed
    assert embed_length(embed) <= MESSAGE_EMBED_TOTAL
    validate_webhook_payload(build_payload([embed]))
    assert "@everyone" not in embed.get("description", "")
    assert rendered.full_text is not None  # at least one record is not shown on its own line


def test_every_sample_line_is_cut_to_its_room() -> None:
    """A long sample text takes at most SAMPLE_LINE_UNITS in the embed."""
    embed = EmbedRenderer().render(summary(["a" * 400, "b" * 400, "c"])).embed
    lines = embed["description"].splitlines()[2:5]
    assert all(text_length(line) <= SAMPLE_LINE_UNITS + len("<t:31801:T> ") for line in lines)
    assert lines[0].endswith("a…")


def test_user_template_can_use_the_samples(tmp_path: Path) -> None:
    """The sample variables are documented template variables, checked at start-up."""
    (tmp_path / "error.j2").write_text(
        '{% extends "base.j2" %}{% block description %}'
        "{% for s in samples %}{{ s.time }}={{ s.message }}/{{ s.count }};{% endfor %}"
        "{{ samples_distinct }} {{ samples_kept }} {{ samples_not_kept }} {{ samples_file }}"
        "{% endblock %}",
        encoding="utf-8",
    )
    renderer = EmbedRenderer(templates_dir=tmp_path)
    renderer.validate(["error"])
    embed = renderer.render(summary(["a", "b", "a"], count=4)).embed
    assert embed["description"] == (f"08:50:01=a/2;08:50:01=b/1;2 3 1 {STORM_ATTACHMENT}")
    assert renderer.template_errors == 0


def test_plain_notification_has_no_sample() -> None:
    """A record that is no summary renders as before: no sample heading."""
    notification = replace(sample_notification("error"), count=1, samples=())
    assert "records since" not in EmbedRenderer().render(notification).embed["description"]


# -- packing -----------------------------------------------------------------------------------


def test_a_lone_summary_sends_its_records_as_records_txt() -> None:
    """A summary packed alone carries the file named for its records."""
    renderer = EmbedRenderer()
    message = pack([renderer.render(summary(ORDERS))], renderer.digest_field)
    assert message.attachment is not None
    name, data = message.attachment
    assert name == STORM_ATTACHMENT
    assert data.decode().count(" failed: card declined\n") >= 99


def test_summaries_in_a_digest_fit_and_their_records_are_in_the_file() -> None:
    """A backlog of large storm summaries becomes a digest within 6000, listing every record."""
    renderer = EmbedRenderer()
    backlog = [
        renderer.render(summary([f"storm {s} order {n} " + "x" * 300 for n in range(200)]))
        for s in range(40)
    ]
    message = pack(backlog, renderer.digest_field, now=T0)
    assert message.digest
    assert message.size <= MESSAGE_EMBED_TOTAL
    validate_webhook_payload(build_payload(list(message.embeds)))
    assert message.attachment is not None
    body = message.attachment[1].decode()
    for s in range(len(message.notifications)):
        assert f"UTC  storm {s} order 199 " in body


# -- end to end --------------------------------------------------------------------------------


def test_storm_of_orders_reaches_discord_with_sample_and_file(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """100 "order %d failed" records in one window (second-message updates): the first at
    once, then one summary with the count, a sample in the embed and a file naming every
    order; Discord accepts both."""
    handler = DiscordHandler(
        webhooks={"general": fake_discord.add_webhook()},
        allowed_hosts=fake_discord.host,
        store_path=tmp_path / "store",
        aggregate_window=60,
        incident_updates="message",
    )
    log = logging.getLogger("shop.payments")
    log.addHandler(handler)
    log.propagate = False
    try:
        for order in range(1000, 1100):
            log.error("order %d failed: card declined", order)
        assert handler.flush(FAILSAFE)
        stats = handler.stats()
    finally:
        log.removeHandler(handler)
        handler.close()
    assert stats["aggregated"] == 98
    assert fake_discord.count_status(400) == 0
    embeds = [(m, e) for m in fake_discord.messages for e in m.embeds]
    assert embeds[0][1]["title"] == "order 1000 failed: card declined"
    (message, embed) = next((m, e) for m, e in embeds if "(x 100)" in e["title"])
    validate_webhook_payload(message.payload)
    assert message.payload["allowed_mentions"] == {"parse": []}
    assert embed["title"] == "order 1099 failed: card declined (x 100)"
    assert "100 distinct messages (8 shown)" in embed["description"]
    assert "order 1000 failed: card declined" in embed["description"]
    ((name, data),) = message.files.values()
    assert name == STORM_ATTACHMENT
    listed = re.findall(r"UTC  order (\d+) failed: card declined", data.decode())
    assert listed == [str(n) for n in range(1000, 1100)]
