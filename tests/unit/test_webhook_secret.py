"""``webhook_secret.py``: parsing the SecretString, and the cached, rotation-aware source over in-process moto
Secrets Manager. GetSecretValue calls are counted with a botocore ``before-call`` hook on the real client."""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from stack_webhook_fanout_tools.devkit.signing import new_secret, sign_headers

from stack_webhook_fanout.errors import DependencyError, NoUsableSecretError, SignatureError
from stack_webhook_fanout.signature import SignatureVerifier, standard_headers
from stack_webhook_fanout.webhook_secret import HOW_TO_ALLOW, HOW_TO_SET, WebhookSecretSource, parse_secret_string

if TYPE_CHECKING:
    from collections.abc import Callable

BODY = b'{"type":"stack.test","data":{"message":"hi"}}'
MAX_AGE = 300
INTERVAL = 10


def accepts(verifier: SignatureVerifier, secret: str) -> bool:
    """Whether ``verifier`` accepts a body freshly signed with ``secret``."""
    try:
        verifier.verify_standard(BODY, standard_headers(sign_headers(secret, BODY)))
    except SignatureError:
        return False
    return True


# --- parse_secret_string --------------------------------------------------------------------------------------------


def test_parse_secret_string_one_value() -> None:
    secret = new_secret()
    assert parse_secret_string(secret) == ([secret], 0)


def test_parse_secret_string_surrounding_whitespace_is_ignored() -> None:
    secret = new_secret()
    assert parse_secret_string(f"\n  {secret}\t\n") == ([secret], 0)


def test_parse_secret_string_several_values_separated_by_any_whitespace() -> None:
    old, new, newest = new_secret(), new_secret(), new_secret()
    assert parse_secret_string(f"{old} {new}\n{newest}") == ([old, new, newest], 0)
    assert parse_secret_string(f"{old}\t\t{new}") == ([old, new], 0)


def test_parse_secret_string_non_whsec_entries_are_ignored_and_counted() -> None:
    secret = new_secret()
    usable, ignored = parse_secret_string(f"REPLACE_ME {secret} sk_live_abc WHSEC_abcd whsec")
    assert usable == [secret]
    assert ignored == 4


@pytest.mark.parametrize("bad", ["whsec_", "whsec_a", "whsec_abcde", "whsec_==", "whsec_!!!!"])
def test_parse_secret_string_bad_base64_is_ignored(bad: str) -> None:
    secret = new_secret()
    assert parse_secret_string(f"{bad} {secret}") == ([secret], 1)
    assert parse_secret_string(bad) == ([], 1)


@pytest.mark.parametrize("value", ["", "   ", "\n", "REPLACE_WITH_THE_WHSEC_VALUE", "{}", "whsec_"])
def test_parse_secret_string_nothing_usable(value: str) -> None:
    usable, _ = parse_secret_string(value)
    assert usable == []


def test_parse_secret_string_values_verify_like_the_secret() -> None:
    old, new = new_secret(), new_secret()
    usable, _ = parse_secret_string(f"{old} {new}")
    # the parsed values are the secrets themselves: each verifies what was signed with it
    verifier = SignatureVerifier(usable)
    assert accepts(verifier, old)
    assert accepts(verifier, new)
    assert not accepts(verifier, new_secret())


# --- WebhookSecretSource ---------------------------------------------------------------------------------------------


@pytest.fixture
def get_calls(secretsmanager: Any, count_calls: Callable[..., Any]) -> Any:
    """Counter of the GetSecretValue calls the client really makes."""
    return count_calls(secretsmanager, "secrets-manager", "GetSecretValue")


@pytest.fixture
def source(secretsmanager: Any, secret_arn: str, clock: Any) -> WebhookSecretSource:
    return WebhookSecretSource(
        secretsmanager, secret_arn, max_age_seconds=MAX_AGE, refresh_interval_seconds=INTERVAL, clock=clock
    )


