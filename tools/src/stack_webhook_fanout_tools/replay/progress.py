"""Progress of a replay on a stream (stderr): tqdm's bar, and lines of text that do not garble it."""

from __future__ import annotations

from typing import TextIO

from tqdm import tqdm

#: ``[####......] 3/10 published=3 failed=0``: the counts a replay reports, no rate or time estimate (a replay is
#: paced by --rate, so tqdm's estimate would only repeat it).
_BAR_FORMAT = "[{bar}] {n_fmt}/{total_fmt} {desc}"


class ProgressBar:
    """A progress bar drawn by tqdm on ``stream``.

    On a terminal tqdm redraws one line (at most ten times a second); elsewhere (CI logs, files) it redraws at most
    every ``log_interval`` seconds, so logs stay short, and always draws the final state on :meth:`close`.
    """

    def __init__(
        self, stream: TextIO, *, width: int = 30, interactive: bool | None = None, log_interval: float = 10.0
    ) -> None:
        interactive = stream.isatty() if interactive is None else interactive
        self._stream = stream
        self._bar = tqdm(
            total=0,
            file=stream,
            bar_format=_BAR_FORMAT.replace("{bar}", f"{{bar:{width}}}"),
            ascii=".#",
            mininterval=0.1 if interactive else log_interval,
            dynamic_ncols=False,
            leave=True,
            disable=False,
        )

    def update(self, done: int, total: int, detail: str = "") -> None:
        if self._bar.total != total:
            self._bar.total = total
        self._bar.set_description_str(detail, refresh=False)
        self._bar.update(done - self._bar.n)

    def message(self, text: str) -> None:
        """Write a line of text above the bar (tqdm clears the bar, writes the line, draws the bar again)."""
        self._bar.write(text, file=self._stream)

    def close(self) -> None:
        self._bar.close()
