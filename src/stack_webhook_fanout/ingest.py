"""The ingest flow: verify, parse, claim, publish, mark. Plain code that tests call directly."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from .aws_calls import leaving_time_for
from .errors import BadRequestError, PayloadTooLargeError, SignatureError
from .event_parser import ParsedEvent, attribute_safe, parse_event
from .event_store import AlreadyPublished
from .event_time import event_created_at_ms
from .observability import logger
from .publication import publish_claimed
from .signature import standard_headers
from .topics import SNS_MAX_MESSAGE_BYTES, UNREADABLE_TYPE, message_attributes, message_size

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

    from .event_store import Claim, EventStore
    from .publisher import SnsPublisher
    from .topics import TopicRouter
    from .webhook_secret import WebhookSecretSource

# Verification failures whose verdict may change with another secret: worth a (rate-limited) secret refresh.
_SECRET_DEPENDENT_REASONS = frozenset({"no_matching_signature", "malformed_signature"})


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """The raw body and the headers of one delivery (header names in any case)."""

    body: bytes
    headers: Mapping[str, str]


class Outcome(StrEnum):
    PUBLISHED = "published"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to an accepted delivery."""

    outcome: Outcome
    event_id: str
    event: ParsedEvent
    topic_arn: str | None = None
    message_id: str | None = None
    attempt: int = 0
    #: False when SNS accepted the message but the record could not be marked published (it stays "claimed").
    recorded: bool = True
    #: The event's creation time (epoch ms) from its svix-id, when it has one (``event_time``).
    event_created_at: int | None = None
    #: Milliseconds from ``event_created_at`` to this delivery's receipt (never negative), when there is one.
    delivery_lag_ms: int | None = None


class IngestService:
    """Turn a verified delivery into exactly one SNS publication per svix-id (in the normal case).

    Raises the errors of ``errors.py``; ``http_api.py`` maps them to statuses. ``clock`` (epoch seconds) dates the
    receipt, against which an event's creation time is judged plausible and its delivery lag measured.
    """

    def __init__(
        self,
        *,
        secrets: WebhookSecretSource,
        store: EventStore,
        publisher: SnsPublisher,
        router: TopicRouter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._secrets = secrets
        self._store = store
        self._publisher = publisher
        self._router = router

    def ingest(self, request: WebhookRequest) -> IngestResult:
        body = request.body
        # Cheap gate before any HMAC: a body this large can never be published.
        if len(body) > SNS_MAX_MESSAGE_BYTES:
            raise PayloadTooLargeError(len(body), SNS_MAX_MESSAGE_BYTES)
        ids = standard_headers(request.headers)
        with leaving_time_for(calls=3):  # the claim, the publish, and the mark or the release
            self._verify(body, ids)
        if not body:
            # SNS refuses an empty message: it could never be published, and a retry cannot change that.
            raise BadRequestError("empty_body")

        event_id = attribute_safe(ids["webhook-id"])
        if event_id is None:
            raise BadRequestError("invalid_event_id")
        # The signature covers the whole seconds of the parsed header, however it was spelled (" 1.7e9\n" verifies
        # too): store and publish that canonical value, never the raw header.
        timestamp = str(math.floor(float(ids["webhook-timestamp"])))
        logger.append_keys(event_id=event_id)

        received_ms = int(self._clock() * 1000)
        created_at = event_created_at_ms(event_id, received_ms)
        event = parse_event(body)
        attributes = message_attributes(event, event_id, timestamp, event_created_at=created_at)
        size = message_size(body, attributes)
        if size > SNS_MAX_MESSAGE_BYTES:
            raise PayloadTooLargeError(size, SNS_MAX_MESSAGE_BYTES)
        logger.append_keys(event_type=event.event_type, body_bytes=len(body))

        body_text = body.decode()  # verification already proved it is UTF-8
        body_sha256 = hashlib.sha256(body).hexdigest()
        with leaving_time_for(calls=2):  # the publish, and the mark or the release
            claimed = self._store.claim(
                event_id,
                event_type=event.event_type or UNREADABLE_TYPE,
                body=body_text,
                body_sha256=body_sha256,
                event_timestamp=timestamp,
                event_created_at=created_at,
            )
        if isinstance(claimed, AlreadyPublished):
            if claimed.body_sha256 not in (None, body_sha256):
                logger.warning(
                    "duplicate id with a different body; the first body stands",
                    extra={"outcome": "duplicate"},
                )
            return IngestResult(outcome=Outcome.DUPLICATE, event_id=event_id, event=event)
        result = self._publish(claimed, event, body_text, attributes)
        if created_at is None:
            return result
        # Svix rounds its time to 1/256 s and the clocks may differ a little: a lag is never below 0.
        lag = max(0, received_ms - created_at)
        return dataclasses.replace(result, event_created_at=created_at, delivery_lag_ms=lag)

    def _verify(self, body: bytes, ids: dict[str, str]) -> None:
        verifier = self._secrets.verifier()
        try:
            verifier.verify_standard(body, ids)
        except SignatureError as exc:
            if exc.reason not in _SECRET_DEPENDENT_REASONS:
                raise
            # The secret may have been rotated since it was cached; refresh_after_failure rate-limits the refetch.
            refreshed = self._secrets.refresh_after_failure()
            if refreshed is None:
                raise
            refreshed.verify_standard(body, ids)

    def _publish(
        self,
        claim: Claim,
        event: ParsedEvent,
        body_text: str,
        attributes: Mapping[str, MessageAttributeValueTypeDef],
    ) -> IngestResult:
        topic_arn = self._router.topic_for(event)
        publication = publish_claimed(
            self._store, self._publisher, claim, topic_arn=topic_arn, body=body_text, attributes=attributes
        )
        if publication.mark_error is not None:
            # Published but not recorded. Answering 5xx would make the sender retry and publish a second time.
            logger.error(
                "published but could not mark the record",
                extra={"dependency": publication.mark_error.service, "detail": publication.mark_error.detail},
            )
        elif not publication.recorded:
            # Our lease ran out and another delivery holds the claim now: it may publish a second copy.
            logger.warning("claim was taken over before the publication was recorded")
        if publication.unconfirmed_attempts:
            # botocore retried the publish after an answer that was lost or a 5xx: SNS may hold more copies. A marked
            # record says how many (unconfirmed_publish_attempts); an unmarked one reads "publication unknown".
            logger.warning(
                "published after attempts whose answer was lost or a 5xx",
                extra={"unconfirmed_attempts": publication.unconfirmed_attempts},
            )
        return IngestResult(
            outcome=Outcome.PUBLISHED,
            event_id=claim.event_id,
            event=event,
            topic_arn=topic_arn,
            message_id=publication.message_id,
            attempt=claim.attempt,
            recorded=publication.recorded,
        )