def test_source_first_call_fetches_and_verifies(
    source: WebhookSecretSource, webhook_secret: str, get_calls: Any
) -> None:
    verifier = source.verifier()
    assert accepts(verifier, webhook_secret)
    assert not accepts(verifier, new_secret())
    assert get_calls.count == 1


def test_source_is_cached_until_half_its_max_age(source: WebhookSecretSource, clock: Any, get_calls: Any) -> None:
    # given a fetched secret
    first = source.verifier()
    # when asked again and again until just before half the max age (when it is read again)
    for _ in range(50):
        clock.advance((MAX_AGE / 2 - 1) / 50)
        assert source.verifier() is first
    # then Secrets Manager was read once
    assert get_calls.count == 1


def test_source_reads_again_at_half_its_max_age(source: WebhookSecretSource, clock: Any, get_calls: Any) -> None:
    source.verifier()
    clock.advance(MAX_AGE / 2)
    source.verifier()
    assert get_calls.count == 2
    # and is cached again after that read
    clock.advance(MAX_AGE / 2 - 1)
    source.verifier()
    assert get_calls.count == 2


def test_source_picks_up_a_rotated_secret_after_max_age(
    source: WebhookSecretSource, secretsmanager: Any, secret_arn: str, clock: Any, webhook_secret: str
) -> None:
    assert accepts(source.verifier(), webhook_secret)
    rotated = new_secret()
    secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=rotated)
    # within max age the cached secret still serves
    assert accepts(source.verifier(), webhook_secret)
    clock.advance(MAX_AGE)
    verifier = source.verifier()
    assert accepts(verifier, rotated)
    assert not accepts(verifier, webhook_secret)


def test_source_rotation_with_both_values_accepts_both(
    source: WebhookSecretSource, secretsmanager: Any, secret_arn: str, clock: Any, webhook_secret: str
) -> None:
    rotated = new_secret()
    secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=f"{webhook_secret} {rotated}")
    verifier = source.verifier()
    assert accepts(verifier, webhook_secret)
    assert accepts(verifier, rotated)


def test_source_refresh_after_failure_is_rate_limited(source: WebhookSecretSource, clock: Any, get_calls: Any) -> None:
    source.verifier()
    # given a flood of failed verifications within the interval: no read at all
    for _ in range(1_000):
        assert source.refresh_after_failure() is None
    assert get_calls.count == 1
    # when the flood goes on for 30 s (100 failures per second): one read per interval
    for _ in range(30):
        clock.advance(1)
        for _ in range(100):
            source.refresh_after_failure()
    assert get_calls.count == 1 + 30 // INTERVAL


def test_source_refresh_after_failure_returns_none_when_unchanged(
    source: WebhookSecretSource, clock: Any, get_calls: Any
) -> None:
    source.verifier()
    clock.advance(INTERVAL)
    assert source.refresh_after_failure() is None
    assert get_calls.count == 2


def test_source_refresh_after_failure_returns_the_rotated_verifier(
    source: WebhookSecretSource, secretsmanager: Any, secret_arn: str, clock: Any, webhook_secret: str
) -> None:
    old = source.verifier()
    rotated = new_secret()
    secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=rotated)
    clock.advance(INTERVAL)
    refreshed = source.refresh_after_failure()
    assert refreshed is not None
    assert refreshed is not old
    assert accepts(refreshed, rotated)
    # and it is what the source serves from now on
    assert source.verifier() is refreshed


def test_source_refresh_counts_against_max_age(source: WebhookSecretSource, clock: Any, get_calls: Any) -> None:
    source.verifier()
    clock.advance(MAX_AGE - 5)
    source.refresh_after_failure()
    clock.advance(10)
    # the refresh 10 s ago renewed the cache: no read now
    source.verifier()
    assert get_calls.count == 2


