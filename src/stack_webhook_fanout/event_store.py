"""The DynamoDB record of every verified event: claimed before it is published, marked once it is.

One item per svix-id::

    event_id          S  the svix-id (partition key)
    event_type        S  the body's type, or "unreadable"
    body_zlib         B  the verbatim body, zlib-compressed (``zlib.decompress`` gives Stack's exact bytes): a
                         ``user.created`` item then fits in one write unit (1 KB) before and after the mark
    body              S  records written before compression hold the verbatim body here instead (verified bodies
                         are UTF-8); a claim writes ``body_zlib`` and removes ``body``. Read either with
                         :func:`stored_body`
    body_sha256       S  hex digest of the body, to spot a sender that reuses an id for another body
    event_timestamp   S  the svix-timestamp header
    event_created_at  N  epoch milliseconds, the event's creation time from its svix-id, when it has one
                         (``event_time``); replays publish this stored value, never a new reading
    status            S  "claimed" until published, then "published"
    claim_token       S  random per claim; only its holder may mark or release it. Removed by the mark, and by
                         a release after a publish SNS surely did not accept: a "claimed" item without it is known
                         unpublished, one that still holds it past its lease of unknown publication (the invocation
                         stopped, a publish's answer was lost, or the mark failed): see :class:`RecordState`
    lease_expires_at  N  epoch seconds; a "claimed" item past its lease may be claimed again (a crashed attempt)
    received_at       N  epoch seconds of the first claim
    attempts          N  claims made over the record's life, retries included
    published_at      N  epoch seconds, once published
    topic_arn, message_id  S  where it went
    unconfirmed_publish_attempts  N  only when a publish succeeded after attempts whose answer was lost or a 5xx
                         (botocore's retries): SNS may hold that many more copies
    expires_at        N  epoch seconds, the table's TTL attribute (retention)
"""

from __future__ import annotations

import secrets
import time
import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from .aws_calls import dependency_error, error_code, track_calls
from .errors import ClaimInProgressError, DependencyError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient

STATUS_CLAIMED: Final = "claimed"
STATUS_PUBLISHED: Final = "published"
_ZLIB_LEVEL: Final = 6
_ZLIB_WINDOW_BITS: Final = 12
_ZLIB_MEMORY_LEVEL: Final = 4


class RecordState(StrEnum):
    """What a record says about its publication, from its ``status``, its ``claim_token`` and its lease.

    The ingest path moves a record between them with the writes it makes anyway (claim, release, mark).
    """

    #: ``published``: SNS accepted the message and the mark recorded it. A retry is answered as a duplicate.
    PUBLISHED = "published"
    #: Claimed and live: ``claimed``, its token held and its lease running. An invocation is at work on it.
    IN_PROGRESS = "in_progress"
    #: ``claimed`` without a token (or with an unknown status): the publish failed before SNS could accept the
    #: message and the claim was released. Known unpublished; the next delivery claims it at once.
    UNPUBLISHED = "unpublished"
    #: ``claimed``, its token still held past the lease: the invocation stopped (crash, timeout) before or after SNS
    #: accepted the message, a publish's answer was lost, or the mark failed. It may already be on its topic.
    PUBLICATION_UNKNOWN = "publication_unknown"


def record_state(status: object, *, claim_held: bool, lease_expires_at: float | None, now: float) -> RecordState:
    """The :class:`RecordState` of a record of ``status``, with or without a claim token, at ``now`` (epoch s)."""
    if status == STATUS_PUBLISHED:
        return RecordState.PUBLISHED
    if status != STATUS_CLAIMED or not claim_held:
        return RecordState.UNPUBLISHED
    if (lease_expires_at or 0.0) >= now:
        return RecordState.IN_PROGRESS
    return RecordState.PUBLICATION_UNKNOWN


def plain_record_state(record: Mapping[str, Any], now: float) -> RecordState:
    """The :class:`RecordState` of a plain record (see :func:`plain_item`) at ``now``."""
    return record_state(
        record.get("status"),
        claim_held=bool(record.get("claim_token")),
        lease_expires_at=record.get("lease_expires_at"),
        now=now,
    )


def compress_body(body: bytes) -> bytes:
    """The ``body_zlib`` value of a body: standard zlib data (``zlib.decompress`` reads it).

    zlib's default level with a 4 KB window and a small hash table instead of its default 32 KB and memLevel 8: on
    the sample bodies (about 1 KB) the output is the same size as at level 9, for 122 k instructions a call instead
    of 174 k (callgrind); larger bodies lose a little ratio, nothing else.
    """
    encoder = zlib.compressobj(_ZLIB_LEVEL, zlib.DEFLATED, _ZLIB_WINDOW_BITS, _ZLIB_MEMORY_LEVEL)
    return encoder.compress(body) + encoder.flush()


