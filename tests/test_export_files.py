"""Exports that cannot be hijacked (issue 32, point 1): an export is a new file of this user,
mode 0600, or nothing. A file another user planted at the export path (mode 0666, to read
the alerts) and a symbolic link planted there (to overwrite a file of ours) are refused, with
``--force`` too; an existing file of ours is replaced only with ``--force``. The purged-history
export of the store's retention never writes through either: its rows go to a new file."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from discord_logging.cli import main
from discord_logging.notification import DeliveryStatus, Notification, NotificationResult
from discord_logging.store import Store
from discord_logging.store._exports import new_export
from discord_logging.store.history import make_entry

ALERT = "card 4242 declined for alice@example.com"  # what the other user must never read
EXPORTS = [["history", "--export"], ["dead-letters", "export"]]
EXPORT_IDS = ["history", "dead-letters"]


@pytest.fixture(scope="module")
def other_user() -> Iterator[pwd.struct_passwd]:
    """A real second user of this machine, made with ``useradd`` and removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("making a second user (useradd) needs root")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("useradd/userdel are not installed")
    name = f"dlx{os.getpid() % 100000}{os.urandom(2).hex()}"
    for _ in range(50):  # /etc/passwd is locked while another useradd runs: try again
        made = subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode == 0:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"useradd {name} failed: {made.stderr}")
    try:
        yield pwd.getpwnam(name)
    finally:
        for _ in range(50):
            if subprocess.run(["userdel", name], capture_output=True, check=False).returncode in (
                0,
                6,  # no such user
            ):
                break
            time.sleep(0.1)


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory every user can write into, not sticky (a team's drop directory): under
    /tmp, which the other user can reach (pytest's own tmp_path is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="dl-shared-", dir="/tmp"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def as_user(user: pwd.struct_passwd, *argv: str) -> subprocess.CompletedProcess[str]:
    """``argv`` run as ``user`` (its uid and group), umask 000 (what she chose)."""
    return subprocess.run(
        list(argv),
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        umask=0,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store holding one history entry and one dead letter, both about ``ALERT``."""
    from discord_logging.deadletters import DeadLetter, DeadLetterReason

    path = tmp_path / "store"
    opened = Store(path)
    assert opened.history is not None
    note = Notification(alert_type="general", title=ALERT, message=ALERT, created=time.time())
    result = NotificationResult(note.id, DeliveryStatus.DELIVERED, "1")
    opened.history.record_many([make_entry(note, result, "general", 0)])
    opened.dead_letters.add(
        DeadLetter(note, "general", DeadLetterReason.RETRIES_EXHAUSTED, 3, "503", None, 503)
    )
    opened.close()
    return path


def export(store: Path, argv: list[str], target: Path, *more: str) -> int:
    return main(["--store", str(store), *argv, str(target), *more])


@pytest.mark.parametrize("argv", EXPORTS, ids=EXPORT_IDS)
def test_a_file_another_user_planted_is_never_written(
    argv: list[str],
    store: Path,
    shared: Path,
    other_user: pwd.struct_passwd,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """She makes the export path first, mode 0666: the export is refused, with --force too,
    and she reads nothing of the alerts from her file (before the fix: the alerts, her file)."""
    target = shared / "alerts.jsonl"
    assert as_user(other_user, "touch", str(target)).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o666
    for more in ((), ("--force",)):
        assert export(store, argv, target, *more) == 1
        err = capsys.readouterr().err
        assert f"the export file {target} is owned by uid {other_user.pw_uid}" in err
        assert "never written through" in err
        read = as_user(other_user, "cat", str(target))
        assert read.returncode == 0
        assert ALERT not in read.stdout
        assert read.stdout == ""
    assert target.stat().st_uid == other_user.pw_uid


@pytest.mark.parametrize("argv", EXPORTS, ids=EXPORT_IDS)
def test_a_planted_link_is_never_written_through(
    argv: list[str],
    store: Path,
    shared: Path,
    other_user: pwd.struct_passwd,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """She plants a link at the export path to a root-only file: refused, --force too; the
    file it points to is untouched (before the fix: truncated and overwritten)."""
    precious = tmp_path / "precious"
    precious.write_text("root's own data\n")
    precious.chmod(0o600)
    target = shared / "alerts.jsonl"
    assert as_user(other_user, "ln", "-s", str(precious), str(target)).returncode == 0
    for more in ((), ("--force",)):
        assert export(store, argv, target, *more) == 1
        assert f"the export file {target} is a symbolic link" in capsys.readouterr().err
        assert precious.read_text() == "root's own data\n"
        assert target.is_symlink()


@pytest.mark.parametrize("argv", EXPORTS, ids=EXPORT_IDS)
def test_an_existing_file_is_replaced_only_with_force(
    argv: list[str], store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file of ours at the path: refused with the fix named (--force); with --force it is
    replaced by a new file, mode 0600, whatever mode the old one had."""
    target = tmp_path / "alerts.jsonl"
    target.write_text("old\n")
    target.chmod(0o644)
    assert export(store, argv, target) == 1
    err = capsys.readouterr().err
    assert f"the export file {target} already exists: pass --force to replace it" in err
    assert target.read_text() == "old\n"
    assert export(store, argv, target, "--force") == 0
    assert ALERT in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".alerts")] == []


@pytest.mark.parametrize("argv", EXPORTS, ids=EXPORT_IDS)
def test_a_new_export_is_0600_whatever_the_umask(
    argv: list[str], store: Path, tmp_path: Path
) -> None:
    """A new export file is the user's only, even under umask 000."""
    target = tmp_path / "new.jsonl"
    old = os.umask(0)
    try:
        assert export(store, argv, target) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.lstat().st_mode) == 0o600
    assert ALERT in target.read_text()


