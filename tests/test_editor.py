"""The incident editor against FakeDiscord over HTTP, fed directly (no worker, no timing): what
it does with each answer to an edit, and what it keeps at close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import fast_notifier
from waiting import FAILSAFE

from discord_logging.capture.direct import build_notification
from discord_logging.deadletters import DeadLetterReason, MemoryDeadLetters
from discord_logging.delivery.editor import IncidentEditor, Update
from discord_logging.delivery.incidents import Incident
from discord_logging.delivery.notifier import Notifier
from discord_logging.delivery.pending import Pending
from discord_logging.delivery.redelivery import REPEAT_NOTE
from discord_logging.notification import DeliveryStatus, Notification, new_id
from discord_logging.testing import FakeDiscord

T0 = 1_796_000_000.0


@pytest.fixture
def fake(fast_discord: FakeDiscord) -> FakeDiscord:
    """Discord's limits on short windows (conftest's fast_discord)."""
    return fast_discord


def notifier(fake: FakeDiscord, **options: Any) -> Notifier:
    return fast_notifier(fake, "error", dead_letters=MemoryDeadLetters(), **options)


def incident(
    count: int = 1, key: str = "fp", text: str = "db down", **changes: Any
) -> Notification:
    """A notification of incident ``key``: its first record (count 1) or an update."""
    base = build_notification("error", text, text)
    samples = tuple((T0 + i, f"{text} {i}") for i in range(count)) if count > 1 else ()
    values: dict[str, Any] = {"fingerprint": key, "created": T0 + count}
    if count > 1:
        values.update(count=count, first_seen=T0, last_seen=T0 + count, samples=samples)
    return replace(base, **{**values, **changes})


def editor_of(n: Notifier) -> IncidentEditor:
    return n._editors[n.lanes["error"]]


async def until(condition: Callable[[], bool], seconds: float = FAILSAFE) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition was not met in time"
        await asyncio.sleep(0.02)


def message_of(known: Incident | None) -> str | None:
    """The id of the message the editor keeps for an incident, if any."""
    return known.message.message_id if known is not None and known.message is not None else None


def titles_now(fake: FakeDiscord) -> list[str]:
    found = []
    for message in fake.messages:
        now = fake.message(message.message_id)
        found += [e["title"] for e in (now.embeds if now else [])]
    return found


async def test_running_update_then_the_last_one_carrying_its_record(fake: FakeDiscord) -> None:
    """A running update edits the first post; the last update, carrying a record, edits it
    again and is reported delivered with that message's id."""
    n = notifier(fake)
    first = await n.send_notification(incident())
    n.show_update(incident(5, ongoing=True))
    await until(lambda: len(fake.edits) == 1)
    last = await n.send_notification(incident(9, quiet=True))
    await n.aclose()
    assert last.status is DeliveryStatus.DELIVERED
    assert last.message_id == first.message_id
    assert titles_now(fake) == ["db down (x 9)"]
    assert len(fake.messages) == 1
    assert n.stats.get("edits_sent") == 2
    assert n.stats.get("delivered") == 2


async def test_update_of_an_incident_whose_post_failed_is_posted(fake: FakeDiscord) -> None:
    """The first post became a dead letter: there is nothing to edit, so the update that
    carries a record is posted by the lane as a message of its own."""
    n = notifier(fake, retry_attempts=1)
    fake.fail_next(1, 503)
    failed = await n.send_notification(incident())
    assert failed.status is DeliveryStatus.DEAD_LETTERED
    result = await n.send_notification(incident(4, quiet=True))
    await n.aclose()
    assert result.ok
    assert fake.messages[0].embeds[0]["title"] == "db down (x 4)"
    assert not fake.edits  # (the kept first post is redelivered later, as a message)


async def test_an_update_showing_no_more_than_a_kept_one_is_dropped(fake: FakeDiscord) -> None:
    """The incident's post and an update carrying a record (a flush's) were kept as letters:
    its quiet word, standing for no record and counting no more, is dropped (the letter will
    show that count); a running count showing more is posted anew (docs/architecture.md, "A
    kept update is its storm's word")."""
    n = notifier(fake, retry_attempts=1)
    fake.fail_next(2, 503)
    first = await n.send_notification(incident())
    flushed = await n.send_notification(incident(6, ongoing=True))
    assert [first.status, flushed.status] == [DeliveryStatus.DEAD_LETTERED] * 2
    n.show_update(incident(6, quiet=True))
    await until(lambda: n.stats.get("updates_dropped") == 1)
    assert not fake.messages
    n.show_update(incident(8, ongoing=True))
    await until(lambda: len(fake.messages) == 1)
    await n.aclose()
    assert titles_now(fake) == ["db down (x 8)"]
    assert n.stats.get("updates_dropped") == 1


