"""Progress of a replay: a plain-text bar on a stream (stderr)."""

from __future__ import annotations

import math
from typing import TextIO


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
