"""A named corpus of adversarial requests, each with the answer it must get and what it may leave behind.

Data, not tests: ``test_adversarial.py`` runs every case through ``lambda_handler`` against the moto server.
A case builds its request from a :class:`Context` (the endpoint's secret and the current time) so that timestamps
are relative to when it runs. ``answer`` is the body's ``status`` for a 2xx and its ``reason`` (else ``error``) for
anything else. ``stored`` and ``published`` count the records and messages the case leaves in total, including
those of the deliveries it makes first (``Request.before``, e.g. the original of a replay).

Reasons, as the function names them: ``missing_headers``, ``invalid_timestamp``, ``timestamp_too_old``,
``timestamp_too_new``, ``no_matching_signature`` (well-formed but wrong), ``malformed_signature`` (an entry that is
not ``version,base64``), ``body_not_utf8``; 400 ``body_not_base64``, ``invalid_event_id``, 405
``method_not_allowed``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from stack_webhook_fanout_tools.devkit.apigw import http_api_event
from stack_webhook_fanout_tools.devkit.samples import sample_body, sample_data
from stack_webhook_fanout_tools.devkit.signing import new_message_id, new_secret

from stack_webhook_fanout.event_time import decode_ksuid_ms

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

FALLBACK: Final = "fallback"
#: What one SNS message can carry: the body plus every attribute's name, data type and value (AWS's rule).
SNS_LIMIT: Final = 262_144
#: The window Svix's verification allows on either side of the current time.
TOLERANCE: Final = 300


@dataclass(frozen=True)
class Context:
    secret: str
    now: int


@dataclass(frozen=True)
class Request:
    """The request under test, the deliveries made before it, and the earliest time to send it."""

    event: dict[str, Any]
    before: tuple[dict[str, Any], ...] = ()
    not_before: float | None = None
    #: Message attributes the publication must carry (besides ``event_id``, always checked).
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Expected:
    status: int
    answer: str
    stored: int = 0
    published: int = 0
    #: The queue (event type or ``fallback``) every publication of the case lands on.
    queue: str | None = None
    #: The ``invalid_reason`` attribute every publication carries (None: it carries none), when ``queue`` is set.
    invalid_reason: str | None = None


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Context], Request]
    expected: Expected


# --- building requests --------------------------------------------------------------------------------------------


def v1(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """A ``v1`` signature entry over raw bytes, computed as Svix documents it (not with our code)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def delivery(
    body: bytes,
    headers: Mapping[str, str],
    *,
    base64_body: bool | None = None,
    method: str = "POST",
) -> dict[str, Any]:
    """An HTTP API v2 event as API Gateway builds it (JSON content type, so text unless told otherwise)."""
    return http_api_event(
        body,
        {"content-type": "application/json", **headers},
        method=method,
        force_base64=base64_body,
    )


def svix_headers(ctx: Context, body: bytes, *, msg_id: str | None = None, ts: int | None = None) -> dict[str, str]:
    msg_id = msg_id or new_message_id()
    ts = ctx.now if ts is None else ts
    return {"svix-id": msg_id, "svix-timestamp": str(ts), "svix-signature": v1(ctx.secret, msg_id, ts, body)}


def signed(ctx: Context, body: bytes, **kwargs: Any) -> dict[str, Any]:
    """A correctly signed delivery of ``body``."""
    return delivery(body, svix_headers(ctx, body, ts=kwargs.pop("ts", None)), **kwargs)


def with_headers(ctx: Context, body: bytes, **changes: str | None) -> dict[str, Any]:
    """A correctly signed delivery of ``body`` whose svix headers are then changed (None removes one)."""
    headers: dict[str, str] = svix_headers(ctx, body)
    for name, value in changes.items():
        key = name.replace("_", "-")
        if value is None:
            headers.pop(key)
        else:
            headers[key] = value
    return delivery(body, headers)


def signature_of(ctx: Context, body: bytes, msg_id: str, ts: int) -> str:
    """The bare base64 MAC (no ``v1,``) of a delivery."""
    return v1(ctx.secret, msg_id, ts, body).removeprefix("v1,")


