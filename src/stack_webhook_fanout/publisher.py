"""Publish verbatim bodies to SNS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from .aws_calls import dependency_error, track_calls

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef


class SnsPublisher:
    """Publish one message per call; the client is injected.

    A failed publication says whether SNS may hold the message all the same (``DependencyError.may_have_succeeded``):
    unless SNS refused it (an error answer below 500) or no attempt reached SNS, it may. A 5xx is no proof of a
    refusal: SNS may have stored the message before the error (``aws_calls``).
    """

    __slots__ = ("_client",)

    def __init__(self, client: SNSClient) -> None:
        self._client = client
        # Counts every attempt of a call, botocore's own retries included (once per client, however many publishers).
        track_calls(client, "sns")

    def publish(self, topic_arn: str, body: str, attributes: Mapping[str, MessageAttributeValueTypeDef]) -> str:
        """Publish ``body`` unchanged with ``attributes``; return SNS's message id or raise DependencyError."""
        try:
            response = self._client.publish(TopicArn=topic_arn, Message=body, MessageAttributes=attributes)
        except (ClientError, BotoCoreError) as exc:
            raise dependency_error("sns", exc) from exc
        return response["MessageId"]