OUTAGES: list[Exception | str] = [
    EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com"),
    ReadTimeoutError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com"),
    "InternalServiceError",
    "ThrottlingException",
]
REFUSALS = ["AccessDeniedException", "DecryptionFailure", "InvalidRequestException", "ResourceNotFoundException"]


@pytest.mark.parametrize("error", OUTAGES)
def test_source_outage_keeps_the_cached_secret_until_its_max_age_then_fails_closed(
    source: WebhookSecretSource,
    secretsmanager: Any,
    clock: Any,
    webhook_secret: str,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
    error: Exception | str,
) -> None:
    # given a secret read successfully at t=0
    read_at = clock.now
    first = source.verifier()
    # when Secrets Manager fails from then on
    failure = make_client_error(error, "GetSecretValue") if isinstance(error, str) else error
    fault = inject_fault(secretsmanager, "secrets-manager", "GetSecretValue", failure)
    # then the cached verifier keeps serving until just before the max age, read again once per interval
    clock.advance(MAX_AGE / 2)
    while clock.now < read_at + MAX_AGE - 1:
        assert source.verifier() is first
        clock.advance(1)
    assert accepts(first, webhook_secret)
    reads_within = math.ceil((MAX_AGE / 2 - 1) / INTERVAL)
    assert fault.raised == reads_within
    # and from the max age on every request fails closed, still reading at most once per interval
    clock.advance(1)
    for _ in range(3 * INTERVAL):
        with pytest.raises(DependencyError) as raised:
            source.verifier()
        assert raised.value.service == "secretsmanager"
        clock.advance(1)
    assert fault.raised == reads_within + 3
    # and once Secrets Manager is back, the next read allowed trusts the secret again
    fault.active = False
    clock.advance(INTERVAL)
    assert accepts(source.verifier(), webhook_secret)


@pytest.mark.parametrize("code", REFUSALS)
def test_source_refused_read_revokes_the_cached_secret_at_once(
    source: WebhookSecretSource,
    secretsmanager: Any,
    clock: Any,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
    get_calls: Any,
    code: str,
) -> None:
    # given a cached secret, and then a read that is refused (denied, deleted, undecryptable)
    source.verifier()
    inject_fault(secretsmanager, "secrets-manager", "GetSecretValue", make_client_error(code, "GetSecretValue"))
    # when the secret is read again (at half its max age, well inside it)
    clock.advance(MAX_AGE / 2)
    with pytest.raises(NoUsableSecretError) as raised:
        source.verifier()
    # then the cached verifier is gone at once, and the message says how to fix it (never a secret value)
    assert HOW_TO_SET in str(raised.value) or HOW_TO_ALLOW in str(raised.value)
    for _ in range(100):
        with pytest.raises(NoUsableSecretError):
            source.verifier()
    # and the refusal is remembered for the interval instead of read again per request
    assert get_calls.count == 2


def test_source_flood_during_an_outage_reads_once_per_interval(
    source: WebhookSecretSource,
    secretsmanager: Any,
    clock: Any,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
    get_calls: Any,
) -> None:
    source.verifier()
    inject_fault(
        secretsmanager, "secrets-manager", "GetSecretValue", make_client_error("InternalServiceError", "GetSecretValue")
    )
    # a flood of 100 requests per second from half the max age, through the max age and 30 s past it
    clock.advance(MAX_AGE / 2)
    seconds = MAX_AGE // 2 + 30
    for _ in range(seconds):
        for _ in range(100):
            with contextlib.suppress(DependencyError):
                source.verifier()
        clock.advance(1)
    # one read per interval, not one per request
    assert get_calls.count == 1 + seconds // INTERVAL


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (
            EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com"),
            "EndpointConnectionError",
        ),
        ("InternalServiceError", "InternalServiceError"),
        ("ThrottlingException", "ThrottlingException"),
    ],
)
def test_source_without_cache_raises_dependency_error(
    source: WebhookSecretSource,
    secretsmanager: Any,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
    webhook_secret: str,
    clock: Any,
    get_calls: Any,
    error: Exception | str,
    detail: str,
) -> None:
    failure = make_client_error(error, "GetSecretValue") if isinstance(error, str) else error
    fault = inject_fault(secretsmanager, "secrets-manager", "GetSecretValue", failure)
    with pytest.raises(DependencyError) as raised:
        source.verifier()
    assert raised.value.service == "secretsmanager"
    assert raised.value.detail == detail
    # within the refresh interval the failure is repeated without another call, even once Secrets Manager is back
    fault.active = False
    clock.advance(INTERVAL - 1)
    with pytest.raises(DependencyError):
        source.verifier()
    assert get_calls.count == 1
    # after it, the next request reads the secret again and succeeds
    clock.advance(1)
    assert accepts(source.verifier(), webhook_secret)
    assert get_calls.count == 2


