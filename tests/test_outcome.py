"""One place decides what a Discord response means: classify() and transport_failure()."""

from __future__ import annotations

import json

import httpx
import pytest

from discord_logging.transport.headers import BAN_COOLDOWN
from discord_logging.transport.outcome import (
    ERROR_TEXT_LIMIT,
    Outcome,
    OutcomeKind,
    classify,
    transport_failure,
)

VIA = {"Via": "1.1 google"}
SECRET = "SECRETtoken"
HOOK_URL = f"https://discord.com/api/webhooks/123/{SECRET}"
REDACTED_URL = "https://discord.com/api/webhooks/123/***"


def _j(data: object) -> bytes:
    return json.dumps(data).encode()


INVALID_FORM_BODY = _j(
    {
        "message": "Invalid Form Body",
        "code": 50035,
        "errors": {
            "embeds": {
                "0": {
                    "description": {
                        "_errors": [
                            {
                                "code": "BASE_TYPE_MAX_LENGTH",
                                "message": "Must be 4096 or fewer in length.",
                            }
                        ]
                    }
                }
            }
        },
    }
)


# --------------------------------------------------------------------------- the table

CASES = [
    # delivered
    pytest.param(
        200,
        {},
        _j({"id": "1234567890123456789", "channel_id": "42", "content": "hi"}),
        Outcome(OutcomeKind.DELIVERED, 200, message_id="1234567890123456789", channel_id="42"),
        id="200-json-id",
    ),
    pytest.param(
        200,
        {},
        _j({"id": "9", "channel_id": "77", "attachments": [{"id": "5"}, {"x": 1}, "junk"]}),
        Outcome(OutcomeKind.DELIVERED, 200, message_id="9", channel_id="77", attachment_ids=("5",)),
        id="200-json-files",
    ),
    pytest.param(
        200,
        {},
        _j({"id": 987654321}),
        Outcome(OutcomeKind.DELIVERED, 200, message_id="987654321"),
        id="200-int-id-stringified",
    ),
    pytest.param(
        200, {}, _j({"content": "x"}), Outcome(OutcomeKind.DELIVERED, 200), id="200-no-id"
    ),
    pytest.param(200, {}, b"not json", Outcome(OutcomeKind.DELIVERED, 200), id="200-not-json"),
    pytest.param(200, {}, _j([1, 2]), Outcome(OutcomeKind.DELIVERED, 200), id="200-json-list"),
    pytest.param(204, {}, b"", Outcome(OutcomeKind.DELIVERED, 204), id="204-no-body"),
    # invalid payload: poison
    pytest.param(
        400,
        {},
        _j({"message": "Cannot send an empty message", "code": 50006}),
        Outcome(OutcomeKind.POISON, 400, error="Cannot send an empty message", error_code=50006),
        id="400-50006-empty",
    ),
    pytest.param(
        400,
        {},
        _j({"message": "The request body contains invalid JSON.", "code": 50109}),
        Outcome(
            OutcomeKind.POISON,
            400,
            error="The request body contains invalid JSON.",
            error_code=50109,
        ),
        id="400-50109-invalid-json",
    ),
    pytest.param(
        405,
        {},
        _j({"message": "405: Method Not Allowed", "code": 0}),
        Outcome(OutcomeKind.POISON, 405, error="405: Method Not Allowed", error_code=0),
        id="405-poison",
    ),
    pytest.param(
        418, {}, b"I'm a teapot", Outcome(OutcomeKind.POISON, 418, error="I'm a teapot"), id="418"
    ),
    pytest.param(422, {}, b"", Outcome(OutcomeKind.POISON, 422), id="422-empty-body-no-error"),
    # stop using the webhook
    pytest.param(
        401,
        {},
        _j({"message": "Invalid Webhook Token", "code": 50027}),
        Outcome(OutcomeKind.DISABLED, 401, error="Invalid Webhook Token", error_code=50027),
        id="401-50027",
    ),
    pytest.param(
        403,
        {},
        _j({"message": "Missing Permissions", "code": 50013}),
        Outcome(OutcomeKind.DISABLED, 403, error="Missing Permissions", error_code=50013),
        id="403-json",
    ),
    pytest.param(
        403,
        {},
        b"<html>Forbidden</html>",
        Outcome(OutcomeKind.DISABLED, 403, error="<html>Forbidden</html>"),
        id="403-html",
    ),
    pytest.param(
        404,
        {},
        _j({"message": "Unknown Webhook", "code": 10015}),
        Outcome(OutcomeKind.DISABLED, 404, error="Unknown Webhook", error_code=10015),
        id="404-10015",
    ),
    # too large
    pytest.param(
        413,
        {},
        _j({"message": "Request entity too large", "code": 40005}),
        Outcome(OutcomeKind.TOO_LARGE, 413, error="Request entity too large", error_code=40005),
        id="413-40005",
    ),
    pytest.param(
        413,
        {},
        b"<html>413 Request Entity Too Large</html>",
        Outcome(OutcomeKind.TOO_LARGE, 413, error="<html>413 Request Entity Too Large</html>"),
        id="413-html",
    ),
    # Discord trouble: retry
    *[
        pytest.param(
            status,
            {},
            b"upstream trouble\n",
            # A gateway's answer (502, 504, 524): Discord may have posted it meanwhile.
            Outcome(
                OutcomeKind.RETRY,
                status,
                error="upstream trouble",
                may_have_posted=status in (502, 504, 524),
            ),
            id=f"{status}-retry",
        )
        for status in (500, 502, 503, 504, 524)
    ],
    pytest.param(
        500,
        {},
        _j({"message": "500: Internal Server Error", "code": 0}),
        Outcome(OutcomeKind.RETRY, 500, error="500: Internal Server Error", error_code=0),
        id="500-json",
    ),
    # rate limited by Discord
    pytest.param(
        429,
        VIA,
        _j({"message": "You are being rate limited.", "retry_after": 0.641, "global": False}),
        Outcome(
            OutcomeKind.RATE_LIMITED,
            429,
            retry_after=0.641,
            is_global=False,
            error="You are being rate limited.",
        ),
        id="429-discord-local",
    ),
    pytest.param(
        429,
        {**VIA, "X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"},
        _j({"message": "You are being rate limited.", "retry_after": 2.5, "global": True}),
        Outcome(
            OutcomeKind.RATE_LIMITED,
            429,
            retry_after=2.5,
            is_global=True,
            error="You are being rate limited.",
        ),
        id="429-discord-global",
    ),
    pytest.param(
        429,
        {**VIA, "X-RateLimit-Global": "true"},
        _j({"message": "You are being rate limited.", "retry_after": 1.0, "global": False}),
        Outcome(
            OutcomeKind.RATE_LIMITED,
            429,
            retry_after=1.0,
            is_global=True,
            error="You are being rate limited.",
        ),
        id="429-discord-global-by-header",
    ),
    # rate limited by Cloudflare: ban
    pytest.param(
        429,
        {},
        b"error code: 1015",
        Outcome(
            OutcomeKind.BANNED,
            429,
            retry_after=BAN_COOLDOWN,
            is_global=True,
            error="error code: 1015",
        ),
        id="429-no-via-1015",
    ),
    pytest.param(
        429,
        {},
        _j({"message": "You are being rate limited.", "retry_after": 1.0, "global": False}),
        Outcome(
            OutcomeKind.BANNED,
            429,
            retry_after=BAN_COOLDOWN,
            is_global=True,
            error="You are being rate limited.",
        ),
        id="429-no-via-discord-like-json",
    ),
    pytest.param(
        429,
        {"Retry-After": "1800"},
        b"",
        Outcome(OutcomeKind.BANNED, 429, retry_after=1800.0, is_global=True),
        id="429-no-via-long-retry-after",
    ),
]


