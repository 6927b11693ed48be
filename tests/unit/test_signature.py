"""The verification matrix of ``signature.py``: every header form, timestamp, signature entry and body shape that
matters, with the reason code each rejection carries. Each case is also checked against svix itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import TYPE_CHECKING

import pytest
from stack_webhook_fanout_tools.devkit.signing import new_secret, sign_headers
from svix.webhooks import Webhook as SvixWebhook

from stack_webhook_fanout.errors import SignatureError
from stack_webhook_fanout.signature import SignatureVerifier, standard_headers

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

BODY = b'{"type":"stack.test","data":{"message":"hello","endpointUrl":"https://example.com/webhooks/stack"}}'
MSG_ID = "msg_2mN7dLQ9fXw3bYkRjT5sVhAcE1u"


def svix_accepts(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    try:
        SvixWebhook(secret).verify(body, dict(headers))
    except Exception:
        return False
    return True


def outcome(secrets_: list[str], body: bytes, headers: Mapping[str, str]) -> str | None:
    """None when ours accepts, else the SignatureError reason; asserts our verdict equals svix's."""
    try:
        SignatureVerifier(secrets_).verify_standard(body, standard_headers(headers))
    except SignatureError as exc:
        reason: str | None = exc.reason
    else:
        reason = None
    assert (reason is None) == any(svix_accepts(s, body, headers) for s in secrets_), (reason, headers)
    return reason


def now() -> int:
    return int(time.time())


def v1(secret: str, body: bytes, msg_id: str = MSG_ID, timestamp: int | None = None) -> str:
    """The single ``v1,<base64>`` entry svix would send for ``body``."""
    return sign_headers(secret, body, msg_id=msg_id, timestamp=now() if timestamp is None else timestamp)[
        "svix-signature"
    ]


def random_entry() -> str:
    """A well-formed ``v1`` entry that matches nothing."""
    return "v1," + base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
def headers(secret: str) -> dict[str, str]:
    return sign_headers(secret, BODY, msg_id=MSG_ID)


# --- headers ----------------------------------------------------------------------------------------------------


def test_verify_valid_signature_is_accepted(secret: str, headers: dict[str, str]) -> None:
    assert outcome([secret], BODY, headers) is None


def test_verify_webhook_header_names_are_accepted(secret: str, headers: dict[str, str]) -> None:
    # given the Standard Webhooks names instead of svix's
    renamed = {name.replace("svix-", "webhook-"): value for name, value in headers.items()}
    assert set(renamed) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    # then it verifies all the same
    assert outcome([secret], BODY, renamed) is None


@pytest.mark.parametrize(
    "case",
    [str.upper, str.title, lambda s: "".join(c.upper() if i % 2 else c for i, c in enumerate(s))],
    ids=["upper", "title", "alternating"],
)
def test_verify_mixed_case_header_names_are_accepted(
    secret: str, headers: dict[str, str], case: Callable[[str], str]
) -> None:
    recased = {case(name): value for name, value in headers.items()}
    assert set(recased).isdisjoint(headers)
    assert outcome([secret], BODY, recased) is None


def test_verify_prefers_svix_headers_when_both_are_present(secret: str, headers: dict[str, str]) -> None:
    garbage = {"webhook-id": "msg_other", "webhook-timestamp": "1", "webhook-signature": random_entry()}
    # given valid svix-* and garbage webhook-*: accepted (webhook-* is not looked at)
    assert outcome([secret], BODY, {**garbage, **headers}) is None
    # given garbage svix-* and valid webhook-*: rejected, whatever the webhook-* say
    valid_webhook = {name.replace("svix-", "webhook-"): value for name, value in headers.items()}
    garbage_svix = {name.replace("webhook-", "svix-"): value for name, value in garbage.items()}
    assert outcome([secret], BODY, {**valid_webhook, **garbage_svix}) == "timestamp_too_old"


def test_verify_prefers_svix_header_per_name(secret: str, headers: dict[str, str]) -> None:
    # given svix-id alone is wrong while webhook-id holds the right id: svix-id is the one used
    mixed = {**headers, "svix-id": "msg_forged", "webhook-id": headers["svix-id"]}
    assert outcome([secret], BODY, mixed) == "no_matching_signature"


