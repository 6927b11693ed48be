"""The replay itself: plan each selected record's message, then publish it (or, in a dry run, only check it).

A record ``PUBLISHED`` is published again as it is. A record ``UNPUBLISHED`` or of ``PUBLICATION_UNKNOWN`` (see
``stack_webhook_fanout.event_store.RecordState``) is claimed by the replay itself, with the ingest function's own
conditional write, so that a concurrent Svix retry cannot publish it too, then published and marked with the ingest
function's own :func:`~stack_webhook_fanout.publication.publish_claimed`.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from stack_webhook_fanout.errors import ClaimInProgressError, DependencyError
from stack_webhook_fanout.event_parser import parse_event
from stack_webhook_fanout.event_store import STATUS_CLAIMED, AlreadyPublished, EventStore, RecordState
from stack_webhook_fanout.publication import publish_claimed
from stack_webhook_fanout.topics import SNS_MAX_MESSAGE_BYTES, message_attributes, message_size

from .records import EventReader, StoredEvent
from .times import format_time

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from typing import Any

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

    from stack_webhook_fanout.publisher import SnsPublisher
    from stack_webhook_fanout.topics import TopicRouter

    from .pacing import TokenBucket
    from .selection import Selection
    from .target import ReplayTarget

#: How long a claim taken by the replay blocks other deliveries of the id (it publishes right after claiming).
REPLAY_LEASE_SECONDS: Final = 30


class Skip(StrEnum):
    """Why a record found is not replayed."""

    NOT_FOUND = "not_found"
    NOT_PUBLISHED = "not_published"
    PUBLICATION_UNKNOWN = "publication_unknown"
    CLAIM_IN_PROGRESS = "claim_in_progress"
    PUBLISHED_MEANWHILE = "published_meanwhile"
    OUT_OF_SELECTION = "out_of_selection"
    MALFORMED_RECORD = "malformed_record"


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """A record and the message it becomes: topic and attributes as the ingest function would send them."""

    record: StoredEvent
    topic_arn: str
    attributes: Mapping[str, MessageAttributeValueTypeDef]
    size: int

    @property
    def unpublished(self) -> bool:
        """Whether the record does not show a publication (so the replay claims it before publishing)."""
        return self.record.state(0.0) is not RecordState.PUBLISHED


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What happened to one planned message."""

    message: PlannedMessage
    published: bool
    message_id: str | None = None
    failure: str | None = None
    skip: Skip | None = None
    note: str | None = None


def plan_message(record: StoredEvent, router: TopicRouter) -> PlannedMessage:
    """Route and attribute a stored body exactly as the ingest function does, plus ``replay=true``."""
    parsed = parse_event(record.body)
    attributes = message_attributes(
        parsed, record.event_id, record.event_timestamp, event_created_at=record.event_created_at, replay=True
    )
    return PlannedMessage(
        record=record,
        topic_arn=router.topic_for(parsed),
        attributes=attributes,
        size=message_size(record.body.encode(), attributes),
    )


@dataclass
class ReplaySummary:
    """Counts of one replay. ``published`` counts messages sent (or, in a dry run, that would be sent)."""

    executed: bool
    found: int = 0
    selected: int = 0
    published: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    published_by_type: Counter[str] = field(default_factory=Counter)

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    def lines(self) -> list[str]:
        """The summary as text lines."""
        verb = "published" if self.executed else "would publish"

        def row(label: str, value: object) -> str:
            return f"  {label + ':':<15} {value}"

        lines = [
            "replay summary" + ("" if self.executed else " (dry run: nothing was published; add --execute to send)"),
            row("selected", f"{self.selected} (of {self.found} records found)"),
            row(verb, self.published),
            row("failed", f"{self.failed_total}{_by_reason(self.failed)}"),
            row("skipped", f"{sum(self.skipped.values())}{_by_reason(self.skipped)}"),
        ]
        if self.published_by_type:
            lines.append(row("by type", _by_reason(self.published_by_type).strip(" ()")))
        if self.notes:
            lines.append(row("notes", _by_reason(self.notes).strip(" ()")))
        if self.skipped.get(Skip.NOT_PUBLISHED):
            lines.append(
                "  (records known unpublished were left out: the function's publish failed and Svix's retries did "
                "not arrive; add --include-unpublished to push them)"
            )
        if self.skipped.get(Skip.PUBLICATION_UNKNOWN):
            lines.append(
                "  (records whose publication is unknown were left out: an invocation stopped, or could not mark "
                "the record, after claiming it; they may be on their topics already. Add "
                "--include-publication-unknown to push them, subscribers may then get a second copy)"
            )
        return lines


