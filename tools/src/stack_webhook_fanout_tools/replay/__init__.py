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

Which records: only ``published`` ones unless asked. A record still ``claimed`` is in one of three states
(``stack_webhook_fanout.event_store.RecordState``):

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

Modules, one job each: ``target`` (the stack's outputs), ``times`` (command-line times), ``selection`` (what to read,
the Scan filter), ``records`` (reading the table, old and new records), ``pacing`` (the rate limit,
pyrate-limiter's token bucket), ``progress`` (tqdm's bar), ``replayer`` (the replay itself).
"""

from stack_webhook_fanout.event_store import RecordState

from .pacing import TokenBucket
from .progress import ProgressBar
from .records import EventReader, StoredEvent
from .replayer import (
    REPLAY_LEASE_SECONDS,
    ItemResult,
    PlannedMessage,
    Replayer,
    ReplaySummary,
    Skip,
    build_replayer,
    describe,
    plan_message,
)
from .selection import Selection, SelectionError
from .target import OutputsError, ReplayTarget
from .times import format_time, parse_time

__all__ = [
    "REPLAY_LEASE_SECONDS",
    "EventReader",
    "ItemResult",
    "OutputsError",
    "PlannedMessage",
    "ProgressBar",
    "RecordState",
    "ReplaySummary",
    "ReplayTarget",
    "Replayer",
    "Selection",
    "SelectionError",
    "Skip",
    "StoredEvent",
    "TokenBucket",
    "build_replayer",
    "describe",
    "format_time",
    "parse_time",
    "plan_message",
]