@pytest.mark.parametrize("missing", ["svix-id", "svix-timestamp", "svix-signature"])
def test_verify_missing_header_is_rejected(secret: str, headers: dict[str, str], missing: str) -> None:
    del headers[missing]
    assert outcome([secret], BODY, headers) == "missing_headers"


@pytest.mark.parametrize("emptied", ["svix-id", "svix-timestamp", "svix-signature"])
def test_verify_empty_header_value_is_rejected(secret: str, headers: dict[str, str], emptied: str) -> None:
    headers[emptied] = ""
    assert outcome([secret], BODY, headers) == "missing_headers"


def test_verify_empty_svix_header_hides_a_valid_webhook_header(secret: str, headers: dict[str, str]) -> None:
    # svix maps a present-but-empty svix-id as "", not as "fall back to webhook-id"
    headers["webhook-id"] = headers["svix-id"]
    headers["svix-id"] = ""
    assert outcome([secret], BODY, headers) == "missing_headers"


def test_verify_no_headers_is_rejected(secret: str) -> None:
    assert outcome([secret], BODY, {}) == "missing_headers"


def test_standard_headers_maps_names_in_any_case() -> None:
    mapped = standard_headers({"SVIX-ID": "a", "Webhook-Timestamp": "1", "webhook-signature": "s", "x-other": "z"})
    assert mapped == {"webhook-id": "a", "webhook-timestamp": "1", "webhook-signature": "s"}


def test_standard_headers_absent_header_maps_to_empty() -> None:
    assert standard_headers({}) == {"webhook-id": "", "webhook-timestamp": "", "webhook-signature": ""}


# --- timestamps ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("age", [301 + 10, 3600, 10**8])
def test_verify_stale_timestamp_is_rejected(secret: str, age: int) -> None:
    # given a correct signature over an old timestamp
    ts = now() - age
    headers = sign_headers(secret, BODY, msg_id=MSG_ID, timestamp=ts)
    assert outcome([secret], BODY, headers) == "timestamp_too_old"


@pytest.mark.parametrize("ahead", [301 + 10, 3600, 10**8])
def test_verify_future_timestamp_is_rejected(secret: str, ahead: int) -> None:
    ts = now() + ahead
    headers = sign_headers(secret, BODY, msg_id=MSG_ID, timestamp=ts)
    assert outcome([secret], BODY, headers) == "timestamp_too_new"


@pytest.mark.parametrize("skew", [-280, -60, 60, 280])
def test_verify_timestamp_within_tolerance_is_accepted(secret: str, skew: int) -> None:
    headers = sign_headers(secret, BODY, msg_id=MSG_ID, timestamp=now() + skew)
    assert outcome([secret], BODY, headers) is None


@pytest.mark.parametrize("value", ["abc", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "0x10", "12:00", "1,2"])
def test_verify_malformed_timestamp_is_rejected(secret: str, headers: dict[str, str], value: str) -> None:
    headers["svix-timestamp"] = value
    assert outcome([secret], BODY, headers) == "invalid_timestamp"


def test_verify_float_timestamp_is_read_as_its_whole_seconds(secret: str) -> None:
    # svix signs "{id}.{floor(timestamp)}.{body}": a fractional header verifies against the whole-second signature
    ts = now()
    headers = sign_headers(secret, BODY, msg_id=MSG_ID, timestamp=ts)
    headers["svix-timestamp"] = f"{ts}.75"
    assert outcome([secret], BODY, headers) is None
    # and a signature over the literal fractional string does not verify
    key = base64.b64decode(secret.removeprefix("whsec_"))
    forged = base64.b64encode(hmac.new(key, f"{MSG_ID}.{ts}.75.".encode() + BODY, hashlib.sha256).digest())
    headers["svix-signature"] = "v1," + forged.decode()
    assert outcome([secret], BODY, headers) == "no_matching_signature"