@pytest.mark.parametrize("fleet", [False, True], ids=["one process", "fleet"])
async def test_a_quiet_word_after_its_kept_update_was_redelivered_is_no_second_summary(
    fake: FakeDiscord, tmp_path: Path, fleet: bool
) -> None:
    """Three of six storms' running updates (each carrying a record) overflow the queue and
    are kept, then redelivered. The storms' quiet words, counting no more, then edit those
    messages in one process; in a fleet, whose incident knows no redelivered message, they
    are dropped. No storm is shown in two summaries."""
    n = notifier(fake, queue_size=3, **({"store_dir": tmp_path} if fleet else {}))
    updates = [incident(2, key=f"storm-{i}", text=f"db down {i}", ongoing=True) for i in range(6)]
    for update in updates:
        n.submit(update)
    await until(lambda: n.stats.get("redelivered") == 3)
    for update in updates:
        n.show_update(replace(update, ongoing=False, quiet=True, id=new_id()))
    # Each quiet word edits, is dropped, or is posted anew (a seventh embed or more).
    anew = lambda: sum(len(message.embeds) for message in fake.messages) - 6  # noqa: E731
    await until(lambda: n.stats.get("edits_sent") + n.stats.get("updates_dropped") + anew() == 6)
    await n.aclose()
    titles = sorted(embed["title"] for message in fake.messages for embed in message.embeds)
    assert titles == [f"db down {i} (x 2)" for i in range(6)]
    assert n.stats.get("updates_dropped") == (3 if fleet else 0)


async def test_running_update_of_a_gone_message_is_posted_anew(fake: FakeDiscord) -> None:
    """The message was deleted: the edit gets 10008 and the running update is posted as a new
    message, which the next update edits."""
    n = notifier(fake)
    first = await n.send_notification(incident())
    assert first.message_id is not None
    fake.delete_message(first.message_id)
    n.show_update(incident(3, ongoing=True))
    await until(lambda: len(fake.messages) == 2)
    # Not only posted: the editor has its answer (else the last update, racing it, is posted
    # anew too: seen once under load).
    board = editor_of(n).board
    await until(lambda: message_of(board.get("fp")) == fake.messages[1].message_id)
    last = await n.send_notification(incident(4, quiet=True))
    await n.aclose()
    assert last.message_id == fake.messages[1].message_id
    assert [r.code for r in fake.requests if r.status == 404] == [10008]
    assert fake.messages[1].flags == 4096  # an update posted anew is silent by default
    assert n.stats.get("messages_sent") == 2


async def test_running_update_that_cannot_be_posted_anew_is_dropped(fake: FakeDiscord) -> None:
    """Posting a running update anew fails (Discord answers 400): it stood for no record, so
    it is dropped and counted, nothing is dead-lettered."""
    n = notifier(fake)
    first = await n.send_notification(incident())
    assert first.message_id is not None
    fake.delete_message(first.message_id)
    fake.fail_next(1, 400)
    n.show_update(incident(3, ongoing=True))
    await until(lambda: n.stats.get("updates_dropped") == 1)
    await n.aclose()
    assert len(n.dead_letters) == 0


async def test_running_update_failing_past_its_attempts_is_dropped(fake: FakeDiscord) -> None:
    """Edits answered 503 are retried after a backoff; past the attempts a running update is
    dropped and counted."""
    n = notifier(fake, retry_attempts=2)
    await n.send_notification(incident())
    fake.fail_next(2, 503, route="messages")
    n.show_update(incident(3, ongoing=True))
    await until(lambda: n.stats.get("updates_dropped") == 1)
    await n.aclose()
    assert [r.status for r in fake.requests if r.method == "PATCH"] == [503, 503]