def _by_reason(counts: Counter[str]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{reason}={n}" for reason, n in sorted(counts.items())) + ")"


class Replayer:
    """Select records and publish them again.

    Parameters
    ----------
    reader:
        Reads the events table.
    publisher:
        Publishes to SNS (its client injected).
    router:
        The target stack's topics.
    store_factory:
        Makes an :class:`EventStore` of the same table for a given retention in days: it claims and marks records
        that were never published (only needed with ``Selection.include_unpublished``).
    limiter:
        Paces the publications; None for no limit.
    clock:
        Epoch seconds, to tell a live claim from an abandoned one.
    """

    def __init__(
        self,
        *,
        reader: EventReader,
        publisher: SnsPublisher,
        router: TopicRouter,
        store_factory: Callable[[int], EventStore] | None = None,
        limiter: TokenBucket | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._publisher = publisher
        self._router = router
        self._store_factory = store_factory
        self._limiter = limiter
        self._clock = clock

    # --- selection -------------------------------------------------------------------------------------------------
    def select(
        self,
        selection: Selection,
        summary: ReplaySummary,
        *,
        on_scan_page: Callable[[int, int], None] | None = None,
    ) -> list[PlannedMessage]:
        """Read the selected records and plan their messages, in the order they were received.

        Counts what was found and what is skipped (and why) into ``summary``.
        """
        records: list[StoredEvent] = []
        for item in self._items(selection, summary, on_scan_page):
            summary.found += 1
            record = StoredEvent.from_item(item)
            if record is None:
                summary.skipped[Skip.MALFORMED_RECORD] += 1
                continue
            skip = self._skip_reason(record, selection)
            if skip is not None:
                summary.skipped[skip] += 1
                continue
            records.append(record)
        records.sort(key=lambda r: (r.received_at is None, r.received_at or 0.0, r.event_id))
        summary.selected = len(records)
        return [plan_message(record, self._router) for record in records]

    def _items(
        self,
        selection: Selection,
        summary: ReplaySummary,
        on_scan_page: Callable[[int, int], None] | None,
    ) -> Iterator[Mapping[str, Any]]:
        if not selection.event_ids:
            yield from self._reader.scan(selection, on_page=on_scan_page)
            return
        for event_id in dict.fromkeys(selection.event_ids):  # each id once, in the order given
            item = self._reader.get(event_id)
            if item is None:
                summary.skipped[Skip.NOT_FOUND] += 1
                continue
            yield item

    def _skip_reason(self, record: StoredEvent, selection: Selection) -> Skip | None:
        if not selection.matches(record):
            return Skip.OUT_OF_SELECTION
        state = record.state(self._clock())
        if state is RecordState.PUBLISHED:
            return None
        if state is RecordState.IN_PROGRESS:
            return Skip.CLAIM_IN_PROGRESS
        if state is RecordState.PUBLICATION_UNKNOWN:
            return None if selection.include_publication_unknown else Skip.PUBLICATION_UNKNOWN
        # UNPUBLISHED: claimed then released, or a status this package does not write (never replayed).
        if record.status != STATUS_CLAIMED or not selection.include_unpublished:
            return Skip.NOT_PUBLISHED
        return None

    # --- publication -----------------------------------------------------------------------------------------------
    def run(
        self,
        messages: Iterable[PlannedMessage],
        summary: ReplaySummary,
        *,
        on_result: Callable[[ItemResult], None] | None = None,
    ) -> ReplaySummary:
        """Publish each planned message (or, when ``summary.executed`` is False, only check it); count results."""
        for message in messages:
            result = self._one(message, execute=summary.executed)
            if result.skip is not None:
                summary.selected -= 1
                summary.skipped[result.skip] += 1
            elif result.published:
                summary.published += 1
                summary.published_by_type[message.record.event_type] += 1
            else:
                summary.failed[result.failure or "unknown"] += 1
            if result.note:
                summary.notes[result.note] += 1
            if on_result is not None:
                on_result(result)
        return summary

    def _one(self, message: PlannedMessage, *, execute: bool) -> ItemResult:
        if message.size > SNS_MAX_MESSAGE_BYTES:
            # Only possible for a body within a few bytes of the limit: the replay attribute tips it over.
            return ItemResult(message, published=False, failure="too_large")
        if not execute:
            return ItemResult(message, published=True)
        if self._limiter is not None:
            self._limiter.acquire()
        if message.unpublished:
            return self._claim_publish_mark(message)
        try:
            message_id = self._publisher.publish(message.topic_arn, message.record.body, message.attributes)
        except DependencyError as exc:
            return ItemResult(message, published=False, failure=f"{exc.service}:{exc.detail}")
        return ItemResult(message, published=True, message_id=message_id)

    def _claim_publish_mark(self, message: PlannedMessage) -> ItemResult:
        """Publish a record that was never published, holding its claim so that no concurrent delivery also does."""
        if self._store_factory is None:
            raise ValueError("replaying unpublished records needs an event store (store_factory)")
        record = message.record
        now = self._clock()
        remaining_days = math.ceil(((record.expires_at or now) - now) / 86_400)
        store = self._store_factory(max(1, remaining_days))
        try:
            claim = store.claim(
                record.event_id,
                event_type=record.event_type,
                body=record.body,
                body_sha256=record.body_sha256 or hashlib.sha256(record.body.encode()).hexdigest(),
                event_timestamp=record.event_timestamp,
                event_created_at=record.event_created_at,
            )
        except ClaimInProgressError:
            return ItemResult(message, published=False, skip=Skip.CLAIM_IN_PROGRESS)
        except DependencyError as exc:
            return ItemResult(message, published=False, failure=f"{exc.service}:{exc.detail}")
        if isinstance(claim, AlreadyPublished):
            return ItemResult(message, published=False, skip=Skip.PUBLISHED_MEANWHILE)
        try:
            publication = publish_claimed(
                store,
                self._publisher,
                claim,
                topic_arn=message.topic_arn,
                body=record.body,
                attributes=message.attributes,
            )
        except DependencyError as exc:
            return ItemResult(message, published=False, failure=f"{exc.service}:{exc.detail}")
        note = None if publication.recorded else "published_but_not_marked"
        return ItemResult(message, published=True, message_id=publication.message_id, note=note)


def describe(message: PlannedMessage, *, now: float | None = None) -> str:
    """One line about a planned message, for the dry run: ids, type, times, topic, size. Never the body."""
    record = message.record
    topic = message.topic_arn.rsplit(":", 1)[-1]
    state = record.state(now if now is not None else time.time())
    status = "" if state is RecordState.PUBLISHED else f"  [{state}]"
    return (
        f"{record.event_id}  {record.event_type}  received {format_time(record.received_at)}"
        f"  -> {topic}  {message.size} B{status}"
    )


def build_replayer(
    target: ReplayTarget,
    dynamodb: DynamoDBClient,
    sns: SNSClient,
    *,
    consistent_read: bool = False,
    limiter: TokenBucket | None = None,
    clock: Callable[[], float] = time.time,
) -> Replayer:
    """Wire a :class:`Replayer` for a stack's table and topics with the given clients."""
    from stack_webhook_fanout.publisher import SnsPublisher

    return Replayer(
        reader=EventReader(dynamodb, target.table_name, consistent_read=consistent_read),
        publisher=SnsPublisher(sns),
        router=target.router(),
        store_factory=lambda days: EventStore(
            dynamodb, target.table_name, retention_days=days, lease_seconds=REPLAY_LEASE_SECONDS, clock=clock
        ),
        limiter=limiter,
        clock=clock,
    )
