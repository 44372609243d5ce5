"""How a lane takes kept letters back: when it looks again after a failure, how it keeps its
redelivery claims alive, and how a letter that may already be in Discord says so (pure).

A letter dead-lettered for a retryable reason is looked for again on an exponential schedule
from about a second, capped at :data:`REFILL_INTERVAL`, so a short blip costs seconds, not a
refill round; a lasting outage costs at most one probe letter per interval.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Final

from . import limits
from .backoff import backoff_delay
from .rendering import RenderedNotification
from .text import cut_head

REFILL_INTERVAL: Final = 30.0  # how often an idle lane looks for dead letters to redeliver
# The durable store's claims last 120 s (store CLAIM_LEASE); renewing every 30 s keeps a claim
# alive through three missed rounds (a long request, a busy loop) before another process may
# take the letter over.
RENEW_INTERVAL: Final = 30.0
REPEAT_NOTE: Final = "\u21bb May repeat an earlier message: it was cut off in flight at shutdown"
FOOTER_SEPARATOR: Final = " \u00b7 "


def refill_delay(failed_rounds: int, *, rand: Callable[[], float] = random.random) -> float:
    """When to look at the kept letters again after a failed send: about 1 s after the first
    failure, doubling with each failed redelivery round, at most :data:`REFILL_INTERVAL`."""
    return backoff_delay(failed_rounds + 1, cap=REFILL_INTERVAL, rand=rand)


def with_repeat_note(rendered: RenderedNotification) -> RenderedNotification:
    """``rendered`` with :data:`REPEAT_NOTE` leading its footer, still within every limit:
    the footer is cut to its own limit, then the description gives up what the 6000 total needs.
    """
    embed = dict(rendered.embed)
    footer = embed.get("footer")
    old = footer.get("text", "") if isinstance(footer, dict) else ""
    text = REPEAT_NOTE + FOOTER_SEPARATOR + old if old else REPEAT_NOTE
    embed["footer"] = {**(footer or {}), "text": cut_head(text, limits.FOOTER_TEXT)}
    excess = limits.embed_length(embed) - limits.MESSAGE_EMBED_TOTAL
    description = embed.get("description")
    if excess > 0 and isinstance(description, str):
        shorter = cut_head(description, limits.text_length(description) - excess)
        if shorter:
            embed["description"] = shorter
        else:
            del embed["description"]
    return dataclasses.replace(rendered, embed=embed)
