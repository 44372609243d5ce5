"""Start-up is paid by the worker: the caller's thread imports none of pydantic, httpx, Jinja2
or diskcache when it builds a ``DiscordHandler``, and what it logs meanwhile still arrives,
routed as configured (the figures are in benchmarks/startup.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from processkit import run_script, script_env, titles

from discord_logging import DiscordHandler
from discord_logging.errors import ConfigurationError
from discord_logging.testing import FakeDiscord

# An import hook that notes which thread imported each heavy module first.
IMPORTERS = """
import importlib.abc, json, sys, threading
HEAVY = ("pydantic", "pydantic_settings", "httpx", "jinja2", "diskcache", "dotenv")
importers = {}

class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in HEAVY:
            importers.setdefault(name, threading.current_thread().name)
        return None

sys.meta_path.insert(0, Watch())
"""


@pytest.mark.slow  # a real process
def test_the_callers_thread_imports_nothing_heavy_and_early_records_arrive_routed(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """A fresh process: building the handler and logging right away import the heavy
    dependencies off the main thread only (pydantic not at all); the records logged during the start
    arrive, each routed by the logger-name rule and the extra the settings say."""
    general = fake_discord.add_webhook(host="localhost")
    tracks = fake_discord.add_webhook(host="localhost")
    body = (
        IMPORTERS
        + """
handler = DiscordHandler(
    webhooks={"general": os.environ["TEST_WEBHOOK"], "tracklist": os.environ["TRACKS"]},
    allowed_hosts=os.environ["TEST_HOSTS"],
    routes={"app.tracks": "tracklist"},
    aggregate_window=0,
)
log.addHandler(handler)
logging.getLogger("app.tracks").error("by the logger rule")
log.error("by the extra", extra={"alert_type": "tracklist"})
log.error("by the level")
on_main = sorted(n for n, t in importers.items() if t == threading.main_thread().name)
handler.wait_started()
print(json.dumps({"on_main": on_main, "loaded": sorted(importers)}))
"""
    )
    env = script_env(fake_discord, general, tmp_path / "store")
    env["TRACKS"] = tracks
    done = run_script(body, env, tmp_path)
    assert done.returncode == 0, done.stderr
    imports = json.loads(done.stdout.splitlines()[-1])
    assert imports["on_main"] == [], imports
    assert {"httpx", "jinja2", "diskcache"} <= set(imports["loaded"])
    assert "pydantic" not in imports["loaded"]
    by_webhook = {
        url: sorted(
            str(e.get("title"))
            for m in fake_discord.messages_for(url.split("/")[-2])
            for e in m.embeds
        )
        for url in (general, tracks)
    }
    assert by_webhook == {
        general: ["by the level"],
        tracks: ["by the extra", "by the logger rule"],
    }, titles(fake_discord)


def test_a_template_that_does_not_compile_is_refused_at_construction(tmp_path: Path) -> None:
    """A template of the user's that does not compile is refused where the handler is
    created, naming the file; nothing is started."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "error.j2").write_text("{{ broken", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"error\.j2"):
        DiscordHandler(
            webhooks={"general": "https://discord.com/api/webhooks/1/tok"},
            templates_dir=templates,
            store_path=tmp_path / "store",
        )
    assert not (tmp_path / "store").exists()


def test_stats_right_after_construction_does_not_wait_on_the_starting_worker(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """``stats()`` at once (it opens the store, which needs the settings the worker is still
    loading) neither deadlocks with the worker's start, which opens the store too, nor waits
    out the settings' 10 s bound: it answers once the start is done."""
    import threading

    handler = DiscordHandler(
        webhooks={"general": fake_discord.add_webhook()},
        allowed_hosts=fake_discord.host,
        store_path=tmp_path / "store",
    )
    answers: list[dict[str, object]] = []
    asking = threading.Thread(target=lambda: answers.append(handler.stats()))
    asking.start()
    asking.join(5.0)  # a deadlock would hold it for the 10 s bound
    try:
        assert not asking.is_alive()
        assert answers[0]["dead_letters_kept"] == 0
    finally:
        asking.join()
        handler.close()