def _purge_with_export(store_dir: Path, export_dir: Path) -> None:
    """One history entry, two days old, purged by retention with an export directory."""
    store = Store(store_dir, retention_days=1, export_dir=export_dir)
    assert store.history is not None
    note = Notification(
        alert_type="general", title=ALERT, message=ALERT, created=time.time() - 2 * 86_400
    )
    result = NotificationResult(note.id, DeliveryStatus.DELIVERED, "1")
    store.history.record_many([make_entry(note, result, "general", note.created)])
    try:
        assert store.cleanup() == 1
        assert not store.degraded
    finally:
        store.close()


def _daily(export_dir: Path) -> Path:
    return export_dir / f"history-purged-{time.strftime('%Y%m%d', time.gmtime())}.jsonl"


def test_the_purged_history_export_never_writes_into_another_users_file(
    shared: Path,
    other_user: pwd.struct_passwd,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """She plants the day's purged-history file, mode 0666: the purged rows go to a new file
    of ours (0600), said once; hers stays empty (before the fix: the rows were appended to it)."""
    planted = _daily(shared)
    assert as_user(other_user, "touch", str(planted)).returncode == 0
    _purge_with_export(tmp_path / "store", shared)
    read = as_user(other_user, "cat", str(planted))
    assert read.returncode == 0
    assert read.stdout == ""
    (written,) = [p for p in shared.iterdir() if p != planted]
    assert written.name.startswith(planted.stem + "-")
    assert written.stat().st_uid == os.geteuid()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert ALERT in written.read_text()
    err = capsys.readouterr().err
    assert f"the export file {planted} is owned by uid {other_user.pw_uid}" in err
    assert str(written) in err


def test_the_purged_history_export_never_follows_a_link(
    shared: Path, other_user: pwd.struct_passwd, tmp_path: Path
) -> None:
    """A link she planted as the day's file, to a root-only file: the file is untouched and
    the rows go to a new file of ours (before the fix: appended to the root-only file)."""
    precious = tmp_path / "precious"
    precious.write_text("root's own data\n")
    precious.chmod(0o600)
    planted = _daily(shared)
    assert as_user(other_user, "ln", "-s", str(precious), str(planted)).returncode == 0
    _purge_with_export(tmp_path / "store", shared)
    assert precious.read_text() == "root's own data\n"
    (written,) = [p for p in shared.iterdir() if p != planted]
    assert ALERT in written.read_text()


def test_the_purged_history_export_appends_to_its_own_file(tmp_path: Path) -> None:
    """The day's file of ours is appended to, not replaced, and kept 0600."""
    export_dir = tmp_path / "exports"
    _purge_with_export(tmp_path / "one", export_dir)
    daily = _daily(export_dir)
    daily.chmod(0o644)
    _purge_with_export(tmp_path / "two", export_dir)
    assert len(daily.read_text().splitlines()) == 2
    assert [p.name for p in export_dir.iterdir()] == [daily.name]
    assert stat.S_IMODE(daily.stat().st_mode) == 0o600


@pytest.mark.parametrize("kind", ["directory", "hard link"])
def test_what_is_not_a_lone_regular_file_is_refused_even_with_force(
    kind: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory, or a file of ours with a second name (a hard link someone made to read
    it through): refused with --force too, nothing written."""
    target = tmp_path / "alerts.jsonl"
    if kind == "directory":
        target.mkdir()
        problem = "is not a regular file"
    else:
        (tmp_path / "mine").write_text("mine\n")
        os.link(tmp_path / "mine", target)
        problem = "has 2 hard links"
    assert export(store, ["history", "--export"], target, "--force") == 1
    assert f"the export file {target} {problem}" in capsys.readouterr().err
    if kind != "directory":
        assert (tmp_path / "mine").read_text() == "mine\n"


@pytest.mark.parametrize("force", [False, True])
def test_a_failed_export_leaves_nothing_behind(force: bool, tmp_path: Path) -> None:
    """An export that fails half-way removes what it wrote: no new file, no temporary one,
    and with --force the file it was to replace is left as it was."""
    target = tmp_path / "alerts.jsonl"
    if force:
        target.write_text("old\n")

    def half_way() -> None:
        with new_export(target, force=force) as out:
            out.write("half")
            raise RuntimeError("the store went away")

    with pytest.raises(RuntimeError):
        half_way()
    assert [p.name for p in tmp_path.iterdir()] == (["alerts.jsonl"] if force else [])
    if force:
        assert target.read_text() == "old\n"


def test_the_purged_history_export_never_opens_a_fifo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO at the day's file (a reader waiting on it): never opened for writing (nor waited
    on); the rows go to a new file."""
    export_dir = tmp_path / "exports"
    export_dir.mkdir()
    os.mkfifo(_daily(export_dir))
    _purge_with_export(tmp_path / "store", export_dir)
    (written,) = [p for p in export_dir.iterdir() if p != _daily(export_dir)]
    assert ALERT in written.read_text()
    assert "is not a regular file" in capsys.readouterr().err
