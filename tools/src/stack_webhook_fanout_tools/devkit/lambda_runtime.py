"""A deployed function run as Lambda runs it, on this machine: AWS's Runtime Interface Emulator (RIE) and Runtime
Interface Client (``awslambdaric``), without containers.

:func:`download_function` takes what the emulator's Lambda holds (configuration, code and layers, downloaded from
their code locations and checked against their SHA-256) and lays the artifacts out as Lambda does: the code in a
task root (``/var/task``), every layer extracted into one ``opt`` folder (``/opt``). An
:class:`ExecutionEnvironment` is one RIE process serving one invoke at a time, with the function's handler and
environment, the task root and the layer's ``python`` folders on ``PYTHONPATH`` in Lambda's order, and an
interpreter that holds only what the python3.13 runtime provides (boto3) plus ``awslambdaric``: the function imports
its package from the layer, nothing from the project. A :class:`FunctionPool` starts more environments while
requests overlap, up to a bound, as Lambda scales out, and replaces one that died (its runtime process killed, or
RIE and the runtime) as Lambda does: reaped at once, the next request gets a new one. RIE's lines (START, END,
REPORT with the init duration) and the function's own output go to one log file per function.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from .emulator import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, require_loopback_endpoint
from .moto_server import free_port

if TYPE_CHECKING:
    from collections.abc import Mapping

HOST: Final = "127.0.0.1"
#: Where RIE takes invokes (the path of Lambda's Invoke API for the one function it serves).
INVOKE_PATH: Final = "/2015-03-31/functions/function/invocations"
#: The interpreter folder name Lambda's python3.13 layers use under ``/opt/python/lib``.
_RUNTIME_PYTHON: Final = "python3.13"


def lambda_python(repo_root: Path) -> Path:
    """The interpreter of the Lambda runtime's stand-in: ``$LAMBDA_PYTHON``, else ``.venv-lambda`` (boto3 and
    awslambdaric only, made by ``make install``). Raises FileNotFoundError saying how to get it."""
    path = Path(os.environ.get("LAMBDA_PYTHON") or repo_root / ".venv-lambda" / "bin" / "python")
    if not path.is_file():
        raise FileNotFoundError(f"no Lambda runtime interpreter at {path}: run `make install` (or set LAMBDA_PYTHON)")
    return path


class FunctionError(RuntimeError):
    """The function failed (an unhandled error, a timeout or a failed init): API Gateway answers 500."""


@dataclass(frozen=True, slots=True)
class DeployedFunction:
    """A function as the emulator's Lambda configuration holds it, with its artifacts laid out on disk."""

    name: str
    arn: str
    handler: str
    runtime: str
    memory_mb: int
    timeout_seconds: int
    environment: Mapping[str, str]
    task_root: Path
    opt_root: Path
    region: str

    def python_path(self) -> str:
        """Lambda's module search order: the function's code, then the layers' ``python`` folders."""
        layer_python = self.opt_root / "python"
        return os.pathsep.join(
            str(p) for p in (self.task_root, layer_python / "lib" / _RUNTIME_PYTHON / "site-packages", layer_python)
        )


def download_function(lambda_client: Any, function_name: str, destination: Path) -> DeployedFunction:
    """Fetch ``function_name``'s configuration, code and layers from the emulator into ``destination`` (emptied
    first: nothing from an earlier deployment may stay on the path)."""
    function = lambda_client.get_function(FunctionName=function_name)
    config = function["Configuration"]
    # Absolute: the runtime starts in the task root, where a relative PYTHONPATH would point elsewhere.
    destination = destination.resolve()
    task_root, opt_root = destination / "task", destination / "opt"
    shutil.rmtree(destination, ignore_errors=True)
    for folder in (task_root, opt_root):
        folder.mkdir(parents=True)
    extract_artifact(download_artifact(function["Code"]["Location"], config["CodeSha256"]), task_root)
    for layer in config.get("Layers", []):
        # arn:aws:lambda:<region>:<account>:layer:<name>:<version>
        layer_arn, version = layer["Arn"].rsplit(":", 1)
        content = lambda_client.get_layer_version(LayerName=layer_arn, VersionNumber=int(version))["Content"]
        extract_artifact(download_artifact(content["Location"], content["CodeSha256"]), opt_root)
    return DeployedFunction(
        name=config["FunctionName"],
        arn=config["FunctionArn"],
        handler=config["Handler"],
        runtime=config["Runtime"],
        memory_mb=int(config["MemorySize"]),
        timeout_seconds=int(config["Timeout"]),
        # Lambda's API gives strings; moto passes a Number parameter's Ref through as a number.
        environment={k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()},
        task_root=task_root,
        opt_root=opt_root,
        region=config["FunctionArn"].split(":")[3],
    )