@pytest.mark.parametrize("kind", ["global 429", "ban"])
async def test_a_global_429_or_a_ban_on_an_edit_pauses_everyone(
    fake: FakeDiscord, kind: str
) -> None:
    """A global 429 or a Cloudflare ban answered to an edit pauses every lane for its time;
    the edit is made after it."""
    n = notifier(fake, ban_cooldown=0.3)
    await n.send_notification(incident())
    if kind == "ban":
        fake.set_ban(True, retry_after=0)
    else:
        fake.force_global_429(1, retry_after=0.3, route="messages")
    shared = n.lanes["error"].shared
    asked = shared.clock()
    n.show_update(incident(3, ongoing=True))
    await until(lambda: fake.count_status(429) >= 1)
    # The fake counts the 429 before it answers: wait until the lane has the answer too.
    await until(lambda: shared.paused_until > 0)
    # Paused for its time from the answer on (the answer came after ``asked``); not compared
    # with the clock now, which a loaded machine may have carried past the 0.3 s.
    assert shared.paused_until >= asked + 0.3
    fake.set_ban(False)
    await until(lambda: len(fake.edits) == 1)
    await n.aclose()
    assert titles_now(fake) == ["db down (x 3)"]


async def test_update_too_large_beside_the_others_is_posted_anew(fake: FakeDiscord) -> None:
    """An incident sharing its message with a long record: an update that no longer fits the
    6000 characters of that message is posted as a message of its own."""
    n = notifier(fake)
    fake.set_hang(True)
    n.submit(build_notification("error", "lone", "first"))
    await until(lambda: fake.pending == 1)
    n.submit(build_notification("error", "long record", "y" * 4000))
    n.submit(incident())
    fake.set_hang(False)
    await until(lambda: len(fake.messages) == 2)
    n.show_update(incident(30, message="db down\n" + "z" * 3000))
    await until(lambda: len(fake.messages) == 3)
    await n.aclose()
    assert titles_now(fake)[:3] == ["lone", "long record", "db down"]
    assert fake.messages[2].embeds[0]["title"].endswith("(x 30)")
    assert not fake.edits


async def test_close_keeps_held_records_and_drops_running_counts(fake: FakeDiscord) -> None:
    """At close, a record waiting on an incident whose post never got its answer is kept as
    a shutdown dead letter; the post itself timed out waiting for its answer, so Discord may
    have it: uncertain (rule 3); a running count is only counted."""
    n = notifier(fake, timeout=0.5)
    await n.send_notification(incident(key="posted"))
    fake.set_hang(True)
    n.submit(incident(key="waiting"))  # its post hangs: its updates wait for its answer
    await until(lambda: bool(n.lanes["error"].in_flight))
    n.submit(incident(3, key="waiting", quiet=True))
    n.submit(incident(key="queued"))  # its post waits behind the one in flight
    n.show_update(incident(2, key="queued", ongoing=True))
    assert editor_of(n).busy
    assert n.queue_depth() == 3  # a post in flight, one queued, a record held for an edit
    await n.aclose(0.6)
    fake.set_hang(False)
    reasons = sorted(letter.reason.value for letter in n.dead_letters.letters())
    assert reasons == ["shutdown", "shutdown", "uncertain"]
    assert n.stats.get("updates_dropped") == 1


async def test_edit_cut_off_at_close_is_kept_as_uncertain(fake: FakeDiscord) -> None:
    """An edit in flight when close cancels the editor: Discord may have made it, so the
    record it carried is kept as an uncertain dead letter."""
    n = notifier(fake, timeout=5.0)
    await n.send_notification(incident())
    fake.set_hang(True)
    n.submit(incident(3, quiet=True))
    await until(lambda: editor_of(n)._in_flight is not None)
    await n.aclose(0.6)
    fake.set_hang(False)
    (letter,) = n.dead_letters.letters()
    assert letter.reason is DeadLetterReason.UNCERTAIN
    assert "edit cut off" in (letter.error or "")


async def test_records_without_a_message_at_close_are_kept(fake: FakeDiscord) -> None:
    """While closing, records the editor cannot show and would hand to the lane are kept as
    shutdown dead letters instead (the lane may have stopped)."""
    n = notifier(fake)
    await n.send_notification(incident())
    editor = editor_of(n)
    shared = n.lanes["error"].shared
    shared.closing = True
    record = Pending(incident(2, quiet=True))
    editor._post_records("fp", Update(record.notification, [record]))
    shared.closing = False
    await n.aclose()
    (letter,) = n.dead_letters.letters()
    assert letter.reason is DeadLetterReason.SHUTDOWN


