"""A program run in a pseudo-terminal, as a user runs it: its prompts read, answers typed (tests/deployed).

``getpass`` and SAM CLI's prompts need a terminal; a pipe would change what they do. The child is the session
leader of its own terminal, so it and everything it starts are stopped through its process group id.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import time
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    def __init__(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> None:
        with warnings.catch_warnings():
            # the child only chdirs and execs: no lock another thread holds is taken between fork and exec
            warnings.simplefilter("ignore", DeprecationWarning)
            pid, fd = pty.fork()
        if pid == 0:  # the child
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], list(argv), dict(env))  # noqa: S606 (no shell: the argv as given)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = bytearray()
        self.position = 0  # where the next expect starts reading
        self.returncode: int | None = None

    @property
    def text(self) -> str:
        """Everything the program wrote, colours removed."""
        return ANSI.sub(b"", bytes(self.output)).decode(errors="replace").replace("\r\n", "\n")

    def _read(self, timeout_seconds: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout_seconds)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the terminal's other side is closed, the program ended
            return False
        self.output += chunk
        return bool(chunk)

    def expect(self, pattern: str, *, timeout_seconds: float) -> re.Match[str]:
        """Wait until the output since the last match matches ``pattern``; fail with the transcript otherwise."""
        deadline = time.monotonic() + timeout_seconds
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.text, self.position)
            if match:
                self.position = match.end()
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(min(remaining, 0.5)):
                if match := regex.search(self.text, self.position):
                    self.position = match.end()
                    return match
                raise AssertionError(f"no {pattern!r} in the terminal:\n{self.text[-6000:]}")

    def type(self, line: str) -> None:
        """Type ``line`` and Enter (a carriage return, as a keyboard sends it)."""
        os.write(self.fd, line.encode() + b"\r")

    def wait(self, *, timeout_seconds: float) -> int:
        deadline = time.monotonic() + timeout_seconds
        while self.returncode is None:
            self._read(0.2)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(0.05):  # what is left in the terminal
                    pass
                self.returncode = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout_seconds} s:\n{self.text[-6000:]}")
        return self.returncode

    def close(self) -> None:
        """Stop the program and what it started (its process group), and reap it."""
        if self.returncode is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.wait(timeout_seconds=20)
            except (ProcessLookupError, AssertionError):
                os.killpg(self.pid, signal.SIGKILL)
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
        os.close(self.fd)
