"""How a lane takes kept letters back: when it looks again after a failure, how it keeps its
redelivery claims alive, and how a letter that may already be in Discord says so (pure).

A letter dead-lettered for a retryable reason is looked for again on an exponential schedule
from about a second, capped at :data:`REFILL_INTERVAL`, so a short blip costs seconds, not a
refill round; a lasting outage costs at most one probe letter per interval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Final

from ..deadletters import DeadLetter
from ..render import message_limits as limits
from ..render.fitting import RenderedNotification
from ..render.text import cut_head
from ..store import CLAIM_LEASE
from .backoff import backoff_delay, jitter
from .shared import SharedState

REFILL_INTERVAL: Final = 30.0  # how often an idle lane looks for dead letters to redeliver
# The durable store's claims last 120 s (store CLAIM_LEASE); renewing every 30 s keeps a claim
# alive through three missed rounds (a long request, a busy loop) before another process may
# take the letter over.
RENEW_INTERVAL: Final = 30.0
# Fencing: a kept letter goes out only under a claim confirmed less than this long ago (the
# lease less a renewal round); past it (the process was paused, the loop stalled) the lane
# confirms its claims first and drops those it lost (docs/architecture.md, "Holders").
FENCE_AGE: Final = CLAIM_LEASE - RENEW_INTERVAL
REPEAT_NOTE: Final = "\u21bb May repeat an earlier message: Discord's answer to it was lost"
FOOTER_SEPARATOR: Final = " \u00b7 "


def refill_delay(failed_rounds: int, *, rand: Callable[[], float] = jitter) -> float:
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


@dataclasses.dataclass(frozen=True, slots=True)
class Found:
    """What a look read from the store: retryable letters, and which owed ids are kept."""

    letters: list[DeadLetter]
    asked: frozenset[str]
    kept: set[str]
    at: float  # the lane's clock when the read began: the letters' claims hold from then


class LaneRedelivery:
    """One lane's schedule for taking its kept letters back, and its claims on them."""

    def __init__(self, destination: str, shared: SharedState) -> None:
        self.destination = destination
        """The webhook identity the lane's letters are kept under."""
        self.shared = shared
        self.next_refill = 0.0  # 0: look for kept letters as soon as the lane starts
        self.failed_rounds = 0  # redelivery rounds that failed since the last success
        self.next_renew = 0.0
        self.confirmed: dict[str, float] = {}  # kept letter id -> when its claim last held
        # Letters the lane itself could not queue (overflow) wait in the store: while the
        # webhook is healthy the lane owes them, and flush() waits for them too, so a script
        # that logs a burst and flushes delivers it rather than leaving it for the next run.
        # Known by id (rule 4): one another holder took and sent is paid; one it still holds
        # is still owed, and flush() waits for it rather than guessing from a count.
        self.owed: set[str] = set()
        self.empty_looks = 0  # healthy looks in a row that found nothing free
        self.overflows = 0  # records kept because the queue was full, ever
        self._overflows_at_look = 0

    def overflowed(self, now: float, letter_id: str) -> None:
        """A record did not fit the queue and was kept: take it back once there is room."""
        self.owed.add(letter_id)
        self.overflows += 1
        self.next_refill = min(self.next_refill, now)

    def after_response(self, healthy: bool, was_healthy: bool, now: float) -> None:
        """A failure: what it dead-letters comes back after a short, growing wait. Healthy
        again after failures: redeliver what the outage kept, now."""
        if not healthy:
            self.next_refill = now + refill_delay(self.failed_rounds, rand=self.shared.rand)
        elif not was_healthy:
            self.next_refill = 0.0
            self.failed_rounds = 0

    def look(self, now: float, healthy: bool) -> int:
        """Begin a look for kept letters (on the loop); returns how many to read: a good
        share when the webhook is healthy, else one, as a probe."""
        self.next_refill = now + REFILL_INTERVAL
        self._overflows_at_look = self.overflows
        return max(1, self.shared.config.queue_size // 2) if healthy else 1

    def read(self, limit: int, owed: frozenset[str], at: float = 0.0) -> Found:
        """The store's part of a look (on the store thread; it changes nothing here): up to
        ``limit`` retryable letters of the lane's destination, oldest first, and which of
        the ``owed`` ids are still kept."""
        sink = self.shared.dead_letters
        try:
            letters = sink.retryable(self.destination, limit)
            kept = sink.kept_ids(owed) if owed else set()
        except Exception:  # noqa: BLE001 - a failing store must not stop delivery
            self.shared.stats.add("store_errors")
            letters, kept = [], set(owed)
        return Found(letters, owed, kept, at)

    def finish_look(
        self,
        now: float,
        healthy: bool,
        in_lane: set[str],
        limit: int,
        found: Found,
    ) -> list[DeadLetter]:
        """End a look (on the loop) with what :meth:`read` ``found``: the letters to queue
        again, minus those already ``in_lane``, and when to look next."""
        letters = found.letters
        # A record that overflowed while the store was read may not have been seen by it.
        raced = self.overflows != self._overflows_at_look
        if healthy:
            # Paid: asked about, no longer kept, and not queued here (another holder sent it).
            self.owed -= found.asked - found.kept - in_lane - {x.id for x in letters}
        else:
            self.owed.clear()  # kept durably; flush() does not wait for a webhook that fails
        letters = [letter for letter in letters if letter.id not in in_lane]
        if healthy and (letters or raced):
            self.next_refill = now  # more may be waiting: look again once these are sent
            self.empty_looks = 0
        elif healthy:
            # Nothing free, perhaps only for now: letters other processes hold lie in front
            # (the next look goes on past them) or are being sent. Look again after about 1 s,
            # 2 s, 4 s, ... up to the idle interval, not after a whole refill round.
            self.next_refill = now + refill_delay(self.empty_looks, rand=self.shared.rand)
            self.empty_looks += 1
        elif letters:
            self.failed_rounds += 1  # a probe letter: if it fails, the next look waits longer
        if letters:
            self.next_renew = now + RENEW_INTERVAL  # just claimed
            self.confirmed.update(dict.fromkeys((x.id for x in letters), found.at))
        return letters

    def unconfirmed(self, now: float, letter_ids: list[str]) -> list[str]:
        """Of the kept letters in the lane, those whose claims were not confirmed within
        FENCE_AGE: they must be (:meth:`confirm`) before the lane posts again."""
        confirmed = self.confirmed = {i: self.confirmed.get(i, -FENCE_AGE) for i in letter_ids}
        return [i for i, at in confirmed.items() if now - at >= FENCE_AGE]

    def confirm(self, letter_ids: list[str]) -> set[str]:
        """The store's part of a fence (on the store thread): renew the claims on
        ``letter_ids`` now and return those this holder lost; all of them when the store
        cannot tell (they stay kept; their claims lapse)."""
        try:
            return self.shared.dead_letters.confirm(letter_ids)
        except Exception:  # noqa: BLE001 - a failing store must not stop delivery
            self.shared.stats.add("store_errors")
            return set(letter_ids)

    def paid(self, letter_id: str) -> None:
        """The lane delivered ``letter_id``: it owes it no more."""
        self.owed.discard(letter_id)

    def renew(self, now: float, letter_ids: list[str]) -> list[str]:
        """Every RENEW_INTERVAL, extend the store's claims on the kept letters the lane holds,
        so they cannot expire (and go out from another process) while still queued here.
        Returns the ids renewed now (the lane renews their fleet claims too), else []."""
        if now < self.next_renew or not letter_ids:
            return []
        self.next_renew = now + RENEW_INTERVAL
        try:
            self.shared.dead_letters.renew(letter_ids)
        except Exception:  # noqa: BLE001 - a failing store must not stop delivery
            self.shared.stats.add("store_errors")
        return letter_ids