def stored_body(record: Mapping[str, Any]) -> bytes | None:
    """The verbatim body of a plain record, old (``body``, text) or new (``body_zlib``, compressed); None if absent.

    Raises ``zlib.error`` for a ``body_zlib`` that is not zlib data (a record not written by this package).
    """
    compressed = record.get("body_zlib")
    if isinstance(compressed, bytes):
        return zlib.decompress(compressed)
    body = record.get("body")
    return body.encode() if isinstance(body, str) else None


# A new id, an id whose record outlived its retention (TTL deletes lazily, up to days late), or a record UNPUBLISHED
# (released: its lease was set to 0) or of PUBLICATION_UNKNOWN (left behind by an attempt that crashed or timed out:
# its lease has expired) may be claimed. A PUBLISHED or IN_PROGRESS one may not: the failed condition returns the old
# item, which says which of the two it was.
_CLAIM_CONDITION: Final = (
    "attribute_not_exists(event_id) OR expires_at < :now OR (#status = :claimed AND lease_expires_at < :now)"
)
_CLAIM_UPDATE: Final = (
    "SET event_type = :event_type, body_zlib = :body, body_sha256 = :sha, event_timestamp = :ts, "
    "#status = :claimed, claim_token = :token, lease_expires_at = :lease, expires_at = :expires, "
    # received_at keeps the first receipt across retries (replay selects on it). A record re-claimed after its
    # retention keeps it too (Svix stops retrying after ~28 h, RetentionDays is at least 2, so only a sender reusing
    # an id gets there), but it loses every trace of the old publication.
    # A record of before compression loses its plain body: one copy, in body_zlib.
    "received_at = if_not_exists(received_at, :now) REMOVE body, published_at, topic_arn, message_id "
    "ADD attempts :one"
)
_MARK_UPDATE: Final = (
    "SET #status = :published, published_at = :now, topic_arn = :topic, message_id = :mid "
    "REMOVE claim_token, lease_expires_at"
)
# ADD, across claims: a retry of the mark whose first answer was lost counts twice, which errs on the side of saying
# that a copy may exist.
_MARK_UPDATE_WITH_UNCONFIRMED: Final = _MARK_UPDATE.replace(
    " REMOVE ", " ADD unconfirmed_publish_attempts :unconfirmed REMOVE ", 1
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
            ":body": {"B": compress_body(body.encode())},
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

    def mark_published(self, claim: Claim, *, topic_arn: str, message_id: str, unconfirmed_attempts: int = 0) -> bool:
        """Record the publication. Returns False if the claim was lost to another delivery (lease overrun).

        ``unconfirmed_attempts`` (attempts of the publish that SNS may have accepted before the one it answered) are
        added to the record's ``unconfirmed_publish_attempts``: the topic may hold that many more copies.
        """
        values: dict[str, Any] = {
            ":published": {"S": STATUS_PUBLISHED},
            ":now": _num(self._clock()),
            ":topic": {"S": topic_arn},
            ":mid": {"S": message_id},
            ":token": {"S": claim.token},
        }
        update = _MARK_UPDATE
        if unconfirmed_attempts:
            values[":unconfirmed"] = {"N": str(unconfirmed_attempts)}
            update = _MARK_UPDATE_WITH_UNCONFIRMED
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"event_id": {"S": claim.event_id}},
                UpdateExpression=update,
                # "OR message_id": a retry of this very write whose first attempt succeeded (the response was lost)
                # finds the token removed and must still count as done, not as a claim lost to another delivery.
                ConditionExpression="claim_token = :token OR message_id = :mid",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
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
        if plain_record_state(record, self._clock()) is RecordState.PUBLISHED:
            return AlreadyPublished(
                event_id=event_id,
                published_at=record.get("published_at"),
                body_sha256=record.get("body_sha256"),
            )
        raise ClaimInProgressError(event_id) from exc


def plain_item(item: Any) -> dict[str, Any]:
    """Turn a low-level DynamoDB item of S, N and B attributes into plain str/float/bytes values."""
    plain: dict[str, Any] = {}
    for name, typed in item.items():
        if "S" in typed:
            plain[name] = typed["S"]
        elif "N" in typed:
            plain[name] = float(typed["N"])
        elif "B" in typed:
            plain[name] = bytes(typed["B"])
    return plain