def test_verify_float_timestamp_out_of_tolerance_is_rejected(secret: str) -> None:
    ts = now() - 4000
    headers = sign_headers(secret, BODY, msg_id=MSG_ID, timestamp=ts)
    headers["svix-timestamp"] = f"{ts}.5"
    assert outcome([secret], BODY, headers) == "timestamp_too_old"


# --- body and id --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tampered",
    [BODY.replace(b"hello", b"hellO"), BODY + b" ", b" " + BODY, BODY[:-1], b"", BODY.replace(b":", b": ", 1)],
)
def test_verify_tampered_body_is_rejected(secret: str, headers: dict[str, str], tampered: bytes) -> None:
    assert outcome([secret], tampered, headers) == "no_matching_signature"


@pytest.mark.parametrize("forged_id", [MSG_ID + "x", MSG_ID[:-1], MSG_ID.upper(), "msg_other"])
def test_verify_tampered_id_is_rejected(secret: str, headers: dict[str, str], forged_id: str) -> None:
    headers["svix-id"] = forged_id
    assert outcome([secret], BODY, headers) == "no_matching_signature"


def test_verify_tampered_timestamp_is_rejected(secret: str, headers: dict[str, str]) -> None:
    headers["svix-timestamp"] = str(int(headers["svix-timestamp"]) - 1)
    assert outcome([secret], BODY, headers) == "no_matching_signature"


def test_verify_body_not_utf8_is_rejected(secret: str, headers: dict[str, str]) -> None:
    assert outcome([secret], b"\xff\xfe" + BODY, headers) == "body_not_utf8"


def test_verify_body_not_utf8_is_rejected_before_headers_are_read(secret: str) -> None:
    # the body is decoded before any header is looked at, as in svix
    assert outcome([secret], b"\xc3\x28", {}) == "body_not_utf8"


def test_verify_id_with_lone_surrogate_is_rejected_as_signature_error(secret: str, headers: dict[str, str]) -> None:
    headers["svix-id"] = "msg_\ud800"
    assert outcome([secret], BODY, headers) == "malformed_signature"


# --- signature entries --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 1, 2])
def test_verify_rotation_one_valid_entry_in_any_position_is_accepted(secret: str, position: int) -> None:
    ts = now()
    entries = [random_entry(), random_entry()]
    entries.insert(position, v1(secret, BODY, timestamp=ts))
    headers = {"svix-id": MSG_ID, "svix-timestamp": str(ts), "svix-signature": " ".join(entries)}
    assert outcome([secret], BODY, headers) is None


def test_verify_rotation_entries_of_old_and_new_secret_are_accepted_by_either(secret: str) -> None:
    other = new_secret()
    headers = sign_headers([other, secret], BODY, msg_id=MSG_ID)
    assert len(headers["svix-signature"].split(" ")) == 2
    assert outcome([secret], BODY, headers) is None
    assert outcome([other], BODY, headers) is None
    assert outcome([new_secret()], BODY, headers) == "no_matching_signature"


def test_verify_only_non_matching_entries_is_rejected(secret: str, headers: dict[str, str]) -> None:
    headers["svix-signature"] = " ".join(random_entry() for _ in range(3))
    assert outcome([secret], BODY, headers) == "no_matching_signature"


@pytest.mark.parametrize("version", ["v1a", "v2", "V1", "v0", "", " v1"])
def test_verify_unknown_version_is_not_a_match(secret: str, headers: dict[str, str], version: str) -> None:
    # given the right signature under another version tag
    digest = headers["svix-signature"].split(",", 1)[1]
    headers["svix-signature"] = f"{version},{digest}"
    if version == " v1":
        # the leading space splits off an empty entry first, which has no comma
        assert outcome([secret], BODY, headers) == "malformed_signature"
    else:
        assert outcome([secret], BODY, headers) == "no_matching_signature"


