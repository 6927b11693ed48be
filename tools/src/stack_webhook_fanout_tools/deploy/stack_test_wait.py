"""Wait until Stack's *Test* button has delivered ``stack.test``, told from the events table.

A delivery that verified leaves a record (event_type ``stack.test``, ``received_at`` in epoch seconds, with a
fraction) and, once
published, status ``published``. Records older than the wait's start are someone else's test. Each check is one
paginated Scan with a filter: a Scan reads the whole table, which is nothing on a new stack and about 0.03 USD per
million stored events on an old one (docs/deploy.md), so checks are spaced by ``interval_seconds``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from .errors import DeployStepError

if TYPE_CHECKING:
    from collections.abc import Callable

TEST_EVENT_TYPE: Final = "stack.test"
PUBLISHED: Final = "published"


@dataclass(frozen=True, slots=True)
class TestDelivery:
    """The newest ``stack.test`` record received since the wait started."""

    __test__ = False  # not a pytest test class

    event_id: str
    received_at: float  # epoch seconds, with the fraction the function writes
    status: str

    @property
    def published(self) -> bool:
        return self.status == PUBLISHED


def newest_test_delivery(dynamodb: Any, table_name: str, *, since: int) -> TestDelivery | None:
    """The newest ``stack.test`` record with ``received_at >= since``, or None."""
    found: list[TestDelivery] = []
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "FilterExpression": "event_type = :type AND received_at >= :since",
        "ProjectionExpression": "event_id, received_at, #status",
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": {":type": {"S": TEST_EVENT_TYPE}, ":since": {"N": str(since)}},
    }
    while True:
        page = dynamodb.scan(**kwargs)
        found += [
            TestDelivery(item["event_id"]["S"], float(item["received_at"]["N"]), item.get("status", {}).get("S", ""))
            for item in page.get("Items", [])
        ]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return max(found, key=lambda d: (d.published, d.received_at), default=None)


def wait_for_test_delivery(
    dynamodb: Any,
    table_name: str,
    *,
    since: int,
    timeout_seconds: float,
    interval_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TestDelivery | None:
    """Poll until a published ``stack.test`` newer than ``since`` is in the table; return it, or at the timeout
    the unpublished one seen (or None when none arrived)."""
    deadline = clock() + timeout_seconds
    latest: TestDelivery | None = None
    while True:
        try:
            latest = newest_test_delivery(dynamodb, table_name, since=since) or latest
        except (ClientError, BotoCoreError) as exc:
            code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
            raise DeployStepError(
                f"could not read the events table {table_name} ({code})",
                "your credentials need dynamodb:Scan on it (and kms:Decrypt on the stack's key); or press Test and "
                "check the delivery's answer in Stack's dashboard instead",
            ) from exc
        if (latest is not None and latest.published) or clock() >= deadline:
            return latest
        sleep(max(0.0, min(interval_seconds, deadline - clock())))


def timeout_advice(webhook_url: str, stack_name: str, seen: TestDelivery | None) -> str:
    """What to check when no published ``stack.test`` arrived in time."""
    if seen is not None:
        return (
            f"a stack.test arrived ({seen.event_id}) but is {seen.status or 'not published'}: the function could not "
            f"publish it. Read its log (sam logs --stack-name {stack_name} --name IngestFunction) and the stack's "
            "dependency-failures alarm; Svix retries it, so it may still arrive"
        )
    return (
        "no stack.test reached the stack. Check in Stack's dashboard that the endpoint's URL is exactly "
        f"{webhook_url}, that it is enabled and receives stack.test (or every event), and that the delivery "
        "attempt's answer is 2xx: a 401 means the secret you entered is not this endpoint's signing secret, a 503 "
        "that the stack could not read it. Then press Test again and run make deploy again (it redeploys nothing "
        "that is unchanged), or check the record yourself: make replay ARGS='--stack-name "
        f"{stack_name} --type stack.test --since 1h'"
    )
