"""Which records a replay reads: the selection, and the Scan filter it becomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import StoredEvent


class SelectionError(ValueError):
    """A selection argument (a time, a rate) cannot be understood."""


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
