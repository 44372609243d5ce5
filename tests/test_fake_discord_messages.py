"""FakeDiscord after the post: a webhook's messages read, edited and deleted (their own bucket,
10008), forum channels (220001, 220003, 10003, tags), flags and link-button components."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from discord_logging.testing import FakeDiscord


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeDiscord]:
    with FakeDiscord(webhook_limit=5, webhook_window=2.0, clock=clock) as server:
        yield server


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as http:
        yield http


EMBED = {"title": "boom", "description": "first"}
LINK_ROW = {
    "type": 1,
    "components": [
        {"type": 2, "style": 5, "label": "Runbook", "url": "https://runbooks.example.com/db"}
    ],
}


def post(client: httpx.Client, url: str, body: dict[str, Any], **params: str) -> httpx.Response:
    return client.post(url, params={"wait": "true", **params}, json=body)


def message_url(url: str, message_id: str) -> str:
    return f"{url}/messages/{message_id}"


# -- reading, editing, deleting ------------------------------------------------------------------


def test_edit_replaces_only_what_it_sends_and_get_reads_it(
    fake: FakeDiscord, client: httpx.Client
) -> None:
    """PATCH changes the embeds and keeps the content; GET returns the message as edited,
    with edited_timestamp set; the edit is recorded."""
    url = fake.add_webhook()
    created = post(client, url, {"content": "hi", "embeds": [EMBED]}).json()
    edited = client.patch(
        message_url(url, created["id"]), json={"embeds": [{**EMBED, "description": "second"}]}
    )
    assert edited.status_code == 200
    read = client.get(message_url(url, created["id"])).json()
    assert read["content"] == "hi"
    assert read["embeds"][0]["description"] == "second"
    assert read["edited_timestamp"] is not None
    assert created["edited_timestamp"] is None
    shown = fake.message(created["id"])
    assert shown is not None
    assert shown.edits == 1
    assert [e.message_id for e in fake.edits] == [created["id"]]
    assert fake.messages[0].embeds[0]["description"] == "first"  # what was posted stays


def test_unknown_or_deleted_message_is_10008(
    fake: FakeDiscord, client: httpx.Client, clock: FakeClock
) -> None:
    """An id the webhook never posted, or one deleted (by DELETE or a moderator), is 404 code
    10008 Unknown Message for GET, PATCH and DELETE."""
    url = fake.add_webhook()
    first = post(client, url, {"embeds": [EMBED]}).json()["id"]
    second = post(client, url, {"embeds": [EMBED]}).json()["id"]
    assert client.delete(message_url(url, first)).status_code == 204
    fake.delete_message(second)
    for message_id in (first, second, "123"):
        clock.now += 2.0  # a fresh window of the message routes' bucket
        for method in ("GET", "PATCH", "DELETE"):
            body = {"embeds": [EMBED]} if method == "PATCH" else None
            answer = client.request(method, message_url(url, message_id), json=body)
            assert answer.status_code == 404
            assert answer.json()["code"] == 10008
    assert fake.message(first) is None


def test_another_webhooks_message_is_unknown(fake: FakeDiscord, client: httpx.Client) -> None:
    """A webhook cannot read or edit another webhook's message: 10008."""
    mine, theirs = fake.add_webhook(), fake.add_webhook()
    created = post(client, theirs, {"embeds": [EMBED]}).json()["id"]
    assert client.get(message_url(mine, created)).json()["code"] == 10008