@pytest.mark.parametrize(("status", "headers", "body", "expected"), CASES)
def test_classify_table(
    status: int, headers: dict[str, str], body: bytes, expected: Outcome
) -> None:
    """Every documented status maps to the sender's next move, codes and text preserved."""
    assert classify(status, headers, body) == expected


@pytest.mark.parametrize(("status", "headers", "body", "expected"), CASES)
def test_classify_table_with_httpx_headers(
    status: int, headers: dict[str, str], body: bytes, expected: Outcome
) -> None:
    """The same table classifies identically with (lower-cased) httpx.Headers."""
    lowered = httpx.Headers({key.lower(): value for key, value in headers.items()})
    assert classify(status, lowered, body) == expected


def test_invalid_form_body_is_poison_with_details() -> None:
    """400/50035 is poison; error carries "Invalid Form Body" and the errors JSON."""
    outcome = classify(400, {}, INVALID_FORM_BODY)
    assert outcome.kind is OutcomeKind.POISON
    assert outcome.status == 400
    assert outcome.error_code == 50035
    assert outcome.error is not None
    assert "Invalid Form Body" in outcome.error
    assert "BASE_TYPE_MAX_LENGTH" in outcome.error
    assert "embeds" in outcome.error
    assert outcome.retry_after is None


def test_custom_ban_cooldown_is_used() -> None:
    """classify passes ban_cooldown through to the 429 reading."""
    outcome = classify(429, {}, b"error code: 1015", ban_cooldown=900.0)
    assert outcome.kind is OutcomeKind.BANNED
    assert outcome.retry_after == 900.0


