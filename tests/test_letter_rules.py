"""The rules of a letter's life (docs/architecture.md, "A letter's life"), checked by a model.

A hypothesis state machine drives three senders sharing one store directory against one
FakeDiscord over loopback: two of them post to the same webhook (a fleet of one app), the
third to a webhook of its own (another app on the same machine). Between steps it emits,
lets time pass, injects faults (lost answers, 5xx, 429s, outages), flushes, restarts a sender,
kills one (SIGKILL's effect, in process: see ``kill``), pauses one past its claims' lease
(SIGSTOP's effect: see ``paused_past_the_lease``) and runs the operator's flush. Each
sender journals what it accepts as the worker does (issue 19), and the next start of a
sender takes dead senders' journals into the store. After every step it checks the
invariants:

1. one holder at a time: no notification is queued or in flight in two senders (but in a
   sender paused past its lease, until it resumes and drops what it lost: its claim no
   longer holds);
2. only to its own webhook: every message reached the webhook its records were routed to;
3. never twice unmarked: a record's every post after its first carries the repeat note;
4. flush() is true only when it is: everything the sender accepted is delivered or kept;
5. nothing is lost: every accepted record is delivered, kept in the store, in a lane, or in
   the journal of a killed sender that the next start will take in.

CI runs a bounded number of examples; run it longer on demand:

    DISCORD_LOGGING_MODEL_EXAMPLES=200 DISCORD_LOGGING_MODEL_STEPS=40 \\
        uv run pytest tests/test_letter_rules.py -p no:randomly

The steps run are reported at the end of the pytest session.

What its long runs with kills (150 examples of 30 steps) found, both in the model itself: a
record posted twice without the repeat note. The model built each sender's journal after
starting the sender, so its lanes never marked requests as sent and a killed sender's record
whose answer was lost came back plain (the worker builds it first; now the model does, and
the journal refuses a started notifier). And a killed sender's store buffer, shared with its
successor, could be written after the successor took the journal in, releasing the claim a
redelivery held: no real kill orders things so. Its one failing run after the first fix fits
that order (read, not traced); each sender and the operator's flush now have their own store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from letterkit import destination_of

from discord_logging import MemoryDeadLetters, Notifier
from discord_logging.capture.snapshot import snapshot, to_notification
from discord_logging.deadletters import DeadLetter, DeadLetterReason
from discord_logging.delivery.journaling import RecordJournal, letters_of
from discord_logging.delivery.redelivery import REPEAT_NOTE
from discord_logging.delivery.replay import replay
from discord_logging.notification import Notification, new_id
from discord_logging.stats import DeliveryStats
from discord_logging.store import CLAIM_LEASE, Store
from discord_logging.store.journal import Journal, dead_segments
from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # long models (hypothesis runs of many examples)

EXAMPLES = int(os.environ.get("DISCORD_LOGGING_MODEL_EXAMPLES", "6"))
STEPS = int(os.environ.get("DISCORD_LOGGING_MODEL_STEPS", "18"))
RUN: Counter[str] = Counter()  # examples and steps run, reported by conftest at the end
SENDERS = 3
FAST = {"channel_window": 0.6, "ban_cooldown": 0.3, "probe_interval": 0.3, "circuit_reset": 0.3}


def held_by_the_editor(sender: Notifier, lane: Any) -> list[Any]:
    """The records an incident's editor holds for ``lane`` (waiting for the fleet's step or
    an edit), and those of the edit in flight."""
    editor = sender.editor_of(lane)
    if editor is None:
        return []
    updates = [*editor._updates.values(), *([editor._in_flight] if editor._in_flight else [])]
    return [pending for update in updates for pending in update.records]


def record_title(embed: dict[str, Any]) -> str:
    """The title of the record an embed shows: an update's count, " (x 2)", is cut off (a
    record recovered from a dead sender's journal is posted plain, its update is not)."""
    return re.sub(r" \(x \d+\)$", "", str(embed.get("title", "")))


