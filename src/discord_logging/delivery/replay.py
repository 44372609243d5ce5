"""Redelivering stored dead letters on an operator's request, without duplicates.

A letter whose notification already has a Discord message id in the history is forgotten,
not posted; each letter is claimed before it is sent, so a running application and this
replay never post the same letter twice. An interrupted replay can simply be run again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..notification import DeliveryStatus, NotificationResult
from ..store import Claim, Store, as_taken_over
from .notifier import Notifier


@dataclass(slots=True)
class ReplayReport:
    """What a replay did."""

    total: int = 0
    delivered: int = 0
    skipped_already_delivered: int = 0
    claimed_elsewhere: int = 0
    failed: Counter[str] = field(default_factory=Counter)

    @property
    def remaining(self) -> int:
        """Letters still in the store after the replay."""
        return sum(self.failed.values()) + self.claimed_elsewhere


async def replay(
    store: Store,
    notifier: Notifier,
    *,
    webhook: str | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
    chunk: int = 50,
) -> ReplayReport:
    """Redeliver every stored dead letter (of ``webhook``, when given), oldest first."""
    durable = store.durable
    report = ReplayReport()
    if durable is None:
        return report
    letters = [x for x in durable.letters() if webhook is None or x.webhook == webhook]
    report.total = len(letters)
    done = 0
    for start in range(0, len(letters), chunk):
        futures: list[asyncio.Future[NotificationResult]] = []
        for letter in letters[start : start + chunk]:
            if durable.already_delivered(letter.notification):
                durable.remove(letter.id)
                report.skipped_already_delivered += 1
            elif notifier.find_queued(letter.id) is not None:
                futures.append(notifier.redeliver(letter))  # already ours, in a lane
            elif (claim := durable.claim(letter.id)) is not None:
                taken_over = claim is Claim.TAKEN_OVER  # its holder died: it may have sent it
                futures.append(notifier.redeliver(as_taken_over(letter) if taken_over else letter))
            else:
                report.claimed_elsewhere += 1
        for result in await asyncio.gather(*futures):
            if result.status is DeliveryStatus.DELIVERED:
                report.delivered += 1
            elif result.status is DeliveryStatus.FAILED and result.webhook_id is None:
                durable.release(result.notification_id)  # no webhook can carry it here
                report.failed["not_configured"] += 1
            else:
                report.failed[_reason(store, result)] += 1
        done = min(len(letters), start + chunk)
        progress(done, len(letters))
    return report


def _reason(store: Store, result: NotificationResult) -> str:
    durable = store.durable
    letter = durable.get(result.notification_id) if durable is not None else None
    if letter is not None:
        return letter.reason.value
    return result.error or result.status.value
