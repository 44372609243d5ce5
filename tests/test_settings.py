"""Settings from the environment, .env and keywords: validation and secrecy."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ERRORS_WEBHOOK, WEBHOOK

from discord_logging.errors import ConfigurationError
from discord_logging.settings import FIELD_NAMES, env_name, load_settings

TOKEN = WEBHOOK.rsplit("/", 1)[1]


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented defaults apply when only a webhook is set."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    settings = load_settings()
    assert settings.rate_limit == 30
    assert settings.retry_attempts == 3
    assert settings.timeout_seconds == 10
    assert settings.queue_size == 100
    assert settings.aggregate_window == 60
    assert settings.close_timeout == 5
    assert list(settings.webhook_urls) == ["general"]


def test_incident_forum_silent_and_button_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Incidents are kept current by edits every 10 s; no forum, tags or buttons; general,
    monitoring, tracklist, digests and updates are silent, error, critical, security loud."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    settings = load_settings()
    assert (settings.incident_updates, settings.incident_edit_interval) == ("edit", 10.0)
    assert (settings.forum, settings.forum_tags, settings.buttons) == ((), {}, {})
    assert sorted(k for k, quiet in settings.silent.items() if quiet) == [
        "digests",
        "general",
        "monitoring",
        "tracklist",
        "updates",
    ]
    assert sorted(k for k, quiet in settings.silent.items() if not quiet) == [
        "critical",
        "error",
        "security",
    ]


def test_forum_settings_parse_from_strings_and_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    """DISCORD_FORUM is a list of types, DISCORD_FORUM_TAGS type=id;id pairs; keywords take a
    list and a dict; DISCORD_INCIDENT_UPDATES is case-insensitive."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    monkeypatch.setenv("DISCORD_FORUM", "Errors, critical,")
    monkeypatch.setenv("DISCORD_FORUM_TAGS", "error=111;222;111,critical=333")
    monkeypatch.setenv("DISCORD_INCIDENT_UPDATES", "Message")
    settings = load_settings()
    assert settings.forum == ("critical", "error")
    assert settings.forum_tags == {"error": ("111", "222"), "critical": ("333",)}
    assert settings.incident_updates == "message"
    keywords = load_settings(forum=["security"], forum_tags={"security": 444}, silent="")
    assert (keywords.forum, keywords.forum_tags) == (("security",), {"security": ("444",)})
    assert keywords.silent["general"] is True  # empty: the defaults


def test_all_webhook_variables_and_custom_types(monkeypatch: pytest.MonkeyPatch) -> None:
    """DISCORD_WEBHOOK_ERRORS maps to 'error'; any other suffix is a custom type."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    monkeypatch.setenv("DISCORD_WEBHOOK_ERRORS", ERRORS_WEBHOOK)
    monkeypatch.setenv("DISCORD_WEBHOOK_BILLING_TEAM", WEBHOOK)
    monkeypatch.setenv("DISCORD_WEBHOOK_EMPTY", "  ")
    settings = load_settings()
    assert sorted(settings.webhook_urls) == ["billing_team", "error", "general"]


def test_env_file_is_read(tmp_path: Path) -> None:
    """A .env file in the working directory supplies webhooks and settings."""
    (tmp_path / ".env").write_text(
        f"DISCORD_WEBHOOK_SECURITY={WEBHOOK}\nDISCORD_RATE_LIMIT=12\nOTHER=1\n"
    )
    settings = load_settings()
    assert list(settings.webhook_urls) == ["security"]
    assert settings.rate_limit == 12


def test_keyword_webhooks_replace_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """webhooks= replaces DISCORD_WEBHOOK_* entirely; scalar keywords override variables."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    monkeypatch.setenv("DISCORD_RATE_LIMIT", "10")
    settings = load_settings(webhooks={"errors": ERRORS_WEBHOOK}, rate_limit=5, timeout=2.5)
    assert list(settings.webhook_urls) == ["error"]
    assert settings.rate_limit == 5
    assert settings.timeout_seconds == 2.5


