"""The CloudFormation side of ``make deploy``: credentials, the stack's state, ``sam build``/``sam deploy`` run in
the user's terminal, the outputs it needs, and the failed events that explain a failed deploy."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from .errors import DeployStepError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from stack_webhook_fanout_tools.devkit.sam_deploy import SamCli

#: What make deploy reads from the stack after the deploy.
NEEDED_OUTPUTS: Final = ("WebhookUrl", "WebhookSecretArn", "EventsTableName")
#: A stack in one of these states cannot be updated until it is deleted (a first create that rolled back).
DEAD_STATES: Final = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"})
CREDENTIALS_ADVICE: Final = (
    "configure AWS credentials for the account to deploy into (aws configure, aws sso login, or AWS_PROFILE=<name>), "
    "and a region (the guided first deploy asks for one, or set AWS_REGION), then run make deploy again"
)


@dataclass(frozen=True, slots=True)
class DeployedStack:
    name: str
    outputs: dict[str, str]

    @property
    def webhook_url(self) -> str:
        return self.outputs["WebhookUrl"]

    @property
    def secret_arn(self) -> str:
        return self.outputs["WebhookSecretArn"]

    @property
    def table_name(self) -> str:
        return self.outputs["EventsTableName"]


def account_id(sts: Any) -> str:
    """The account the credentials belong to (the first AWS call: it fails fast and clearly without them)."""
    try:
        return str(sts.get_caller_identity()["Account"])
    except (NoCredentialsError, NoRegionError) as exc:
        raise DeployStepError(f"no usable AWS credentials or region ({exc})", CREDENTIALS_ADVICE) from exc
    except (ClientError, BotoCoreError) as exc:
        raise DeployStepError(f"the AWS credentials were refused ({exc})", CREDENTIALS_ADVICE) from exc


def stack_status(cloudformation: Any, stack_name: str) -> str | None:
    """The stack's status, or None when it does not exist (the first deploy)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc.response.get("Error", {}).get("Message", "")):
            return None
        raise DeployStepError(
            f"could not read the stack {stack_name} ({exc})", "check the credentials' cloudformation permissions"
        ) from exc
    return str(stacks[0]["StackStatus"]) if stacks else None


def require_updatable(stack_name: str, status: str | None) -> None:
    if status in DEAD_STATES:
        raise DeployStepError(
            f"the stack {stack_name} is {status}: its first create failed and it cannot be updated",
            f"read why in its events (aws cloudformation describe-stack-events --stack-name {stack_name}), delete it "
            f"(sam delete --stack-name {stack_name}; the retained table and key stay) and run make deploy again",
        )


def run_sam(
    sam: SamCli, arguments: Sequence[str], *, cwd: Path, env: Mapping[str, str], what: str, advice: str
) -> None:
    """Run the SAM CLI in the user's terminal (its prompts and progress are the user's to see)."""
    result = subprocess.run([str(sam.executable), *arguments], cwd=cwd, env=dict(env), check=False)
    if result.returncode != 0:
        raise DeployStepError(f"{what} failed (exit {result.returncode}; its output is above)", advice)


def failure_reasons(cloudformation: Any, stack_name: str, *, limit: int = 5) -> list[str]:
    """The latest ``*_FAILED`` events of the stack, newest first, as ``logical id: reason`` lines."""
    try:
        events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
    except (ClientError, BotoCoreError):
        return []
    failed = [e for e in events if str(e.get("ResourceStatus", "")).endswith("_FAILED")]
    return [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '(no reason given)')}" for e in failed[:limit]]


def deployed_stack(cloudformation: Any, stack_name: str) -> DeployedStack:
    """The deployed stack's outputs; raise unless it is complete and has what make deploy needs."""
    status = stack_status(cloudformation, stack_name)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise DeployStepError(
            f"the stack {stack_name} is {status or 'missing'} after the deploy",
            "read the deploy's output above and the stack's events, fix the cause and run make deploy again",
        )
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: str(o["OutputValue"]) for o in stack.get("Outputs", [])}
    missing = [key for key in NEEDED_OUTPUTS if not outputs.get(key)]
    if missing:
        raise DeployStepError(
            f"the stack {stack_name} has no output {', '.join(missing)}",
            "it is not a stack-webhook-fanout stack: check stack_name in samconfig.toml (or pass GUIDED=1)",
        )
    return DeployedStack(stack_name, outputs)
