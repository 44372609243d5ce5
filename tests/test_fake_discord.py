"""Tests of discord_logging.testing.FakeDiscord, the local stand-in for Discord's webhooks."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from waiting import FAILSAFE

from discord_logging.render import message_limits as limits
from discord_logging.testing import FakeDiscord, ReceivedMessage, RequestRecord


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeDiscord]:
    with FakeDiscord(
        webhook_window=0.3, channel_window=0.5, global_window=0.2, clock=clock
    ) as server:
        yield server


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # One client for the module: building an httpx.Client (its SSL context) costs ~50 ms.
    with httpx.Client(timeout=5.0) as http:
        yield http


def webhook_id_of(url: str) -> str:
    return url.rsplit("/", 2)[-2]


# -- routes and answers -----------------------------------------------------------------------


def test_wait_true_returns_message_object(fake: FakeDiscord, client: httpx.Client) -> None:
    """wait=true answers 200 with the created message, whose id is recorded."""
    url = fake.add_webhook()
    response = client.post(url, params={"wait": "true"}, json={"content": "hello"})
    assert response.status_code == 200
    body = response.json()
    assert body["content"] == "hello"
    assert body["webhook_id"] == webhook_id_of(url)
    assert re.fullmatch(r"\d{18,19}", body["id"])
    assert [m.message_id for m in fake.messages] == [body["id"]]


def test_without_wait_answers_204_no_body(fake: FakeDiscord, client: httpx.Client) -> None:
    """Without wait=true the answer is 204 with an empty body, and the message is recorded."""
    url = fake.add_webhook()
    response = client.post(url, json={"content": "hello"})
    assert response.status_code == 204
    assert response.content == b""
    assert fake.messages[0].content == "hello"


def test_versionless_route_and_thread_id(fake: FakeDiscord, client: httpx.Client) -> None:
    """/api/webhooks/{id}/{token} (no version) works and thread_id is recorded."""
    url = fake.add_webhook().replace("/api/v10/", "/api/")
    response = client.post(url, params={"thread_id": "42", "wait": "1"}, json={"content": "x"})
    assert response.status_code == 200
    assert response.json()["channel_id"] == "42"
    assert fake.messages[0].thread_id == "42"


def test_message_ids_increase(fake: FakeDiscord, client: httpx.Client) -> None:
    """Message ids are increasing snowflake-like strings."""
    url = fake.add_webhook()
    for i in range(3):
        client.post(url, json={"content": str(i)})
    ids = [int(m.message_id) for m in fake.messages]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3


def test_add_webhook_defaults_look_like_discord(fake: FakeDiscord) -> None:
    """Auto ids are 18-19 digit snowflakes and tokens 68 URL-safe characters."""
    url = fake.add_webhook()
    match = re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v10/webhooks/(\d+)/([A-Za-z0-9_-]+)", url)
    assert match is not None
    assert 18 <= len(match[1]) <= 19
    assert len(match[2]) == 68
    assert fake.base_url == f"http://{fake.host}"
    assert fake.webhook_url(match[1]) == url


def test_explicit_webhook_id_and_token(fake: FakeDiscord, client: httpx.Client) -> None:
    """add_webhook accepts an explicit id, token and channel."""
    url = fake.add_webhook(123, "tok", channel="c1")
    assert url == f"{fake.base_url}/api/v10/webhooks/123/tok"
    assert client.post(url, json={"content": "x"}).status_code == 204
    assert len(fake.messages_for("123")) == 1


def test_discord_headers_present(fake: FakeDiscord, client: httpx.Client) -> None:
    """Answers carry Via and the X-RateLimit-* headers; Bucket is shared by all webhooks."""
    first = client.post(fake.add_webhook(), json={"content": "x"})
    second = client.post(fake.add_webhook(), json={"content": "x"})
    for response in (first, second):
        assert response.headers["via"] == "1.1 google"
        assert response.headers["x-ratelimit-limit"] == "5"
        assert response.headers["x-ratelimit-remaining"] == "4"
        assert response.headers["x-ratelimit-reset-after"] == "0.300"
        assert float(response.headers["x-ratelimit-reset"]) == pytest.approx(time.time(), abs=5)
    assert first.headers["x-ratelimit-bucket"] == second.headers["x-ratelimit-bucket"]


def test_unknown_webhook_404_wrong_token_401(fake: FakeDiscord, client: httpx.Client) -> None:
    """Unknown id answers 404/10015, a wrong token 401/50027, both with Via."""
    url = fake.add_webhook()
    unknown = client.post(f"{fake.base_url}/api/v10/webhooks/1/abc", json={"content": "x"})
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "Unknown Webhook", "code": 10015}
    wrong = client.post(url.rpartition("/")[0] + "/not-the-token", json={"content": "x"})
    assert wrong.status_code == 401
    assert wrong.json() == {"message": "Invalid Webhook Token", "code": 50027}
    assert wrong.headers["via"] == "1.1 google"
    assert fake.messages == []


def test_deleted_webhook_answers_404(fake: FakeDiscord, client: httpx.Client) -> None:
    """delete_webhook makes the webhook answer 404 Unknown Webhook."""
    url = fake.add_webhook()
    fake.delete_webhook(webhook_id_of(url))
    response = client.post(url, json={"content": "x"})
    assert response.status_code == 404
    assert response.json()["code"] == 10015


def test_other_paths_and_methods(fake: FakeDiscord, client: httpx.Client) -> None:
    """Other paths answer 404 JSON, other methods 405 JSON, GET the webhook object."""
    url = fake.add_webhook()
    assert client.get(f"{fake.base_url}/api/v10/users/@me").status_code == 404
    assert client.post(f"{fake.base_url}/nope").json()["message"] == "404: Not Found"
    assert client.put(url, json={}).status_code == 405
    got = client.get(url)
    assert got.status_code == 200
    assert got.json()["id"] == webhook_id_of(url)


# -- rate limits ------------------------------------------------------------------------------


def test_per_webhook_429(fake: FakeDiscord, client: httpx.Client, clock: FakeClock) -> None:
    """The 6th request in a window gets 429 with body, Retry-After and scope user."""
    url = fake.add_webhook()
    for _ in range(5):
        assert client.post(url, json={"content": "x"}).status_code == 204
    clock.advance(0.1)
    limited = client.post(url, json={"content": "x"})
    assert limited.status_code == 429
    body = limited.json()
    assert body["message"] == "You are being rate limited."
    assert body["global"] is False
    assert body["retry_after"] == pytest.approx(0.2)
    assert limited.headers["retry-after"] == "1"
    assert limited.headers["x-ratelimit-scope"] == "user"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["via"] == "1.1 google"
    clock.advance(0.2)
    assert client.post(url, json={"content": "x"}).status_code == 204
    assert len(fake.messages) == 6


def test_invalid_requests_use_up_the_bucket(
    fake: FakeDiscord, client: httpx.Client, clock: FakeClock
) -> None:
    """400/401/404 answers count toward the per-webhook bucket, like Discord's."""
    url = fake.add_webhook()
    for _ in range(5):
        assert client.post(url, json={"content": ""}).status_code == 400
    assert client.post(url, json={"content": "x"}).status_code == 429
    unknown = f"{fake.base_url}/api/v10/webhooks/1/abc"
    statuses = [client.post(unknown, json={"content": "x"}).status_code for _ in range(6)]
    assert statuses == [404] * 5 + [429]


