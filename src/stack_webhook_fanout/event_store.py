"""The DynamoDB record of every verified event: claimed before it is published, marked once it is.

One item per svix-id::

    event_id          S  the svix-id (partition key)
    event_type        S  the body's type, or "unreadable"
    body              S  the verbatim body (verified bodies are UTF-8)
    body_sha256       S  hex digest of the body, to spot a sender that reuses an id for another body
    event_timestamp   S  the svix-timestamp header
    event_created_at  N  epoch milliseconds, the event's creation time from its svix-id, when it has one
                         (``event_time``); replays publish this stored value, never a new reading
    status            S  "claimed" until published, then "published"
    claim_token       S  random per claim; only its holder may mark or release it. Removed by the mark, and by
                         a release after a publish SNS surely did not accept: a "claimed" item without it is known
                         unpublished, one that still holds it past its lease of unknown publication (the invocation
                         stopped, a publish's answer was lost, or the mark failed): see ``replay.RecordState``
    lease_expires_at  N  epoch seconds; a "claimed" item past its lease may be claimed again (a crashed attempt)
    received_at       N  epoch seconds of the first claim
    attempts          N  claims made over the record's life, retries included
    published_at      N  epoch seconds, once published
    topic_arn, message_id  S  where it went
    expires_at        N  epoch seconds, the table's TTL attribute (retention)
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from .aws_calls import dependency_error, error_code, track_calls
from .errors import ClaimInProgressError, DependencyError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_dynamodb import DynamoDBClient

STATUS_CLAIMED: Final = "claimed"
STATUS_PUBLISHED: Final = "published"

# A new id, an id whose record outlived its retention (TTL deletes lazily, up to days late), or an id whose claim
# was left behind by an attempt that crashed or timed out (its lease has expired) may be claimed. A published or
# live-claimed one may not: the failed condition returns the old item, which says which of the two it was.
_CLAIM_CONDITION: Final = (
    "attribute_not_exists(event_id) OR expires_at < :now OR (#status = :claimed AND lease_expires_at < :now)"
)
_CLAIM_UPDATE: Final = (
    "SET event_type = :event_type, body = :body, body_sha256 = :sha, event_timestamp = :ts, "
    "#status = :claimed, claim_token = :token, lease_expires_at = :lease, expires_at = :expires, "
    # received_at keeps the first receipt across retries (replay selects on it). A record re-claimed after its
    # retention keeps it too (Svix stops retrying after ~28 h, RetentionDays is at least 2, so only a sender reusing
    # an id gets there), but it loses every trace of the old publication.
    "received_at = if_not_exists(received_at, :now) REMOVE published_at, topic_arn, message_id ADD attempts :one"
)
# The same write for an event whose svix-id told its creation time.
_CLAIM_UPDATE_WITH_CREATED_AT: Final = _CLAIM_UPDATE.replace("SET ", "SET event_created_at = :created, ", 1)


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim held by this invocation."""

    event_id: str
    token: str
    attempt: int


@dataclass(frozen=True, slots=True)
class AlreadyPublished:
    """The id was published before: acknowledge, do not publish again."""

    event_id: str
    published_at: float | None
    body_sha256: str | None


def _num(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}"}


