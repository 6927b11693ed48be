"""How the function's AWS calls end, and how long they may take.

One mapping of botocore's errors to :class:`DependencyError`, which says whether a failed call may have taken effect
anyway, and the invocation's deadline, which bounds every call's timeouts and retries so that the function answers
(and writes its outcome line) before Lambda stops it.

Only a proven refusal counts as "did not take effect": an error answer below 500, or a failure before the request
was sent (no connection could be made, no credentials). A 5xx, a read timeout, a closed connection, or any of those
on an attempt that botocore then retried may come after the service acted on the request.

The deadline uses botocore's public API only: clients made with :class:`botocore.config.Config` timeouts of a few
sizes (:data:`TIMEOUT_TIERS`), the largest whose one attempt fits the call's budget chosen per call (a call that
not even the smallest fits is refused unsent), and botocore's documented ``needs-retry`` event to refuse a retry
that would not end in time.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ProxyConnectionError,
)

from .errors import DependencyError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from botocore.config import Config
    from botocore.session import Session

#: Left for writing the answer and the outcome line after the last AWS call (the runtime also needs a moment).
ANSWER_MARGIN_SECONDS: Final = 0.5
#: (connect, read) timeouts of the clients, largest first. The first is what every call gets with time to spare.
TIMEOUT_TIERS: Final = ((1.0, 2.0), (0.5, 1.0), (0.25, 0.5))
#: Beyond its timeouts, an attempt spends time signing, sending and parsing.
_ATTEMPT_OVERHEAD: Final = 0.1
#: The longest attempt of the smallest tier: a call is not started with less time than this in its budget.
MIN_ATTEMPT_SECONDS: Final = sum(TIMEOUT_TIERS[-1]) + _ATTEMPT_OVERHEAD
#: botocore's standard retry mode waits at most ``scale * 2 ** (attempt - 1)`` seconds before a retry: a scale of
#: 1 s after a throttling answer, 50 ms (25 ms for DynamoDB) after any other failure.
_THROTTLED_BACKOFF_SCALE: Final = 1.0
_BACKOFF_SCALE: Final = 0.05

# Failures that prove the request never reached the service.
_NOT_SENT: Final = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ProxyConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ParamValidationError,
)
# Error answers below 500 that a later attempt can pass: botocore's standard mode retries them.
_THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "Throttled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "KMSThrottling",
    }
)


class _CallState(threading.local):
    """Per thread (the local gateway serves requests from several): the invocation's deadline (monotonic seconds,
    None when unbounded), the reserve for the calls that must follow, and whether an attempt of the current call
    ended without proof of a refusal."""

    deadline: float | None = None
    reserve: float = 0.0
    answer_unknown: bool = False
    # Attempts of the current (or last) call whose answer was lost or a 5xx: each may have taken effect, so a call
    # that succeeded after them may have taken effect more than once (a Publish: copies on the topic).
    unknown_attempts: int = 0


_state: Final = _CallState()


def error_code(exc: ClientError) -> str:
    """The error code of an error answer (``"ClientError"`` when it has none)."""
    return str(exc.response.get("Error", {}).get("Code", "")) or "ClientError"


def http_status(exc: ClientError) -> int:
    """The HTTP status of an error answer; 500 when it is unknown (no proof of a refusal)."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)


