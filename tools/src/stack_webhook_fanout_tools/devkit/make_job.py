"""A ``make`` target run the way a terminal runs a foreground job: in its own process group, stopped with Ctrl-C.

The local and deployed test tiers start ``make dev``, ``make dev-subscriber`` and ``make dev-lambda`` exactly as
the README tells a user to, and check that Ctrl-C (SIGINT to the whole process group, as a terminal sends it)
leaves nothing running. This is the one implementation of starting, waiting for and stopping such a job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def group_alive(pgid: int) -> bool:
    """Whether any process of the process group ``pgid`` is still running."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class MakeJob:
    """``make --no-print-directory TARGET [VARIABLES]`` in ``cwd`` with ``env``, its output in files.

    ``stdout_path`` receives what the terminal would show; ``stderr_path``, when given, takes the standard error
    apart (otherwise both streams go to ``stdout_path``).
    """

    def __init__(
        self,
        target: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        stdout_path: Path,
        stderr_path: Path | None = None,
        make_variables: Sequence[str] = (),
    ) -> None:
        self.target = target
        self.env = dict(env)
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        with ExitStack() as files:
            stdout = files.enter_context(stdout_path.open("wb"))
            stderr: IO[bytes] | int = (
                subprocess.STDOUT if stderr_path is None else files.enter_context(stderr_path.open("wb"))
            )
            self.process = subprocess.Popen(
                ["make", "--no-print-directory", target, *make_variables],
                cwd=cwd,
                env=self.env,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The job's process id, which is also its process group id."""
        return self.process.pid

    def output(self) -> str:
        """Everything the job has written so far (standard output, then standard error when kept apart)."""
        text = self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""
        if self.stderr_path is not None and self.stderr_path.exists():
            text += self.stderr_path.read_text(errors="replace")
        return text

    def wait_until(self, ready: Path | str, timeout_seconds: float = 120) -> None:
        """Wait until the file ``ready`` exists (a Path) or the job's output holds the text ``ready`` (a str).

        Raises RuntimeError, with the job's output, when the job exits first or the time runs out; the job is then
        killed so that nothing outlives the failure.
        """
        deadline = time.monotonic() + timeout_seconds
        while not (ready.exists() if isinstance(ready, Path) else ready in self.output()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"make {self.target} did not become ready ({ready}):\n{self.output()}")
            time.sleep(0.2)

    def running(self) -> bool:
        """Whether any process of the job's group is still running."""
        self.process.poll()  # reap make itself once it has exited: a zombie still counts as a member of its group
        return group_alive(self.pid)

    def interrupt(self, timeout_seconds: float = 30) -> bool:
        """Ctrl-C: SIGINT to the process group; return whether every process of it was gone within the timeout."""
        if self.running():
            os.killpg(self.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_seconds
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        return not self.running()

    def kill(self) -> None:
        """SIGKILL to whatever is left of the process group, and reap the job."""
        if self.running():
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Ctrl-C, and SIGKILL only for a group that outlives it by 30 s."""
        if not self.interrupt():
            self.kill()
