"""Publish a claimed record and mark it: the one implementation that the ingest function and replay both use.

The rules live here and only here: a publish that SNS surely did not accept releases the claim (the record reads
``UNPUBLISHED`` and the next delivery need not wait for the lease); one that SNS may have accepted keeps it (after its
lease the record reads ``PUBLICATION_UNKNOWN``); an accepted one is marked ``PUBLISHED``. A mark that fails, or finds
the claim taken over, leaves a published message that the record does not show: the caller is told, never raised at,
because answering "failed" would invite a second publication.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .aws_calls import leaving_time_for, unconfirmed_attempts
from .errors import DependencyError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

    from .event_store import Claim, EventStore
    from .publisher import SnsPublisher


@dataclass(frozen=True, slots=True)
class Publication:
    """A message SNS accepted for a claimed record, and whether the record says so."""

    message_id: str
    #: True once the record is marked published; False when the mark failed or the claim was lost meanwhile.
    recorded: bool
    #: Why the mark failed (DynamoDB's error), or None: with ``recorded`` False and no error, the claim was lost to
    #: another delivery (the lease ran out before the mark).
    mark_error: DependencyError | None = None
    #: Attempts of this publish that SNS may have accepted before the one it answered (botocore retried after a
    #: lost answer or a 5xx): each may be one more copy on the topic, and the record says how many.
    unconfirmed_attempts: int = 0


def publish_claimed(
    store: EventStore,
    publisher: SnsPublisher,
    claim: Claim,
    *,
    topic_arn: str,
    body: str,
    attributes: Mapping[str, MessageAttributeValueTypeDef],
) -> Publication:
    """Publish ``body`` to ``topic_arn`` under ``claim``, then mark the record published.

    Raises the publish's :class:`DependencyError` after releasing the claim, unless SNS may have accepted the
    message (``may_have_succeeded``), in which case the claim stays held.
    """
    try:
        with leaving_time_for(calls=1):  # the mark, or the release
            message_id = publisher.publish(topic_arn, body, attributes)
    except DependencyError as exc:
        if not exc.may_have_succeeded:
            store.release(claim)
        raise
    unconfirmed = unconfirmed_attempts()
    try:
        marked = store.mark_published(
            claim, topic_arn=topic_arn, message_id=message_id, unconfirmed_attempts=unconfirmed
        )
    except DependencyError as exc:
        # The record stays claimed with this claim's token (publication unknown): only a redelivery after its lease,
        # or a replay that asks for such records, could publish again.
        return Publication(message_id=message_id, recorded=False, mark_error=exc, unconfirmed_attempts=unconfirmed)
    return Publication(message_id=message_id, recorded=marked, unconfirmed_attempts=unconfirmed)