class LetterRules(RuleBasedStateMachine):
    """Three senders, one store, one FakeDiscord; every invariant after every step."""

    def __init__(self) -> None:
        super().__init__()
        RUN["examples"] += 1
        self.loop = asyncio.new_event_loop()
        self.fake = FakeDiscord(webhook_window=0.3, channel_limit=100, channel_window=0.6)
        self.fake.start()
        shared = self.fake.add_webhook()
        self.urls = [shared, shared, self.fake.add_webhook()]
        self.dir = Path(tempfile.mkdtemp(prefix="letter-rules-"))
        self.stores: dict[int, Store] = {}  # each sender's, new with each start (_start)
        self.senders: list[Notifier | None] = [None] * SENDERS
        self.journals: list[RecordJournal | None] = [None] * SENDERS
        self.accepted: list[list[str]] = [[] for _ in range(SENDERS)]
        self.orphaned: list[str] = []  # accepted by senders since killed
        self.webhook_of: dict[str, str] = {}  # notification id -> webhook id it was routed to
        self.title_of: dict[str, str] = {}
        self.count = 0
        self.skew = [0.0] * SENDERS  # how far each sender's clock jumped (its pauses)
        self.lapsed: list[set[str]] = [set() for _ in range(SENDERS)]  # claims lost paused
        self.storms: list[list[Notification]] = [[] for _ in range(SENDERS)]  # not yet quiet
        for i in range(SENDERS):
            self.senders[i] = self._start(i)

    # -- plumbing ----------------------------------------------------------------------------

    def _run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def _notifier(self, webhooks: dict[str, str], store: Store, **options: Any) -> Notifier:
        """A sender on the shared store and limits, with short timeouts and no jitter."""
        return Notifier(
            webhooks=webhooks,
            allowed_hosts=self.fake.host,
            dead_letters=store.dead_letters,
            listeners=[store.record],
            store_dir=self.dir,
            rand=lambda: 0.0,
            retry_attempts=2,
            rate_limit=100,
            timeout_seconds=0.5,
            **FAST,
            **options,
        )

    def _start(self, i: int) -> Notifier:
        """Sender ``i`` with its journal and a store of its own, as a new process has (the
        one it had is closed by the caller); as a worker's start does, it first takes the
        journals of dead senders into the store (awaited here, so no look runs between
        steps while the invariants read the directory)."""
        store = self.stores[i] = Store(self.dir)
        self.lapsed[i] = set()
        self.storms[i] = []  # a storm lives in its process's memory
        clock = lambda: time.monotonic() + self.skew[i]  # noqa: E731 - jumps when paused
        sender = self._notifier({"general": self.urls[i]}, store, queue_size=3, clock=clock)
        journal = Journal(self.dir / "journal", 1 << 20, DeliveryStats())

        async def start() -> None:
            # Before the lanes start, as the worker builds it: they report sends to it.
            recorder = self.journals[i] = RecordJournal(journal, sender, store)
            sender.start()
            recorder.look_for_dead()
            if recorder._look_task is not None:  # private: the model waits for the look
                await recorder._look_task

        self._run(start())
        return sender

    def _in_dead_journals(self) -> set[str]:
        """Ids of records in the journals of senders no longer running, not taken yet."""
        found: set[str] = set()
        for path, _ in dead_segments(self.dir / "journal"):
            letters, _torn = letters_of(path.read_bytes())
            found |= {letter.id for letter in letters}
        return found

    def _posts(self) -> Counter[str]:
        """Posts per title, and (under "marked:<title>") those carrying the repeat note."""
        posts: Counter[str] = Counter()
        for message in self.fake.messages:
            for embed in message.payload.get("embeds", []):
                title = record_title(embed)
                posts[title] += 1
                if embed.get("footer", {}).get("text", "").startswith(REPEAT_NOTE):
                    posts[f"marked:{title}"] += 1
        return posts

    def _kept(self, ids: list[str]) -> set[str]:
        """Kept in the store: on disk, or in a sender's write buffer (written within 0.2 s)."""
        kept: set[str] = set()
        for store in self.stores.values():
            kept |= store.dead_letters.kept_ids(ids)
        return kept

    def _in_lanes(self, *, lapsed: bool = True) -> list[str]:
        """Ids queued or in flight in the senders' lanes; without ``lapsed``, not those a
        sender paused past its lease still holds in memory after losing their claims."""
        return [
            pending.notification.id
            for i, sender in enumerate(self.senders)
            if sender is not None
            for lane in {id(x): x for x in sender.lanes.values()}.values()
            for pending in (*lane.queue, *lane.in_flight, *held_by_the_editor(sender, lane))
            if not pending.settled and (lapsed or pending.notification.id not in self.lapsed[i])
        ]

    def teardown(self) -> None:
        for sender, journal in zip(self.senders, self.journals, strict=True):
            with contextlib.suppress(Exception):
                if sender is not None:
                    self._run(sender.aclose(0.1))
                if journal is not None:
                    journal.close()
        for store in self.stores.values():
            store.close()
        self.loop.close()
        self.fake.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- rules -------------------------------------------------------------------------------

    @rule(i=st.integers(0, SENDERS - 1), count=st.integers(1, 6), running=st.booleans())
    def emit(self, i: int, count: int, running: bool) -> None:
        """A sender accepts a burst (more than its queue of 3 overflows into the store), each
        record journaled first and carrying its journal id, as the worker hands them on;
        ``running``: each is an incident's running update carrying it (as a flush releases
        one), counting 2 records."""
        sender, journal = self.senders[i], self.journals[i]
        assert sender is not None
        assert journal is not None
        for _ in range(count):
            self.count += 1
            record = logging.makeLogRecord(
                {"msg": f"record {self.count}", "levelno": 40, "levelname": "ERROR"}
            )
            snap = snapshot(record, "general", logging.Formatter())
            journal.take([snap])
            note = to_notification(snap, notification_id=journal.released(snap))
            if running:  # its own incident: the editor (and the fleet's step) sees it
                note = replace(
                    note.with_count(2, snap.created, last_seen=snap.created, ongoing=True),
                    fingerprint=f"storm-{self.count}",
                )
                self.storms[i].append(note)
            sender.submit(note)
            self.accepted[i].append(note.id)
            self.webhook_of[note.id] = self.urls[i].split("/")[-2]
            self.title_of[note.id] = note.title
        self._run(asyncio.sleep(0.01))

    @precondition(lambda self: any(self.storms))
    @rule(data=st.data())
    def a_storm_goes_quiet(self, data: st.DataObject) -> None:
        """A sender's storm says its quiet word: an update standing for no record, counting
        no more than its running update (which carried a record) showed. It edits that
        update's message, or is dropped when the update was kept as a letter: posted anew
        it would show the same record twice (architecture.md, "A kept update is its storm's
        word")."""
        i = data.draw(st.sampled_from([i for i, storms in enumerate(self.storms) if storms]))
        sender = self.senders[i]
        assert sender is not None
        running = self.storms[i].pop(data.draw(st.integers(0, len(self.storms[i]) - 1)))
        sender.show_update(replace(running, ongoing=False, quiet=True, id=new_id()))
        self._run(asyncio.sleep(0.01))

    @rule(seconds=st.sampled_from([0.02, 0.1, 0.3]))
    def time_passes(self, seconds: float) -> None:
        self._run(asyncio.sleep(seconds))

    @rule(status=st.sampled_from([502, 504, None]))
    def an_answer_is_lost(self, status: int | None) -> None:
        """Discord creates the next message but the answer does not come back."""
        self.fake.lose_answers(1, status)

    @rule(n=st.integers(1, 3))
    def discord_fails(self, n: int) -> None:
        self.fake.fail_next(n, 503)

    @rule()
    def discord_rate_limits(self) -> None:
        self.fake.force_429(1, retry_after=0.05)

    @rule(which=st.integers(0, 1), down=st.booleans())
    def outage(self, which: int, down: bool) -> None:
        webhook_id = self.urls[2 * which].split("/")[-2]
        self.fake.set_status_override(webhook_id, 503 if down else None)

    @rule(i=st.integers(0, SENDERS - 1))
    def flush(self, i: int) -> None:
        """Rule 4: a True flush means every record the sender accepted is delivered or kept."""
        sender = self.senders[i]
        assert sender is not None
        if self._run(sender.flush(0.5)):
            posted = self._posts()
            missing = [x for x in self.accepted[i] if not posted[self.title_of[x]]]
            assert set(missing) <= self._kept(missing), "flush() said True with records lost"

    @rule(i=st.integers(0, SENDERS - 1))
    def restart(self, i: int) -> None:
        """A sender closes at a short deadline (what it holds is kept) and starts again."""
        sender, journal = self.senders[i], self.journals[i]
        assert sender is not None
        assert journal is not None
        self._run(sender.aclose(0.1))
        self.stores[i].close()  # writes the letters the close kept
        journal.close()  # after the store has its letters, as the worker closes it
        self.senders[i] = self._start(i)

    @rule(i=st.integers(0, SENDERS - 1), writer_ran=st.booleans())
    def kill(self, i: int, writer_ran: bool) -> None:
        """Sender ``i``'s process is killed (SIGKILL, the OOM killer) and started again.

        In process, what a kill leaves: the journal's bytes as they are now (closed here:
        no mark is written after this instant, and its owner is gone), the store's files,
        the limits, and whatever Discord got; what the sender held in memory (its queue,
        requests in flight, answers not handled) goes nowhere: its lanes are cancelled with
        their outcomes going to a sink that dies with them. What its store had buffered
        (letters, removals, history) was written just before the kill (``writer_ran``) or
        dies with it; either way before the next start, which has a store of its own: a
        buffer written after the next start took the journal in is no order a real kill has
        (the model once found a "duplicate" that way). The journal keeps the buffered
        letters' records too, and taking it in leaves out what is already kept."""
        sender, journal = self.senders[i], self.journals[i]
        assert sender is not None
        assert journal is not None
        journal.close()
        void = MemoryDeadLetters()
        sender.dead_letters = void
        sender.listeners.clear()
        shared = sender._shared  # private: the kill reaches into the dead sender's state
        assert shared is not None
        shared.dead_letters = void
        shared.on_sending = None

        async def die() -> None:
            for task in sender._tasks:  # private: cancelled without a close's deadline
                task.cancel()
            await asyncio.gather(*sender._tasks, return_exceptions=True)
            await sender.aclose(0)  # frees the sockets and threads; nothing is left to keep

        self._run(die())
        store = self.stores[i]
        if not writer_ran:  # private: the buffer goes with the process
            with store._write_lock:
                store._buffer.take()
                store._buffer.done()
        store.close()
        self.orphaned += self.accepted[i]
        self.accepted[i] = []
        self.senders[i] = self._start(i)

    @rule(i=st.integers(0, SENDERS - 1))
    def paused_past_the_lease(self, i: int) -> None:
        """Sender ``i``'s process is paused (SIGSTOP, ``docker pause``, a debugger) longer
        than its claims' lease, then the operator's flush runs, then it resumes.

        In process, what a pause leaves: its lanes take no slot while it lasts (a lane that
        asks waits, as a stopped process would), its clock jumps past the lease (every timer
        of its lanes is due at once), and the claims it holds on kept letters lapse (their
        rows' lease ends now), so the operator's flush may take them over and post them with
        the repeat note. Resumed, it must drop what it lost before its next post (fencing),
        never post it again unmarked (rule 3)."""
        sender, store = self.senders[i], self.stores[i]
        assert sender is not None
        shared = sender._shared  # private: the pause reaches into the sender's limits
        assert shared is not None
        resumed = asyncio.Event()
        acquire = shared.coordinator.acquire

        async def paused(*args: Any, **kwargs: Any) -> Any:
            await resumed.wait()
            return await acquire(*args, **kwargs)

        shared.coordinator.acquire = paused  # type: ignore[method-assign]
        for _ in range(2):  # letters an earlier run kept: the lanes take them, and wait
            self.count += 1
            record = logging.makeLogRecord(
                {"msg": f"record {self.count}", "levelno": 40, "levelname": "ERROR"}
            )
            note = to_notification(snapshot(record, "general", logging.Formatter()))
            reason = DeadLetterReason.RETRIES_EXHAUSTED
            destination = destination_of(self.urls[i])
            store.dead_letters.add(DeadLetter(note, "general", reason, destination=destination))
            self.orphaned.append(note.id)
            self.webhook_of[note.id] = self.urls[i].split("/")[-2]
            self.title_of[note.id] = note.title
        store.dead_letters.sync()
        lanes = list({id(x): x for x in sender.lanes.values()}.values())
        for lane in lanes:  # paused while its lanes wait for a slot, holding what they took
            lane.redelivery.next_refill = 0.0
            lane.wake()
        self._run(asyncio.sleep(0.05))
        durable = store.durable
        held = {
            pending.notification.id
            for lane in lanes
            for pending in (*lane.queue, *lane.in_flight)
            if pending.from_dead_letters
        }
        self.skew[i] += CLAIM_LEASE + 1.0
        if durable is not None and held:
            now = time.time()
            with durable._transaction():  # private: the leases lapse as the paused time passes
                for letter_id in held:
                    row = durable._index.get(f"claim:{letter_id}")
                    if isinstance(row, list) and row and row[0] == durable.holder:
                        durable._index.set(f"claim:{letter_id}", [row[0], now - 1.0])
        self.lapsed[i] |= held
        if self.count > 0:
            self.operator_flush()
        shared.coordinator.acquire = acquire  # type: ignore[method-assign]
        resumed.set()
        self._run(asyncio.sleep(0.05))  # it runs again: what it still holds would go now

    @precondition(lambda self: self.count > 0)
    @rule()
    def operator_flush(self) -> None:
        """`discord-logging flush`, configured with both webhooks, for a bounded time: a
        process of its own, with its own store."""
        store = Store(self.dir)
        cli = self._notifier({"general": self.urls[0], "error": self.urls[2]}, store)

        async def bounded() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(replay(store, cli), 1.0)
            await cli.aclose(0.1)

        self._run(bounded())
        store.close()

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def count_steps(self) -> None:
        RUN["steps"] += 1

    @invariant()
    def one_holder_at_a_time(self) -> None:
        held = Counter(self._in_lanes(lapsed=False))
        assert not [x for x, n in held.items() if n > 1], "a record is held by two senders"

    @invariant()
    def only_to_its_own_webhook(self) -> None:
        by_title = {title: x for x, title in self.title_of.items()}
        for message in self.fake.messages:
            for embed in message.payload.get("embeds", []):
                record = by_title.get(record_title(embed))
                if record is not None:
                    assert self.webhook_of[record] == message.webhook_id, embed.get("title")

    @invariant()
    def never_posted_twice_unmarked(self) -> None:
        """Every post of a record after its first carries the repeat note (a paused holder
        that posted again, unmarked, after another took its letter over breaks it)."""
        posted: set[str] = set()
        for message in self.fake.messages:
            for embed in message.payload.get("embeds", []):
                title = record_title(embed)
                marked = embed.get("footer", {}).get("text", "").startswith(REPEAT_NOTE)
                assert title not in posted or marked, f"{title} posted again without the note"
                posted.add(title)

    @invariant()
    def a_letter_says_only_what_was_known(self) -> None:
        """No kept letter says its incident is still happening: it is sent after the outage
        or a restart, when nobody knows (architecture.md, "Words")."""
        for store in self.stores.values():
            running = [
                x.notification.title for x in store.dead_letters.letters() if x.notification.ongoing
            ]
            assert not running, f"kept as still happening: {running}"

    @invariant()
    def nothing_is_lost(self) -> None:
        posted = self._posts()
        everywhere = [x for ids in (*self.accepted, self.orphaned) for x in ids]
        unposted = [x for x in everywhere if not posted[self.title_of[x]]]
        placed = self._kept(unposted) | set(self._in_lanes()) | self._in_dead_journals()
        lost = [self.title_of[x] for x in unposted if x not in placed]
        assert not lost, f"neither delivered, kept, queued nor journaled: {lost}"


LetterRules.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLetterRules = LetterRules.TestCase
