"""``sam build`` and the unchanged ``sam deploy`` onto the local AWS emulator, and the deployed stack read back.

The SAM CLI runs from its own environment with every AWS endpoint set to the emulator (``AWS_ENDPOINT_URL``, host
``localhost``: moto reads path-style template URLs only for that host), dummy credentials and no profile or config
file, so it cannot reach a real account. The emulator must run with :mod:`.cfn_extensions` (``MotoServer(...,
sam_python=...)``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from stack_webhook_fanout.event_types import FALLBACK_TOPIC_LOGICAL_ID, TOPIC_LOGICAL_IDS

from .emulator import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    LocalStack,
    emulator_session,
    require_loopback_endpoint,
)
from .lambda_runtime import runtime_interface_emulator

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_STACK_NAME: Final = "stack-webhook-fanout"
#: The stack's outputs that name what the function and ``make send`` use (besides one per topic).
REQUIRED_OUTPUTS: Final = ("EventsTableName", "WebhookSecretArn", "IngestFunctionName", "FallbackTopicArn")


class DeployError(RuntimeError):
    """``sam build`` or ``sam deploy`` failed, or the stack is not complete."""


@dataclass(frozen=True, slots=True)
class SamCli:
    """The SAM CLI of the project's ``.venv-sam`` (or ``$SAM_CLI``), and what its package ships."""

    executable: Path

    @classmethod
    def find(cls, project_dir: Path) -> SamCli:
        path = Path(os.environ.get("SAM_CLI") or project_dir / ".venv-sam" / "bin" / "sam")
        if not path.is_file():
            raise DeployError(f"SAM CLI not found at {path}: run `make install` (or set SAM_CLI)")
        return cls(path)

    @property
    def python(self) -> Path:
        """The interpreter the SAM CLI runs on (its script's shebang), which has aws-sam-translator."""
        first_line = self.executable.resolve().read_bytes().split(b"\n", 1)[0]
        if first_line.startswith(b"#!"):
            candidate = Path(first_line[2:].decode().strip().split()[0])
            if candidate.is_file():
                return candidate
        return self.executable.resolve().parent / "python"

    @property
    def runtime_interface_emulator(self) -> Path:
        return runtime_interface_emulator(self.executable)


def localhost_endpoint(endpoint_url: str) -> str:
    """The emulator's URL with the host name ``localhost`` (what moto needs for path-style S3 URLs)."""
    parts = urlsplit(require_loopback_endpoint(endpoint_url))
    return urlunsplit(parts._replace(netloc=f"localhost:{parts.port}"))


def sam_environment(endpoint_url: str, region: str) -> dict[str, str]:
    """The SAM CLI's environment: none of the user's AWS settings, every endpoint on the emulator, dummy
    credentials, telemetry off, and the base python3.13 first on PATH (``sam build`` needs it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return {
        **env,
        "PATH": f"{Path(sys.base_prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
        "AWS_ENDPOINT_URL": localhost_endpoint(endpoint_url),
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _run(argv: list[str], *, cwd: Path, env: Mapping[str, str], log: IO[bytes], what: str) -> None:
    log.write(f"$ {' '.join(argv)}\n".encode())
    log.flush()
    result = subprocess.run(argv, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise DeployError(f"{what} failed (exit {result.returncode}); see {log.name}")


def sam_build(
    sam: SamCli, *, project_dir: Path, build_dir: Path, endpoint_url: str, region: str, log: IO[bytes]
) -> Path:
    """``sam build`` of ``template.yaml`` (the samconfig's build settings) into ``build_dir``; return the built
    template. Run from the project directory: the layer's requirements install the package from there."""
    _run(
        [str(sam.executable), "build", "--build-dir", str(build_dir), "--cache-dir", str(build_dir.parent / "cache")],
        cwd=project_dir,
        env=sam_environment(endpoint_url, region),
        log=log,
        what="sam build",
    )
    return build_dir / "template.yaml"


def sam_deploy(
    sam: SamCli,
    *,
    project_dir: Path,
    template: Path,
    stack_name: str,
    endpoint_url: str,
    region: str,
    log: IO[bytes],
    execute: bool = True,
) -> None:
    """The unchanged ``sam deploy`` of the built template onto the emulator: its managed artifact bucket, the
    upload, a change set with the SAM transform, executed; no prompt (``--no-confirm-changeset``). With
    ``execute=False`` the change set is only created (``--no-execute-changeset``), for the caller to inspect."""
    _run(
        [
            str(sam.executable),
            "deploy",
            "--template-file",
            str(template),
            "--stack-name",
            stack_name,
            "--region",
            region,
            "--capabilities",
            "CAPABILITY_IAM",
            "--resolve-s3",
            "--no-confirm-changeset",
            "--no-fail-on-empty-changeset",
            *([] if execute else ["--no-execute-changeset"]),
        ],
        cwd=project_dir,
        env=sam_environment(endpoint_url, region),
        log=log,
        what="sam deploy",
    )


def stack_outputs(endpoint_url: str, stack_name: str, region: str) -> dict[str, str]:
    """The stack's outputs by key; raise :class:`DeployError` unless the stack is complete."""
    cloudformation = emulator_session(region).client("cloudformation", endpoint_url=endpoint_url)
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise DeployError(f"stack {stack_name} is {stack['StackStatus']}")
    return {output["OutputKey"]: str(output["OutputValue"]) for output in stack.get("Outputs", [])}


def deployed_stack(outputs: Mapping[str, str], *, endpoint_url: str, region: str, secret_value: str) -> LocalStack:
    """The :class:`LocalStack` (``make dev``'s outputs file) of a deployed stack, from its outputs."""
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    missing += [f"{logical_id}Arn" for logical_id in TOPIC_LOGICAL_IDS.values() if not outputs.get(f"{logical_id}Arn")]
    if missing:
        raise DeployError(f"the stack lacks the outputs {missing}")
    return LocalStack(
        endpoint_url=endpoint_url,
        region=region,
        name_prefix="",
        table_name=outputs["EventsTableName"],
        secret_arn=outputs["WebhookSecretArn"],
        secret_value=secret_value,
        topic_arns={t: outputs[f"{logical_id}Arn"] for t, logical_id in TOPIC_LOGICAL_IDS.items()},
        fallback_topic_arn=outputs[f"{FALLBACK_TOPIC_LOGICAL_ID}Arn"],
    )


def put_webhook_secret(stack: LocalStack, value: str) -> Any:
    """Put the signing secret into the stack's secret, as the README tells users to after their deploy."""
    return stack.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=value)
