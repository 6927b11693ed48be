"""Where a replay goes: the events table and the topics of one stack, from its outputs (local or deployed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES, TOPIC_LOGICAL_IDS
from stack_webhook_fanout.topics import TopicRouter

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


class OutputsError(ValueError):
    """The outputs (of ``make dev`` or of a deployed stack) lack what a replay needs."""


@dataclass(frozen=True, slots=True)
class ReplayTarget:
    """The events table and the topics of one stack (local or deployed).

    ``endpoint_url`` and ``region`` are set for the local emulator (from its outputs file), None for AWS.
    """

    table_name: str
    topic_arns: Mapping[str, str]
    fallback_topic_arn: str
    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_local_outputs(cls, outputs: Mapping[str, Any]) -> ReplayTarget:
        """Read the outputs file of ``make dev`` (keys ``AwsEndpointUrl``, ``Region``, ``EventsTableName``,
        ``TopicArns`` and ``FallbackTopicArn``)."""
        missing = [
            key
            for key in ("AwsEndpointUrl", "Region", "EventsTableName", "TopicArns", "FallbackTopicArn")
            if not outputs.get(key)
        ]
        if missing:
            raise OutputsError(f"the outputs file lacks: {', '.join(missing)}")
        topic_arns = outputs["TopicArns"]
        if not isinstance(topic_arns, dict):
            raise OutputsError("TopicArns in the outputs file must be an object of event type to topic ARN")
        absent = [t for t in KNOWN_EVENT_TYPES if not topic_arns.get(t)]
        if absent:
            raise OutputsError(f"TopicArns in the outputs file lacks: {', '.join(absent)}")
        return cls(
            table_name=str(outputs["EventsTableName"]),
            topic_arns={t: str(topic_arns[t]) for t in KNOWN_EVENT_TYPES},
            fallback_topic_arn=str(outputs["FallbackTopicArn"]),
            endpoint_url=str(outputs["AwsEndpointUrl"]),
            region=str(outputs["Region"]),
        )

    @classmethod
    def from_stack_outputs(cls, outputs: Mapping[str, str]) -> ReplayTarget:
        """Read a deployed stack's CloudFormation outputs (``OutputKey`` -> ``OutputValue``): ``EventsTableName``,
        ``<TopicLogicalId>Arn`` for every known type and ``FallbackTopicArn``."""
        keys = {t: f"{logical_id}Arn" for t, logical_id in TOPIC_LOGICAL_IDS.items()}
        missing = [k for k in ("EventsTableName", *keys.values(), "FallbackTopicArn") if not outputs.get(k)]
        if missing:
            raise OutputsError(
                f"the stack's outputs lack: {', '.join(missing)} (is it a stack-webhook-fanout stack, fully deployed?)"
            )
        return cls(
            table_name=outputs["EventsTableName"],
            topic_arns={t: outputs[key] for t, key in keys.items()},
            fallback_topic_arn=outputs["FallbackTopicArn"],
        )

    def router(self) -> TopicRouter:
        return TopicRouter(self.topic_arns, self.fallback_topic_arn)


@dataclass(frozen=True, slots=True)
class Connection:
    """A target with DynamoDB and SNS clients that point at it, and a description of where that is."""

    target: ReplayTarget
    dynamodb: Any
    sns: Any
    where: str


def connect_local(outputs_path: Path) -> Connection:
    """Connect to the local emulator of ``make dev`` through its outputs file.

    Raises :class:`OutputsError` for a file that cannot be read or lacks what is needed, and
    ``NonLoopbackEndpointError`` for an endpoint that is not on loopback.
    """
    from stack_webhook_fanout_tools.devkit.emulator import emulator_client

    try:
        outputs = json.loads(outputs_path.read_text())
    except (OSError, ValueError) as exc:
        raise OutputsError(f"cannot read the outputs file {outputs_path}: {exc} (is `make dev` running?)") from exc
    if not isinstance(outputs, dict):
        raise OutputsError(f"{outputs_path}: not a JSON object")
    target = ReplayTarget.from_local_outputs(outputs)
    assert target.endpoint_url is not None
    region = target.region or "us-east-1"
    # emulator_client refuses any endpoint that is not on loopback and uses dummy credentials.
    return Connection(
        target,
        emulator_client("dynamodb", target.endpoint_url, region),
        emulator_client("sns", target.endpoint_url, region),
        f"local emulator at {target.endpoint_url}",
    )


def connect_stack(stack_name: str, *, region: str | None = None, profile: str | None = None) -> Connection:
    """Connect to a deployed stack through its CloudFormation outputs (AWS credentials of the environment).

    Raises :class:`OutputsError` when the stack cannot be read or lacks an output.
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.Session(profile_name=profile, region_name=region)
    config = Config(retries={"max_attempts": 8, "mode": "adaptive"})
    try:
        stacks = session.client("cloudformation", config=config).describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        raise OutputsError(f"cannot read stack {stack_name!r}: {exc}") from exc
    except BotoCoreError as exc:
        raise OutputsError(f"cannot reach CloudFormation: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return Connection(
        ReplayTarget.from_stack_outputs(outputs),
        session.client("dynamodb", config=config),
        session.client("sns", config=config),
        f"stack {stack_name} in {session.region_name}",
    )
