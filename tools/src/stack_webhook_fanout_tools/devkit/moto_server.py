"""A moto server (the AWS emulator) as a subprocess on loopback: started, awaited, and stopped by its process id.

One implementation for ``make dev``, the test tiers and the benchmark.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import IO, TYPE_CHECKING, Self

from .emulator import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, wait_until_ready

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def process_gone(pid: int) -> bool:
    """True when no process has this id any more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def emulator_environment() -> dict[str, str]:
    """The server's environment: none of the user's AWS settings (moto runs botocore itself, and a profile that
    does not exist there makes every request fail), dummy credentials instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **env,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


class MotoServer:
    """moto's server (through :mod:`.moto_launcher`) from this interpreter's environment, on ``127.0.0.1:port``
    (a free port unless given).

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``log_path`` receives the server's output.
    ``sam_python`` (an interpreter with aws-sam-translator) adds what ``sam deploy`` needs of its CloudFormation
    (:mod:`.cfn_extensions`).
    """

    def __init__(
        self, port: int | None = None, *, log_path: Path | None = None, sam_python: Path | None = None
    ) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.sam_python = sam_python
        self.endpoint = f"http://{HOST}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the server is not started")
        return self._process.pid

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout_seconds: float = 60) -> str:
        """Start the server and wait until it answers; return its endpoint URL. Raise RuntimeError if it cannot."""
        self._log = self.log_path.open("wb") if self.log_path else None
        # moto_server with DynamoDB's single-item atomicity restored (see moto_launcher.py)
        argv = [
            sys.executable,
            "-m",
            "stack_webhook_fanout_tools.devkit.moto_launcher",
            "-H",
            HOST,
            "-p",
            str(self.port),
        ]
        if self.sam_python is not None:
            argv += ["--sam-python", str(self.sam_python)]
        self._process = subprocess.Popen(
            argv,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            env=emulator_environment(),
        )
        try:
            wait_until_ready(self.endpoint, timeout_seconds=timeout_seconds)
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError(f"moto_server did not answer on {self.endpoint}: {self._log_tail()}") from exc
        if self._process.poll() is not None:
            code = self._process.returncode
            self.stop()
            raise RuntimeError(f"moto_server exited at once ({code}): is port {self.port} taken?")
        return self.endpoint

    def stop(self) -> None:
        """Stop the server by its pid (SIGTERM, then SIGKILL after 10 s) and wait for it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-2000:]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