def test_source_without_cache_flood_of_requests_reads_once_per_interval(
    secretsmanager: Any, clock: Any, count_calls: Callable[..., Any]
) -> None:
    # given no usable secret yet (the template's placeholder) and requests arriving 100 per second for 30 s
    arn = secretsmanager.create_secret(Name="not-set-yet", SecretString="REPLACE_ME")["ARN"]
    reads = count_calls(secretsmanager, "secrets-manager", "GetSecretValue")
    source = WebhookSecretSource(
        secretsmanager, arn, max_age_seconds=MAX_AGE, refresh_interval_seconds=INTERVAL, clock=clock
    )
    for _ in range(30):
        for _ in range(100):
            with pytest.raises(NoUsableSecretError):
                source.verifier()
        clock.advance(1)
    # then Secrets Manager was read once per interval, not once per request
    assert reads.count == 30 // INTERVAL


def test_source_missing_secret_is_not_configured(secretsmanager: Any, clock: Any) -> None:
    source = WebhookSecretSource(secretsmanager, "does/not/exist", clock=clock)
    with pytest.raises(NoUsableSecretError) as raised:
        source.verifier()
    assert HOW_TO_SET in str(raised.value)


def test_source_secret_without_value_is_not_configured(secretsmanager: Any, clock: Any) -> None:
    # created by the template without a value: GetSecretValue answers ResourceNotFoundException
    arn = secretsmanager.create_secret(Name="no-value-yet")["ARN"]
    with pytest.raises(NoUsableSecretError):
        WebhookSecretSource(secretsmanager, arn, clock=clock).verifier()


@pytest.mark.parametrize("placeholder", ["REPLACE_ME", "change-me whsec_", '{"secret":"whsec_abc"}', "whsec_!!!!"])
def test_source_placeholder_value_is_not_configured(secretsmanager: Any, clock: Any, placeholder: str) -> None:
    arn = secretsmanager.create_secret(Name="placeholder", SecretString=placeholder)["ARN"]
    with pytest.raises(NoUsableSecretError) as raised:
        WebhookSecretSource(secretsmanager, arn, clock=clock).verifier()
    assert HOW_TO_SET in str(raised.value)
    # the message says how to set it but never repeats the stored value
    assert placeholder not in str(raised.value)


def test_source_binary_secret_is_not_configured(secretsmanager: Any, clock: Any) -> None:
    arn = secretsmanager.create_secret(Name="binary", SecretBinary=b"whsec_abc")["ARN"]
    with pytest.raises(NoUsableSecretError):
        WebhookSecretSource(secretsmanager, arn, clock=clock).verifier()


def test_source_placeholder_replaced_by_a_real_value_is_picked_up(secretsmanager: Any, clock: Any) -> None:
    arn = secretsmanager.create_secret(Name="placeholder", SecretString="REPLACE_ME")["ARN"]
    source = WebhookSecretSource(secretsmanager, arn, clock=clock)
    with pytest.raises(NoUsableSecretError):
        source.verifier()
    # the operator sets the value: it is used once the refresh interval since the failed read has passed
    secret = new_secret()
    secretsmanager.put_secret_value(SecretId=arn, SecretString=secret)
    with pytest.raises(NoUsableSecretError):
        source.verifier()
    clock.advance(10)
    assert accepts(source.verifier(), secret)


