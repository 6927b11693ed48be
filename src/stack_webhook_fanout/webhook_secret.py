"""The webhook secret(s) from Secrets Manager: cached, rotation-aware, and cheap under a flood of bad requests."""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from .aws_calls import dependency_error, error_code, http_status, track_calls
from .errors import DependencyError, NoUsableSecretError
from .signature import SignatureVerifier

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_secretsmanager import SecretsManagerClient

#: An instant by both clocks: (monotonic seconds, epoch seconds).
_Instant = tuple[float, float]

SECRET_PREFIX: Final = "whsec_"
HOW_TO_SET: Final = (
    "put the signing secret of the Stack webhook endpoint (whsec_...) into the secret; during a rotation put the "
    "old and the new value separated by a space: aws secretsmanager put-secret-value --secret-id <WebhookSecretArn> "
    "--secret-string 'whsec_...'"
)


def parse_secret_string(value: str) -> tuple[list[str], int]:
    """Split a SecretString into its usable ``whsec_`` secrets; return them and how many entries were ignored.

    Entries are separated by whitespace. An entry that is not ``whsec_`` followed by base64 is ignored, so a
    half-finished rotation does not stop the valid secret from working.
    """
    usable: list[str] = []
    ignored = 0
    for entry in value.split():
        if not entry.startswith(SECRET_PREFIX):
            ignored += 1
            continue
        try:
            SignatureVerifier([entry])
        except Exception:  # binascii.Error, EmptyWebhookSecretError: not a usable key either way
            ignored += 1
            continue
        usable.append(entry)
    return usable, ignored


# Secrets Manager errors that say "try again later": the service is busy or failing, not refusing this secret.
# Every other error answer (AccessDenied, ResourceNotFound, a secret scheduled for deletion, a key that no longer
# decrypts it) is a refusal, and a refusal revokes the cached secret at once.
_OUTAGE_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServiceError",
        "InternalServiceErrorException",
        "InternalServerError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
HOW_TO_ALLOW: Final = (
    "let the function's role read the secret (secretsmanager:GetSecretValue on the secret, and kms:Decrypt on its "
    "key), or point WEBHOOK_SECRET_ARN at a secret it may read"
)