def entries(ctx: Context, body: bytes, make: Callable[[str], str]) -> dict[str, Any]:
    """A delivery whose signature header is ``make(valid base64 MAC)``."""
    msg_id = new_message_id()
    mac = signature_of(ctx, body, msg_id, ctx.now)
    return delivery(body, {"svix-id": msg_id, "svix-timestamp": str(ctx.now), "svix-signature": make(mac)})


def attribute_bytes(attributes: Mapping[str, str]) -> int:
    return sum(len(name.encode()) + len(b"String") + len(value.encode()) for name, value in attributes.items())


def body_of_message_size(ctx: Context, msg_id: str, size: int) -> bytes:
    """A ``stack.test`` body that makes a message of exactly ``size`` bytes with the attributes ingest adds."""
    attributes = {"event_type": "stack.test", "event_id": msg_id, "event_timestamp": str(ctx.now)}
    # the devkit's ids carry their time: a Number attribute, counted as a String ("Number" is as long as "String")
    created_at = decode_ksuid_ms(msg_id)
    if created_at is not None:
        attributes["event_created_at"] = str(created_at)
    skeleton = b'{"type":"stack.test","data":{"message":"","endpointUrl":"https://example.com/webhooks/stack"}}'
    padding = size - attribute_bytes(attributes) - len(skeleton)
    body = skeleton.replace(b'"message":""', b'"message":"' + b"a" * padding + b'"')
    assert len(body) + attribute_bytes(attributes) == size
    return body


def sized(ctx: Context, size: int) -> Request:
    msg_id = new_message_id()
    body = body_of_message_size(ctx, msg_id, size)
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(ctx.now),
        "svix-signature": v1(ctx.secret, msg_id, ctx.now, body),
    }
    return Request(delivery(body, headers))


USER_BODY: Final = sample_body("user.created")
TEAM_DELETED_BODY: Final = sample_body("team.deleted")


def _deep_metadata(depth: int) -> bytes:
    data = sample_data("user.created")
    document = json.dumps({"type": "user.created", "data": data}, separators=(",", ":"))
    nested = "[" * depth + "]" * depth
    return document.replace('"client_metadata":{"theme":"dark"}', f'"client_metadata":{nested}').encode()


def _replay_inside(ctx: Context) -> Request:
    original = signed(ctx, USER_BODY)
    return Request(event=original, before=(original,))


def _replay_outside(ctx: Context) -> Request:
    # Captured 297 s after it was signed (still accepted then), replayed once it is more than 300 s old.
    ts = ctx.now - (TOLERANCE - 3)
    original = signed(ctx, USER_BODY, ts=ts)
    return Request(event=original, before=(original,), not_before=ts + TOLERANCE + 1.5)


def _replay_retimed(ctx: Context) -> Request:
    # The replayer moves the timestamp into the window but cannot re-sign.
    original = signed(ctx, USER_BODY, ts=ctx.now - 3600)
    headers = {**original["headers"], "svix-timestamp": str(ctx.now)}
    return Request(event={**original, "headers": headers})


def _replay_new_id(ctx: Context) -> Request:
    original = signed(ctx, USER_BODY)
    headers = {**original["headers"], "svix-id": new_message_id()}
    return Request(event={**original, "headers": headers}, before=(original,))


def _timestamp_with_crlf(ctx: Context) -> Request:
    # int() accepts surrounding whitespace, so this verifies; the published attribute is the canonical value.
    body = sample_body("team.created")
    headers = svix_headers(ctx, body)
    headers["svix-timestamp"] = f" {ctx.now}\r\n"
    return Request(delivery(body, headers), attributes={"event_timestamp": str(ctx.now)})


def _duplicated_signature_headers(ctx: Context) -> Request:
    # Two svix-signature headers, which API Gateway joins with a comma: "v1,<valid>,v1,<other>".
    headers = svix_headers(ctx, USER_BODY)
    headers["svix-signature"] = f"{headers['svix-signature']},{v1(new_secret(), 'x', ctx.now, USER_BODY)}"
    return Request(delivery(USER_BODY, headers))