def test_source_counts_ignored_entries(secretsmanager: Any, clock: Any) -> None:
    secret = new_secret()
    arn = secretsmanager.create_secret(Name="half-rotated", SecretString=f"whsec_ {secret} old-value")["ARN"]
    source = WebhookSecretSource(secretsmanager, arn, clock=clock)
    # the two unusable entries are ignored (counted by parse_secret_string), the usable one verifies
    assert accepts(source.verifier(), secret)


@pytest.mark.parametrize("revoked", ["REVOKED", "REPLACE_ME whsec_", "whsec_!!!!"])
def test_source_value_without_a_usable_entry_revokes_the_cached_secret(
    source: WebhookSecretSource,
    secretsmanager: Any,
    secret_arn: str,
    clock: Any,
    revoked: str,
) -> None:
    # given a working cached secret, then the operator replaces the value with one holding no usable whsec_ entry
    source.verifier()
    secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=revoked)
    # when it is read again
    clock.advance(MAX_AGE / 2)
    # then the old secret is dropped at once: not configured, with how to set it, and not the stored value
    with pytest.raises(NoUsableSecretError) as raised:
        source.verifier()
    assert HOW_TO_SET in str(raised.value)
    assert revoked not in str(raised.value)


def test_source_revoked_by_deleting_the_secret(
    source: WebhookSecretSource, secretsmanager: Any, secret_arn: str, clock: Any
) -> None:
    source.verifier()
    secretsmanager.delete_secret(SecretId=secret_arn, ForceDeleteWithoutRecovery=True)
    clock.advance(MAX_AGE / 2)
    with pytest.raises(NoUsableSecretError):
        source.verifier()


def test_source_revoked_when_a_failed_verification_reads_it_early(
    source: WebhookSecretSource, secretsmanager: Any, secret_arn: str, clock: Any
) -> None:
    # a forged or newly signed delivery makes the source read early; that read finds the secret revoked
    source.verifier()
    secretsmanager.put_secret_value(SecretId=secret_arn, SecretString="REVOKED")
    clock.advance(INTERVAL)
    with pytest.raises(NoUsableSecretError):
        source.refresh_after_failure()
    with pytest.raises(NoUsableSecretError):
        source.verifier()


def test_source_outage_during_a_failed_verification_refresh_keeps_the_secret(
    source: WebhookSecretSource,
    secretsmanager: Any,
    clock: Any,
    inject_fault: Callable[..., Any],
    make_client_error: Callable[..., Exception],
) -> None:
    first = source.verifier()
    inject_fault(
        secretsmanager, "secrets-manager", "GetSecretValue", make_client_error("ThrottlingException", "GetSecretValue")
    )
    clock.advance(INTERVAL)
    assert source.refresh_after_failure() is None
    assert source.verifier() is first


def test_source_rotation_old_and_new_then_new_alone(
    source: WebhookSecretSource, secretsmanager: Any, secret_arn: str, clock: Any, webhook_secret: str
) -> None:
    rotated = new_secret()
    assert accepts(source.verifier(), webhook_secret)
    # the rotation starts: both values
    secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=f"{webhook_secret} {rotated}")
    clock.advance(MAX_AGE / 2)
    during = source.verifier()
    assert accepts(during, webhook_secret)
    assert accepts(during, rotated)
    # and ends: the new one alone; the old one stops verifying at the next read
    secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=rotated)
    clock.advance(MAX_AGE / 2)
    after = source.verifier()
    assert accepts(after, rotated)
    assert not accepts(after, webhook_secret)


