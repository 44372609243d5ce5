"""One message per incident, kept current by edits, against FakeDiscord over HTTP: running
updates, the quiet edit, a message gone (10008), edits budgeted on their own bucket, failures,
grouping by the user's fingerprint, flush and close."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from discord_schema import validate_webhook_payload
from waiting import FAILSAFE

from discord_logging import DiscordHandler
from discord_logging.deadletters import MemoryDeadLetters
from discord_logging.delivery.lane import WebhookLane
from discord_logging.testing import FakeDiscord
from discord_logging.testing._models import StoredMessage


@pytest.fixture
def fake(fast_discord: FakeDiscord) -> FakeDiscord:
    """Discord's limits on short windows (conftest's fast_discord)."""
    return fast_discord


def start(fake: FakeDiscord, **options: Any) -> tuple[DiscordHandler, logging.Logger]:
    """A handler on a fresh webhook of ``fake``, with short incident windows, on its own logger."""
    settings: dict[str, Any] = {
        "aggregate_window": 0.4,
        "incident_edit_interval": 0.05,
        "dead_letters": MemoryDeadLetters(),
        "engine_options": {"channel_window": 1.0, "rand": lambda: 0.0},
        **options,
    }
    handler = DiscordHandler(
        webhooks={"error": fake.add_webhook()}, allowed_hosts=fake.host, **settings
    )
    log = logging.getLogger(f"incidents.{id(handler)}")
    log.addHandler(handler)
    log.propagate = False
    return handler, log


def wait_for(condition: Callable[[], bool], seconds: float = FAILSAFE) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition was not met in time"
        time.sleep(0.02)


def shown(fake: FakeDiscord, index: int = 0) -> StoredMessage:
    """The ``index``-th message posted, as a reader sees it now."""
    message = fake.message(fake.messages[index].message_id)
    assert message is not None
    return message


def quiet(fake: FakeDiscord, index: int = 0) -> bool:
    if len(fake.messages) <= index:
        return False
    message = fake.message(fake.messages[index].message_id)
    return message is not None and "quiet since" in message.embeds[0].get("description", "")


def books_balance(handler: DiscordHandler) -> None:
    stats = handler.stats()
    accounted = stats["delivered"] + stats["aggregated"] + stats["dead_lettered"]
    assert accounted == stats["emitted"], stats
    assert stats["dropped"] == {}


def storm(log: logging.Logger, repeats: int, gap: float = 0.01, text: str = "db down") -> None:
    """``repeats`` records of one problem (one template, one place: one fingerprint)."""
    for i in range(repeats):
        log.error("%s (attempt %d)", text, i)
        time.sleep(gap)


def problem(log: logging.Logger, text: str) -> None:
    """One record of ``text``; records logged here with the same text are one incident."""
    log.error(text)


def test_incident_is_one_message_kept_current_by_edits(fake: FakeDiscord) -> None:
    """30 repeats: one message, edited while they come, then a last edit saying quiet since
    when, with the count, a Discord timestamp and every record in records.txt."""
    handler, log = start(fake)
    storm(log, 30)
    wait_for(lambda: quiet(fake))
    assert handler.flush(FAILSAFE)
    handler.close()
    assert len(fake.messages) == 1
    assert len(fake.edits) >= 2
    final = shown(fake)
    embed = final.embeds[0]
    assert embed["title"] == "db down (attempt 29) (x 30)"
    assert embed["description"].startswith("**30 records** from <t:")
    assert "quiet since <t:" in embed["description"]
    assert list(final.files) == ["records.txt"]
    assert final.files["records.txt"].decode().count(" UTC  db down (attempt") == 30
    for edit in fake.edits:
        validate_webhook_payload({**edit.payload, "allowed_mentions": {"parse": []}})
    stats = handler.stats()
    assert stats["edits_sent"] == len(fake.edits)
    assert stats["messages_sent"] == 1
    books_balance(handler)


def test_running_update_says_it_goes_on_and_sends_no_file(fake: FakeDiscord) -> None:
    """While repeats come, an edit shows the running count, says it is still happening, and
    carries no file (the records go with the last update); edits notify nobody (no flags)."""
    handler, log = start(fake, aggregate_window=2.0)
    storm(log, 15, gap=0.02)
    wait_for(lambda: len(fake.edits) >= 1)
    running = fake.edits[0].payload
    assert "still happening" in running["embeds"][0]["description"]
    assert "attachments" not in running
    assert "flags" not in running
    assert running["allowed_mentions"] == {"parse": []}
    handler.close()
    books_balance(handler)


def test_deleted_message_is_posted_anew(fake: FakeDiscord) -> None:
    """A moderator deletes the incident's message: the edit gets 10008, the update is posted as
    a new message, and the incident's later edits go to that one."""
    handler, log = start(fake, aggregate_window=0.6, incident_edit_interval=0.1)
    storm(log, 1, text="cache down")
    wait_for(lambda: len(fake.messages) == 1)
    fake.delete_message(fake.messages[0].message_id)
    storm(log, 11, gap=0.03, text="cache down")
    wait_for(lambda: quiet(fake, 1))
    handler.close()
    assert len(fake.messages) == 2
    assert fake.count_status(404) >= 1
    assert shown(fake, 1).embeds[0]["title"].endswith("(x 12)")
    books_balance(handler)