async def test_a_bug_in_the_editor_keeps_its_records_and_the_editor_goes_on(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception inside an edit (a bug) keeps the record that update carried as an
    internal_error letter, counted; the next update is edited as usual."""
    n = notifier(fake)
    await n.send_notification(incident())
    editor = editor_of(n)
    real_edit = editor._edit
    calls: list[int] = []

    async def broken_once(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        await real_edit(*args)

    monkeypatch.setattr(editor, "_edit", broken_once)
    result = await n.send_notification(incident(3, quiet=True))
    assert result.status is DeliveryStatus.DEAD_LETTERED
    n.show_update(incident(4, ongoing=True))
    await until(lambda: len(fake.edits) == 1)
    await n.aclose()
    (letter,) = n.dead_letters.letters()
    assert letter.reason is DeadLetterReason.INTERNAL_ERROR
    assert n.stats.get("internal_errors") == 1


async def test_last_update_whose_message_is_gone_is_posted_by_the_lane(
    fake: FakeDiscord,
) -> None:
    """The last update (carrying a record) meets 10008: the message was deleted, so the lane
    posts it as a message of its own, delivered."""
    n = notifier(fake)
    first = await n.send_notification(incident())
    assert first.message_id is not None
    fake.delete_message(first.message_id)
    result = await n.send_notification(incident(5, quiet=True))
    await n.aclose()
    assert result.ok
    assert result.message_id == fake.messages[1].message_id
    assert fake.messages[1].embeds[0]["title"] == "db down (x 5)"


async def test_update_coming_while_an_edit_fails_is_merged(fake: FakeDiscord) -> None:
    """A newer update arrives while an edit is in flight and that edit fails: the retry shows
    the newer one."""
    n = notifier(fake)
    await n.send_notification(incident())
    fake.set_latency(0.3)
    fake.fail_next(1, 503, route="messages")
    n.show_update(incident(3, ongoing=True))
    await until(lambda: editor_of(n)._in_flight is not None)
    n.show_update(incident(4, ongoing=True))
    fake.set_latency(0.0)
    await until(lambda: len(fake.edits) == 1)
    await n.aclose()
    assert titles_now(fake) == ["db down (x 4)"]


async def test_close_gives_up_when_no_slot_comes_before_the_deadline(fake: FakeDiscord) -> None:
    """At close, an update whose slot would come only after the deadline is not waited for:
    its record is kept as a shutdown dead letter at once."""
    n = notifier(fake, rate_limit=1)
    await n.send_notification(incident())  # takes the window's only place for a second
    fake.set_hang(True)
    editor = editor_of(n)
    editor.take(Pending(incident(3, quiet=True)))
    fake.set_hang(False)
    await n.aclose(0.6)
    (letter,) = n.dead_letters.letters()
    assert letter.reason is DeadLetterReason.SHUTDOWN
    assert not fake.edits


def test_incident_board_forgets_the_oldest_and_unknown_keys() -> None:
    """The board keeps at most its limit of incidents (the least recently used go first);
    forgetting an unknown incident's message does nothing."""
    from discord_logging.delivery.incidents import IncidentBoard

    board = IncidentBoard(limit=2)
    for key in ("a", "b", "c"):
        board.expect(incident(key=key))
    assert board.get("a") is None
    assert board.get("c") is not None
    board.gone("unknown", thread=True)
    assert board.get("unknown") is None
    assert not board.settled(incident(key="unknown"))


async def test_an_edit_whose_answer_was_lost_marks_its_records_uncertain(
    fake: FakeDiscord,
) -> None:
    """A gateway's 504 to every try of an edit carrying a record: Discord may have made the
    edit, so the record, posted anew once the edits gave up, says it may repeat an earlier
    message (and the journal is not told it was certainly not posted)."""
    n = notifier(fake, retry_attempts=2)
    told: list[tuple[str, bool, bool]] = []  # (id, going out, marked uncertain)
    n.on_sending = lambda carried, sending: told.extend(
        (p.notification.id, sending, p.uncertain) for p in carried
    )
    n.start()
    await n.send_notification(incident())
    fake.fail_next(2, 504, route="messages")
    last = await n.send_notification(incident(9, quiet=True))
    await n.aclose()
    assert last.status is DeliveryStatus.DELIVERED
    assert len(fake.messages) == 2
    footer = str(fake.messages[-1].embeds[-1].get("footer", {}).get("text", ""))
    assert footer.startswith(REPEAT_NOTE), footer
    answered = [
        uncertain
        for ident, sending, uncertain in told
        if ident == last.notification_id and not sending
    ]
    assert answered, told
    assert all(answered), told  # never told "certainly not posted" after a lost answer