def test_discord_429_zero_retry_after_gets_minimum_wait() -> None:
    """A Discord 429 with retry_after 0 still waits a little (never a busy loop)."""
    outcome = classify(429, VIA, _j({"message": "x", "retry_after": 0, "global": False}))
    assert outcome.kind is OutcomeKind.RATE_LIMITED
    assert outcome.retry_after is not None
    assert 0 < outcome.retry_after < 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"x" * 2000, "x" * ERROR_TEXT_LIMIT, id="ascii-2000"),
        pytest.param(b"y" * ERROR_TEXT_LIMIT, "y" * ERROR_TEXT_LIMIT, id="exactly-limit"),
        pytest.param(b"  padded  ", "padded", id="stripped"),
        pytest.param(b"\xff\xfebad", "\ufffd\ufffdbad", id="undecodable-replaced"),
        pytest.param(b"   ", None, id="whitespace-only-none"),
    ],
)
def test_non_json_error_body_is_kept_as_truncated_text(body: bytes, expected: str | None) -> None:
    """A non-JSON error body is kept as text, at most ERROR_TEXT_LIMIT characters."""
    outcome = classify(502, {}, body)
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.error == expected
    assert outcome.error_code is None


def test_multibyte_non_json_body_stays_within_limit() -> None:
    """Multi-byte text is cut without error and stays within the limit."""
    outcome = classify(503, {}, ("é" * 1000).encode())
    assert outcome.error is not None
    assert 0 < len(outcome.error) <= ERROR_TEXT_LIMIT
    assert set(outcome.error) <= {"é", "\ufffd"}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"message": "m" * 2000, "code": 1}, id="long-message"),
        pytest.param(
            {"message": "m", "code": 50035, "errors": {"x": "e" * 2000}}, id="long-errors"
        ),
    ],
)
def test_json_error_text_is_truncated(data: dict[str, object]) -> None:
    """A long JSON message or errors object is cut to ERROR_TEXT_LIMIT characters."""
    outcome = classify(400, {}, _j(data))
    assert outcome.error is not None
    assert len(outcome.error) == ERROR_TEXT_LIMIT


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("50035", None, id="string-code-dropped"),
        pytest.param(None, None, id="null-code"),
        pytest.param(10015, 10015, id="int-code"),
    ],
)
def test_error_code_only_when_integer(code: object, expected: int | None) -> None:
    """error_code is Discord's integer code, or None when absent or not an integer."""
    outcome = classify(404, {}, _j({"message": "Unknown Webhook", "code": code}))
    assert outcome.kind is OutcomeKind.DISABLED
    assert outcome.error_code == expected


