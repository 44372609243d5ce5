"""The client's cut-off (transport/cutoff.py): once the close deadline is set, a request ends
by it in whichever step it is (connect, send, wait for or read the answer), and says how far
it got: only one whose body went out whole may have been posted. Loopback servers only."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import warnings
from collections.abc import Iterator

import httpx
import pytest

from discord_logging.render.packing import OutgoingMessage
from discord_logging.testing import FakeDiscord
from discord_logging.transport.client import SendResult, WebhookClient
from discord_logging.transport.cutoff import Cutoff
from discord_logging.transport.outcome import OutcomeKind
from discord_logging.transport.webhook_url import WebhookURL, parse_webhook_url

MESSAGE = OutgoingMessage(notifications=(), embeds=({"type": "rich", "title": "t"},))
# Larger than loopback's socket buffers: a peer that never reads holds the send half-way.
HUGE = OutgoingMessage((), MESSAGE.embeds, ("full.txt", b"x" * (64 * 1024 * 1024)))


def webhook_at(port: int, scheme: str = "http") -> WebhookURL:
    host = f"127.0.0.1:{port}"
    return parse_webhook_url(f"{scheme}://{host}/api/v10/webhooks/1/token", [host])


async def cut_off_in_flight(
    client: WebhookClient, url: WebhookURL, message: OutgoingMessage, ready: object
) -> SendResult:
    """Send, let the request get as far as it can (until ``ready()``), cut it off soon."""
    task = asyncio.create_task(client.execute(url, message))
    async with asyncio.timeout(10):
        while not ready():  # type: ignore[operator]
            await asyncio.sleep(0.01)
        client.cut_off_at(0.05)
        result = await task
    await client.aclose()
    return result


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose listen backlog is full: a new connection's handshake never completes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    filler = socket.create_connection(server.getsockname())
    try:
        yield server.getsockname()[1]
    finally:
        filler.close()
        server.close()


@pytest.fixture
def never_reads() -> Iterator[int]:
    """A port that takes connections and never reads from them."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    taken: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                taken.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(1)
        for conn in taken:
            conn.close()
        server.close()


@pytest.mark.parametrize("silence", ["no_answer", "stall_body"])
async def test_a_request_taken_whole_and_never_answered_may_have_been_posted(
    fake_discord: FakeDiscord, silence: str
) -> None:
    """The body went out whole, the answer never comes (or stops after its headers): cut
    off at the deadline, not the 30 s timeout, and marked as maybe posted."""
    fake_discord.set_silent(silence)  # type: ignore[arg-type]
    url = parse_webhook_url(fake_discord.add_webhook(), [fake_discord.host])
    client = WebhookClient(timeout=30.0)
    result = await cut_off_in_flight(client, url, MESSAGE, lambda: fake_discord.pending == 1)
    assert result.outcome.kind is OutcomeKind.RETRY
    assert result.outcome.may_have_posted
    assert result.sent
    assert result.outcome.error == "cut off at the close deadline while waiting for the answer"


async def test_a_connect_that_never_completes_is_cut_off_as_not_sent(full_backlog: int) -> None:
    """The handshake never completes: cut off while connecting; nothing reached Discord (its
    rate-limit slot is given back) and nothing can have been posted."""
    client = WebhookClient(timeout=30.0)
    result = await cut_off_in_flight(client, webhook_at(full_backlog), MESSAGE, lambda: True)
    assert not result.sent
    assert not result.outcome.may_have_posted
    assert result.outcome.error == "cut off at the close deadline while connecting"


async def test_a_tls_handshake_never_answered_is_cut_off_as_not_sent(never_reads: int) -> None:
    """The connection is taken, the TLS handshake never answered: cut off while connecting;
    nothing reached Discord."""
    client = WebhookClient(timeout=30.0)
    url = webhook_at(never_reads, "https")
    result = await cut_off_in_flight(client, url, MESSAGE, lambda: True)
    with warnings.catch_warnings():
        # httpcore closes the TCP stream when TLS set-up fails with an exception, not when it
        # is cancelled (the leak of encode/httpcore#443): the orphan is collected here.
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert not result.sent
    assert not result.outcome.may_have_posted
    assert result.outcome.error == "cut off at the close deadline while connecting"


async def test_a_body_never_read_is_cut_off_as_not_posted(never_reads: int) -> None:
    """The peer stops reading half-way through the body: cut off while sending; Discord acts
    on a whole request only, so it was not posted (but it did reach Discord)."""
    client = WebhookClient(timeout=30.0)
    result = await cut_off_in_flight(client, webhook_at(never_reads), HUGE, lambda: True)
    assert result.sent
    assert not result.outcome.may_have_posted
    assert result.outcome.error == "cut off at the close deadline while sending the request"


class Hangs(httpx.AsyncBaseTransport):
    """A custom transport that never answers and says nothing of its progress."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_transport_that_traces_nothing_counts_as_maybe_posted() -> None:
    """Without httpcore's trace events nobody knows how far it got: cut off, it counts as sent
    and maybe posted (the lost-answer rule marks it, never a silent repeat)."""
    client = WebhookClient(timeout=30.0, transport=Hangs())
    result = await cut_off_in_flight(client, webhook_at(1), MESSAGE, lambda: True)
    assert result.sent
    assert result.outcome.may_have_posted
    assert result.outcome.error == "cut off at the close deadline while in flight"


async def test_a_request_after_the_deadline_is_cut_off_at_once(full_backlog: int) -> None:
    """A request started once the deadline passed (a probe, a lookup) ends at once as a
    transport failure, whatever its own timeout."""
    client = WebhookClient(timeout=30.0)
    client.cut_off_at(0.0)
    async with asyncio.timeout(5):
        sent = await client.execute(webhook_at(full_backlog), MESSAGE)
        probed = await client.probe(webhook_at(full_backlog))
    await client.aclose()
    assert not sent.sent
    assert probed.kind is OutcomeKind.RETRY


async def test_the_deadline_is_only_ever_brought_forward() -> None:
    """A later cut-off does not give a request more time than an earlier one set."""
    cutoff = Cutoff()
    cutoff.cut_at(0.05)
    cutoff.cut_at(60.0)

    async def sleeps() -> None:
        async with cutoff.bounded():
            await asyncio.sleep(30)

    # Were the 60 s cut-off in force, the guard would cancel it (CancelledError, not caught).
    async with asyncio.timeout(5):
        with pytest.raises(TimeoutError):
            await sleeps()