class EventStore:
    """Claims, marks and releases event records in one DynamoDB table.

    Parameters
    ----------
    client:
        A DynamoDB client (injected; tests point it at an emulator).
    table_name:
        The table, keyed by ``event_id``.
    retention_days:
        Sets ``expires_at``; also the window in which a repeated id is recognised as a duplicate.
    lease_seconds:
        How long a claim blocks other deliveries of the same id. Longer than the function timeout.
    clock:
        Epoch seconds; injectable for tests.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        retention_days: int = 30,
        lease_seconds: int = 15,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        track_calls(client, "dynamodb")
        self._table = table_name
        self._retention_seconds = retention_days * 86_400
        self._lease_seconds = lease_seconds
        self._clock = clock

    def claim(
        self,
        event_id: str,
        *,
        event_type: str,
        body: str,
        body_sha256: str,
        event_timestamp: str,
        event_created_at: int | None = None,
    ) -> Claim | AlreadyPublished:
        """Store the event (with its creation time, when known) and claim it with one conditional write.

        Returns the :class:`Claim`, or :class:`AlreadyPublished` for an id published before; raises
        :class:`ClaimInProgressError` when another delivery holds a live claim and :class:`DependencyError`
        when DynamoDB fails.
        """
        now = self._clock()
        token = secrets.token_hex(16)
        values: dict[str, Any] = {
            ":event_type": {"S": event_type},
            ":body": {"S": body},
            ":sha": {"S": body_sha256},
            ":ts": {"S": event_timestamp},
            ":claimed": {"S": STATUS_CLAIMED},
            ":token": {"S": token},
            ":lease": _num(now + self._lease_seconds),
            ":expires": {"N": str(int(now) + self._retention_seconds)},
            ":now": _num(now),
            ":one": {"N": "1"},
        }
        update = _CLAIM_UPDATE
        if event_created_at is not None:
            values[":created"] = {"N": str(event_created_at)}
            update = _CLAIM_UPDATE_WITH_CREATED_AT
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"event_id": {"S": event_id}},
                UpdateExpression=update,
                ConditionExpression=_CLAIM_CONDITION,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise dependency_error("dynamodb", exc) from exc
            return self._existing(event_id, token, exc)
        except BotoCoreError as exc:
            raise dependency_error("dynamodb", exc) from exc
        attempts = int(response.get("Attributes", {}).get("attempts", {}).get("N", "1"))
        return Claim(event_id=event_id, token=token, attempt=attempts)

    def mark_published(self, claim: Claim, *, topic_arn: str, message_id: str) -> bool:
        """Record the publication. Returns False if the claim was lost to another delivery (lease overrun)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"event_id": {"S": claim.event_id}},
                UpdateExpression=(
                    "SET #status = :published, published_at = :now, topic_arn = :topic, message_id = :mid "
                    "REMOVE claim_token, lease_expires_at"
                ),
                # "OR message_id": a retry of this very write whose first attempt succeeded (the response was lost)
                # finds the token removed and must still count as done, not as a claim lost to another delivery.
                ConditionExpression="claim_token = :token OR message_id = :mid",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":published": {"S": STATUS_PUBLISHED},
                    ":now": _num(self._clock()),
                    ":topic": {"S": topic_arn},
                    ":mid": {"S": message_id},
                    ":token": {"S": claim.token},
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise dependency_error("dynamodb", exc) from exc
        except BotoCoreError as exc:
            raise dependency_error("dynamodb", exc) from exc
        return True

    def release(self, claim: Claim) -> bool:
        """Give a claim up after a failed publish so that the sender's next retry need not wait for the lease.

        Best effort: returns False instead of raising; the lease expires by itself anyway.
        """
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"event_id": {"S": claim.event_id}},
                UpdateExpression="SET lease_expires_at = :zero REMOVE claim_token",
                ConditionExpression="claim_token = :token AND #status = :claimed",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":zero": {"N": "0"},
                    ":token": {"S": claim.token},
                    ":claimed": {"S": STATUS_CLAIMED},
                },
            )
        except (ClientError, BotoCoreError, DependencyError):  # DependencyError: no time left (aws_calls)
            return False
        return True

    def get(self, event_id: str) -> dict[str, Any] | None:
        """Return the record of ``event_id`` as plain values (strongly consistent), or None."""
        try:
            response = self._client.get_item(
                TableName=self._table, Key={"event_id": {"S": event_id}}, ConsistentRead=True
            )
        except ClientError as exc:
            raise dependency_error("dynamodb", exc) from exc
        except BotoCoreError as exc:
            raise dependency_error("dynamodb", exc) from exc
        item = response.get("Item")
        return None if item is None else plain_item(item)

    def _existing(self, event_id: str, token: str, exc: ClientError) -> Claim | AlreadyPublished:
        old = exc.response.get("Item")
        record = plain_item(old) if old else self.get(event_id)
        if record is None:
            # Deleted between the write and the read: the sender's retry will claim it.
            raise ClaimInProgressError(event_id) from exc
        if record.get("claim_token") == token:
            # botocore retried our own write after a lost response (a read timeout): the first attempt succeeded,
            # so the claim is ours.
            return Claim(event_id=event_id, token=token, attempt=int(record.get("attempts") or 1))
        if record.get("status") == STATUS_PUBLISHED:
            return AlreadyPublished(
                event_id=event_id,
                published_at=record.get("published_at"),
                body_sha256=record.get("body_sha256"),
            )
        raise ClaimInProgressError(event_id) from exc


def plain_item(item: Any) -> dict[str, Any]:
    """Turn a low-level DynamoDB item of S and N attributes into plain str/float values."""
    plain: dict[str, Any] = {}
    for name, typed in item.items():
        if "S" in typed:
            plain[name] = typed["S"]
        elif "N" in typed:
            plain[name] = float(typed["N"])
    return plain
