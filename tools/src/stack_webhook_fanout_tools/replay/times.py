"""Command-line times: epoch seconds, ISO 8601 or a duration ago, and back to ISO 8601 for display."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from .selection import SelectionError

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