class WebhookSecretSource:
    """Fetch and cache the verifier built from the secret; forget it when the secret is revoked or too old.

    The cached secret is trusted for at most ``max_age_seconds`` after the last *successful* read. It is read again
    once half of that has passed, so that a Secrets Manager outage (throttling, 5xx, timeouts) has the other half
    to end before the secret expires; then requests fail closed (503, retried by the sender) until a read succeeds.
    A read that answers with a refusal (the value holds no usable ``whsec_`` entry, the secret is deleted, or the
    read is denied) is a revocation: the cached verifier is dropped at once.

    Reads are rate limited: after a failed read, and after a failed verification, the secret is read at most once
    per ``refresh_interval_seconds``, so a flood of requests cannot become one GetSecretValue each.

    Parameters
    ----------
    client:
        A Secrets Manager client (injected so tests can point it at an emulator).
    secret_arn:
        The secret's ARN or name.
    max_age_seconds:
        How long after its last successful read a secret is trusted.
    refresh_interval_seconds:
        The least time between a failed read (or a refresh after a failed verification) and the next read.
    clock, wall_clock:
        Monotonic and epoch seconds; injectable for tests. A secret's age is the larger of the time each clock
        says has passed since the read, so that the bound holds in wall-clock time even when the monotonic clock
        stood still (a frozen or snapshotted microVM), and a wall clock earlier than at the read makes the secret
        expired: neither a frozen clock nor a step back extends trust.
    """

    def __init__(
        self,
        client: SecretsManagerClient,
        secret_arn: str,
        *,
        max_age_seconds: float = 300,
        refresh_interval_seconds: float = 10,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        track_calls(client, "secretsmanager")
        self._secret_arn = secret_arn
        self._max_age = max_age_seconds
        self._refresh_age = max_age_seconds / 2
        self._refresh_interval = refresh_interval_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._verifier: SignatureVerifier | None = None
        self._secret_string: str | None = None
        self._read_at: _Instant | None = None  # the last successful read
        self._attempted_at: _Instant | None = None  # the last read, successful or not
        # The failure of the last read, repeated without a call to Secrets Manager until the refresh interval has
        # passed: requests arriving before the secret is set, after it is revoked or during an outage cannot turn
        # into one GetSecretValue each.
        self._last_error: DependencyError | NoUsableSecretError | None = None

    def verifier(self) -> SignatureVerifier:
        """Return the verifier of the current secret, reading it when due; raise when none may be trusted.

        Raises :class:`NoUsableSecretError` when the secret is unset or revoked, :class:`DependencyError`
        when it cannot be read and no cached secret is young enough to trust.
        """
        with self._lock:
            if self._verifier is not None and self._age(self._read_at) < self._refresh_age:
                return self._verifier
            if self._read_allowed():
                self._read()  # raises on a revocation; records an outage and carries on
            if self._verifier is not None and self._age(self._read_at) < self._max_age:
                return self._verifier
            # Too old to trust (or never read): fail closed until a read succeeds. Only a failed read gets here.
            self._verifier = None
            assert self._last_error is not None
            raise self._last_error.with_traceback(None)

    def refresh_after_failure(self) -> SignatureVerifier | None:
        """After a failed verification: read the secret again if allowed; return the new verifier if it changed.

        Raises :class:`NoUsableSecretError` when that read finds the secret revoked. A read that fails for an
        outage changes nothing (the failed verification stands).
        """
        with self._lock:
            if self._age(self._attempted_at) < self._refresh_interval:
                return None
            before = self._secret_string
            self._read()
            if self._last_error is not None or self._secret_string == before:
                return None
            return self._verifier

    def _now(self) -> _Instant:
        return self._clock(), self._wall_clock()

    def _age(self, since: _Instant | None) -> float:
        """Seconds since ``since`` by whichever clock says more; infinite when never, or the wall clock went back."""
        if since is None:
            return math.inf
        monotonic, wall = self._now()
        if wall < since[1]:
            return math.inf
        return max(monotonic - since[0], wall - since[1])

    def _read_allowed(self) -> bool:
        if self._last_error is not None:
            return self._age(self._attempted_at) >= self._refresh_interval
        return True  # the last read succeeded: the verifier is past its refresh age (or there never was one)

    def _read(self) -> None:
        # Stamped before the call: the age counts from before the value was read, never from after.
        now = self._now()
        self._attempted_at = now
        try:
            secret_string = self._fetch()
            usable, _ = parse_secret_string(secret_string)
            if not usable:
                raise NoUsableSecretError(f"the secret holds no usable whsec_ value: {HOW_TO_SET}")
        except NoUsableSecretError as exc:
            # A revocation: whatever was cached must not verify one more request.
            self._verifier = None
            self._secret_string = None
            self._last_error = exc
            raise
        except DependencyError as exc:
            self._last_error = exc  # an outage: the cached secret serves until its max age
            return
        self._last_error = None
        self._read_at = now
        if secret_string != self._secret_string or self._verifier is None:
            self._secret_string = secret_string
            self._verifier = SignatureVerifier(usable)

    def _fetch(self) -> str:
        try:
            response = self._client.get_secret_value(SecretId=self._secret_arn)
        except ClientError as exc:
            code = error_code(exc)
            if code in _OUTAGE_CODES or http_status(exc) >= 500:
                raise dependency_error("secretsmanager", exc) from exc
            if code == "ResourceNotFoundException":
                raise NoUsableSecretError(f"the secret or its value does not exist: {HOW_TO_SET}") from exc
            raise NoUsableSecretError(f"reading the secret was refused ({code}): {HOW_TO_ALLOW}") from exc
        except BotoCoreError as exc:
            raise dependency_error("secretsmanager", exc) from exc
        secret_string = response.get("SecretString")
        if not secret_string:
            raise NoUsableSecretError(f"the secret has no SecretString: {HOW_TO_SET}")
        return secret_string