def test_hidden_channel_limit(clock: FakeClock, client: httpx.Client) -> None:
    """Webhooks sharing a channel hit its hidden limit: 429 while Remaining > 0."""
    with FakeDiscord(channel_limit=3, channel_window=0.5, clock=clock) as fake:
        first = fake.add_webhook(channel="shared")
        second = fake.add_webhook(channel="shared")
        assert client.post(first, json={"content": "1"}).status_code == 204
        assert client.post(first, json={"content": "2"}).status_code == 204
        clock.advance(0.1)
        assert client.post(second, json={"content": "3"}).status_code == 204
        limited = client.post(second, json={"content": "4"})
        assert limited.status_code == 429
        assert int(limited.headers["x-ratelimit-remaining"]) > 0
        assert limited.headers["x-ratelimit-scope"] == "shared"
        assert limited.json()["retry_after"] == pytest.approx(0.4)
        clock.advance(0.4)
        assert client.post(second, json={"content": "5"}).status_code == 204


def test_separate_channels_do_not_share_the_hidden_limit(
    clock: FakeClock, client: httpx.Client
) -> None:
    """Each webhook gets its own channel by default."""
    with FakeDiscord(channel_limit=1, clock=clock) as fake:
        assert client.post(fake.add_webhook(), json={"content": "x"}).status_code == 204
        assert client.post(fake.add_webhook(), json={"content": "x"}).status_code == 204


def test_global_429(clock: FakeClock, client: httpx.Client) -> None:
    """Past global_limit requests per window across webhooks: 429 global with its headers."""
    with FakeDiscord(global_limit=3, global_window=0.2, clock=clock) as fake:
        urls = [fake.add_webhook() for _ in range(4)]
        for url in urls[:3]:
            assert client.post(url, json={"content": "x"}).status_code == 204
        limited = client.post(urls[3], json={"content": "x"})
        assert limited.status_code == 429
        assert limited.json()["global"] is True
        assert limited.headers["x-ratelimit-global"] == "true"
        assert limited.headers["x-ratelimit-scope"] == "global"
        assert limited.headers["via"] == "1.1 google"
        clock.advance(0.2)
        assert client.post(urls[3], json={"content": "x"}).status_code == 204