def test_edit_waits_out_a_429_of_its_own_bucket(fake: FakeDiscord) -> None:
    """A 429 on the message routes holds the edits back (not the posts): the update is shown
    once it passes; one 429, and the messages go on."""
    handler, log = start(fake)
    storm(log, 1)
    wait_for(lambda: len(fake.messages) == 1)
    fake.force_429(1, retry_after=0.2, route="messages")
    storm(log, 5)
    problem(log, "another problem")
    wait_for(lambda: quiet(fake))
    handler.close()
    assert fake.count_status(429) == 1
    assert len(fake.messages) == 2
    assert shown(fake).embeds[0]["title"].endswith("(x 6)")
    books_balance(handler)


def test_a_last_update_that_cannot_be_edited_is_posted_by_the_lane(fake: FakeDiscord) -> None:
    """Edits failing with 503 past the attempts: the running count is dropped (it stood for
    no record), and the last update, which carries a record, is posted as a message."""
    handler, log = start(fake, retry_attempts=2)
    storm(log, 1)
    wait_for(lambda: len(fake.messages) == 1)
    fake.fail_next(50, 503, route="messages")
    storm(log, 6)
    wait_for(lambda: len(fake.messages) == 2)
    assert handler.flush(FAILSAFE)
    handler.close()
    assert not fake.edits
    assert "quiet since" in fake.messages[1].embeds[0]["description"]
    assert fake.messages[1].flags == 4096  # an incident's update is silent by default
    books_balance(handler)


def test_fingerprint_groups_records_the_user_says_belong_together(fake: FakeDiscord) -> None:
    """Different messages with one extra={"fingerprint": ...} are one incident; the same
    message with another fingerprint is another."""
    handler, log = start(fake)
    log.error("primary database unreachable", extra={"fingerprint": "db"})
    log.error("replica lag %d s", 45, extra={"fingerprint": "db"})
    log.error("connection pool exhausted", extra={"fingerprint": "db"})
    log.error("primary database unreachable", extra={"fingerprint": "other"})
    wait_for(lambda: quiet(fake))
    handler.close()
    (message,) = fake.messages  # the two incidents' first records went out together
    assert [e["title"] for e in message.embeds] == ["primary database unreachable"] * 2
    assert [e["title"] for e in shown(fake).embeds] == [
        "connection pool exhausted (x 3)",
        "primary database unreachable",
    ]
    assert "fingerprint" not in {f["name"] for f in shown(fake).embeds[0].get("fields", [])}
    books_balance(handler)


def test_flush_shows_the_held_repeat_by_an_edit(fake: FakeDiscord) -> None:
    """flush() delivers the latest repeat held back by an open incident: as an edit of its
    message, without a second message, and the books balance at once."""
    handler, log = start(fake, aggregate_window=60, incident_edit_interval=60)
    storm(log, 10, gap=0.0)
    assert handler.flush(FAILSAFE)
    assert len(fake.messages) == 1
    assert shown(fake).embeds[0]["title"].endswith("(x 10)")
    books_balance(handler)
    handler.close()


def test_edit_in_a_message_of_several_records_keeps_the_others(fake: FakeDiscord) -> None:
    """Records that went out together: an incident's edit changes its own embed and sends the
    others as they were."""
    handler, log = start(fake, aggregate_window=5.0)
    fake.set_latency(0.2)  # the first record is in flight while the next ones queue up
    problem(log, "first problem")
    wait_for(lambda: fake.pending == 1)
    problem(log, "second problem")
    problem(log, "third problem")
    wait_for(lambda: len(fake.messages) == 2)
    fake.set_latency(0.0)
    for _ in range(3):
        problem(log, "third problem")
    assert handler.flush(FAILSAFE)  # the latest repeat, held back, edits the message
    handler.close()
    assert len(fake.messages) == 2
    embeds = shown(fake, 1).embeds
    assert [e["title"] for e in embeds] == ["second problem", "third problem (x 4)"]
    assert embeds[0] == fake.messages[1].embeds[0]
    books_balance(handler)


def test_close_keeps_what_an_edit_could_not_show(fake: FakeDiscord) -> None:
    """Discord hangs on edits at close: the last update's record is kept as a dead letter,
    nothing is lost, and close returns within its deadline."""
    handler, log = start(fake, close_timeout=0.6, timeout=0.3)
    storm(log, 1)
    wait_for(lambda: len(fake.messages) == 1)
    storm(log, 5)
    fake.set_hang(True)
    started = time.monotonic()
    handler.close()
    fake.set_hang(False)
    assert time.monotonic() - started < 5
    assert handler.stats()["dead_lettered"] >= 1
    books_balance(handler)


