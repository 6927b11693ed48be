"""The records a replay reads from the events table: by id (GetItem) or by filter (paginated Scan)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stack_webhook_fanout.aws_calls import calling
from stack_webhook_fanout.event_store import plain_item, record_state, stored_body
from stack_webhook_fanout.topics import UNREADABLE_TYPE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient

    from stack_webhook_fanout.event_store import RecordState

    from .selection import Selection


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One record of the events table, as the replay needs it."""

    event_id: str
    event_type: str
    body: str
    status: str
    event_timestamp: str
    received_at: float | None = None
    lease_expires_at: float | None = None
    expires_at: float | None = None
    body_sha256: str | None = None
    claim_held: bool = False  # a claim token is on the record (only a release or the mark removes it)
    event_created_at: int | None = None  # epoch ms, as the function stored it

    def state(self, now: float) -> RecordState:
        """What the record says about its publication at ``now`` (epoch seconds)."""
        return record_state(self.status, claim_held=self.claim_held, lease_expires_at=self.lease_expires_at, now=now)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> StoredEvent | None:
        """Build from a low-level DynamoDB item, old (plain ``body``) or new (``body_zlib``); None when the item
        lacks what a publication needs or its body cannot be read."""
        plain = plain_item(item)
        required = ("event_id", "status", "event_timestamp")
        if not all(isinstance(plain.get(name), str) and plain[name] for name in required):
            return None
        try:
            raw = stored_body(plain)
            body = None if raw is None else raw.decode()
        except (zlib.error, UnicodeDecodeError):
            return None
        if not body:
            return None
        return cls(
            event_id=plain["event_id"],
            event_type=str(plain.get("event_type") or UNREADABLE_TYPE),
            body=body,
            status=plain["status"],
            event_timestamp=plain["event_timestamp"],
            received_at=plain.get("received_at"),
            lease_expires_at=plain.get("lease_expires_at"),
            expires_at=plain.get("expires_at"),
            body_sha256=plain.get("body_sha256"),
            claim_held=bool(plain.get("claim_token")),
            event_created_at=_epoch_ms(plain.get("event_created_at")),
        )


def _epoch_ms(value: object) -> int | None:
    """A stored ``event_created_at`` (a DynamoDB number, read as a float: exact for epoch milliseconds)."""
    return int(value) if isinstance(value, float) else None


class EventReader:
    """Read records from the events table: by id (``GetItem``) or by filter (paginated ``Scan``)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        consistent_read: bool = False,
        page_size: int | None = None,
    ) -> None:
        self._client = client
        self._table = table_name
        self._consistent = consistent_read
        self._page_size = page_size

    def get(self, event_id: str) -> Mapping[str, Any] | None:
        """The raw item of ``event_id``, or None. Raises DependencyError when DynamoDB fails."""
        with calling("dynamodb"):
            response = self._client.get_item(
                TableName=self._table, Key={"event_id": {"S": event_id}}, ConsistentRead=self._consistent
            )
        return response.get("Item")

    def scan(
        self, selection: Selection, *, on_page: Callable[[int, int], None] | None = None
    ) -> Iterator[Mapping[str, Any]]:
        """Yield every item the selection's filter keeps; ``on_page(scanned, matched)`` after each page, with
        running totals."""
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": self._consistent}
        kwargs.update(selection.scan_filter())
        if self._page_size:
            kwargs["Limit"] = self._page_size
        scanned = matched = 0
        while True:
            with calling("dynamodb"):
                page = self._client.scan(**kwargs)
            items = page.get("Items", [])
            scanned += int(page.get("ScannedCount", len(items)))
            matched += len(items)
            yield from items
            if on_page is not None:
                on_page(scanned, matched)
            last_key = page.get("LastEvaluatedKey")
            if not last_key:
                return
            kwargs["ExclusiveStartKey"] = last_key