def test_cloudflare_ban_has_no_via(fake: FakeDiscord, client: httpx.Client) -> None:
    """set_ban answers 429 without Via, HTML body 1015 and Retry-After, until turned off."""
    url = fake.add_webhook()
    fake.set_ban(True)
    banned = client.post(url, json={"content": "x"})
    assert banned.status_code == 429
    assert "via" not in banned.headers
    assert banned.text == "error code: 1015"
    assert banned.headers["content-type"].startswith("text/html")
    assert int(banned.headers["retry-after"]) > 0
    assert fake.requests[-1].had_via is False
    fake.set_ban(False)
    assert client.post(url, json={"content": "x"}).status_code == 204


# -- validation -------------------------------------------------------------------------------


def _error(response: httpx.Response, *path: str) -> str:
    """The first error code at ``path`` in a 50035 answer."""
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 50035
    assert body["message"] == "Invalid Form Body"
    node: Any = body["errors"]
    for part in path:
        node = node[part]
    return str(node["_errors"][0]["code"])


@pytest.mark.parametrize(
    ("payload", "path", "code"),
    [
        ({"content": "x" * 2001}, ("content",), "BASE_TYPE_MAX_LENGTH"),
        ({"content": "\U0001f600" * 1001}, ("content",), "BASE_TYPE_MAX_LENGTH"),
        ({"embeds": [{"title": "x" * 257}]}, ("embeds", "0", "title"), "BASE_TYPE_MAX_LENGTH"),
        (
            {"embeds": [{"title": "ok"}, {"description": "x" * 4097}]},
            ("embeds", "1", "description"),
            "BASE_TYPE_MAX_LENGTH",
        ),
        ({"embeds": [{"title": "x"}] * 11}, ("embeds",), "BASE_TYPE_MAX_LENGTH"),
        (
            {"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]},
            ("embeds", "0", "fields"),
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            {"embeds": [{"fields": [{"name": "", "value": "v"}]}]},
            ("embeds", "0", "fields", "0", "name"),
            "BASE_TYPE_REQUIRED",
        ),
        (
            {"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]},
            ("embeds", "0", "fields", "0", "value"),
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            {"embeds": [{"footer": {"text": "x" * 2049}}]},
            ("embeds", "0", "footer", "text"),
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            {"embeds": [{"author": {"name": "x" * 257}}]},
            ("embeds", "0", "author", "name"),
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            {"embeds": [{"description": "x" * 4000}, {"description": "y" * 2001}]},
            ("embeds",),
            "MAX_EMBED_SIZE_EXCEEDED",
        ),
        ({"embeds": [{"color": 0x1000000}]}, ("embeds", "0", "color"), "NUMBER_TYPE_MAX"),
        ({"embeds": [{"color": -1}]}, ("embeds", "0", "color"), "NUMBER_TYPE_MIN"),
        ({"embeds": [{"timestamp": "yesterday"}]}, ("embeds", "0", "timestamp"), None),
        ({"content": "x", "username": ""}, ("username",), "BASE_TYPE_BAD_LENGTH"),
        ({"content": "x", "username": "u" * 81}, ("username",), "BASE_TYPE_BAD_LENGTH"),
        ({"content": "x", "username": "My Discord Bot"}, ("username",), None),
        ({"content": "x", "username": "CLYDE"}, ("username",), None),
        (
            {"content": "x", "allowed_mentions": {"parse": ["channels"]}},
            ("allowed_mentions", "parse", "0"),
            "BASE_TYPE_CHOICES",
        ),
        (
            {"content": "x", "allowed_mentions": {"parse": ["roles"], "roles": ["1"]}},
            ("allowed_mentions",),
            "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
        ),
        (
            {"content": "x", "allowed_mentions": {"parse": ["users"], "users": ["1"]}},
            ("allowed_mentions",),
            "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
        ),
    ],
)
def test_invalid_form_body(
    fake: FakeDiscord,
    client: httpx.Client,
    payload: dict[str, Any],
    path: tuple[str, ...],
    code: str | None,
) -> None:
    """Each Discord limit broken answers 400/50035 with the error at the payload's path."""
    response = client.post(fake.add_webhook(), json=payload)
    found = _error(response, *path)
    if code is not None:
        assert found == code
    assert fake.messages == []
    assert fake.requests[-1].code == 50035


def test_payload_at_every_limit_is_accepted(fake: FakeDiscord, client: httpx.Client) -> None:
    """A payload exactly at the limits (6000 embed total, 80-char name...) is accepted."""
    embeds: list[dict[str, object]] = [
        {
            "title": "t" * 256,
            "description": "d" * 2744,
            "color": limits.COLOR_MAX,
            "timestamp": "2024-05-01T12:00:00.000Z",
            "footer": {"text": "f" * 1000},
            "author": {"name": "a" * 256},
            "fields": [{"name": "n" * 10, "value": "v" * 10, "inline": True}] * 25,
        },
        {"description": "x" * 1244},
    ]
    assert sum(limits.embed_length(e) for e in embeds) == limits.MESSAGE_EMBED_TOTAL
    payload = {
        "content": "c" * 2000,
        "username": "u" * 80,
        "embeds": embeds,
        "allowed_mentions": {"parse": [], "roles": ["1"], "users": ["2"]},
    }
    response = client.post(fake.add_webhook(), params={"wait": "true"}, json=payload)
    assert response.status_code == 200, response.text
    assert response.json()["embeds"][0]["type"] == "rich"
    assert fake.messages[0].embeds == embeds


@pytest.mark.parametrize(
    "payload",
    [{}, {"content": ""}, {"content": "   "}, {"embeds": []}, {"username": "bot"}],
)
def test_empty_message_50006(
    fake: FakeDiscord, client: httpx.Client, payload: dict[str, Any]
) -> None:
    """No content, embeds or files answers 400 code 50006."""
    response = client.post(fake.add_webhook(), json=payload)
    assert response.status_code == 400
    assert response.json() == {"message": "Cannot send an empty message", "code": 50006}


def test_invalid_json_50109(fake: FakeDiscord, client: httpx.Client) -> None:
    """A body that is not JSON answers 400 code 50109."""
    response = client.post(
        fake.add_webhook(), content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == 50109


def test_body_over_25_mib_413(fake: FakeDiscord, client: httpx.Client) -> None:
    """A request body over 25 MiB answers 413 code 40005."""
    content = json.dumps({"content": "x", "pad": "p" * (25 * 1024 * 1024)}).encode()
    response = client.post(
        fake.add_webhook(), content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == 40005


@pytest.mark.parametrize(
    ("payload", "path", "code"),
    [
        (["not", "an", "object"], (), "DICT_TYPE_CONVERT"),
        ({"content": 5}, ("content",), "STRING_TYPE_CONVERT"),
        ({"content": "x", "username": 5}, ("username",), "STRING_TYPE_CONVERT"),
        ({"embeds": {"title": "x"}}, ("embeds",), "LIST_TYPE_CONVERT"),
        ({"embeds": ["x"]}, ("embeds", "0"), "DICT_TYPE_CONVERT"),
        ({"embeds": [{"color": "red"}]}, ("embeds", "0", "color"), "NUMBER_TYPE_COERCE"),
        ({"embeds": [{"color": True}]}, ("embeds", "0", "color"), "NUMBER_TYPE_COERCE"),
        ({"embeds": [{"timestamp": 5}]}, ("embeds", "0", "timestamp"), "DATE_TIME_TYPE_PARSE"),
        ({"embeds": [{"footer": "f"}]}, ("embeds", "0", "footer"), "DICT_TYPE_CONVERT"),
        ({"embeds": [{"footer": {}}]}, ("embeds", "0", "footer", "text"), "BASE_TYPE_REQUIRED"),
        ({"embeds": [{"author": "a"}]}, ("embeds", "0", "author"), "DICT_TYPE_CONVERT"),
        ({"embeds": [{"fields": {}}]}, ("embeds", "0", "fields"), "LIST_TYPE_CONVERT"),
        ({"embeds": [{"fields": ["f"]}]}, ("embeds", "0", "fields", "0"), "DICT_TYPE_CONVERT"),
        (
            {"content": "x", "allowed_mentions": []},
            ("allowed_mentions",),
            "DICT_TYPE_CONVERT",
        ),
        (
            {"content": "x", "allowed_mentions": {"parse": "users"}},
            ("allowed_mentions", "parse"),
            "LIST_TYPE_CONVERT",
        ),
        (
            {"content": "x", "allowed_mentions": {"roles": "1"}},
            ("allowed_mentions", "roles"),
            "LIST_TYPE_CONVERT",
        ),
    ],
)
def test_wrong_types_invalid_form_body(
    fake: FakeDiscord, client: httpx.Client, payload: Any, path: tuple[str, ...], code: str
) -> None:
    """Values of the wrong JSON type answer 400/50035 at their path."""
    assert _error(client.post(fake.add_webhook(), json=payload), *path) == code


def test_unsupported_content_type_is_empty(fake: FakeDiscord, client: httpx.Client) -> None:
    """A body Discord cannot decode (text/plain) makes an empty message: 50006."""
    response = client.post(
        fake.add_webhook(), content=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert response.json()["code"] == 50006


def test_chunked_request_body(fake: FakeDiscord, client: httpx.Client) -> None:
    """A chunked (Transfer-Encoding) JSON body is read like a sized one."""

    def chunks() -> Iterator[bytes]:
        yield b'{"content": '
        yield b'"chunked", "username": "bot"}'

    response = client.post(
        fake.add_webhook(), content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 204
    assert fake.messages[0].content == "chunked"
    assert fake.messages[0].username == "bot"


def test_malformed_framing_does_not_crash(fake: FakeDiscord) -> None:
    """A bad Content-Length or chunk size reads as an empty body: 400, not a crash."""
    path = fake.add_webhook().split(fake.host, 1)[1]
    for framing in (b"Content-Length: abc\r\n", b"Transfer-Encoding: chunked\r\n"):
        body = b"zz\r\n" if b"chunked" in framing else b""
        request = (
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n" + framing + b"\r\n" + body
        )
        with socket.create_connection(("127.0.0.1", int(fake.host.split(":")[1]))) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400"), answer
        # An empty body is not valid JSON.
        assert b"50109" in answer


# -- multipart --------------------------------------------------------------------------------


def test_multipart_with_file(fake: FakeDiscord, client: httpx.Client) -> None:
    """payload_json + files[0] is accepted; the file's name and exact bytes are recorded."""
    data = bytes(range(256)) * 10 + b"\r\n--boundary\r\n"
    response = client.post(
        fake.add_webhook(),
        params={"wait": "true"},
        data={"payload_json": json.dumps({"content": "see file"})},
        files={"files[0]": ("trace.txt", data, "text/plain")},
    )
    assert response.status_code == 200
    assert response.json()["attachments"][0]["filename"] == "trace.txt"
    message = fake.messages[0]
    assert message.content == "see file"
    assert message.files == {"files[0]": ("trace.txt", data)}


def test_multipart_file_only_is_not_empty(fake: FakeDiscord, client: httpx.Client) -> None:
    """A file alone (no payload_json) makes a valid message."""
    response = client.post(fake.add_webhook(), files={"files[0]": ("a.log", b"x")})
    assert response.status_code == 204


def test_multipart_limits(fake: FakeDiscord, client: httpx.Client) -> None:
    """More than 10 files answers 400/50035; a file over 10 MiB answers 413/40005."""
    url = fake.add_webhook()
    many = {f"files[{i}]": (f"{i}.txt", b"x") for i in range(11)}
    assert _error(client.post(url, files=many), "files") == "BASE_TYPE_MAX_LENGTH"
    big = {"files[0]": ("big.bin", b"\0" * (limits.FILE_BYTES + 1))}
    response = client.post(url, files=big)
    assert response.status_code == 413
    assert response.json()["code"] == 40005


def test_multipart_bad_payload_json(fake: FakeDiscord, client: httpx.Client) -> None:
    """An invalid payload_json part answers 400 code 50109."""
    response = client.post(
        fake.add_webhook(), data={"payload_json": "{"}, files={"files[0]": ("a", b"x")}
    )
    assert response.status_code == 400
    assert response.json()["code"] == 50109


# -- faults -----------------------------------------------------------------------------------


def test_fail_next(fake: FakeDiscord, client: httpx.Client) -> None:
    """fail_next answers the next n requests with the status, JSON body and Via, then recovers."""
    url = fake.add_webhook()
    fake.fail_next(2, 502)
    first = client.post(url, json={"content": "x"})
    assert first.status_code == 502
    assert first.headers["via"] == "1.1 google"
    assert first.json() == {"message": "502: Bad Gateway", "code": 0}
    assert client.post(url, json={"content": "x"}).status_code == 502
    assert client.post(url, json={"content": "x"}).status_code == 204
    assert fake.count_status(502) == 2
    assert fake.count_status(204, webhook_id_of(url)) == 1


def test_fail_next_for_one_webhook(fake: FakeDiscord, client: httpx.Client) -> None:
    """fail_next with webhook_id only affects that webhook, and uses up no rate limit."""
    target, other = fake.add_webhook(), fake.add_webhook()
    fake.fail_next(5, webhook_id=webhook_id_of(target))
    assert client.post(other, json={"content": "x"}).status_code == 204
    for _ in range(5):
        response = client.post(target, json={"content": "x"})
        assert response.status_code == 503
        assert response.headers["x-ratelimit-remaining"] == "5"
    assert client.post(target, json={"content": "x"}).status_code == 204


def test_forced_429s(fake: FakeDiscord, client: httpx.Client) -> None:
    """force_429 gives a user-scope 429, force_global_429 a global one, with retry_after."""
    url = fake.add_webhook()
    fake.force_429(1, retry_after=0.25)
    limited = client.post(url, json={"content": "x"})
    assert limited.status_code == 429
    assert limited.json() == {
        "message": "You are being rate limited.",
        "retry_after": 0.25,
        "global": False,
    }
    assert limited.headers["x-ratelimit-scope"] == "user"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    fake.force_global_429(1, retry_after=1.5)
    limited = client.post(url, json={"content": "x"})
    assert limited.json()["global"] is True
    assert limited.headers["x-ratelimit-global"] == "true"
    assert limited.headers["retry-after"] == "2"
    assert client.post(url, json={"content": "x"}).status_code == 204
    assert [r.scope for r in fake.requests] == ["user", "global", None]


def test_status_override(fake: FakeDiscord, client: httpx.Client, clock: FakeClock) -> None:
    """set_status_override answers every request of the webhook with the status until cleared."""
    url = fake.add_webhook()
    wid = webhook_id_of(url)
    fake.set_status_override(wid, 403)
    assert client.post(url, json={"content": "x"}).status_code == 403
    assert client.post(url, json={"content": "x"}).json()["code"] == 50013
    fake.set_status_override(wid, 429)
    assert client.post(url, json={"content": "x"}).json()["retry_after"] == 1.0
    fake.set_status_override(wid, 599)
    assert client.post(url, json={"content": "x"}).json() == {"message": "599: Error", "code": 0}
    clock.advance(1)
    fake.set_status_override(wid, 204)
    assert client.post(url, json={"content": "x"}).status_code == 204
    assert fake.messages == []
    fake.set_status_override(wid, None)
    assert client.post(url, json={"content": "x"}).status_code == 204
    assert len(fake.messages) == 1


def test_latency_delays_answers(fake: FakeDiscord, client: httpx.Client) -> None:
    """set_latency delays every answer by the given real seconds."""
    url = fake.add_webhook()
    fake.set_latency(0.2)
    started = time.monotonic()
    assert client.post(url, json={"content": "x"}).status_code == 204
    assert time.monotonic() - started >= 0.2
    fake.set_latency(0)


def _post_in_thread(url: str, results: list[object]) -> threading.Thread:
    def run() -> None:
        with httpx.Client(timeout=10.0) as http:
            try:
                results.append(http.post(url, json={"content": "x"}).status_code)
            except httpx.HTTPError as exc:
                results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_pending(fake: FakeDiscord, count: int) -> None:
    deadline = time.monotonic() + FAILSAFE
    while fake.pending < count:
        assert time.monotonic() < deadline, "request never reached the fake"
        time.sleep(0.01)


def _post_held(fake: FakeDiscord, url: str) -> tuple[threading.Thread, list[object]]:
    """POST in a thread and wait until the fake holds the request, still unanswered."""
    results: list[object] = []
    thread = _post_in_thread(url, results)
    _wait_pending(fake, 1)
    assert results == []
    return thread, results


def test_hang_answers_when_turned_off(fake: FakeDiscord) -> None:
    """A hung request is answered normally once set_hang(False)."""
    url = fake.add_webhook()
    fake.set_hang(True)
    thread, results = _post_held(fake, url)
    fake.set_hang(False)
    thread.join(FAILSAFE)
    assert results == [204]


@pytest.mark.parametrize("silence", ["no_answer", "stall_body"])
def test_a_silent_request_is_never_answered_nor_acted_on(
    fake: FakeDiscord, client: httpx.Client, silence: Any
) -> None:
    """set_silent: the request is read and held unanswered (``stall_body``: a 200's headers
    come, its body never); when the silence ends its connection is dropped, nothing was
    posted or recorded, and the next request is answered."""
    url = fake.add_webhook()
    fake.set_silent(silence)
    thread, results = _post_held(fake, url)
    fake.set_silent(None)
    thread.join(FAILSAFE)
    (result,) = results
    assert isinstance(result, httpx.HTTPError)
    assert fake.messages == []
    assert fake.requests == []
    assert fake.pending == 0
    assert client.post(url, json={"content": "x"}).status_code == 204


def test_reset_ends_a_silence(fake: FakeDiscord, client: httpx.Client) -> None:
    """reset() ends set_silent as it ends every other fault."""
    url = fake.add_webhook()
    fake.set_silent("no_answer")
    fake.reset()
    assert client.post(url, json={"content": "x"}).status_code == 204


def test_set_silent_names_the_modes_it_knows(fake: FakeDiscord) -> None:
    """An unknown silence is refused, naming the ones there are."""
    with pytest.raises(ValueError, match=r"no_answer.*stall_body.*'hush'"):
        fake.set_silent("hush")  # type: ignore[arg-type]


def test_stop_releases_hung_requests() -> None:
    """stop() returns quickly with a hang active; the hung client sees a dropped connection."""
    fake = FakeDiscord().start()
    url = fake.add_webhook()
    fake.set_hang(True)
    results: list[object] = []
    threads = [_post_in_thread(url, results) for _ in range(3)]
    _wait_pending(fake, 3)
    started = time.monotonic()
    fake.stop()
    # Well below the 10 s the hung clients would wait if stop() waited for them.
    assert time.monotonic() - started < 5.0
    for thread in threads:
        thread.join(FAILSAFE)
    assert len(results) == 3
    assert all(isinstance(r, httpx.HTTPError) for r in results)
    assert fake.requests == []


def test_stop_with_idle_keepalive_connection() -> None:
    """stop() is fast even while a client keeps an idle keep-alive connection open."""
    with httpx.Client() as http:
        fake = FakeDiscord().start()
        assert http.post(fake.add_webhook(), json={"content": "x"}).status_code == 204
        started = time.monotonic()
        fake.stop()
        fake.stop()  # idempotent
        # An idle keep-alive connection stays open until the client closes: a stop that
        # waited for it would not return at all.
        assert time.monotonic() - started < 5.0
    with pytest.raises(RuntimeError):
        fake.start()


def test_reset_keeps_webhooks(fake: FakeDiscord, client: httpx.Client) -> None:
    """reset() clears records, faults and windows but keeps the webhooks."""
    url = fake.add_webhook()
    for _ in range(6):
        client.post(url, json={"content": "x"})
    fake.fail_next(3)
    fake.set_ban(True)
    fake.reset()
    assert fake.messages == []
    assert fake.requests == []
    response = client.post(url, json={"content": "x"})
    assert response.status_code == 204
    assert response.headers["x-ratelimit-remaining"] == "4"


def test_records(fake: FakeDiscord, client: httpx.Client, clock: FakeClock) -> None:
    """requests records every answer; messages_for filters by webhook; copies are returned."""
    first, second = fake.add_webhook(), fake.add_webhook()
    client.post(first, json={"content": "a"})
    clock.advance(0.01)
    client.post(second, json={"embeds": [{"title": "b"}]})
    client.post(second, json={})
    records = fake.requests
    assert [(r.webhook_id, r.status) for r in records] == [
        (webhook_id_of(first), 204),
        (webhook_id_of(second), 204),
        (webhook_id_of(second), 400),
    ]
    assert isinstance(records[0], RequestRecord)
    assert records[0].had_via is True
    assert records[1].time == clock.now
    messages = fake.messages_for(webhook_id_of(second))
    assert isinstance(messages[0], ReceivedMessage)
    assert messages[0].embeds == [{"title": "b"}]
    assert messages[0].content is None
    assert messages[0].received_at == clock.now
    fake.messages.clear()
    assert len(fake.messages) == 2


def test_no_stderr_output(fake: FakeDiscord, client: httpx.Client, capfd: Any) -> None:
    """The server prints no per-request lines."""
    url = fake.add_webhook()
    client.post(url, json={"content": "x"})
    client.post(f"{fake.base_url}/nope")
    assert capfd.readouterr().err == ""


def test_not_started_has_no_url() -> None:
    """base_url (and so add_webhook) needs a started server; limits must be positive."""
    with pytest.raises(RuntimeError):
        _ = FakeDiscord().base_url
    with pytest.raises(ValueError, match="webhook_limit"):
        FakeDiscord(webhook_limit=0)


def test_pytest_fixture(fake_discord: FakeDiscord) -> None:
    """The fake_discord fixture (pytest11 entry point) yields a started fake with defaults."""
    assert fake_discord.webhook_limit == 5
    assert fake_discord.channel_limit == 30
    with httpx.Client() as http:
        response = http.post(fake_discord.add_webhook(), json={"content": "x"})
    assert response.status_code == 204
    assert response.headers["x-ratelimit-reset-after"] == "2.000"


# -- several webhooks in one channel ----------------------------------------------------------


def test_get_webhook_says_which_channel_and_guild(fake: FakeDiscord, client: httpx.Client) -> None:
    """GET on a webhook URL returns its id, channel_id and guild_id (one guild per fake)."""
    first = fake.add_webhook(channel_id=555)
    second = fake.add_webhook(channel_id="555", guild_id=777)
    third = fake.add_webhook()
    bodies = [client.get(url).json() for url in (first, second, third)]
    assert [b["id"] for b in bodies] == [webhook_id_of(u) for u in (first, second, third)]
    assert [b["channel_id"] for b in bodies[:2]] == ["555", "555"]
    assert bodies[2]["channel_id"] not in ("555", None)
    assert bodies[1]["guild_id"] == "777"
    assert bodies[0]["guild_id"] == bodies[2]["guild_id"] is not None
    assert fake.channel_of(webhook_id_of(first)) == "555"


def test_hidden_limit_is_a_sliding_window(clock: FakeClock, client: httpx.Client) -> None:
    """At most channel_limit messages in ANY span of channel_window, not per fixed window."""
    with FakeDiscord(channel_limit=2, channel_window=1.0, clock=clock) as fake:
        url = fake.add_webhook()
        assert client.post(url, json={"content": "1"}).status_code == 204
        clock.advance(0.6)
        assert client.post(url, json={"content": "2"}).status_code == 204
        clock.advance(0.5)  # 1.1 s: the first left, the second is still in the window
        assert client.post(url, json={"content": "3"}).status_code == 204
        limited = client.post(url, json={"content": "4"})
        assert limited.status_code == 429
        assert limited.json()["retry_after"] == pytest.approx(0.5)
        assert fake.peak_per_channel() == {fake.channel_of(webhook_id_of(url)): 2}


def test_a_thread_is_a_channel_of_its_own(clock: FakeClock, client: httpx.Client) -> None:
    """Posting into a thread counts in the thread's window, not the parent channel's."""
    with FakeDiscord(channel_limit=1, clock=clock) as fake:
        url = fake.add_webhook(channel_id="10")
        assert client.post(url, json={"content": "parent"}).status_code == 204
        assert (
            client.post(url, params={"thread_id": "11"}, json={"content": "t"}).status_code == 204
        )
        assert client.post(url, json={"content": "again"}).status_code == 429
        assert [m.content for m in fake.messages_in("10")] == ["parent"]
        assert [m.content for m in fake.messages_in("11")] == ["t"]


def test_concurrent_requests_never_exceed_the_channel_limit(clock: FakeClock) -> None:
    """20 requests arriving at once over two webhooks in one channel of 5: exactly 5 accepted,
    15 answered 429 with scope shared (check and count are one step under the lock)."""
    with FakeDiscord(channel_limit=5, webhook_limit=100, clock=clock) as fake:
        urls = [fake.add_webhook(channel_id="9"), fake.add_webhook(channel_id="9")]
        start = threading.Barrier(20)
        statuses: list[int] = []

        def post(n: int) -> None:
            with httpx.Client(timeout=5.0) as http:
                start.wait()
                statuses.append(http.post(urls[n % 2], json={"content": str(n)}).status_code)

        threads = [threading.Thread(target=post, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [204] * 5 + [429] * 15
        assert fake.rate_limited_by_scope() == {"shared": 15}
        assert fake.peak_per_channel() == {"9": 5}
        assert {m.channel_id for m in fake.messages} == {"9"}


def test_rate_limited_by_scope_tells_the_limits_apart(
    clock: FakeClock, client: httpx.Client
) -> None:
    """429s counted by scope: the webhook's bucket, the channel, global, Cloudflare's ban."""
    with FakeDiscord(webhook_limit=1, channel_limit=1, global_limit=3, clock=clock) as fake:
        a = fake.add_webhook(channel_id="1")
        b = fake.add_webhook(channel_id="1")
        assert client.post(a, json={"content": "x"}).status_code == 204
        assert client.post(a, json={"content": "x"}).status_code == 429  # bucket
        assert client.post(b, json={"content": "x"}).status_code == 429  # channel
        assert client.post(b, json={"content": "x"}).status_code == 429  # global (4th in 1 s)
        fake.set_ban(True)
        assert client.post(b, json={"content": "x"}).status_code == 429
        assert fake.rate_limited_by_scope() == {
            "user": 1,
            "shared": 1,
            "global": 1,
            "cloudflare": 1,
        }


def test_webhook_url_through_a_host_name(fake: FakeDiscord, client: httpx.Client) -> None:
    """``add_webhook(host="localhost")`` hands out a URL that needs a name lookup; it is
    served, and ``named_host`` is what the allow-list takes for it."""
    from discord_logging.transport.webhook_url import parse_webhook_url

    url = fake.add_webhook(host="localhost")
    port = fake.host.rsplit(":", 1)[1]
    assert url.startswith(f"http://localhost:{port}/api/v10/webhooks/")
    assert fake.named_host == f"localhost:{port}"
    assert parse_webhook_url(url, fake.named_host).netloc == fake.named_host
    wid = url.split("/")[-2]
    assert fake.webhook_url(wid, host="localhost") == url
    answer = client.post(url + "?wait=true", json={"content": "by name"})
    assert answer.status_code == 200
    assert fake.messages_for(wid)[0].payload["content"] == "by name"
    with pytest.raises(ValueError, match="host must be"):
        fake.add_webhook(host="example.com")


def test_named_host_listens_only_on_loopback(fake: FakeDiscord) -> None:
    """Every address ``localhost`` resolves to is served, and nothing beyond loopback. Reads
    FakeDiscord's _server and _server_v6: the listeners' bound addresses have no public view,
    and probing from a non-loopback address needs a network this test cannot count on."""
    port = int(fake.host.rsplit(":", 1)[1])
    for family, _, _, _, address in socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(address[:2] if family == socket.AF_INET else address)
    servers = [s for s in (fake._server, fake._server_v6) if s is not None]
    assert {s.server_address[0] for s in servers} <= {"127.0.0.1", "::1"}