def _duplicated_id_headers(ctx: Context) -> Request:
    headers = svix_headers(ctx, USER_BODY)
    headers["svix-id"] = f"{headers['svix-id']},{new_message_id()}"
    return Request(delivery(USER_BODY, headers))


def _not_utf8(ctx: Context) -> Request:
    body = b'{"type":"user.created","data":{"display_name":"\xff\xfe"}}'
    return Request(delivery(body, svix_headers(ctx, body), base64_body=True))


def _junk_base64_body(ctx: Context) -> Request:
    event = signed(ctx, USER_BODY)
    return Request({**event, "body": "%%% not base64 %%%", "isBase64Encoded": True})


def _standard_webhooks_names(ctx: Context) -> Request:
    headers = {k.replace("svix-", "webhook-"): v for k, v in svix_headers(ctx, USER_BODY).items()}
    return Request(delivery(USER_BODY, headers))


def _mixed_case_names(ctx: Context) -> Request:
    headers = {k.upper(): v for k, v in svix_headers(ctx, USER_BODY).items()}
    event = delivery(USER_BODY, {})
    return Request({**event, "headers": {**event["headers"], **headers}})


def _crlf_in_id(ctx: Context) -> Request:
    return Request(signed_with_id(ctx, USER_BODY, "msg_abc\r\nx-injected: 1"))


def signed_with_id(ctx: Context, body: bytes, msg_id: str) -> dict[str, Any]:
    return delivery(body, svix_headers(ctx, body, msg_id=msg_id))


# Note on "signature_with_crlf_and_junk_after_a_valid_entry": base64 decoding (Svix's, non-strict) stops at the
# valid MAC's padding and ignores what follows, so the entry matches before the junk entry is reached: the
# request carries the real MAC and is authentic. Svix's own library gives the same verdict.


def _p(name: str, build: Callable[[Context], Request], expected: Expected) -> Case:
    return Case(name, build, expected)


def _r(build: Callable[[Context], dict[str, Any]]) -> Callable[[Context], Request]:
    return lambda ctx: Request(build(ctx))


def _published(queue: str, *, stored: int = 1, published: int = 1, invalid_reason: str | None = None) -> Expected:
    return Expected(200, "published", stored=stored, published=published, queue=queue, invalid_reason=invalid_reason)


def _unauthorized(reason: str) -> Expected:
    return Expected(401, reason)


