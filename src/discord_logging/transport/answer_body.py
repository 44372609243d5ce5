"""An answer's body, read with a cap (docs/architecture.md, "Untrusted input", rule 3).

Only an allowed host is ever asked, but an allowed host (a proxy, a misconfigured gateway, a
test server) may answer with a body of any size, or one that never ends. What the library
needs of a body is small: a 2xx answer's message id, channel id and attachment ids, an error's
first 500 characters, a 429's ``retry_after``. So a body is read as raw bytes, counted as they
arrive, up to a cap, within the request's timeout for the whole body; the rest is never read
(the connection is closed with the response). A compressed body is inflated to the same cap.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Final

import httpx

SUCCESS_BODY_BYTES: Final = 128 * 1024  # a message object: 10 embeds' echo, with room to spare
ERROR_BODY_BYTES: Final = 16 * 1024  # an error body: its first 500 characters are kept
# Asked of every host; an answer compressed anyway is inflated with the cap (a "zip bomb"
# of a few kilobytes inflates to no more than the cap).
ACCEPT_ENCODING: Final = "identity"
_GZIP: Final = (16 + zlib.MAX_WBITS,)
_INFLATABLE: Final = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": (zlib.MAX_WBITS, -zlib.MAX_WBITS)}


def body_cap(status: int) -> int:
    """How many bytes of an answer of ``status`` are read."""
    return SUCCESS_BODY_BYTES if 200 <= status < 300 else ERROR_BODY_BYTES


async def read_capped(
    response: httpx.Response, seconds: float, clock: Callable[[], float] = time.monotonic
) -> bytes:
    """At most :func:`body_cap` bytes of ``response``'s body (a streamed response), read for at
    most about ``seconds`` (checked as each piece arrives; each read is bounded by the
    client's timeout), so a body that trickles in cannot hold the request either. A body cut
    short is returned as far as it was read; httpx's read errors are raised as they come."""
    cap = body_cap(response.status_code)
    deadline = clock() + seconds
    pieces: list[bytes] = []
    size = 0
    async for piece in response.aiter_raw():
        pieces.append(piece[: cap - size])
        size += len(pieces[-1])
        if size >= cap or clock() >= deadline:
            break
    return _decoded(b"".join(pieces), response.headers.get("Content-Encoding", ""), cap)


def _decoded(raw: bytes, encoding: str, cap: int) -> bytes:
    """``raw`` as the answer meant it, at most ``cap`` bytes: inflated when gzip or deflate;
    b"" for another encoding (not asked for, not read)."""
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return raw
    for wbits in _INFLATABLE.get(coding, ()):  # deflate: zlib's wrapping, or none (both seen)
        try:
            return zlib.decompressobj(wbits).decompress(raw, cap)
        except zlib.error:
            continue
    return b""