def test_verify_unknown_version_then_valid_v1_is_accepted(secret: str, headers: dict[str, str]) -> None:
    digest = headers["svix-signature"].split(",", 1)[1]
    headers["svix-signature"] = f"v1a,{digest} v2,{digest} v1,{digest}"
    assert outcome([secret], BODY, headers) is None


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        # an entry without a comma before the valid one
        ("{junk} {valid}", "malformed_signature"),
        # the same entry after the valid one is never reached, as in svix
        ("{valid} {junk}", None),
        ("{nocomma}", "malformed_signature"),
        ("{valid_nocomma}", "malformed_signature"),
        ("{twocommas}", "malformed_signature"),
        ("{valid},extra", "malformed_signature"),
        ("{random}  {valid}", "malformed_signature"),
        ("{valid}  {random}", None),
        ("{valid} ", None),
        (" {valid}", "malformed_signature"),
        ("{random}\t{valid}", "malformed_signature"),
        ("v1,!!!notbase64", "malformed_signature"),
        ("v1,abc", "malformed_signature"),
        ("v1,@@@@", "no_matching_signature"),
        ("v1,YWJj", "no_matching_signature"),
        ("v1,", "no_matching_signature"),
        ("v1,{valid_digest_truncated}", "malformed_signature"),
        ("v1,{valid_digest_flipped}", "no_matching_signature"),
        ("v1,{valid_digest_urlsafe}", "no_matching_signature"),
        ("{junk_base64} {valid}", "malformed_signature"),
        ("{valid} {junk_base64}", None),
    ],
)
def test_verify_malformed_entries_match_svix(
    secret: str, headers: dict[str, str], shape: str, expected: str | None
) -> None:
    valid = headers["svix-signature"]
    digest = valid.split(",", 1)[1]
    flipped = ("B" if digest[0] == "A" else "A") + digest[1:]
    headers["svix-signature"] = shape.format(
        valid=valid,
        junk="v1",
        nocomma="v1" + digest,
        valid_nocomma=valid.replace(",", ""),
        twocommas=f"v1,{digest},{digest}",
        random=random_entry(),
        valid_digest_truncated=digest[:-3],
        valid_digest_flipped=flipped,
        valid_digest_urlsafe=base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),
        junk_base64="v1,abcde@",
    )
    assert outcome([secret], BODY, headers) == expected


def test_verify_base64_with_noise_characters_is_read_like_svix(secret: str, headers: dict[str, str]) -> None:
    # non-alphabet characters are dropped by the (non-strict) base64 decoder both use, so this still verifies
    digest = headers["svix-signature"].split(",", 1)[1]
    headers["svix-signature"] = "v1," + "!".join(digest[i : i + 4] for i in range(0, len(digest), 4))
    assert outcome([secret], BODY, headers) is None


# --- several secrets -------------------------------------------------------------------------------------------------


def test_verify_second_of_several_secrets_verifies(secret: str, headers: dict[str, str]) -> None:
    old = new_secret()
    assert outcome([old], BODY, headers) == "no_matching_signature"
    assert outcome([old, secret], BODY, headers) is None
    assert outcome([old, new_secret(), secret], BODY, headers) is None


def test_verify_secret_order_does_not_matter_with_malformed_entries(secret: str, headers: dict[str, str]) -> None:
    # a malformed entry after the valid one: the matching secret returns before reaching it; the other secret
    # raises on it. Each secret is tried in full, so the verdict is "accept" in either order.
    headers["svix-signature"] = headers["svix-signature"] + " v1"
    old = new_secret()
    assert outcome([old, secret], BODY, headers) is None
    assert outcome([secret, old], BODY, headers) is None
    assert outcome([old], BODY, headers) == "malformed_signature"


def test_verify_reports_the_first_secrets_reason(secret: str, headers: dict[str, str]) -> None:
    headers["svix-signature"] = random_entry()
    with pytest.raises(SignatureError) as raised:
        SignatureVerifier([new_secret(), new_secret()]).verify_standard(BODY, standard_headers(headers))
    assert raised.value.reason == "no_matching_signature"


def test_verifier_without_secrets_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        SignatureVerifier([])


def test_verify_unpadded_secret_works_like_svix(headers: dict[str, str], secret: str) -> None:
    unpadded = secret.rstrip("=")
    assert outcome([unpadded], BODY, headers) is None
    assert svix_accepts(unpadded, BODY, headers)
