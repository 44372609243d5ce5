"""The store commands: history, dead-letters, flush, stats, send-test and check --ping."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from letterkit import DESTINATION, destination_of

from discord_logging.capture.snapshot import snapshot
from discord_logging.cli import EXIT_CONFIG, Progress, main, moment
from discord_logging.deadletters import DeadLetter, DeadLetterReason
from discord_logging.delivery.notifier import Notifier
from discord_logging.notification import DeliveryStatus, Notification, NotificationResult, new_id
from discord_logging.settings import load_settings
from discord_logging.stats import DeliveryStats
from discord_logging.store import Store
from discord_logging.store.journal import Journal
from discord_logging.testing import FakeDiscord

HOUR = 3600.0
SECRET = "Zq9-DO-NOT-LEAK-" + "k" * 52  # a distinctive 68-character webhook token


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    """A started FakeDiscord with Discord's default limits."""
    with FakeDiscord() as server:
        yield server


@pytest.fixture
def store_path() -> Path:
    """The store the CLI uses by default here (conftest sets DISCORD_STORE_PATH)."""
    return Path(os.environ["DISCORD_STORE_PATH"])


def configure(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeDiscord,
    name: str = "GENERAL",
    token: str | None = None,
) -> str:
    """Point DISCORD_WEBHOOK_<name> at a new webhook of ``fake``; returns its id."""
    url = fake.add_webhook(token=token)
    monkeypatch.setenv(f"DISCORD_WEBHOOK_{name}", url)
    monkeypatch.setenv("DISCORD_ALLOWED_HOSTS", fake.host)
    return url.split("/")[-2]


def note(
    title: str, alert_type: str = "general", created: float | None = None, **kw: object
) -> Notification:
    return Notification(
        alert_type=alert_type,
        title=title,
        message=str(kw.pop("message", title)),
        created=time.time() if created is None else created,
        host="testhost",
        **kw,  # type: ignore[arg-type]
    )


def letter(
    title: str,
    webhook: str = "general",
    reason: DeadLetterReason = DeadLetterReason.RETRIES_EXHAUSTED,
    dead_at: float | None = None,
    error: str | None = "503 Service Unavailable",
    destination: str | None = None,
    **kw: object,
) -> DeadLetter:
    """A letter kept by this configuration: for the webhook DISCORD_WEBHOOK_<webhook> names
    now (or a stand-in destination when none is set)."""
    if destination is None:
        url = os.environ.get(f"DISCORD_WEBHOOK_{webhook.upper()}")
        destination = destination_of(url) if url else DESTINATION
    return DeadLetter(
        notification=note(title, alert_type=webhook, **kw),
        webhook=webhook,
        reason=reason,
        attempts=3,
        error=error,
        http_status=503,
        dead_at=time.time() if dead_at is None else dead_at,
        destination=destination,
    )


def add_letters(path: Path, *letters: DeadLetter) -> list[DeadLetter]:
    store = Store(path)
    for item in letters:
        store.dead_letters.add(item)
    store.close()
    return list(letters)


def record(
    path: Path, notification: Notification, status: DeliveryStatus, message_id: str | None = None
) -> None:
    store = Store(path)
    assert store.history is not None
    result = NotificationResult(notification.id, status, message_id=message_id, attempts=1)
    store.history.record(notification, result, notification.alert_type)
    store.close()


def stored_letters(path: Path) -> list[DeadLetter]:
    store = Store(path)
    try:
        return store.dead_letters.letters()
    finally:
        store.close()


def received(fake: FakeDiscord) -> Counter[str]:
    """How often each notification title reached the fake (plain embeds and digest lines)."""
    seen: Counter[str] = Counter()
    for message in fake.messages:
        for embed in message.embeds:
            if "(digest)" in str(embed.get("title", "")) or not embed.get("title"):
                seen.update(field["value"] for field in embed.get("fields", []))
            else:
                seen[re.sub(r"^\W+", "", embed["title"])] += 1  # an emoji may lead
    return seen


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class TTYInput(io.StringIO):
    def isatty(self) -> bool:
        return True


# -- history -----------------------------------------------------------------------------------


