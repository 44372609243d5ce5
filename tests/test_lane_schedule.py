"""A lane's pure pieces, from tables: the refill schedule, the repeat note, what travels
together, the binary split."""

from __future__ import annotations

from dataclasses import replace

import pytest

from discord_logging.delivery.backlog import next_backlog, plain_prefix, split
from discord_logging.delivery.pending import Pending
from discord_logging.delivery.redelivery import (
    REFILL_INTERVAL,
    REPEAT_NOTE,
    refill_delay,
    with_repeat_note,
)
from discord_logging.render import message_limits as limits
from discord_logging.render.packing import DIGEST_MAX_RECORDS
from discord_logging.render.templating import EmbedRenderer, sample_notification
from discord_logging.testing import Accepted, validate


@pytest.mark.parametrize(
    ("failed_rounds", "rand", "delay"),
    [
        (0, 1.0, 1.0),  # right after a failure: about a second
        (0, 0.0, 0.5),  # jittered into [d/2, d]
        (1, 1.0, 2.0),
        (2, 1.0, 4.0),
        (4, 1.0, 16.0),
        (5, 1.0, REFILL_INTERVAL),  # capped at the idle refill interval
        (50, 1.0, REFILL_INTERVAL),
        (5000, 0.0, REFILL_INTERVAL / 2),
    ],
)
def test_refill_delay_starts_at_a_second_doubles_and_is_capped(
    failed_rounds: int, rand: float, delay: float
) -> None:
    """Kept letters are looked for again ~1 s after a failure, doubling per failed round."""
    assert refill_delay(failed_rounds, rand=lambda: rand) == pytest.approx(delay)


@pytest.mark.parametrize(
    ("message", "footer"),
    [("short", True), ("x" * 6000, True), ("x" * 6000, False), ("", False)],
)
def test_repeat_note_leads_the_footer_within_every_limit(message: str, footer: bool) -> None:
    """The note goes first in the footer; a full embed gives up description, never validity."""
    notification = replace(
        sample_notification("error"),
        message=message,
        fields=tuple((f"k{i}", "v" * 200) for i in range(6)),
    )
    rendered = EmbedRenderer().render(notification)
    if not footer:
        rendered.embed.pop("footer", None)
    noted = with_repeat_note(rendered)
    text = noted.embed["footer"]["text"]
    assert text.startswith(REPEAT_NOTE)
    assert limits.text_length(text) <= limits.FOOTER_TEXT
    assert limits.embed_length(noted.embed) <= limits.MESSAGE_EMBED_TOTAL
    assert isinstance(validate({"embeds": [noted.embed]}, {}), Accepted)
    assert "footer" not in rendered.embed or REPEAT_NOTE not in rendered.embed["footer"]["text"]


def pendings(count: int, **changes: object) -> list[Pending]:
    return [Pending(sample_notification("general"), **changes) for _ in range(count)]  # type: ignore[arg-type]


def test_next_backlog_follows_the_front_cap_and_keeps_repeats_apart() -> None:
    """Up to DIGEST_MAX_RECORDS go together; a split cap travels with the front; possible
    repeats go only with their kind, at most ten (plain embeds)."""
    assert len(next_backlog(pendings(700))) == DIGEST_MAX_RECORDS
    capped = pendings(3, cap=3) + pendings(5)
    assert next_backlog(capped) == capped[:3]
    mixed = pendings(12, uncertain=True) + pendings(2)
    assert next_backlog(mixed) == mixed[:10]
    later = pendings(2) + pendings(2, uncertain=True)
    assert next_backlog(later) == later[:2]


@pytest.mark.parametrize(("count", "halves"), [(2, (1, 1)), (5, (3, 2)), (42, (21, 21))])
def test_split_halves_what_was_refused(count: int, halves: tuple[int, int]) -> None:
    """A refused message is halved: each half's entries carry its size as their cap."""
    carried = pendings(count)
    split(carried)
    first, second = halves
    assert [p.cap for p in carried] == [first] * first + [second] * second
    assert next_backlog(carried) == carried[:first]


def test_plain_prefix_fits_6000_characters() -> None:
    """Possible repeats are sent as plain embeds: only as many as fit 6000 go (at least one)."""
    renderer = EmbedRenderer()
    big = renderer.render(replace(sample_notification("error"), message="x" * 4000))
    assert len(plain_prefix([big, big, big])) == 1
    small = renderer.render(sample_notification("error"))
    assert len(plain_prefix([small] * 5)) == 5