def download_artifact(url: str, sha256_b64: str) -> bytes:
    parts = urlsplit(url)
    require_loopback_endpoint(f"{parts.scheme}://{parts.netloc}")
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - an http(s) URL on loopback
        data: bytes = response.read()
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    if digest != sha256_b64:
        raise ValueError(f"downloaded artifact's SHA-256 {digest} is not the deployed {sha256_b64}")
    return data


def extract_artifact(data: bytes, folder: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.namelist():
            target = (folder / member).resolve()
            if not target.is_relative_to(folder.resolve()):
                raise ValueError(f"archive member {member!r} would land outside {folder}")
        archive.extractall(folder)


def runtime_interface_emulator(sam_cli: Path) -> Path:
    """The RIE binary for this machine that the SAM CLI package ships (``samcli/local/rapid``)."""
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
    venv = sam_cli.resolve().parent.parent
    for candidate in sorted(venv.glob(f"lib/python3*/site-packages/samcli/local/rapid/aws-lambda-rie-{arch}")):
        return candidate
    raise FileNotFoundError(f"no aws-lambda-rie-{arch} in the SAM CLI's environment {venv}")


def lambda_environment(
    function: DeployedFunction, *, endpoint_url: str, log_stream: str, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The process environment Lambda gives the runtime, pointed at the emulator.

    Nothing of this process's environment is passed on (no profile, no virtual environment, no PYTHONPATH of the
    project): the reserved variables Lambda sets, the function's own variables as deployed, then
    ``AWS_ENDPOINT_URL`` (which the template declares empty for this purpose, as ``sam local`` uses it) and dummy
    credentials in place of the execution role's.
    """
    require_loopback_endpoint(endpoint_url)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(function.task_root),
        "PYTHONPATH": function.python_path(),
        "_HANDLER": function.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout_seconds),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_REGION": function.region,
        "AWS_DEFAULT_REGION": function.region,
        **function.environment,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        **(overrides or {}),
    }


class ExecutionEnvironment:
    """One RIE process with the runtime client: one invoke at a time, init on the first (as Lambda does).

    It dies as Lambda's do: its runtime process alone (a crash, an out-of-memory kill, the timeout), or all of it.
    :meth:`alive` says whether it still can serve; a :class:`FunctionPool` replaces one that cannot.
    """

    def __init__(
        self,
        function: DeployedFunction,
        *,
        rie: Path,
        python: Path,
        endpoint_url: str,
        log: IO[bytes],
        number: int = 1,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.function = function
        self.number = number
        self.port = free_port()
        self._log = log
        self._argv = [
            str(rie),
            "--runtime-interface-emulator-address",
            f"{HOST}:{self.port}",
            # RIE's own Runtime API for the runtime client: 127.0.0.1:9001 unless told, one per environment.
            "--runtime-api-address",
            f"{HOST}:{free_port()}",
            str(python),
            "-m",
            "awslambdaric",
            function.handler,
        ]
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]environment-{number}"
        self._env = lambda_environment(function, endpoint_url=endpoint_url, log_stream=stream, overrides=overrides)
        self._process: subprocess.Popen[bytes] | None = None
        # The runtime processes seen serving this environment: once one has gone, the environment has died.
        self._runtimes: set[int] = set()
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._process is not None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the environment is not started")
        return self._process.pid

    def runtime_pids(self) -> list[int]:
        """The runtime processes RIE has started and that still run (its children, from ``/proc``)."""
        process = self._process
        if process is None:
            return []
        found: list[int] = []
        for children in Path(f"/proc/{process.pid}/task").glob("*/children"):
            try:
                found += [int(pid) for pid in children.read_text().split()]
            except OSError:  # RIE has just exited
                continue
        running = [pid for pid in found if _running(pid)]
        with self._lock:
            self._runtimes.update(running)
        return running

    def alive(self) -> bool:
        """True while RIE runs and no runtime process it served with has died. Reaps RIE if it exited."""
        process = self._process
        if process is None or process.poll() is not None:
            return False
        running = set(self.runtime_pids())
        with self._lock:
            return self._runtimes <= running

    def start(self, *, timeout_seconds: float = 10) -> None:
        """Start RIE and wait until it listens. It stays in this process's group, as the emulator does: a terminal's
        Ctrl-C reaches it, and a group kill leaves nothing behind (RIE and the runtime it starts)."""
        self._process = subprocess.Popen(
            self._argv,
            cwd=self.function.task_root,
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_seconds
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"the runtime interface emulator exited ({self._process.returncode})")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the runtime interface emulator did not listen on {HOST}:{self.port}") from None
                time.sleep(0.05)

    def invoke(self, event: Mapping[str, Any]) -> Any:
        """Invoke the function with ``event``; return its JSON result. Raise :class:`FunctionError` if it failed,
        the environment's death during the invoke included."""
        request = urllib.request.Request(
            f"http://{HOST}:{self.port}{INVOKE_PATH}",
            data=json.dumps(event).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        self.runtime_pids()  # the runtime serving this invoke, if it has started
        # RIE ends an invoke at the function's timeout itself; the margin covers init.
        try:
            with urllib.request.urlopen(request, timeout=self.function.timeout_seconds + 15) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:  # RIE answers 502 when the init or the runtime failed
            raise FunctionError(f"the runtime failed ({exc.code}); see {self._log.name}") from exc
        except (OSError, http.client.HTTPException) as exc:  # RIE itself died (connection refused or reset)
            raise FunctionError(f"the execution environment died during the invoke: {exc!r}") from exc
        finally:
            self.runtime_pids()
        result = json.loads(payload or b"null")
        if isinstance(result, dict) and "errorType" in result and "errorMessage" in result:
            raise FunctionError(f"{result['errorType']}: {result['errorMessage']}")
        return result

    def kill_runtime(self) -> list[int]:
        """SIGKILL the runtime process alone, as a crash or an out-of-memory kill does; return the pids killed."""
        pids = self.runtime_pids()
        for pid in pids:
            _kill(pid)
        return pids

    def kill(self) -> list[int]:
        """SIGKILL the whole environment: the runtime, then RIE at once; return the pids killed. The runtime goes
        first so that RIE reaps it; :meth:`stop` then reaps RIE."""
        pids = self.kill_runtime()
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            pids.append(process.pid)
        return pids

    def stop(self) -> None:
        """Stop RIE by its pid (SIGTERM, then SIGKILL after 5 s) and wait for it (reaped: no zombie is left); on
        SIGTERM it kills the runtime it started, and a runtime that outlived it is killed by its pid."""
        process = self._process
        if process is None:
            return
        runtimes = self.runtime_pids()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for pid in runtimes:
            # Only a runtime that outlived RIE: once reaped, its pid may belong to another process.
            if _running(pid) and b"awslambdaric" in _cmdline(pid):
                _kill(pid)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, parent pid, ...), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def zombie_children(parent: int) -> list[int]:
    """The children of ``parent`` that exited and were never reaped (zombies)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if fields is not None and fields[0] == "Z" and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class FunctionPool:
    """Execution environments of one function, as Lambda keeps them: an idle one serves each invoke; while every
    environment is busy, a new one starts, up to ``max_environments``; beyond that, invokes wait for one to be free.

    An environment that died (its runtime process, or all of it) is reaped and dropped at once by a watcher thread,
    and the invoke it was serving fails (API Gateway answers 500); the next invoke gets a new environment.
    :attr:`deaths` counts them.
    """

    #: How often the watcher looks for environments that died.
    WATCH_INTERVAL_SECONDS: Final = 0.1

    def __init__(
        self,
        function: DeployedFunction,
        *,
        rie: Path,
        python: Path,
        endpoint_url: str,
        log_path: Path,
        max_environments: int = 4,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        if max_environments < 1:
            raise ValueError("max_environments must be at least 1")
        self.function = function
        self.max_environments = max_environments
        self.log_path = log_path
        self._rie, self._python, self._endpoint_url, self._overrides = rie, python, endpoint_url, overrides
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self._condition = threading.Condition()
        self._idle: list[ExecutionEnvironment] = []
        self._all: list[ExecutionEnvironment] = []
        self._busy: dict[ExecutionEnvironment, Mapping[str, Any]] = {}
        self._created = 0
        self.deaths = 0
        self._closed = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="function-pool-watcher", daemon=True)
        self._watcher.start()

    @classmethod
    def deployed(
        cls,
        lambda_client: Any,
        function_name: str,
        *,
        work_dir: Path,
        rie: Path,
        python: Path,
        endpoint_url: str,
        max_environments: int = 4,
    ) -> FunctionPool:
        """The deployed function ``function_name``, downloaded into ``work_dir/function``, its Lambda lines logged to
        ``work_dir/<name>.log``: what make dev-lambda and the deployed test tier serve."""
        function = download_function(lambda_client, function_name, work_dir / "function")
        return cls(
            function,
            rie=rie,
            python=python,
            endpoint_url=endpoint_url,
            log_path=work_dir / f"{function.name}.log",
            max_environments=max_environments,
        )

    @property
    def environments_started(self) -> int:
        """Environments started over the pool's life, replacements included."""
        with self._condition:
            return self._created

    def environments(self) -> list[ExecutionEnvironment]:
        """The environments that serve now (started, not known dead)."""
        with self._condition:
            return [environment for environment in self._all if environment.started]

    def pids(self) -> list[int]:
        """The process ids of the environments that serve now."""
        return [environment.pid for environment in self.environments()]

    def busy(self) -> list[tuple[ExecutionEnvironment, Mapping[str, Any]]]:
        """The environments serving an invoke now, each with the event it serves."""
        with self._condition:
            return list(self._busy.items())

    def __call__(self, event: dict[str, Any], context: object = None) -> Any:
        """A Lambda handler's signature (the context is RIE's own), for :class:`.local_gateway.LocalGateway`."""
        return self.invoke(event)

    def invoke(self, event: Mapping[str, Any]) -> Any:
        environment = self._acquire()
        with self._condition:
            self._busy[environment] = event
        try:
            return environment.invoke(event)
        finally:
            alive = environment.alive()
            with self._condition:
                self._busy.pop(environment, None)
                if alive and environment in self._all:
                    self._idle.append(environment)
                self._condition.notify()
            if not alive:
                self._drop(environment)

    def _acquire(self) -> ExecutionEnvironment:
        while True:
            with self._condition:
                while True:
                    if self._closed.is_set():
                        raise RuntimeError("the function pool is closed")
                    if self._idle:
                        environment = self._idle.pop()
                        fresh = False
                        break
                    if len(self._all) < self.max_environments:
                        self._created += 1
                        environment = ExecutionEnvironment(
                            self.function,
                            rie=self._rie,
                            python=self._python,
                            endpoint_url=self._endpoint_url,
                            log=self._log,
                            number=self._created,
                            overrides=self._overrides,
                        )
                        self._all.append(environment)
                        fresh = True
                        break
                    self._condition.wait()
            if fresh:
                try:
                    environment.start()
                except BaseException:
                    self._drop(environment)
                    raise
                return environment
            if environment.alive():
                return environment
            # It died while idle (between invocations): Lambda would never hand it an invoke.
            self._drop(environment)

    def _drop(self, environment: ExecutionEnvironment) -> None:
        """Forget an environment that died and reap what is left of it (by pid)."""
        with self._condition:
            if environment not in self._all:
                return
            self._all.remove(environment)
            if environment in self._idle:
                self._idle.remove(environment)
            self.deaths += 1
            self._condition.notify_all()
        environment.stop()

    def _watch(self) -> None:
        """Reap environments that died, busy or idle, as soon as they do (RIE is this process's child: an exited
        one stays a zombie until waited for); an invoke on one that died fails at once instead of hanging."""
        while not self._closed.wait(self.WATCH_INTERVAL_SECONDS):
            for environment in self.environments():
                if not environment.alive():
                    self._drop(environment)

    def close(self) -> None:
        """Stop every environment (by pid) and close the log."""
        self._closed.set()
        with self._condition:
            environments, self._all, self._idle = list(self._all), [], []
            self._condition.notify_all()
        self._watcher.join(timeout=5)
        for environment in environments:
            environment.stop()
        self._log.close()