# --- the age bound in wall-clock time: two clocks the test moves apart ------------------------------------------------


@pytest.fixture
def two_clock_source(secretsmanager: Any, secret_arn: str, clock: Any, wall_clock: Any) -> WebhookSecretSource:
    """A source whose monotonic clock (``clock``) and wall clock (``wall_clock``) the test moves separately."""
    return WebhookSecretSource(
        secretsmanager,
        secret_arn,
        max_age_seconds=MAX_AGE,
        refresh_interval_seconds=INTERVAL,
        clock=clock,
        wall_clock=wall_clock,
    )


def test_age_counts_wall_clock_time_while_the_monotonic_clock_stands_still(
    two_clock_source: WebhookSecretSource,
    wall_clock: Any,
    secretsmanager: Any,
    inject_fault: Callable[..., Any],
    webhook_secret: str,
) -> None:
    # given a cached secret, then Secrets Manager down, and the microVM frozen: only the wall clock moves
    assert accepts(two_clock_source.verifier(), webhook_secret)
    inject_fault(secretsmanager, "secrets-manager", "GetSecretValue", EndpointConnectionError(endpoint_url="x"))
    # when less than the max age has passed on the wall clock: the cached secret still serves
    wall_clock.advance(MAX_AGE - 1)
    assert accepts(two_clock_source.verifier(), webhook_secret)
    # when the max age has passed on the wall clock (the monotonic clock has not moved at all)
    wall_clock.advance(1 + INTERVAL)
    # then it is no longer trusted: fails closed
    with pytest.raises(DependencyError):
        two_clock_source.verifier()


def test_a_revocation_is_seen_at_half_the_max_age_of_wall_clock_time(
    two_clock_source: WebhookSecretSource,
    wall_clock: Any,
    secretsmanager: Any,
    secret_arn: str,
    get_calls: Any,
) -> None:
    two_clock_source.verifier()
    secretsmanager.put_secret_value(SecretId=secret_arn, SecretString="REVOKED")
    wall_clock.advance(MAX_AGE / 2 - 1)
    two_clock_source.verifier()  # still the cached secret, no read
    assert get_calls.count == 1
    wall_clock.advance(1)
    with pytest.raises(NoUsableSecretError):
        two_clock_source.verifier()
    assert get_calls.count == 2


def test_age_counts_monotonic_time_while_the_wall_clock_stands_still(
    two_clock_source: WebhookSecretSource,
    clock: Any,
    secretsmanager: Any,
    inject_fault: Callable[..., Any],
) -> None:
    two_clock_source.verifier()
    inject_fault(secretsmanager, "secrets-manager", "GetSecretValue", EndpointConnectionError(endpoint_url="x"))
    clock.advance(MAX_AGE)
    with pytest.raises(DependencyError):
        two_clock_source.verifier()


@pytest.mark.parametrize("step_back", [0.001, 1, MAX_AGE * 10])
def test_a_wall_clock_step_backwards_expires_the_cached_secret(
    two_clock_source: WebhookSecretSource,
    wall_clock: Any,
    clock: Any,
    secretsmanager: Any,
    inject_fault: Callable[..., Any],
    get_calls: Any,
    step_back: float,
) -> None:
    # given a cached secret, read a moment ago by both clocks
    two_clock_source.verifier()
    clock.advance(1)
    wall_clock.advance(1)
    # when the wall clock steps back past the read
    wall_clock.advance(-1 - step_back)
    # then the next request reads the secret again instead of trusting the cached one for longer
    two_clock_source.verifier()
    assert get_calls.count == 2
    # and were Secrets Manager down after another step back, nothing would be trusted
    inject_fault(secretsmanager, "secrets-manager", "GetSecretValue", EndpointConnectionError(endpoint_url="x"))
    wall_clock.advance(-step_back)
    with pytest.raises(DependencyError):
        two_clock_source.verifier()