@pytest.fixture
def history(store_path: Path) -> dict[str, Notification]:
    now = time.time()
    notes = {
        "old": note("disk almost full", "monitoring", created=now - 3 * 86_400),
        "err": note("database timeout", "error", created=now - 2 * HOUR, message="pool exhausted"),
        "dead": note("payment failed", "error", created=now - 30 * 60),
        "ok": note("deploy finished " + "x" * 80, "general", created=now - 60),
    }
    record(store_path, notes["old"], DeliveryStatus.DELIVERED, "1001")
    record(store_path, notes["err"], DeliveryStatus.DELIVERED, "1002")
    record(store_path, notes["dead"], DeliveryStatus.DEAD_LETTERED)
    record(store_path, notes["ok"], DeliveryStatus.DELIVERED, "1004")
    return notes


def test_history_table_newest_first(
    history: dict[str, Notification], capsys: pytest.CaptureFixture[str]
) -> None:
    """history prints an aligned table, newest first, titles cut, no webhook configured."""
    code, out, _ = run_cli(capsys, "history")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "id",
        "time",
        "(UTC)",
        "type",
        "status",
        "title",
        "attempts",
        "message",
        "id",
    ]
    assert "deploy finished" in lines[2]
    assert lines[2].startswith(history["ok"].id[:8] + " ")
    assert "1004" in lines[2]
    assert "…" in lines[2]
    assert "x" * 80 not in out
    assert "disk almost full" in lines[5]
    assert "4 entries, newest first." in out


def test_history_filters(
    history: dict[str, Notification], capsys: pytest.CaptureFixture[str]
) -> None:
    """--type, --status, --since, --until, --grep and --limit each narrow the result."""

    def titles(*argv: str) -> list[str]:
        code, out, _ = run_cli(capsys, "history", "--json", *argv)
        assert code == 0
        return [entry["title"][:15] for entry in json.loads(out)]

    assert titles("--type", "errors") == ["payment failed", "database timeou"]
    assert titles("--status", "dead_lettered") == ["payment failed"]
    assert titles("--since", "1h") == ["deploy finished", "payment failed"]
    assert titles("--until", "1h") == ["database timeou", "disk almost ful"]
    assert titles("--grep", "POOL") == ["database timeou"]
    assert titles("--limit", "1") == ["deploy finished"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86_400))
    assert len(titles("--since", iso)) == 3
    _code, out, _ = run_cli(capsys, "history", "--limit", "2")
    assert "pass --limit N to see more" in out


