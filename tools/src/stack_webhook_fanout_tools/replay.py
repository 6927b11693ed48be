"""Re-publish stored events to their topics: for a new subscriber, or after a downstream outage.

The events table (see ``event_store.py``) keeps the verbatim body of every verified event for the retention period.
A replay reads records, selected by event id, by type and by time of receipt, and publishes each body again, routed
and attributed exactly as the ingest function does (``event_parser.parse_event`` + ``topics.TopicRouter`` +
``topics.message_attributes``), plus the attribute ``replay=true`` so that subscribers can tell a replay apart
(and filter it in or out with a filter policy). ``event_created_at`` is the value the function stored on the record,
never read again from the id: a replay carries the original creation time, and a record stored without one (an id
that is not a Svix KSUID, or a record older than the attribute) is replayed without it.

Reading: the table is keyed by ``event_id`` only, so a selection by id is one ``GetItem`` per id, and a selection by
type or time is a ``Scan`` with a ``FilterExpression`` (paginated): it reads, and is billed for, the whole table
whatever the filter keeps. Records are replayed in the order they were received (``received_at``, then id).

Which records (``record_state``): only ``published`` ones unless asked. A record still ``claimed`` is one of three:

- ``in_progress``: its claim token is held and its lease is running: a live invocation. Always left alone.
- ``unpublished``: its claim was released (no token): the function's publish failed before SNS could accept the
  message (refused, or never sent) and it gave the claim up. Known unpublished; selected with
  ``include_unpublished``.
- ``publication_unknown``: its claim token is still held past the lease. The invocation stopped (crash, timeout)
  before or after SNS accepted the message, a publish's answer was lost, or SNS accepted it and marking the
  record failed (the function's ``PublishedNotRecorded`` metric). It may already be on its topic; selected only with
  ``include_publication_unknown``, and a replay of it may be a second copy.

The ingest path tells them apart with the writes it makes anyway (claim, release, mark): no extra AWS call. A
selected ``claimed`` record is claimed by the replay itself (the same conditional write as the ingest function, so a
concurrent Svix retry cannot publish it too), published with ``replay=true``, and marked ``published``, after which a
retry of it is answered as a duplicate.

Nothing here prints or logs a body: bodies hold personal data.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, TextIO

from stack_webhook_fanout.aws_calls import calling
from stack_webhook_fanout.errors import ClaimInProgressError, DependencyError
from stack_webhook_fanout.event_parser import parse_event
from stack_webhook_fanout.event_store import STATUS_CLAIMED, STATUS_PUBLISHED, AlreadyPublished, EventStore, plain_item
from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES, TOPIC_LOGICAL_IDS
from stack_webhook_fanout.topics import (
    SNS_MAX_MESSAGE_BYTES,
    UNREADABLE_TYPE,
    TopicRouter,
    message_attributes,
    message_size,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

    from stack_webhook_fanout.publisher import SnsPublisher

#: How long a claim taken by the replay blocks other deliveries of the id (it publishes right after claiming).
REPLAY_LEASE_SECONDS: Final = 30


class OutputsError(ValueError):
    """The outputs (of ``make dev`` or of a deployed stack) lack what a replay needs."""


class SelectionError(ValueError):
    """A selection argument (a time, a rate) cannot be understood."""


# ---------------------------------------------------------------------------------------------------------------------
# Where to replay: table and topics
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReplayTarget:
    """The events table and the topics of one stack (local or deployed).

    ``endpoint_url`` and ``region`` are set for the local emulator (from its outputs file), None for AWS.
    """

    table_name: str
    topic_arns: Mapping[str, str]
    fallback_topic_arn: str
    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_local_outputs(cls, outputs: Mapping[str, Any]) -> ReplayTarget:
        """Read the outputs file of ``make dev`` (keys ``AwsEndpointUrl``, ``Region``, ``EventsTableName``,
        ``TopicArns`` and ``FallbackTopicArn``)."""
        missing = [
            key
            for key in ("AwsEndpointUrl", "Region", "EventsTableName", "TopicArns", "FallbackTopicArn")
            if not outputs.get(key)
        ]
        if missing:
            raise OutputsError(f"the outputs file lacks: {', '.join(missing)}")
        topic_arns = outputs["TopicArns"]
        if not isinstance(topic_arns, dict):
            raise OutputsError("TopicArns in the outputs file must be an object of event type to topic ARN")
        absent = [t for t in KNOWN_EVENT_TYPES if not topic_arns.get(t)]
        if absent:
            raise OutputsError(f"TopicArns in the outputs file lacks: {', '.join(absent)}")
        return cls(
            table_name=str(outputs["EventsTableName"]),
            topic_arns={t: str(topic_arns[t]) for t in KNOWN_EVENT_TYPES},
            fallback_topic_arn=str(outputs["FallbackTopicArn"]),
            endpoint_url=str(outputs["AwsEndpointUrl"]),
            region=str(outputs["Region"]),
        )

    @classmethod
    def from_stack_outputs(cls, outputs: Mapping[str, str]) -> ReplayTarget:
        """Read a deployed stack's CloudFormation outputs (``OutputKey`` -> ``OutputValue``): ``EventsTableName``,
        ``<TopicLogicalId>Arn`` for every known type and ``FallbackTopicArn``."""
        keys = {t: f"{logical_id}Arn" for t, logical_id in TOPIC_LOGICAL_IDS.items()}
        missing = [k for k in ("EventsTableName", *keys.values(), "FallbackTopicArn") if not outputs.get(k)]
        if missing:
            raise OutputsError(
                f"the stack's outputs lack: {', '.join(missing)} (is it a stack-webhook-fanout stack, fully deployed?)"
            )
        return cls(
            table_name=outputs["EventsTableName"],
            topic_arns={t: outputs[key] for t, key in keys.items()},
            fallback_topic_arn=outputs["FallbackTopicArn"],
        )

    def router(self) -> TopicRouter:
        return TopicRouter(self.topic_arns, self.fallback_topic_arn)


# ---------------------------------------------------------------------------------------------------------------------
# What to replay: the selection and the records
# ---------------------------------------------------------------------------------------------------------------------
_RELATIVE: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def parse_time(value: str, *, now: float) -> float:
    """Turn a command-line time into epoch seconds.

    Accepts epoch seconds (``1764201600``), ISO 8601 (``2026-11-27T08:00:00Z``, ``2026-11-27 08:00+01:00``,
    ``2026-11-27``; a time without offset is UTC) and a duration before ``now`` (``90s``, ``30m``, ``6h``, ``2d``,
    ``1w``).
    """
    text = value.strip()
    if not text:
        raise SelectionError("empty time")
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now - float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError as exc:
        raise SelectionError(
            f"cannot read {value!r} as a time: use ISO 8601 (2026-11-27T08:00:00Z), epoch seconds, "
            "or a duration ago (30m, 6h, 2d)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_time(epoch: float | None) -> str:
    """ISO 8601 in UTC to the second, or ``-``."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Selection:
    """Which records to replay. Criteria combine with AND; an empty criterion does not restrict.

    Parameters
    ----------
    event_ids:
        Read these ids (``GetItem`` each) instead of scanning the table.
    event_types:
        Stored ``event_type`` values (a type name, or ``unreadable`` for bodies whose type could not be read).
    received_from, received_until:
        Epoch seconds; a record matches when ``received_from <= received_at < received_until``.
    include_unpublished:
        Also replay records known unpublished (claimed, then released after a failed publish).
    include_publication_unknown:
        Also replay records whose publication is unknown (a claim still held past its lease): possibly a second copy.
    """

    event_ids: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    received_from: float | None = None
    received_until: float | None = None
    include_unpublished: bool = False
    include_publication_unknown: bool = False

    def __post_init__(self) -> None:
        if (
            self.received_from is not None
            and self.received_until is not None
            and self.received_from >= self.received_until
        ):
            raise SelectionError("the time range is empty: --since must be before --until")

    @property
    def is_everything(self) -> bool:
        return not (
            self.event_ids or self.event_types or self.received_from is not None or self.received_until is not None
        )

    def matches(self, record: StoredEvent) -> bool:
        """Whether a record meets the type and time criteria (ids are met by reading them)."""
        if self.event_types and record.event_type not in self.event_types:
            return False
        if self.received_from is None and self.received_until is None:
            return True
        received = record.received_at
        if received is None:
            return False
        if self.received_from is not None and received < self.received_from:
            return False
        return self.received_until is None or received < self.received_until

    def scan_filter(self) -> dict[str, Any]:
        """The ``FilterExpression`` (with its names and values) of a Scan for the type and time criteria;
        empty when there are none. Status is not filtered here, so that the summary can count what it leaves out."""
        clauses: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        if self.event_types:
            placeholders = []
            for i, event_type in enumerate(self.event_types):
                values[f":type{i}"] = {"S": event_type}
                placeholders.append(f":type{i}")
            names["#type"] = "event_type"
            clauses.append(f"#type IN ({', '.join(placeholders)})")
        if self.received_from is not None:
            names["#received"] = "received_at"
            values[":from"] = {"N": _number(self.received_from)}
            clauses.append("#received >= :from")
        if self.received_until is not None:
            names["#received"] = "received_at"
            values[":until"] = {"N": _number(self.received_until)}
            clauses.append("#received < :until")
        if not clauses:
            return {}
        return {
            "FilterExpression": " AND ".join(clauses),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }


def _number(value: float) -> str:
    return f"{value:.3f}"


class RecordState(StrEnum):
    """What a record says about its publication (see the module's docstring)."""

    PUBLISHED = "published"
    IN_PROGRESS = "in_progress"
    UNPUBLISHED = "unpublished"
    PUBLICATION_UNKNOWN = "publication_unknown"


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
        if self.status == STATUS_PUBLISHED:
            return RecordState.PUBLISHED
        if self.status != STATUS_CLAIMED:
            return RecordState.UNPUBLISHED
        if not self.claim_held:
            return RecordState.UNPUBLISHED
        if (self.lease_expires_at or 0.0) >= now:
            return RecordState.IN_PROGRESS
        return RecordState.PUBLICATION_UNKNOWN

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> StoredEvent | None:
        """Build from a low-level DynamoDB item; None when the item lacks what a publication needs."""
        plain = plain_item(item)
        required = ("event_id", "body", "status", "event_timestamp")
        if not all(isinstance(plain.get(name), str) and plain[name] for name in required):
            return None
        return cls(
            event_id=plain["event_id"],
            event_type=str(plain.get("event_type") or UNREADABLE_TYPE),
            body=plain["body"],
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


# ---------------------------------------------------------------------------------------------------------------------
# How fast: a token bucket
# ---------------------------------------------------------------------------------------------------------------------
class TokenBucket:
    """Allow ``rate`` acquisitions per second on average, up to ``burst`` at once after a pause.

    The bucket starts full. ``clock`` (monotonic seconds) and ``sleep`` are injectable, so tests can check the
    waits without waiting.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise SelectionError(f"the rate must be positive, got {rate}")
        if burst < 1:
            raise SelectionError(f"the burst must be at least 1, got {burst}")
        self._rate = float(rate)
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self._burst
        self._last = clock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; return the seconds slept."""
        slept = 0.0
        while True:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            # The tolerance absorbs float error after a sleep of exactly the computed wait.
            if self._tokens >= 1.0 - 1e-9:
                self._tokens = max(0.0, self._tokens - 1.0)
                return slept
            wait = (1.0 - self._tokens) / self._rate
            self._sleep(wait)
            slept += wait


# ---------------------------------------------------------------------------------------------------------------------
# Progress: a plain-text bar on a stream (stderr)
# ---------------------------------------------------------------------------------------------------------------------
class ProgressBar:
    """A plain-text progress bar. On a terminal it redraws one line; elsewhere (CI logs, files) it writes a line
    at every tenth of the way, so logs stay short."""

    def __init__(self, stream: TextIO, *, width: int = 30, interactive: bool | None = None) -> None:
        self._stream = stream
        self._width = width
        self._interactive = stream.isatty() if interactive is None else interactive
        self._last_step = -1
        self._line = ""

    def update(self, done: int, total: int, detail: str = "") -> None:
        fraction = 1.0 if total <= 0 else min(1.0, done / total)
        filled = round(fraction * self._width)
        line = f"[{'#' * filled}{'.' * (self._width - filled)}] {done}/{total} {detail}".rstrip()
        if self._interactive:
            self._draw(line)
            return
        step = math.floor(fraction * 10)
        if step != self._last_step:
            self._last_step = step
            self._stream.write(line + "\n")
            self._stream.flush()

    def message(self, text: str) -> None:
        """Write a line of text without garbling the bar."""
        if self._interactive and self._line:
            self._stream.write("\r" + " " * len(self._line) + "\r")
        self._stream.write(text + "\n")
        if self._interactive and self._line:
            self._stream.write(self._line)
        self._stream.flush()

    def close(self) -> None:
        if self._interactive and self._line:
            self._stream.write("\n")
            self._stream.flush()
        self._line = ""

    def _draw(self, line: str) -> None:
        padding = " " * max(0, len(self._line) - len(line))
        self._stream.write("\r" + line + padding)
        self._stream.flush()
        self._line = line


# ---------------------------------------------------------------------------------------------------------------------
# The replay
# ---------------------------------------------------------------------------------------------------------------------
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
        return self.record.status != STATUS_PUBLISHED


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
            message_id = self._publisher.publish(message.topic_arn, record.body, message.attributes)
        except DependencyError as exc:
            if not exc.may_have_succeeded:  # as the function does: a lost answer keeps the claim
                store.release(claim)
            return ItemResult(message, published=False, failure=f"{exc.service}:{exc.detail}")
        try:
            marked = store.mark_published(claim, topic_arn=message.topic_arn, message_id=message_id)
        except DependencyError:
            marked = False
        note = None if marked else "published_but_not_marked"
        return ItemResult(message, published=True, message_id=message_id, note=note)


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