def proves_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` proves that the call did not take effect."""
    if isinstance(exc, ClientError):
        return http_status(exc) < 500
    return isinstance(exc, _NOT_SENT)


def dependency_error(service: str, exc: ClientError | BotoCoreError) -> DependencyError:
    """The one translation of botocore's errors: ``service`` failed with ``exc``.

    ``may_have_succeeded`` unless ``exc`` proves a refusal and no earlier attempt of the same call (botocore's own
    retries) ended without such a proof.
    """
    detail = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
    unknown = _state.answer_unknown or not proves_refusal(exc)
    _state.answer_unknown = False  # read once: the next call starts afresh even if it fails before any attempt
    return DependencyError(service, detail, may_have_succeeded=unknown)


@contextlib.contextmanager
def calling(service: str) -> Iterator[None]:
    """Turn botocore's errors raised inside into :func:`dependency_error`; a caller that tells some error answers
    apart (a failed condition) catches those inside first."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise dependency_error(service, exc) from exc


# --- the invocation's deadline ----------------------------------------------------------------------------------


def _budget() -> float:
    """Seconds the current call may take: to the deadline, less what the calls after it need."""
    deadline = _state.deadline
    if deadline is None:
        return math.inf
    return deadline - time.monotonic() - _state.reserve


# Plain classes rather than @contextlib.contextmanager: they run on every event's warm path (make bench counts it).
class invocation_deadline:
    """Bound the AWS calls made inside by the Lambda ``context``'s remaining time, less the answer's margin.

    A context that cannot tell its remaining time leaves the calls to the clients' own timeouts and retries.
    """

    __slots__ = ("_deadline",)

    def __init__(self, context: object) -> None:
        try:
            remaining = context.get_remaining_time_in_millis  # type: ignore[attr-defined]
            self._deadline: float | None = time.monotonic() + float(remaining()) / 1000 - ANSWER_MARGIN_SECONDS
        except Exception:  # not a Lambda context (a direct call, a caller's object): botocore's own bounds only
            self._deadline = None

    def __enter__(self) -> None:
        _state.deadline, _state.reserve = self._deadline, 0.0

    def __exit__(self, *_: object) -> None:
        _state.deadline, _state.reserve = None, 0.0


class leaving_time_for:
    """Calls made inside leave the time of ``calls`` shortest attempts for the calls that must follow them
    (the release after a failed publish, the mark after a successful one)."""

    __slots__ = ("_before", "_reserve")

    def __init__(self, calls: int) -> None:
        self._reserve = calls * MIN_ATTEMPT_SECONDS
        self._before = 0.0

    def __enter__(self) -> None:
        self._before, _state.reserve = _state.reserve, self._reserve

    def __exit__(self, *_: object) -> None:
        _state.reserve = self._before


def _attempt_seconds(config: Any) -> float:  # Any: the stubs of Config lack its attributes
    return float(config.connect_timeout) + float(config.read_timeout) + _ATTEMPT_OVERHEAD


def _after_attempt(service: str, attempt_seconds: float) -> Any:
    def needs_retry(
        attempts: int = 1, response: Any = None, caught_exception: Exception | None = None, **_: Any
    ) -> None:
        """Emitted after every attempt, before botocore's own retry decision (which stays its own): records
        whether an attempt of this call ended without proof of a refusal, and refuses a retry that cannot end in
        time. The first attempt starts the call's record afresh."""
        if caught_exception is None and response and response[0].status_code < 300:
            _state.answer_unknown = False  # the common case: the call succeeded, nothing to remember
            if attempts == 1:
                _state.unknown_attempts = 0
            return
        status = response[0].status_code if response else None
        throttled = False
        if caught_exception is not None:
            failed, unknown = True, not isinstance(caught_exception, _NOT_SENT)
        elif status is not None and status >= 500:
            failed, unknown = True, True
        else:
            code = (response[1].get("Error", {}).get("Code") if response else None) or ""
            throttled = status == 429 or code in _THROTTLING_CODES
            failed, unknown = throttled, False
        _state.answer_unknown = unknown or (attempts > 1 and _state.answer_unknown)
        _state.unknown_attempts = (_state.unknown_attempts if attempts > 1 else 0) + unknown
        scale = _THROTTLED_BACKOFF_SCALE if throttled else _BACKOFF_SCALE
        if failed and _budget() < scale * 2 ** (attempts - 1) + attempt_seconds:
            detail = type(caught_exception).__name__ if caught_exception else f"HTTP {status}"
            raise DependencyError(
                service,
                f"{detail}; no time left to retry",
                may_have_succeeded=_state.answer_unknown,
            )

    return needs_retry


def unconfirmed_attempts() -> int:
    """How many attempts of the last call made on this thread through a client of :func:`track_calls` ended
    without an answer or with a 5xx before the attempt that succeeded: each may have taken effect too."""
    return _state.unknown_attempts


def track_calls(client: Any, service: str) -> None:
    """Register this module's hook on ``client`` (once however often it is called). One hook only: botocore
    logs every handler it calls, which ``make bench`` counts on the warm path."""
    event_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(
        f"needs-retry.{event_id}",
        _after_attempt(service, _attempt_seconds(client.meta.config)),
        unique_id="stack-webhook-fanout-attempts",
    )


class DeadlineBoundClient:
    """A client of one service that hands each call to the client whose timeouts fit the call's budget, and
    refuses a call (nothing sent) when not even the smallest fits.

    The smaller tiers' clients are made when a call first needs one. Attributes that are not methods (``meta``,
    ``exceptions``) are the largest tier's.
    """

    def __init__(self, session: Session, service: str, config: Config) -> None:
        from botocore.config import Config

        self._service = service
        self._tiers: list[tuple[float, Config]] = []
        for connect, read in TIMEOUT_TIERS:
            tier_config = config.merge(Config(connect_timeout=connect, read_timeout=read))
            self._tiers.append((_attempt_seconds(tier_config), tier_config))
        self._session = session
        self._clients: dict[int, Any] = {}
        self.primary = self._client(0)

    def _client(self, index: int) -> Any:
        client = self._clients.get(index)
        if client is None:
            client = self._session.create_client(self._service, config=self._tiers[index][1])
            track_calls(client, self._service)
            self._clients[index] = client
        return client

    def _method(self, name: str) -> Any:
        """``name`` of the client that fits the current call's budget, the moment before it is called."""
        if _state.deadline is None:
            return getattr(self.primary, name)
        budget = _budget()
        for index, (attempt_seconds, _) in enumerate(self._tiers):
            if attempt_seconds <= budget:
                return getattr(self.primary if index == 0 else self._client(index), name)
        raise DependencyError(self._service, "deadline", may_have_succeeded=False)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "primary":
            raise AttributeError(name)  # not set yet (during __init__) or not the client's
        attribute = getattr(self.primary, name)
        if not callable(attribute):
            return attribute  # meta, exceptions: the largest tier's, where fault hooks go

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._method(name)(*args, **kwargs)

        setattr(self, name, call)  # later lookups find it without coming here
        return call