def test_message_routes_have_their_own_bucket(
    fake: FakeDiscord, client: httpx.Client, clock: FakeClock
) -> None:
    """Edits use a bucket of their own, announced in the headers: five edits leave posting's
    bucket whole, and the sixth edit in the window is a 429 while a post still goes."""
    url = fake.add_webhook()
    created = post(client, url, {"embeds": [EMBED]}).json()["id"]
    remaining = []
    for _ in range(5):
        answer = client.patch(message_url(url, created), json={"embeds": [EMBED]})
        assert answer.status_code == 200
        remaining.append(int(answer.headers["X-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    limited = client.patch(message_url(url, created), json={"embeds": [EMBED]})
    assert limited.status_code == 429
    assert limited.headers["X-RateLimit-Scope"] == "user"
    posted = post(client, url, {"embeds": [EMBED]})
    assert posted.status_code == 200
    assert posted.headers["X-RateLimit-Remaining"] == "3"
    clock.now += 2.0
    assert client.patch(message_url(url, created), json={"embeds": [EMBED]}).status_code == 200


def test_message_in_a_thread_needs_its_thread_id(fake: FakeDiscord, client: httpx.Client) -> None:
    """A message posted into a thread is reached with ?thread_id= only."""
    url = fake.add_webhook()
    created = post(client, url, {"embeds": [EMBED]}, thread_id="777").json()
    assert created["channel_id"] == "777"
    assert client.get(message_url(url, created["id"])).json()["code"] == 10008
    read = client.get(message_url(url, created["id"]), params={"thread_id": "777"})
    assert read.status_code == 200


def test_edit_keeps_listed_files_and_adds_new_ones(fake: FakeDiscord, client: httpx.Client) -> None:
    """Multipart PATCH: ``attachments`` lists the files kept (by id) and the new ones (by
    their files[N] index); files not listed are removed; an unknown id is refused."""
    url = fake.add_webhook()
    created = client.post(
        url,
        params={"wait": "true"},
        data={"payload_json": json.dumps({"embeds": [EMBED]})},
        files={"files[0]": ("a.txt", b"A"), "files[1]": ("b.txt", b"B")},
    ).json()
    keep = created["attachments"][0]["id"]
    payload = {"attachments": [{"id": keep}, {"id": "0", "filename": "c.txt"}]}
    answer = client.patch(
        message_url(url, created["id"]),
        data={"payload_json": json.dumps(payload)},
        files={"files[0]": ("c.txt", b"C")},
    )
    assert answer.status_code == 200
    assert [a["filename"] for a in answer.json()["attachments"]] == ["a.txt", "c.txt"]
    shown = fake.message(created["id"])
    assert shown is not None
    assert shown.files == {"a.txt": b"A", "c.txt": b"C"}
    refused = client.patch(message_url(url, created["id"]), json={"attachments": [{"id": "9"}]})
    assert refused.status_code == 400
    assert "attachments" in refused.json()["errors"]


def test_edit_that_empties_the_message_is_refused(fake: FakeDiscord, client: httpx.Client) -> None:
    """An edit leaving no content, embed or file is 400 code 50006, and changes nothing."""
    url = fake.add_webhook()
    created = post(client, url, {"embeds": [EMBED]}).json()["id"]
    answer = client.patch(message_url(url, created), json={"embeds": []})
    assert answer.json()["code"] == 50006
    shown = fake.message(created)
    assert shown is not None
    assert shown.embeds
    assert shown.edits == 0


def test_invalid_edit_body_is_50035(fake: FakeDiscord, client: httpx.Client) -> None:
    """An edit is validated like a post: a title over 256 characters is Invalid Form Body."""
    url = fake.add_webhook()
    created = post(client, url, {"embeds": [EMBED]}).json()["id"]
    answer = client.patch(message_url(url, created), json={"embeds": [{"title": "x" * 300}]})
    assert answer.status_code == 400
    assert answer.json()["code"] == 50035


def test_injected_faults_on_message_routes(fake: FakeDiscord, client: httpx.Client) -> None:
    """fail_next/force_429 with route="messages" hit edits and leave posts alone."""
    url = fake.add_webhook()
    created = post(client, url, {"embeds": [EMBED]}).json()["id"]
    fake.fail_next(1, 503, route="messages")
    fake.force_429(1, retry_after=0.5, route="messages")
    assert post(client, url, {"embeds": [EMBED]}).status_code == 200
    assert client.patch(message_url(url, created), json={"embeds": [EMBED]}).status_code == 503
    limited = client.patch(message_url(url, created), json={"embeds": [EMBED]})
    assert limited.status_code == 429
    assert limited.json()["retry_after"] == 0.5
    assert client.patch(message_url(url, created), json={"embeds": [EMBED]}).status_code == 200


def test_message_routes_refuse_other_methods_and_banned_ip(
    fake: FakeDiscord, client: httpx.Client
) -> None:
    """POST on a message is 405; a Cloudflare ban answers the message routes too."""
    url = fake.add_webhook()
    created = post(client, url, {"embeds": [EMBED]}).json()["id"]
    assert client.post(message_url(url, created), json={}).status_code == 405
    fake.set_ban(True)
    banned = client.get(message_url(url, created))
    assert banned.status_code == 429
    assert "via" not in banned.headers
    fake.set_ban(False)
    fake.reset()
    assert fake.message(created) is None
    assert not fake.edits


def test_message_routes_check_the_webhook(fake: FakeDiscord, client: httpx.Client) -> None:
    """A deleted webhook is 10015, a wrong token 401, on the message routes as on posts."""
    url = fake.add_webhook()
    created = post(client, url, {"embeds": [EMBED]}).json()["id"]
    wrong = url.rsplit("/", 1)[0] + "/not-the-token"
    assert client.get(message_url(wrong, created)).status_code == 401
    fake.delete_webhook(url.rsplit("/", 2)[-2])
    assert client.get(message_url(url, created)).json()["code"] == 10015


# -- forum channels ------------------------------------------------------------------------------


def test_forum_needs_a_thread_name_or_id(fake: FakeDiscord, client: httpx.Client) -> None:
    """A forum's webhook posting plainly gets 400 code 220001; with thread_name it opens a post
    whose id is its starter message's, in the answer's channel_id; thread_id posts into it."""
    url = fake.add_webhook(forum=True)
    refused = post(client, url, {"embeds": [EMBED]})
    assert refused.status_code == 400
    assert refused.json()["code"] == 220001
    opened = post(client, url, {"embeds": [EMBED], "thread_name": "db down"}).json()
    assert opened["channel_id"] == opened["id"]
    (thread,) = fake.threads
    assert (thread.thread_id, thread.name) == (opened["id"], "db down")
    reply = post(client, url, {"embeds": [EMBED]}, thread_id=opened["id"]).json()
    assert reply["channel_id"] == opened["id"]
    assert fake.messages[-1].thread_id == opened["id"]
    assert fake.messages[0].post_title == "db down"


def test_deleted_post_is_unknown_channel(fake: FakeDiscord, client: httpx.Client) -> None:
    """Posting into a deleted post (or one of another forum) is 404 code 10003; the post's
    messages are gone with it."""
    url = fake.add_webhook(forum=True)
    other = fake.add_webhook(forum=True)
    opened = post(client, url, {"embeds": [EMBED], "thread_name": "t"}).json()["id"]
    assert post(client, other, {"embeds": [EMBED]}, thread_id=opened).json()["code"] == 10003
    fake.delete_thread(opened)
    answer = post(client, url, {"embeds": [EMBED]}, thread_id=opened)
    assert (answer.status_code, answer.json()["code"]) == (404, 10003)
    assert fake.message(opened) is None


def test_thread_name_outside_a_forum_is_220003(fake: FakeDiscord, client: httpx.Client) -> None:
    """A post title sent to a plain channel's webhook: 400 code 220003."""
    url = fake.add_webhook()
    answer = post(client, url, {"embeds": [EMBED], "thread_name": "nope"})
    assert answer.json()["code"] == 220003


def test_forum_tags_and_title_length(
    fake: FakeDiscord, client: httpx.Client, clock: FakeClock
) -> None:
    """applied_tags must be the forum's tags (at most 5); a title of 101 characters or an empty
    one is Invalid Form Body."""
    url = fake.add_webhook(forum=True, tags=["11", "22"])
    ok = post(client, url, {"embeds": [EMBED], "thread_name": "t", "applied_tags": ["22"]})
    assert ok.status_code == 200
    assert fake.threads[0].applied_tags == ("22",)
    unknown = post(client, url, {"embeds": [EMBED], "thread_name": "t", "applied_tags": ["33"]})
    assert "applied_tags" in unknown.json()["errors"]
    for body in (
        {"thread_name": "x" * 101},
        {"thread_name": ""},
        {"thread_name": "t", "applied_tags": ["1"] * 6},
        {"thread_name": "t", "applied_tags": ["tag"]},
    ):
        clock.now += 2.0  # a fresh window of the webhook's bucket
        answer = post(client, url, {"embeds": [EMBED], **body})
        assert answer.json()["code"] == 50035, body


# -- flags and components ------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [4, 4096, 4 | 4096])
def test_allowed_flags_are_kept(fake: FakeDiscord, client: httpx.Client, flags: int) -> None:
    """SUPPRESS_EMBEDS (4) and SUPPRESS_NOTIFICATIONS (4096) are accepted and kept."""
    url = fake.add_webhook()
    answer = post(client, url, {"embeds": [EMBED], "flags": flags})
    assert answer.json()["flags"] == flags
    assert fake.messages[0].flags == flags


@pytest.mark.parametrize("flags", [1, 64, 1 << 13, -1, "4096", True])
def test_other_flags_are_refused(fake: FakeDiscord, client: httpx.Client, flags: object) -> None:
    """Any other bit, or a flags value that is not an integer, is Invalid Form Body."""
    url = fake.add_webhook()
    answer = post(client, url, {"embeds": [EMBED], "flags": flags})
    assert answer.status_code == 400
    assert "flags" in answer.json()["errors"]


def test_components_v2_refuses_embeds(fake: FakeDiscord, client: httpx.Client) -> None:
    """IS_COMPONENTS_V2 (32768) lays a message out by components alone: embeds are refused."""
    url = fake.add_webhook()
    answer = post(client, url, {"embeds": [EMBED], "flags": 1 << 15})
    assert answer.status_code == 400


def test_link_buttons_kept_only_with_with_components(
    fake: FakeDiscord, client: httpx.Client
) -> None:
    """Without ?with_components=true Discord drops a plain webhook's components; with it the
    link buttons are kept and returned."""
    url = fake.add_webhook()
    post(client, url, {"embeds": [EMBED], "components": [LINK_ROW]})
    answer = post(
        client, url, {"embeds": [EMBED], "components": [LINK_ROW]}, with_components="true"
    )
    assert answer.json()["components"] == [LINK_ROW]
    assert fake.messages[0].components == []
    assert fake.messages[1].components == [LINK_ROW]


@pytest.mark.parametrize(
    "components",
    [
        [{"type": 2, "style": 1, "label": "x", "custom_id": "y"}],  # not in an action row
        [{"type": 1, "components": [{"type": 2, "style": 1, "label": "x", "custom_id": "y"}]}],
        [{"type": 1, "components": [{"type": 3, "custom_id": "menu"}]}],
        [{"type": 1, "components": []}],
        [{"type": 1, "components": [LINK_ROW["components"][0]] * 6}],  # type: ignore[index]
        [LINK_ROW] * 6,
        [
            {
                "type": 1,
                "components": [{"type": 2, "style": 5, "label": "x" * 81, "url": "https://a"}],
            }
        ],
        [{"type": 1, "components": [{"type": 2, "style": 5, "label": "x", "url": "ftp://a"}]}],
        [{"type": 1, "components": [{"type": 2, "style": 5, "url": "https://a"}]}],
        [
            {
                "type": 1,
                "components": [
                    {"type": 2, "style": 5, "label": "x", "url": "https://a", "custom_id": "c"}
                ],
            }
        ],
        [
            {
                "type": 1,
                "components": [
                    {"type": 2, "style": 5, "label": "x", "url": "https://" + "a" * 510}
                ],
            }
        ],
        {"type": 1},
    ],
)
def test_what_a_plain_webhook_cannot_send(
    fake: FakeDiscord, client: httpx.Client, components: Any
) -> None:
    """Interactive components (a custom_id, a select menu), rows of 0 or 6 buttons, 6 rows, a
    label over 80, a URL that is not http(s) or over 512, a missing label: Invalid Form Body."""
    url = fake.add_webhook()
    answer = post(
        client, url, {"embeds": [EMBED], "components": components}, with_components="true"
    )
    assert answer.status_code == 400
    assert "components" in answer.json()["errors"]


def test_peak_requests_counts_every_answer_in_a_window(
    fake: FakeDiscord, client: httpx.Client, clock: FakeClock
) -> None:
    """peak_requests: the most requests answered (posts, edits, refusals) in any window."""
    url = fake.add_webhook()
    created = post(client, url, {"embeds": [EMBED]}).json()["id"]
    client.patch(message_url(url, created), json={"embeds": [EMBED]})
    clock.now += 5.0
    post(client, url, {"embeds": [EMBED]})
    assert fake.peak_requests(1.0) == 2
    assert fake.peak_requests(10.0) == 3
    assert fake.peak_requests() == 3  # the hidden limit's window, 60 s


def test_edit_attachments_must_be_a_list(fake: FakeDiscord, client: httpx.Client) -> None:
    """``attachments`` in an edit that is not a list is Invalid Form Body."""
    url = fake.add_webhook()
    created = post(client, url, {"embeds": [EMBED]}).json()["id"]
    answer = client.patch(message_url(url, created), json={"attachments": "all"})
    assert answer.status_code == 400
    assert "attachments" in answer.json()["errors"]


def test_message_routes_count_in_the_global_limit(clock: FakeClock) -> None:
    """Edits count in the per-IP global limit like posts: past it, a global 429."""
    with FakeDiscord(global_limit=2, clock=clock) as limited, httpx.Client() as http:
        url = limited.add_webhook()
        created = post(http, url, {"embeds": [EMBED]}).json()["id"]
        assert http.get(message_url(url, created)).status_code == 200
        answer = http.get(message_url(url, created))
        assert answer.status_code == 429
        assert answer.json()["global"] is True
