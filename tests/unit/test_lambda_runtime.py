"""The parts of devkit.lambda_runtime and devkit.sam_deploy that need no server: the environment a deployed
function gets, Lambda's module search order, the artifact checks, the SAM CLI's environment."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import os
import threading
import zipfile
from typing import TYPE_CHECKING

import pytest
from stack_webhook_fanout_tools.devkit.emulator import NonLoopbackEndpointError
from stack_webhook_fanout_tools.devkit.lambda_runtime import (
    DeployedFunction,
    download_artifact,
    extract_artifact,
    lambda_environment,
)
from stack_webhook_fanout_tools.devkit.sam_deploy import localhost_endpoint, sam_environment

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def function(tmp_path: Path, **environment: str) -> DeployedFunction:
    return DeployedFunction(
        name="stack-IngestFunction-ABC",
        arn="arn:aws:lambda:eu-west-1:123456789012:function:stack-IngestFunction-ABC",
        handler="app.lambda_handler",
        runtime="python3.13",
        memory_mb=512,
        timeout_seconds=10,
        environment=environment,
        task_root=tmp_path / "task",
        opt_root=tmp_path / "opt",
        region="eu-west-1",
    )


def test_python_path_is_lambdas_order_task_root_then_the_layers(tmp_path: Path) -> None:
    assert function(tmp_path).python_path().split(os.pathsep) == [
        str(tmp_path / "task"),
        str(tmp_path / "opt" / "python" / "lib" / "python3.13" / "site-packages"),
        str(tmp_path / "opt" / "python"),
    ]


def test_environment_is_the_deployed_one_pointed_at_the_emulator_and_nothing_of_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "real-account")
    monkeypatch.setenv("VIRTUAL_ENV", "/project/.venv")
    monkeypatch.setenv("PYTHONPATH", "/project/src")
    deployed = function(tmp_path, EVENTS_TABLE_NAME="stack-EventsTable-XYZ", AWS_ENDPOINT_URL="")
    env = lambda_environment(deployed, endpoint_url="http://127.0.0.1:4566", log_stream="s")
    assert env["EVENTS_TABLE_NAME"] == "stack-EventsTable-XYZ"
    # the template declares AWS_ENDPOINT_URL empty so that a local run can point it at the emulator
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert env["PYTHONPATH"] == deployed.python_path()
    assert env["_HANDLER"] == "app.lambda_handler"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert "AWS_PROFILE" not in env
    assert "VIRTUAL_ENV" not in env
    assert "/project" not in " ".join(env.values())


def test_environment_refuses_an_endpoint_off_this_machine(tmp_path: Path) -> None:
    with pytest.raises(NonLoopbackEndpointError):
        lambda_environment(function(tmp_path), endpoint_url="https://lambda.us-east-1.amazonaws.com", log_stream="s")


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_extract_lays_an_archive_out_and_refuses_members_outside_the_folder(tmp_path: Path) -> None:
    extract_artifact(zipped({"python/pkg/__init__.py": b"x = 1\n"}), tmp_path / "opt")
    assert (tmp_path / "opt" / "python" / "pkg" / "__init__.py").read_bytes() == b"x = 1\n"
    with pytest.raises(ValueError, match="outside"):
        extract_artifact(zipped({"../escaped.py": b""}), tmp_path / "opt")
    assert not (tmp_path / "escaped.py").exists()


@pytest.fixture
def artifact_server() -> Iterator[tuple[str, bytes]]:
    body = zipped({"app.py": b"def lambda_handler(event, context):\n    return {}\n"})

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/bucket/key", body
    finally:
        server.shutdown()
        server.server_close()


def test_download_checks_the_deployed_sha256(artifact_server: tuple[str, bytes]) -> None:
    url, body = artifact_server
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert download_artifact(url, digest) == body
    with pytest.raises(ValueError, match="SHA-256"):
        download_artifact(url, base64.b64encode(hashlib.sha256(b"other").digest()).decode())


def test_download_refuses_a_location_off_this_machine() -> None:
    with pytest.raises(NonLoopbackEndpointError):
        download_artifact("https://awslambda-us-east-1-tasks.s3.us-east-1.amazonaws.com/snapshots/x", "")


def test_sam_cli_environment_points_every_endpoint_at_the_emulator_as_localhost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "real-account")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://s3.amazonaws.com")
    env = sam_environment("http://127.0.0.1:4566", "us-east-1")
    assert env["AWS_ENDPOINT_URL"] == "http://localhost:4566"
    assert not {"AWS_PROFILE", "AWS_ENDPOINT_URL_S3"} & set(env)
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert env["SAM_CLI_TELEMETRY"] == "0"
    with pytest.raises(NonLoopbackEndpointError):
        localhost_endpoint("https://cloudformation.us-east-1.amazonaws.com")