def test_routes_and_hosts_parse_from_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    """DISCORD_ROUTES and DISCORD_ALLOWED_HOSTS are comma lists."""
    monkeypatch.setenv("DISCORD_ROUTES", "myapp.security=security, tracklist=TRACKLIST,")
    monkeypatch.setenv("DISCORD_ALLOWED_HOSTS", "127.0.0.1:9000, Proxy.Local")
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", "http://127.0.0.1:9000/api/webhooks/1/t")
    settings = load_settings()
    assert settings.routes == {"myapp.security": "security", "tracklist": "tracklist"}
    assert settings.allowed_hosts == ("127.0.0.1:9000", "proxy.local")


def test_mentions_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """DISCORD_MENTIONS lists deliberate pings per alert type."""
    monkeypatch.setenv("DISCORD_MENTIONS", "critical=role:123;user:456,security=here")
    settings = load_settings(webhooks={"general": WEBHOOK})
    assert settings.mentions == {"critical": ("role:123", "user:456"), "security": ("here",)}
    assert load_settings(webhooks={"general": WEBHOOK}, mentions={"error": "role:1"}).mentions == {
        "error": ("role:1",)
    }


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DISCORD_RATE_LIMIT", "fast", "DISCORD_RATE_LIMIT: 'fast' is not a whole number from 1"),
        ("DISCORD_RATE_LIMIT", "0", "DISCORD_RATE_LIMIT: '0' is not a whole number from 1 to"),
        ("DISCORD_RETRY_ATTEMPTS", "99", "DISCORD_RETRY_ATTEMPTS"),
        ("DISCORD_TIMEOUT_SECONDS", "-1", "DISCORD_TIMEOUT_SECONDS"),
        ("DISCORD_QUEUE_SIZE", "0", "DISCORD_QUEUE_SIZE"),
        ("DISCORD_ROUTES", "nonsense", "DISCORD_ROUTES: 'nonsense' is not a key=value"),
        ("DISCORD_ROUTES", "a=not a type", "not a valid name"),
        ("DISCORD_USERNAME", "Discord Bot", "DISCORD_USERNAME: Discord rejects"),
        ("DISCORD_USERNAME", "x" * 81, "DISCORD_USERNAME: must be 1 to 80"),
        ("DISCORD_AVATAR_URL", "ftp://x", "DISCORD_AVATAR_URL: must be an http:// or https"),
        ("DISCORD_MENTIONS", "critical=role:abc", "DISCORD_MENTIONS: mention 'role:abc'"),
        ("DISCORD_AGGREGATE_WINDOW", "-5", "DISCORD_AGGREGATE_WINDOW"),
        ("DISCORD_APP_NAME", " ", "DISCORD_APP_NAME"),
        (
            "DISCORD_WEBHOOK_ERRORS",
            "https://evil.example/api/webhooks/1/SECRETTOKEN",
            "DISCORD_WEBHOOK_ERRORS: host",
        ),
        ("DISCORD_WEBHOOK_9BAD", WEBHOOK, "not a valid name"),
        # Type and range errors: the value and what is allowed, in the library's words.
        ("DISCORD_RATE_LIMIT", "fast", "'fast' is not a whole number from 1 to 10000"),
        ("DISCORD_RETRY_ATTEMPTS", "99", "'99' is not a whole number from 1 to 20"),
        ("DISCORD_QUEUE_SIZE", "1e9", "is not a whole number from 1 to 100000"),
        ("DISCORD_GLOBAL_RATE_LIMIT", "1.5", "'1.5' is not a whole number from 1 to 50 (fractions"),
        ("DISCORD_TIMEOUT_SECONDS", "-1", "'-1' is not a number greater than 0 and at most 300"),
        ("DISCORD_CLOSE_TIMEOUT", "soon", "'soon' is not a number from 0 to 300"),
        ("DISCORD_AGGREGATE_WINDOW", "-5", "is not a number from 0 to 86400"),
        ("DISCORD_HISTORY_MAX_BYTES", "5", "'5' is not a whole number of at least 1048576"),
        ("DISCORD_HISTORY_RETENTION_DAYS", "0", "'0' is not a number greater than 0"),
        ("DISCORD_ATTACH_FULL_TEXT", "maybe", "'maybe' is not true or false"),
        ("DISCORD_USERNAME", "everyone", "Discord rejects the user name 'everyone'"),
        ("DISCORD_USERNAME", "Here", "Discord rejects the user name 'here'"),
        ("DISCORD_USERNAME", "   ", "must be 1 to 80 characters, not blank"),
        ("DISCORD_USERNAME", "my CLYDE bot", "containing 'discord' or 'clyde'"),
        ("DISCORD_AVATAR_URL", "avatar.png", "must be an http:// or https:// URL"),
        ("DISCORD_AVATAR_URL", "https://x.example/" + "a" * 2048, "at most 2048 characters"),
        ("DISCORD_INCIDENT_UPDATES", "edits", "'edits' is not edit or message"),
        ("DISCORD_INCIDENT_EDIT_INTERVAL", "0", "'0' is not a number greater than 0"),
        ("DISCORD_SILENT", "general=perhaps", "general='perhaps': silent or not is true"),
        ("DISCORD_BUTTONS", '{"error": [["x", "http://a"]]}', "must start with https://"),
        ("DISCORD_FORUM", "error,9x", "'9x' is not a valid name"),
        ("DISCORD_FORUM_TAGS", "error=support", "tag ids are numbers"),
        ("DISCORD_FORUM_TAGS", "error=1;2;3;4;5;6", "at most 5 tags per post"),
    ],
)
def test_invalid_values_name_variable_problem_and_fix(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    """Each invalid value fails at start-up naming the variable, the problem and a fix, never
    in pydantic's words ("Input should be a valid integer, unable to parse string ...")."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    if variable != "DISCORD_WEBHOOK_9BAD":  # a bad name is named by its alert type
        assert f"{variable}: " in message
    assert expected in message
    assert "Fix:" in message
    assert TOKEN not in message
    assert "SECRETTOKEN" not in message
    for framework in ("Input should", "valid integer", "unable to parse", "pydantic"):
        assert framework not in message


def test_all_problems_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several bad variables are listed together, not one per restart."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK.replace("https", "http"))
    monkeypatch.setenv("DISCORD_RATE_LIMIT", "x")
    monkeypatch.setenv("DISCORD_QUEUE_SIZE", "x")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    for name in ("DISCORD_WEBHOOK_GENERAL", "DISCORD_RATE_LIMIT", "DISCORD_QUEUE_SIZE"):
        assert name in message
    assert TOKEN not in message


def test_no_webhook_refuses_to_start() -> None:
    """Without any webhook the configuration is refused with the variable to set."""
    with pytest.raises(ConfigurationError, match="DISCORD_WEBHOOK_GENERAL"):
        load_settings()


def test_unknown_keyword_is_named() -> None:
    """A misspelt keyword is refused, listing the real ones."""
    with pytest.raises(ConfigurationError, match="rate_limt"):
        load_settings(webhooks={"general": WEBHOOK}, rate_limt=3)


def test_secrets_never_in_repr_or_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    """repr(), str() and model_dump of settings never show a token."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    settings = load_settings()
    for text in (repr(settings), str(settings), str(settings.as_dict())):
        assert TOKEN not in text
    assert settings.webhooks["general"].get_secret_value() == WEBHOOK


def test_env_name_for_each_setting() -> None:
    """Each setting maps to its DISCORD_* variable."""
    assert env_name("rate_limit") == "DISCORD_RATE_LIMIT"
    assert env_name("webhooks") == "DISCORD_WEBHOOK_*"
    assert set(FIELD_NAMES) >= {"rate_limit", "store_path", "routes"}


def test_stray_webhooks_json_variable_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhooks come only from DISCORD_WEBHOOK_<TYPE> or the keyword, not DISCORD_WEBHOOKS."""
    monkeypatch.setenv("DISCORD_WEBHOOKS", '{"security": "' + ERRORS_WEBHOOK + '"}')
    settings = load_settings(webhooks={"general": WEBHOOK})
    assert list(settings.webhook_urls) == ["general"]


@pytest.mark.parametrize(
    "value", ["Checkout alerts", "x" * 80, "http avatar", "every one", "here we go"]
)
def test_usernames_discord_accepts_pass(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Names Discord accepts are not refused: the ban is on the exact words, 1 to 80 chars."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    assert load_settings(username=value).username == value


def test_http_avatar_url_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Discord fetches http:// avatars too."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    url = "http://cdn.example/a.png"
    assert load_settings(avatar_url=url).avatar_url == url


def test_unknown_keyword_suggests_the_close_setting() -> None:
    """A misspelt keyword gets a 'did you mean' with the setting's name."""
    with pytest.raises(ConfigurationError, match=r"did you mean rate_limit\?"):
        load_settings(webhooks={"general": WEBHOOK}, rate_limt=3)