def test_history_export_jsonl(
    history: dict[str, Notification], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--export writes every matching entry as JSON Lines, oldest first, instead of a table."""
    target = tmp_path / "out" / "errors.jsonl"
    code, out, _ = run_cli(
        capsys, "history", "--type", "error", "--export", str(target), "--parents"
    )
    assert code == 0
    assert "Exported 2 history entries" in out
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in rows] == [history["err"].id, history["dead"].id]
    code, out, _ = run_cli(capsys, "history", "--export", str(target), "--json", "--force")
    assert json.loads(out) == {"exported": 4, "file": str(target), "created": []}


def test_history_usage_and_missing_store(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad --since is a usage error (exit 2); no store yet means empty, not created."""
    with pytest.raises(SystemExit) as exited:
        main(["history", "--since", "yesterday"])
    assert exited.value.code == 2
    assert "ISO-8601" in capsys.readouterr().err
    code, out, err = run_cli(capsys, "history", "--json")
    assert (code, json.loads(out)) == (0, [])
    assert "no store at" in err
    assert "--store" in err
    assert not store_path.exists()


# -- dead letters ------------------------------------------------------------------------------


def test_dead_letters_list(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """list shows one row per letter, oldest first; --webhook filters; --json for scripts."""
    now = time.time()
    a, b = add_letters(
        store_path,
        letter("first", dead_at=now - 60),
        letter("second", "security", DeadLetterReason.POISON, now, error="Invalid Form Body"),
    )
    code, out, _ = run_cli(capsys, "dead-letters", "list")
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split()[:4] == ["id", "dead", "at", "(UTC)"]
    assert rows[2].startswith(a.id[:8] + " ")
    assert "retries_exhausted" in rows[2]
    assert " yes " in rows[2]
    assert rows[3].startswith(b.id[:8] + " ")
    assert "poison" in rows[3]
    assert " no " in rows[3]
    assert "Invalid Form Body" in rows[3]
    code, out, _ = run_cli(capsys, "dead-letters", "list", "--webhook", "security", "--json")
    data = json.loads(out)
    assert [(d["id"], d["retryable"], d["reason"]) for d in data] == [(b.id, False, "poison")]
    assert data[0]["notification"]["title"] == "second"


def test_dead_letters_show(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """show prints the whole letter by id or unique prefix; unknown or ambiguous ids exit 1."""
    a, _b = add_letters(
        store_path,
        letter("first", id="feed0001aaaaaaaaaaaaaaaa"),
        letter("second", reason=DeadLetterReason.WEBHOOK_DISABLED, id="feed0002bbbbbbbbbbbbbbbb"),
    )
    code, out, _ = run_cli(capsys, "dead-letters", "show", "feed0002")
    assert code == 0
    assert "webhook_disabled" in out
    assert "DISCORD_WEBHOOK_GENERAL" in out
    assert "Message:\nsecond" in out
    code, out, _ = run_cli(capsys, "dead-letters", "show", a.id, "--json")
    assert json.loads(out) == {"id": a.id, "retryable": True, **a.to_dict()}
    code, _, err = run_cli(capsys, "dead-letters", "show", "nope")
    assert code == 1
    assert "no dead letter has the id 'nope'" in err
    assert "dead-letters list" in err
    code, _, err = run_cli(capsys, "dead-letters", "show", "feed000")
    assert code == 1
    assert "matches 2 dead letters" in err
    assert "more characters" in err


def test_dead_letters_purge(
    store_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """purge refuses without --yes off a terminal, asks on one, filters by age and webhook."""
    now = time.time()
    add_letters(
        store_path,
        letter("old general", dead_at=now - 8 * 86_400),
        letter("old security", "security", dead_at=now - 8 * 86_400),
        letter("new general", dead_at=now),
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = run_cli(capsys, "dead-letters", "purge")
    assert code == 1
    assert "pass --yes" in err
    assert len(stored_letters(store_path)) == 3
    monkeypatch.setattr(sys, "stdin", TTYInput("n\n"))
    code, _, err = run_cli(capsys, "dead-letters", "purge")
    assert code == 1
    assert "Delete 3 dead letters?" in err
    assert "Nothing deleted" in err
    code, out, _ = run_cli(
        capsys, "dead-letters", "purge", "--older-than", "7d", "--webhook", "general", "--yes"
    )
    assert (code, out.strip()) == (0, "Deleted 1 dead letter.")
    monkeypatch.setattr(sys, "stdin", TTYInput("y\n"))
    code, out, _ = run_cli(capsys, "dead-letters", "purge", "--older-than", "7d", "--json")
    assert (code, json.loads(out)) == (0, {"deleted": 1})
    assert [x.notification.title for x in stored_letters(store_path)] == ["new general"]


def test_dead_letters_export_and_delete(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """export writes DeadLetter.to_dict() per line (round-trips); delete removes one letter."""
    a, b = add_letters(store_path, letter("first"), letter("second", "security"))
    target = tmp_path / "letters.jsonl"
    code, out, _ = run_cli(capsys, "dead-letters", "export", str(target))
    assert code == 0
    assert "Exported 2 dead letters" in out
    lines = target.read_text().splitlines()
    assert [DeadLetter.from_dict(json.loads(line)) for line in lines] == [a, b]
    code, out, err = run_cli(capsys, "dead-letters", "export", "-", "--webhook", "security")
    assert [json.loads(line)["notification"]["id"] for line in out.splitlines()] == [b.id]
    assert "Exported 1 dead letter to stdout" in err
    code, out, _ = run_cli(capsys, "dead-letters", "delete", a.id)
    assert code == 0
    assert a.id in out
    assert stored_letters(store_path) == [b]
    code, _, err = run_cli(capsys, "dead-letters", "delete", a.id)
    assert code == 1
    assert "no dead letter" in err


# -- flush -------------------------------------------------------------------------------------


def test_flush_delivers_and_empties_the_store(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """flush posts every stored letter to Discord once, removes it and records the message id."""
    configure(monkeypatch, fake)
    letters = add_letters(store_path, *(letter(f"outage {i}") for i in range(3)))
    code, out, err = run_cli(capsys, "flush")
    assert code == 0, out + err
    assert "Delivered all 3 dead letters." in out
    assert "Nothing remains" in out
    assert received(fake) == Counter({f"outage {i}": 1 for i in range(3)})
    assert stored_letters(store_path) == []
    code, out, _ = run_cli(capsys, "history", "--json")
    entries = {e["id"]: e for e in json.loads(out)}
    assert all(entries[x.id]["status"] == "delivered" for x in letters)
    assert all(entries[x.id]["message_id"] for x in letters)


def test_flush_twice_posts_each_once(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Replay run twice (here: flush, then flush again) posts each notification exactly once."""
    configure(monkeypatch, fake)
    add_letters(store_path, *(letter(f"twice {i}") for i in range(4)))
    assert main(["flush", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["total"], first["delivered"], first["remaining"]) == (4, 4, 0)
    code, out, _ = run_cli(capsys, "flush")
    assert (code, out.strip()) == (0, "No dead letters to flush.")
    assert received(fake) == Counter({f"twice {i}": 1 for i in range(4)})


def dead_journal(store: Path, url: str, titles: list[str]) -> None:
    """A journal whose holder is gone (its lock released, as a killed process's is), holding
    one unsettled record per title for ``url``'s webhook."""
    journal = Journal(store / "journal", 1 << 20, DeliveryStats())
    rows = []
    for title in titles:
        record = logging.makeLogRecord({"msg": title, "levelno": 40, "levelname": "ERROR"})
        snap = snapshot(record, "general", logging.Formatter())
        rows.append([new_id(), destination_of(url), "general", snap])
    journal.append([row[0] for row in rows], json.dumps(rows).encode())
    journal.close()


def test_flush_takes_in_the_journals_whose_writers_are_gone_and_says_how_many(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The operator's way out (a restarted container whose dead writer's pid another process
    has, a process killed with nothing running beside it): ``flush`` takes the journals of
    gone holders into the store first, says how many records it took, and delivers them once;
    ``--json`` counts them as ``from_journals``."""
    configure(monkeypatch, fake)
    url = os.environ["DISCORD_WEBHOOK_GENERAL"]
    dead_journal(store_path, url, [f"journaled {i}" for i in range(3)])
    code, out, err = run_cli(capsys, "flush")
    assert code == 0, err
    assert "Took 3 records in from the journals of processes that ended" in out
    assert "Delivered all 3 dead letters." in out
    assert received(fake) == Counter({f"journaled {i}": 1 for i in range(3)})
    assert list((store_path / "journal").iterdir()) == []
    dead_journal(store_path, url, ["journaled again"])
    assert main(["flush", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["from_journals"], report["delivered"], report["remaining"]) == (1, 1, 0)


def test_flush_with_a_broken_webhook_exits_1_with_reasons(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A webhook that still answers 404 keeps the letters: exit 1, the reason and the fix."""
    webhook_id = configure(monkeypatch, fake)
    fake.set_status_override(webhook_id, 404)
    add_letters(store_path, letter("still broken 1"), letter("still broken 2"))
    code, out, _ = run_cli(capsys, "flush")
    assert code == 1
    assert "Delivered nothing: none of the 2 dead letters was sent." in out
    assert "2 dead letters remain" in out
    assert "webhook_disabled" in out
    assert "Fix DISCORD_WEBHOOK_GENERAL" in out
    assert [x.reason for x in stored_letters(store_path)] == [DeadLetterReason.WEBHOOK_DISABLED] * 2
    fake.set_status_override(webhook_id, 503)  # Discord down: retries exhausted
    monkeypatch.setenv("DISCORD_RETRY_ATTEMPTS", "1")
    code, out, _ = run_cli(capsys, "flush", "--json")
    data = json.loads(out)
    assert (code, data["remaining"]) == (1, 2)
    assert data["still_failing"]["retries_exhausted"]["letters"] == 2
    assert "discordstatus.com" in data["still_failing"]["retries_exhausted"]["advice"]
    assert received(fake) == Counter()


def test_flush_only_the_chosen_webhook(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--webhook W redelivers W's letters only; other webhooks' letters stay; unknown W exits 3."""
    configure(monkeypatch, fake)
    configure(monkeypatch, fake, "SECURITY")
    add_letters(store_path, letter("for general"), letter("for security", "security"))
    code, out, err = run_cli(capsys, "flush", "--webhook", "security")
    assert code == 0, out + err
    assert received(fake) == Counter({"for security": 1})
    assert [x.notification.title for x in stored_letters(store_path)] == ["for general"]
    code, _, err = run_cli(capsys, "flush", "--webhook", "billing")
    assert code == EXIT_CONFIG
    assert "DISCORD_WEBHOOK_BILLING" in err


def test_flush_letter_no_webhook_can_carry(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A letter whose webhook is gone (and no fallback exists) stays: exit 1, set or purge it."""
    configure(monkeypatch, fake, "SECURITY")
    add_letters(store_path, letter("orphan", "billing"))
    code, out, _ = run_cli(capsys, "flush")
    assert code == 1
    assert "not_configured" in out
    assert "written for a webhook this configuration does not have" in out
    assert "dead-letters purge --webhook billing" in out
    assert received(fake) == Counter()


def test_flush_under_another_configuration_never_posts_a_letter_elsewhere(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A letter kept for app A's webhook is not posted by a flush configured with app B's
    webhook for the same alert type: it stays, reported as not_configured (rule 2)."""
    configure(monkeypatch, fake)
    app_a = letter("app A private: customer 4242 card declined")
    configure(monkeypatch, fake)  # the same alert type now names another webhook
    add_letters(store_path, app_a)
    code, out, _ = run_cli(capsys, "flush")
    assert code == 1
    assert "not_configured" in out
    assert received(fake) == Counter()
    assert [x.id for x in stored_letters(store_path)] == [app_a.id]


def test_flush_holds_a_letter_whose_webhook_is_unknown(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A letter kept by a version before destinations (only an alert-type name) is held for
    the operator: never guessed, never posted, and the flush says what to do."""
    configure(monkeypatch, fake)
    old = replace(letter("from an old version"), destination=None)
    add_letters(store_path, old)
    code, out, _ = run_cli(capsys, "flush")
    assert code == 1
    assert "destination_unknown" in out
    assert "never guessed" in out
    assert received(fake) == Counter()
    assert [x.id for x in stored_letters(store_path)] == [old.id]


def _claimer(path: Path, letter_id: str, *, hold: bool) -> list[str]:
    """A command for another process that claims ``letter_id`` (and, with ``hold``, keeps
    running until its stdin closes)."""
    code = (
        "import sys\n"
        "from discord_logging.store import Store\n"
        f"store = Store({str(path)!r})\n"
        f"assert store.durable.claim({letter_id!r})\n"
        "print('claimed', flush=True)\n"
        f"{'sys.stdin.readline()' if hold else ''}\n"
        "store.close()\n"
    )
    return [sys.executable, "-c", code]


@pytest.mark.slow  # a real process
def test_interrupted_flush_resumed(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An interrupted flush resumed: the state a killed flush leaves is built for real (A was
    posted and recorded in the history but its letter not yet removed; B is claimed by a
    process that has died; C is claimed by a live process; D is untouched). Resuming skips A
    (Discord has it), takes over B's stale claim, leaves C to its holder (exit 1, said why),
    and once C's holder is gone a second resume delivers C: each reaches Discord exactly once."""
    configure(monkeypatch, fake)
    a, b, c, _d = add_letters(store_path, *(letter(f"resume {x}") for x in "ABCD"))

    async def post_a() -> None:  # the first, interrupted run got A to Discord
        store = Store(store_path)
        notifier = Notifier(load_settings(), listeners=[store.record])
        assert (await notifier.send_notification(a.notification)).ok
        await notifier.aclose()
        store.close()

    asyncio.run(post_a())
    subprocess.run(_claimer(store_path, b.id, hold=False), check=True, timeout=60)
    with subprocess.Popen(
        _claimer(store_path, c.id, hold=True),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdin is not None
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "claimed"
        code, out, _ = run_cli(capsys, "flush", "--json")
        data = json.loads(out)
        assert code == 1
        assert (data["delivered"], data["skipped_already_delivered"]) == (2, 1)
        assert (data["claimed_elsewhere"], data["remaining"]) == (1, 1)
        assert "another process" in data["still_failing"]["claimed_elsewhere"]["advice"]
        assert [x.id for x in stored_letters(store_path)] == [c.id]
        holder.stdin.close()  # C's holder finishes and exits
    code, out, _ = run_cli(capsys, "flush")
    assert code == 0
    assert "Delivered the only dead letter." in out
    assert received(fake) == Counter({f"resume {x}": 1 for x in "ABCD"})
    assert stored_letters(store_path) == []


def test_flush_timeout_keeps_the_rest(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--timeout stops a flush Discord does not answer: the request already in flight ends by
    its own timeout (cut off, it could be posted twice), what was not delivered stays stored,
    exit 1, run again."""
    configure(monkeypatch, fake)
    monkeypatch.setenv("DISCORD_CLOSE_TIMEOUT", "0")
    monkeypatch.setenv("DISCORD_TIMEOUT_SECONDS", "0.3")
    fake.set_hang(True)
    add_letters(store_path, letter("slow 1"), letter("slow 2"))
    started = time.monotonic()
    code, out, _ = run_cli(capsys, "flush", "--timeout", "0.1")
    fake.set_hang(False)
    assert time.monotonic() - started < 1.0
    assert code == 1
    assert "Stopped after --timeout 0.1 s" in out
    assert "flush` again" in out
    assert len(stored_letters(store_path)) == 2


def test_flush_needs_configuration(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """flush sends, so it needs a webhook: exit 3 saying which variable to set."""
    add_letters(store_path, letter("waiting"))
    code, _, err = run_cli(capsys, "flush")
    assert code == EXIT_CONFIG
    assert "DISCORD_WEBHOOK_GENERAL" in err
    assert len(stored_letters(store_path)) == 1


# -- stats, send-test, check --ping ------------------------------------------------------------


def test_stats(
    history: dict[str, Notification], store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """stats counts outcomes per alert type since --since, and dead letters by webhook/reason."""
    add_letters(
        store_path, letter("a"), letter("b"), letter("c", "security", DeadLetterReason.POISON)
    )
    code, out, _ = run_cli(capsys, "stats")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["alert", "type", "delivered", "dead_lettered", "total"]
    assert lines[3].split() == ["error", "1", "1", "2"]
    assert lines[5].split() == ["total", "2", "1", "3"]  # the 3-day-old entry is outside 24h
    assert "Dead letters kept now: 3" in out
    assert lines[-2].split() == ["general", "retries_exhausted", "2"]
    assert lines[-1].split() == ["security", "poison", "1"]
    code, out, _ = run_cli(capsys, "stats", "--since", "7d", "--json")
    data = json.loads(out)
    assert data["history"]["monitoring"] == {"delivered": 1}
    assert data["dead_letters"] == {"general": {"retries_exhausted": 2}, "security": {"poison": 1}}
    assert data["dead_letters_total"] == 3


def test_send_test_delivers(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """send-test posts one notification, prints its message id and records it in the history."""
    configure(monkeypatch, fake)
    code, out, _ = run_cli(capsys, "send-test", "--message", "hello from the test")
    assert code == 0
    message = fake.messages[0]
    assert message.message_id in out
    assert "delivered" in out
    assert message.embeds[0]["description"].startswith("hello from the test")
    code, out, _ = run_cli(capsys, "send-test", "--type", "security", "--json")
    data = json.loads(out)
    assert (code, data["status"], data["alert_type"], data["webhook"]) == (
        0,
        "delivered",
        "security",
        "general",
    )
    assert data["message_id"] == fake.messages[1].message_id
    code, out, _ = run_cli(capsys, "history", "--json")
    assert [e["alert_type"] for e in json.loads(out)] == ["security", "general"]


def test_send_test_leaves_the_backlog_to_flush(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """send-test posts only its own notification: stored dead letters wait for flush."""
    configure(monkeypatch, fake)
    add_letters(store_path, letter("backlog"))
    assert main(["send-test"]) == 0
    assert received(fake) == Counter({"discord-logging send-test": 1})
    assert len(stored_letters(store_path)) == 1


def test_send_test_not_delivered_exits_1(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refused send-test exits 1, names the reason and the fix; the letter is kept."""
    webhook_id = configure(monkeypatch, fake)
    fake.set_status_override(webhook_id, 404)
    code, out, err = run_cli(capsys, "send-test")
    assert code == 1
    assert "dead_lettered" in out
    assert "webhook_disabled" in err
    assert "DISCORD_WEBHOOK_GENERAL" in err
    [kept] = stored_letters(store_path)
    assert kept.id in err


def test_check_ping(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """check --ping posts once per webhook and shows each outcome; a failure exits 1."""
    configure(monkeypatch, fake)
    errors_id = configure(monkeypatch, fake, "ERRORS")
    code, out, _ = run_cli(capsys, "check", "--ping", "--json")
    data = json.loads(out)
    assert (code, data["ok"]) == (0, True)
    assert {p["webhook"]: p["status"] for p in data["ping"]} == {
        "error": "delivered",
        "general": "delivered",
    }
    assert all(m.embeds[0]["title"].endswith("discord-logging check --ping") for m in fake.messages)
    fake.set_status_override(errors_id, 404)
    code, out, err = run_cli(capsys, "check", "--ping")
    assert code == 1
    assert out.index("Configuration OK") < out.index("Pinging every webhook")
    rows = {line.split()[0]: line for line in out.splitlines()[-2:]}
    assert "dead_lettered" in rows["error"]
    assert "404" in rows["error"]
    assert "delivered" in rows["general"]
    assert "DISCORD_WEBHOOK_ERRORS" in err
    assert stored_letters(Path(os.environ["DISCORD_STORE_PATH"])) == []  # no letter kept


def test_check_ping_counts_in_the_limits_the_running_applications_share(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A ping is one more sender in the store directory's shared limits: after the running
    applications took 29 of the channel's 30 messages of this minute and the ping the 30th,
    an application asking for one more is told to wait (a ping with a budget of its own would
    have let it earn a 429)."""
    import asyncio

    from discord_logging.coordination import Grant
    from discord_logging.coordination.host import HostCoordinator
    from discord_logging.coordination.ledger import Limits

    webhook_id = configure(monkeypatch, fake)
    limits = Limits(channel_limit=30, channel_window=60.0)

    async def take(count: int) -> list[object]:
        app = HostCoordinator(store_path, limits)
        answers: list[object] = []
        for _ in range(count):
            grant = await app.acquire(f"webhook:{webhook_id}", webhook_id)
            if isinstance(grant, Grant):
                await app.complete(grant, None)
            answers.append(grant)
        await app.aclose()
        return answers

    assert all(isinstance(g, Grant) for g in asyncio.run(take(29)))
    code, _, _ = run_cli(capsys, "check", "--ping")
    assert code == 0
    assert len(fake.messages) == 1
    (answer,) = asyncio.run(take(1))
    assert isinstance(answer, float)
    assert answer > 0
    assert fake.count_status(429) == 0


# -- tokens, the console script, help, helpers -------------------------------------------------


def test_no_command_ever_prints_the_token(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every command hides the token, even with the webhook URL inside stored texts and errors."""
    webhook_id = configure(monkeypatch, fake, token=SECRET)
    url = fake.webhook_url(webhook_id)
    assert SECRET in url
    leaky = letter(f"failed posting to {url}", error=f"POST {url} failed", message=f"see {url}")
    add_letters(store_path, leaky)
    record(store_path, note(f"sent to {url}", message=url), DeliveryStatus.DELIVERED, "42")
    exports = [tmp_path / "history.jsonl", tmp_path / "letters.jsonl"]
    commands = [
        ["check"],
        ["check", "--json", "--ping"],
        ["history"],
        ["history", "--json"],
        ["history", "--export", str(exports[0])],
        ["dead-letters", "list"],
        ["dead-letters", "list", "--json"],
        ["dead-letters", "show", leaky.id],
        ["dead-letters", "show", leaky.id, "--json"],
        ["dead-letters", "export", "-"],
        ["stats", "--json"],
        ["send-test", "--message", f"about {url}"],
        ["send-test", "--json"],
        ["dead-letters", "export", str(exports[1])],
    ]
    seen = []
    for argv in commands:
        assert main(argv) == 0, argv
        seen.append(capsys.readouterr())
    assert all(url.rsplit("/", 1)[0] + "/***" in path.read_text() for path in exports)
    assert all(SECRET not in path.read_text() for path in exports)
    fake.set_status_override(webhook_id, 404)
    for argv in (["flush"], ["flush", "--json"], ["send-test"], ["check", "--ping"]):
        assert main(argv) == 1
        seen.append(capsys.readouterr())
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", url.replace("127.0.0.1", "evil.example"))
    assert main(["flush"]) == EXIT_CONFIG
    seen.append(capsys.readouterr())
    text = "".join(c.out + c.err for c in seen)
    assert "/webhooks/" in text
    assert "/***" in text
    assert SECRET not in text


def _console_script() -> str:
    exe = shutil.which("discord-logging", path=os.path.dirname(sys.executable))
    assert exe is not None
    return exe


@pytest.mark.slow  # a real process
def test_console_script_reads_the_store(store_path: Path) -> None:
    """The installed command lists dead letters (a table) and the history (JSON, --store)."""
    [kept] = add_letters(store_path, letter("from the console"))
    record(store_path, kept.notification, DeliveryStatus.DEAD_LETTERED)
    exe = _console_script()

    def run(*argv: str) -> str:
        done = subprocess.run([exe, *argv], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert kept.id[:8] in run("dead-letters", "list")
    entries = json.loads(run("history", "--json", "--store", str(store_path)))
    assert [(e["title"], e["status"]) for e in entries] == [("from the console", "dead_lettered")]


@pytest.mark.slow  # a real process
def test_console_script_flush(
    fake: FakeDiscord, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed command flushes the store to Discord; a second run finds nothing."""
    configure(monkeypatch, fake)
    add_letters(store_path, letter("via console"))
    exe = _console_script()
    done = subprocess.run([exe, "flush", "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["delivered"] == 1
    again = subprocess.run([exe, "flush"], capture_output=True, text=True, check=False)
    assert (again.returncode, again.stdout.strip()) == (0, "No dead letters to flush.")
    assert received(fake) == Counter({"via console": 1})


@pytest.mark.parametrize(
    "argv",
    [
        ["history"],
        ["dead-letters"],
        ["dead-letters", "list"],
        ["dead-letters", "show"],
        ["dead-letters", "delete"],
        ["dead-letters", "purge"],
        ["dead-letters", "export"],
        ["flush"],
        ["stats"],
        ["send-test"],
        ["check"],
    ],
)
def test_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Every command and action has --help (exit 0) naming its exit codes."""
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: discord-logging " + " ".join(argv))
    assert "Exit codes" in out


def test_moment_parses_durations_and_iso_times() -> None:
    """--since/--until/--older-than accept 30m, 1h, 2d, 1w and ISO-8601 (UTC by default)."""
    now = 1_000_000.0
    assert moment("30m", lambda: now) == now - 1800
    assert moment("1.5h", lambda: now) == now - 5400
    assert moment("2d", lambda: now) == now - 172_800
    assert moment("2024-05-01T00:00:00Z") == moment("2024-05-01") == 1_714_521_600
    assert moment("2024-05-01T02:00:00+02:00") == 1_714_521_600


def test_progress_bar_only_on_a_terminal() -> None:
    """A bar is drawn on a TTY; elsewhere a short operation prints nothing."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    bar = Progress("flush", tty)
    bar(50, 100)
    bar(100, 100)
    bar.close()
    assert tty.getvalue().endswith("\rflush [" + "#" * 30 + "] 100/100\n")
    assert "] 50/100" in tty.getvalue()
    plain = io.StringIO()
    quiet = Progress("flush", plain)
    quiet(1, 2)
    quiet.close()
    assert plain.getvalue() == ""
    chatty = Progress("flush", plain, interval=0.0)
    chatty(1, 2)
    assert plain.getvalue() == "flush: 1/2\n"


def test_flush_counts_in_the_limits_the_running_applications_share(
    fake: FakeDiscord,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A flush is one more sender in the store directory's shared limits: when the running
    applications have used the webhook's 30 messages of this minute, it sends nothing (a
    flush with a budget of its own earned 429s beside them) and says the rest was not
    reached."""
    import asyncio

    from discord_logging.coordination import Grant
    from discord_logging.coordination.host import HostCoordinator
    from discord_logging.coordination.ledger import Limits

    webhook_id = configure(monkeypatch, fake)
    add_letters(store_path, *(letter(f"waiting {i}") for i in range(3)))

    async def fill_the_minute() -> None:
        app = HostCoordinator(store_path, Limits(channel_limit=30, channel_window=60.0))
        for _ in range(30):
            grant = await app.acquire(f"webhook:{webhook_id}", webhook_id)
            assert isinstance(grant, Grant)
            await app.complete(grant, None)
        await app.aclose()

    asyncio.run(fill_the_minute())
    code, out, _ = run_cli(capsys, "flush", "--timeout", "1")
    assert code == 1
    assert "(with a larger --timeout)" in out
    assert received(fake) == Counter()
    assert fake.count_status(429) == 0
    assert len(stored_letters(store_path)) == 3
