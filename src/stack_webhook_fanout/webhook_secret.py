"""The webhook secret(s) from Secrets Manager: cached, rotation-aware, and cheap under a flood of bad requests."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from .errors import DependencyError, SecretNotConfiguredError
from .signature import SignatureVerifier

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_secretsmanager import SecretsManagerClient

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


class WebhookSecretSource:
    """Fetch and cache the verifier built from the secret.

    Parameters
    ----------
    client:
        A Secrets Manager client (injected so tests can point it at an emulator).
    secret_arn:
        The secret's ARN or name.
    max_age_seconds:
        A fetched secret is trusted this long; after that the next request refetches it. If that refetch fails
        the cached secret keeps serving (a Secrets Manager outage must not stop ingestion).
    refresh_interval_seconds:
        :meth:`refresh_after_failure` refetches at most once per this interval.
    clock:
        Monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        client: SecretsManagerClient,
        secret_arn: str,
        *,
        max_age_seconds: float = 300,
        refresh_interval_seconds: float = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._secret_arn = secret_arn
        self._max_age = max_age_seconds
        self._refresh_interval = refresh_interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._verifier: SignatureVerifier | None = None
        self._secret_string: str | None = None
        self._fetched_at = float("-inf")
        # The failure of the last fetch while no secret is usable: repeated without a call to Secrets Manager
        # until refresh_interval_seconds have passed, so requests arriving before the secret is set (or during an
        # outage) cannot turn into one GetSecretValue each.
        self._last_error: DependencyError | SecretNotConfiguredError | None = None
        self.fetch_count = 0
        self.last_ignored_entries = 0

    def verifier(self) -> SignatureVerifier:
        """Return the cached verifier, fetching the secret first when there is none or it is too old."""
        with self._lock:
            age = self._clock() - self._fetched_at
            if self._verifier is None and self._last_error is not None and age < self._refresh_interval:
                raise self._last_error.with_traceback(None)
            if self._verifier is None or age >= self._max_age:
                self._refetch(keep_stale_on_error=self._verifier is not None)
            assert self._verifier is not None
            return self._verifier

    def refresh_after_failure(self) -> SignatureVerifier | None:
        """After a failed verification: refetch if allowed, return the new verifier if the secret changed."""
        with self._lock:
            if self._clock() - self._fetched_at < self._refresh_interval:
                return None
            before = self._secret_string
            self._refetch(keep_stale_on_error=True)
            return self._verifier if self._secret_string != before else None

    def _refetch(self, *, keep_stale_on_error: bool) -> None:
        self._fetched_at = self._clock()
        self.fetch_count += 1
        try:
            secret_string = self._fetch()
            usable, ignored = parse_secret_string(secret_string)
            if not usable:
                raise SecretNotConfiguredError(f"the secret holds no whsec_ value: {HOW_TO_SET}")
        except (DependencyError, SecretNotConfiguredError) as exc:
            if keep_stale_on_error and self._verifier is not None:
                return
            self._last_error = exc
            raise
        self._last_error = None
        self.last_ignored_entries = ignored
        self._secret_string = secret_string
        self._verifier = SignatureVerifier(usable)

    def _fetch(self) -> str:
        try:
            response = self._client.get_secret_value(SecretId=self._secret_arn)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise SecretNotConfiguredError(f"the secret or its value does not exist: {HOW_TO_SET}") from exc
            raise DependencyError("secretsmanager", code or "ClientError") from exc
        except BotoCoreError as exc:
            raise DependencyError("secretsmanager", type(exc).__name__) from exc
        secret_string = response.get("SecretString")
        if not secret_string:
            raise SecretNotConfiguredError(f"the secret has no SecretString: {HOW_TO_SET}")
        return secret_string