# --------------------------------------------------------------------------- redaction

REDACTION_CASES = [
    pytest.param(400, {}, f"bad request for {HOOK_URL}".encode(), id="400-text"),
    pytest.param(
        404, {}, _j({"message": f"Unknown Webhook {HOOK_URL}", "code": 10015}), id="404-json"
    ),
    pytest.param(
        400,
        {},
        _j({"message": "Invalid Form Body", "code": 50035, "errors": {"url": HOOK_URL}}),
        id="400-errors-json",
    ),
    pytest.param(502, {}, f"<html><a href='{HOOK_URL}'>x</a></html>".encode(), id="502-html"),
    pytest.param(
        429,
        VIA,
        _j({"message": f"slow down {HOOK_URL}", "retry_after": 1.0, "global": False}),
        id="429-discord",
    ),
    pytest.param(429, {}, f"error code: 1015 {HOOK_URL}".encode(), id="429-cloudflare"),
    pytest.param(400, {}, f"{HOOK_URL}?wait=true".encode(), id="with-query"),
    pytest.param(400, {}, HOOK_URL.replace("/api/", "/api/v10/").encode(), id="v10-url"),
    pytest.param(400, {}, f"{'x' * 460}{HOOK_URL}".encode(), id="token-cut-at-limit"),
    pytest.param(400, {}, _j(HOOK_URL), id="json-string-body"),
]


@pytest.mark.parametrize(("status", "headers", "body"), REDACTION_CASES)
def test_error_text_never_contains_the_token(
    status: int, headers: dict[str, str], body: bytes
) -> None:
    """A webhook URL in the response body appears in `error` with its token replaced."""
    outcome = classify(status, headers, body)
    assert outcome.error is not None
    assert SECRET not in outcome.error
    assert "SECRET" not in outcome.error
    assert "/webhooks/123/***" in outcome.error


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        pytest.param("ReadTimeout", "ReadTimeout", id="plain"),
        pytest.param(
            f"ConnectError: [Errno 111] Connection refused for url '{HOOK_URL}'",
            f"ConnectError: [Errno 111] Connection refused for url '{REDACTED_URL}'",
            id="url-redacted",
        ),
        pytest.param("e" * 2000, "e" * ERROR_TEXT_LIMIT, id="truncated"),
    ],
)
def test_transport_failure_is_retry_and_redacted(description: str, expected: str) -> None:
    """A timeout or connection error is RETRY with no status and a redacted, cut description."""
    outcome = transport_failure(description)
    assert outcome == Outcome(OutcomeKind.RETRY, None, error=expected)
    assert SECRET not in (outcome.error or "")


def test_non_json_error_with_short_tokens_stays_within_limit() -> None:
    """Redacting a non-JSON body must not push `error` beyond ERROR_TEXT_LIMIT characters."""
    body = b"/webhooks/1/a " * 40  # 560 bytes, each 1-char token becomes '***'
    outcome = classify(400, {}, body)
    assert outcome.error is not None
    assert len(outcome.error) <= ERROR_TEXT_LIMIT


def test_json_escaped_url_in_non_object_body_is_redacted() -> None:
    """A JSON list holding an escaped webhook URL does not leak its token into `error`."""
    body = b'["https:\\/\\/discord.com\\/api\\/webhooks\\/123\\/SECRETtoken"]'
    outcome = classify(400, {}, body)
    assert outcome.error is not None
    assert SECRET not in outcome.error