CORPUS: Final[tuple[Case, ...]] = (
    # --- the baseline: what a real delivery gets ------------------------------------------------------------------
    _p("valid_delivery", _r(lambda c: signed(c, USER_BODY)), _published("user.created")),
    _p("standard_webhooks_header_names", _standard_webhooks_names, _published("user.created")),
    _p("header_names_in_upper_case", _mixed_case_names, _published("user.created")),
    # --- timestamps -------------------------------------------------------------------------------------------------
    _p(
        "timestamp_stale_just_inside",
        _r(lambda c: signed(c, USER_BODY, ts=c.now - TOLERANCE + 10)),
        _published("user.created"),
    ),
    _p(
        "timestamp_stale_just_outside",
        _r(lambda c: signed(c, USER_BODY, ts=c.now - TOLERANCE - 10)),
        _unauthorized("timestamp_too_old"),
    ),
    _p(
        "timestamp_future_just_inside",
        _r(lambda c: signed(c, USER_BODY, ts=c.now + TOLERANCE - 10)),
        _published("user.created"),
    ),
    _p(
        "timestamp_future_just_outside",
        _r(lambda c: signed(c, USER_BODY, ts=c.now + TOLERANCE + 10)),
        _unauthorized("timestamp_too_new"),
    ),
    _p(
        "timestamp_not_a_number",
        _r(lambda c: with_headers(c, USER_BODY, svix_timestamp="yesterday")),
        _unauthorized("invalid_timestamp"),
    ),
    _p("timestamp_with_surrounding_whitespace_and_crlf", _timestamp_with_crlf, _published("team.created")),
    # --- missing pieces ---------------------------------------------------------------------------------------------
    _p("no_svix_headers", _r(lambda c: delivery(USER_BODY, {})), _unauthorized("missing_headers")),
    _p("id_missing", _r(lambda c: with_headers(c, USER_BODY, svix_id=None)), _unauthorized("missing_headers")),
    _p(
        "timestamp_missing",
        _r(lambda c: with_headers(c, USER_BODY, svix_timestamp=None)),
        _unauthorized("missing_headers"),
    ),
    _p(
        "signature_missing",
        _r(lambda c: with_headers(c, USER_BODY, svix_signature=None)),
        _unauthorized("missing_headers"),
    ),
    _p(
        "signature_empty", _r(lambda c: with_headers(c, USER_BODY, svix_signature="")), _unauthorized("missing_headers")
    ),
    _p("empty_body_unsigned", _r(lambda c: delivery(b"", {})), _unauthorized("missing_headers")),
    # --- forged and tampered ----------------------------------------------------------------------------------------
    _p(
        "wrong_secret",
        _r(lambda c: signed(Context(new_secret(), c.now), USER_BODY)),
        _unauthorized("no_matching_signature"),
    ),
    _p(
        "tampered_body",
        _r(
            lambda c: {
                **signed(c, USER_BODY),
                "body": USER_BODY.replace(b"jane@example.com", b"mallory@evil.example").decode(),
            }
        ),
        _unauthorized("no_matching_signature"),
    ),
    _p(
        "tampered_id",
        _r(lambda c: {**(e := signed(c, USER_BODY)), "headers": {**e["headers"], "svix-id": "msg_other"}}),
        _unauthorized("no_matching_signature"),
    ),
    # --- signature entries ------------------------------------------------------------------------------------------
    _p(
        "signature_truncated_to_whole_base64_quads",
        _r(lambda c: entries(c, USER_BODY, lambda m: "v1," + m[:20])),
        _unauthorized("no_matching_signature"),
    ),
    _p(
        "signature_truncated_mid_quad",
        _r(lambda c: entries(c, USER_BODY, lambda m: "v1," + m[:21])),
        _unauthorized("malformed_signature"),
    ),
    _p(
        "signature_entry_without_comma",
        _r(lambda c: entries(c, USER_BODY, lambda m: "v1" + m)),
        _unauthorized("malformed_signature"),
    ),
    _p(
        "signature_entry_with_two_commas",
        _r(lambda c: entries(c, USER_BODY, lambda m: f"v1,{m},x")),
        _unauthorized("malformed_signature"),
    ),
    _p(
        "signature_entries_separated_by_two_spaces",
        _r(lambda c: entries(c, USER_BODY, lambda m: f"v1,AAAA  v1,{m}")),
        _unauthorized("malformed_signature"),
    ),
    _p(
        "signature_junk_base64",
        _r(lambda c: entries(c, USER_BODY, lambda m: "v1,***not-base64***")),
        _unauthorized("malformed_signature"),
    ),
    _p(
        "signature_version_v1a",
        _r(lambda c: entries(c, USER_BODY, lambda m: f"v1a,{m}")),
        _unauthorized("no_matching_signature"),
    ),
    _p(
        "signature_version_v2",
        _r(lambda c: entries(c, USER_BODY, lambda m: f"v2,{m}")),
        _unauthorized("no_matching_signature"),
    ),
    _p(
        "signature_version_upper_case",
        _r(lambda c: entries(c, USER_BODY, lambda m: f"V1,{m}")),
        _unauthorized("no_matching_signature"),
    ),
    _p(
        "several_signatures_one_valid",
        _r(
            lambda c: entries(
                c, USER_BODY, lambda m: f"v1,{base64.b64encode(b'x' * 32).decode()} v2,junk v1a,{m} v1,{m}"
            )
        ),
        _published("user.created"),
    ),
    _p(
        "several_signatures_malformed_one_before_the_valid_one",
        _r(lambda c: entries(c, USER_BODY, lambda m: f"v1,abc v1,{m}")),
        _unauthorized("malformed_signature"),
    ),
    _p(
        "signature_with_crlf_and_junk_after_a_valid_entry",
        _r(lambda c: entries(c, USER_BODY, lambda m: f"v1,{m}\r\nx-injected: 1")),
        _published("user.created"),
    ),
    # --- headers API Gateway joined ---------------------------------------------------------------------------------
    _p(
        "signature_header_sent_twice_joined_with_a_comma",
        _duplicated_signature_headers,
        _unauthorized("malformed_signature"),
    ),
    _p("id_header_sent_twice_joined_with_a_comma", _duplicated_id_headers, _unauthorized("no_matching_signature")),
    # --- ids --------------------------------------------------------------------------------------------------------
    _p("id_with_crlf_injection_validly_signed", _crlf_in_id, Expected(400, "invalid_event_id")),
    _p(
        "id_of_257_characters_validly_signed",
        _r(lambda c: signed_with_id(c, USER_BODY, "msg_" + "a" * 253)),
        Expected(400, "invalid_event_id"),
    ),
    _p(
        "id_of_256_characters_validly_signed",
        _r(lambda c: signed_with_id(c, USER_BODY, "msg_" + "a" * 252)),
        _published("user.created"),
    ),
    # --- bodies -----------------------------------------------------------------------------------------------------
    _p("body_junk_base64", _junk_base64_body, Expected(400, "body_not_base64")),
    _p("body_not_utf8_with_a_valid_mac", _not_utf8, _unauthorized("body_not_utf8")),
    _p(
        "body_over_the_sns_limit_signed",
        _r(lambda c: signed(c, b"[" + b"1," * (SNS_LIMIT // 2) + b"1]")),
        Expected(413, "payload_too_large"),
    ),
    _p(
        "body_over_the_sns_limit_unsigned",
        _r(lambda c: delivery(b"x" * (SNS_LIMIT + 1), {})),
        Expected(413, "payload_too_large"),
    ),
    _p("message_exactly_at_the_sns_limit", lambda c: sized(c, SNS_LIMIT), _published("stack.test")),
    _p(
        "message_one_byte_over_the_sns_limit_with_its_attributes",
        lambda c: sized(c, SNS_LIMIT + 1),
        Expected(413, "payload_too_large"),
    ),
    _p(
        "deeply_nested_json",
        _r(lambda c: signed(c, b"[" * 100_000 + b"]" * 100_000)),
        _published(FALLBACK, invalid_reason="not_json"),
    ),
    # routed on its verified type: the data is the subscribers' to validate
    _p(
        "deeply_nested_metadata_in_a_known_type",
        _r(lambda c: signed(c, _deep_metadata(400))),
        _published("user.created"),
    ),
    _p(
        "known_type_with_data_the_models_reject",
        _r(lambda c: signed(c, b'{"type":"user.created","data":{"id":"u_1","signed_up_at_millis":"soon"}}')),
        _published("user.created"),
    ),
    _p(
        "duplicate_json_keys_last_type_wins",
        _r(
            lambda c: signed(
                c, TEAM_DELETED_BODY.replace(b'{"type":"team.deleted"', b'{"type":"user.created","type":"team.deleted"')
            )
        ),
        _published("team.deleted"),
    ),
    _p("json_array_body", _r(lambda c: signed(c, b"[]")), _published(FALLBACK, invalid_reason="not_an_object")),
    _p("unknown_type", _r(lambda c: signed(c, sample_body("session.created"))), _published(FALLBACK)),
    # --- methods ----------------------------------------------------------------------------------------------------
    _p(
        "get_with_a_valid_signature",
        _r(lambda c: signed(c, USER_BODY, method="GET")),
        Expected(405, "method_not_allowed"),
    ),
    # --- replays ----------------------------------------------------------------------------------------------------
    _p(
        "replay_inside_the_window",
        _replay_inside,
        Expected(200, "duplicate", stored=1, published=1, queue="user.created"),
    ),
    _p(
        "replay_outside_the_window",
        _replay_outside,
        Expected(401, "timestamp_too_old", stored=1, published=1, queue="user.created"),
    ),
    _p("replay_with_a_new_timestamp", _replay_retimed, _unauthorized("no_matching_signature")),
    _p(
        "replay_under_a_new_id",
        _replay_new_id,
        Expected(401, "no_matching_signature", stored=1, published=1, queue="user.created"),
    ),
)
