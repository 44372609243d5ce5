"""Answers of bounded size (issue 32, point 3): a host answering with a huge or endless body
costs the process a few hundred kilobytes at most, and the request ends; a success answer
still gives its message id. Measured as bytes the client read off the connection and as the
process's peak memory, never as time."""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from processkit import run_script, script_env
from waiting import FAILSAFE

from discord_logging.render.packing import OutgoingMessage
from discord_logging.testing import FakeDiscord
from discord_logging.transport.answer_body import (
    ERROR_BODY_BYTES,
    SUCCESS_BODY_BYTES,
    _decoded,
    read_capped,
)
from discord_logging.transport.client import WebhookClient
from discord_logging.transport.outcome import OutcomeKind
from discord_logging.transport.webhook_url import parse_webhook_url

MESSAGE = OutgoingMessage(notifications=(), embeds=({"type": "rich", "title": "t"},))
MIB = 1024 * 1024
# What a capped read may take off the connection beyond the cap: one read of httpcore's.
ONE_READ = 64 * 1024


class CountingTransport(httpx.AsyncBaseTransport):
    """httpx's own transport, counting the body bytes the client reads off the connection."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.read = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        counter = self

        class Counted(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                assert isinstance(response.stream, httpx.AsyncByteStream)
                async for piece in response.stream:
                    counter.read += len(piece)
                    yield piece

            async def aclose(self) -> None:
                assert isinstance(response.stream, httpx.AsyncByteStream)
                await response.stream.aclose()

        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=Counted(),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _execute(fake: FakeDiscord) -> tuple[CountingTransport, object]:
    transport = CountingTransport()
    client = WebhookClient(timeout=10.0, transport=transport)
    try:
        url = parse_webhook_url(fake.add_webhook(), allowed_hosts=[fake.host])
        result = await asyncio.wait_for(client.execute(url, MESSAGE), FAILSAFE)
    finally:
        await client.aclose()
    return transport, result


async def test_a_huge_error_body_is_read_only_as_far_as_the_cap() -> None:
    """A 500 with a 32 MiB body: at most the error cap (16 KiB) and one read come off the
    connection (before the fix: all 32 MiB); the error keeps the body's first 500
    characters, and the answer is still a retryable 500."""
    with FakeDiscord() as fake:
        fake.answer_huge(1, status=500, size=32 * MIB)
        transport, result = await _execute(fake)
    assert transport.read <= ERROR_BODY_BYTES + ONE_READ, transport.read
    outcome = result.outcome  # type: ignore[attr-defined]
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.status == 500
    assert outcome.error.startswith('{"message": "xxxx')
    assert len(outcome.error) == 500


async def test_an_endless_success_body_ends_at_the_cap() -> None:
    """A 200 whose body never ends: the request ends after the success cap (128 KiB) and one
    read; the message counts as delivered (its status says so), with no id (its JSON was
    cut). Before the fix the client read until memory ran out."""
    with FakeDiscord() as fake:
        fake.answer_huge(1, status=200, size=None)
        transport, result = await _execute(fake)
    assert transport.read <= SUCCESS_BODY_BYTES + ONE_READ, transport.read
    outcome = result.outcome  # type: ignore[attr-defined]
    assert outcome.kind is OutcomeKind.DELIVERED
    assert outcome.message_id is None


async def test_a_success_body_under_the_cap_still_gives_the_message_id() -> None:
    """The cap leaves a real answer whole: FakeDiscord's message object gives its id."""
    with FakeDiscord() as fake:
        transport, result = await _execute(fake)
        (message,) = fake.messages
    assert result.outcome.message_id == message.message_id  # type: ignore[attr-defined]
    assert 0 < transport.read < SUCCESS_BODY_BYTES


async def test_a_compressed_bomb_inflates_only_to_the_cap() -> None:
    """A 500 answered gzip-compressed anyway (64 MiB of 'x' in about 64 KiB): inflated only
    to the cap; the process's peak allocation stays far below the body (before the fix: the
    whole 64 MiB inflated)."""
    bomb = gzip.compress(b"x" * 64 * MIB)
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        headers = {"Content-Encoding": "gzip", "Content-Length": str(len(bomb))}
        return httpx.Response(500, headers=headers, stream=httpx.ByteStream(bomb))

    client = WebhookClient(transport=httpx.MockTransport(answer))
    url = parse_webhook_url("https://discord.com/api/webhooks/1/SECRET")
    tracemalloc.start()
    try:
        result = await client.execute(url, MESSAGE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await client.aclose()
    assert peak < 4 * MIB, peak
    assert result.outcome.kind is OutcomeKind.RETRY
    assert result.outcome.error == "x" * 500
    assert sent[0].headers["Accept-Encoding"] == "identity"


async def test_a_body_that_trickles_in_is_read_only_for_the_timeout() -> None:
    """A 200 whose body comes a byte at a time, forever: reading stops once the request's
    timeout has passed (an injected clock, one second a byte: 10 s, so about 10 bytes)."""
    pulled = 0

    async def trickle() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"x"

    class Trickle(httpx.AsyncByteStream):
        def __aiter__(self) -> AsyncIterator[bytes]:
            return trickle()

    ticks = iter(range(10**6))
    response = httpx.Response(200, stream=Trickle())
    body = await read_capped(response, 10.0, clock=lambda: float(next(ticks)))
    assert body == b"x" * pulled
    assert pulled <= 11


# The probe: a handler whose webhook answers 500 with a huge body, twice (retried).
# The script says how much its peak memory grew while the records were sent and retried.
HUGE_ANSWERS = """
import json, resource
handler = make_handler(retry_attempts=2)
log.addHandler(handler)
handler.wait_started(30)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
log.error("answered with a huge body")
handler.flush(30)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
stats = handler.stats()
handler.close()
print(json.dumps({"grew_kib": after - before, "dead": stats["dead_lettered"]}))
"""


@pytest.mark.slow  # a real process, 2 x 128 MiB on loopback
def test_a_handler_answered_with_huge_bodies_keeps_its_memory(tmp_path: Path) -> None:
    """A handler whose Discord answers 500 with a 128 MiB body, for both attempts: its peak
    memory grows by less than 16 MiB (before the fix: by about twice the body), and the record
    becomes a dead letter as any 500 would make it."""
    with FakeDiscord() as fake:
        url = fake.add_webhook(host="localhost")
        fake.answer_huge(2, status=500, size=128 * MIB)
        done = run_script(HUGE_ANSWERS, script_env(fake, url, tmp_path / "store"), tmp_path)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["grew_kib"] < 16 * 1024, figures
    assert figures["dead"] == 1


@pytest.mark.parametrize(
    ("encoding", "raw", "decoded"),
    [
        ("", b"plain", b"plain"),
        ("identity", b"plain", b"plain"),
        ("gzip", gzip.compress(b"zipped"), b"zipped"),
        ("deflate", zlib.compress(b"wrapped"), b"wrapped"),
        ("deflate", zlib.compress(b"raw")[2:-4], b"raw"),
        ("deflate", b"not deflate at all", b""),
        ("br", b"\x0b\x02\x80hi\x03", b""),
        ("GZIP", gzip.compress(b"x" * 100_000), b"x" * 100),
    ],
)
def test_a_body_is_inflated_only_to_the_cap(encoding: str, raw: bytes, decoded: bytes) -> None:
    """Bodies as sent are read as they are; gzip and deflate (zlib's or raw) are inflated up
    to the cap; another encoding, never asked for, reads as nothing."""
    assert _decoded(raw, encoding, 100) == decoded
