"""Publish verbatim bodies to SNS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from .errors import DependencyError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef


class SnsPublisher:
    """Publish one message per call; the client is injected."""

    __slots__ = ("_client",)

    def __init__(self, client: SNSClient) -> None:
        self._client = client

    def publish(self, topic_arn: str, body: str, attributes: Mapping[str, MessageAttributeValueTypeDef]) -> str:
        """Publish ``body`` unchanged with ``attributes``; return SNS's message id or raise DependencyError."""
        try:
            response = self._client.publish(TopicArn=topic_arn, Message=body, MessageAttributes=attributes)
        except ClientError as exc:
            raise DependencyError("sns", str(exc.response.get("Error", {}).get("Code", "ClientError"))) from exc
        except BotoCoreError as exc:
            raise DependencyError("sns", type(exc).__name__) from exc
        return response["MessageId"]