def test_a_fleet_holder_whose_circuit_is_open_keeps_records_without_claiming_incidents(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    """With a shared coordinator (the store directory's), a record whose lane keeps it as a
    letter at once (the circuit open) takes no post claim: no incident row is written for
    it, and it is kept as ``circuit_open`` (docs/architecture.md, "A record the lane cannot
    take now takes no claim"). Before, each took the claim and gave it back: two transactions on the
    event loop per record of a flood while Discord is down."""
    handler, log = start(
        fake,
        dead_letters=None,
        store_path=tmp_path / "store",
        engine_options={"circuit_threshold": 1, "rand": lambda: 0.0},
    )
    fake.fail_next(1000, 503)
    log.error("the first failure opens the circuit")
    wait_for(lambda: handler.stats()["dead_lettered"] >= 1)
    assert handler.stats()["dead_lettered_by_reason"] == {"circuit_open": 1}
    rows = incident_rows(tmp_path / "store")
    for i in range(20):
        problem = f"distinct problem {i}"  # its own text: its own fingerprint
        log.error(problem)
    assert handler.flush(FAILSAFE)
    assert handler.stats()["dead_lettered_by_reason"] == {"circuit_open": 21}
    assert incident_rows(tmp_path / "store") == rows
    handler.close()


def test_a_fleet_holder_whose_queue_is_full_keeps_records_without_claiming_incidents(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    """With a shared coordinator, a record of a new problem that finds its lane's queue full
    is kept as a letter (``queue_overflow``) and writes nothing to the incident's state: a
    claim would only be given back when the post failed, and would hold the fleet's other
    holders waiting for it (docs/architecture.md, "A record the lane cannot take now takes no
    claim"). Discord answers 503 and the circuit stays closed: the queue stays full."""
    handler, log = start(
        fake,
        dead_letters=None,
        store_path=tmp_path / "store",
        queue_size=5,
        engine_options={"circuit_threshold": 1000, "rand": lambda: 0.0},
    )
    fake.fail_next(1000, 503)
    for i in range(40):
        problem = f"distinct problem {i}"  # its own text: its own fingerprint
        log.error(problem)
    wait_for(lambda: handler.stats()["dead_lettered_by_reason"].get("queue_overflow", 0) >= 30)
    assert incident_rows(tmp_path / "store") <= 10  # the queued few (and the one in flight)
    handler.close()


def test_a_kept_record_is_kept_even_if_its_lane_found_room_during_the_look(
    fake: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keep is decided on a look at the fleet's state, while the lane had no room; by the
    time the look answers (a Redis round trip) the queue may have room. The record is kept
    as overflow all the same: queued, it would be posted without the post claim, and a
    second holder would post the incident again (found in review). The lane's room is
    pinned to "none" here, so that the queue has room whenever the keep is carried out."""
    monkeypatch.setattr(WebhookLane, "has_room", lambda self, now: False)
    handler, log = start(fake, dead_letters=None, store_path=tmp_path / "store")
    log.error("a problem while the lane is full")
    wait_for(lambda: handler.stats()["dead_lettered"] >= 1)
    assert handler.stats()["dead_lettered_by_reason"] == {"queue_overflow": 1}
    assert incident_rows(tmp_path / "store") == 0
    handler.close()


def test_one_look_keeps_the_records_of_many_problems_while_the_queue_is_full(
    fake: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of distinct problems while the lane has no room: each record is kept, and the
    keeps of the records waiting in the editor's line are decided on shared looks, up to 200
    a look, not one each (docs/architecture.md, "A record the lane cannot take now takes no
    claim")."""
    from discord_logging.coordination.shared_coordinator import SharedCoordinator
    from discord_logging.delivery.fleet_incidents import LOOK_BATCH

    looks: list[int] = []
    peek = SharedCoordinator.peek_incidents

    async def counted(self: SharedCoordinator, batch: Any) -> Any:
        looks.append(len(batch))
        return await peek(self, batch)

    monkeypatch.setattr(SharedCoordinator, "peek_incidents", counted)
    monkeypatch.setattr(WebhookLane, "has_room", lambda self, now: False)
    handler, log = start(fake, dead_letters=None, store_path=tmp_path / "store")
    for i in range(600):
        log.error(f"distinct problem {i}")  # its own text: its own fingerprint
    wait_for(lambda: handler.stats()["dead_lettered"] >= 600)
    handler.close()
    assert handler.stats()["dead_lettered_by_reason"] == {"queue_overflow": 600}
    assert incident_rows(tmp_path / "store") == 0
    assert max(looks) <= LOOK_BATCH
    assert sum(looks) >= 600
    assert len(looks) < 600 / 5, looks  # one each before


def incident_rows(store: Path) -> int:
    """Incident states in the store directory's limits database."""
    with contextlib.closing(sqlite3.connect(store / "limits" / "limits.sqlite3")) as db:
        ((count,),) = db.execute("SELECT COUNT(*) FROM state WHERE key LIKE 'incident:%'")
    return int(count)
