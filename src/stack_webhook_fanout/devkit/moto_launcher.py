"""Run moto's server with its DynamoDB requests serialised: ``python -m stack_webhook_fanout.devkit.moto_launcher``.

moto checks a ``ConditionExpression`` and writes the item in separate Python steps, and its server handles requests
on several threads, so two concurrent conditional writes on one key can both succeed. Real DynamoDB never allows
that: every single-item write is atomic, and the ingest function's claim relies on it. One lock around moto's
DynamoDB request handling restores the guarantee (seen without it: 2 of 20 concurrent claims of one id succeeding).
Nothing else of moto is changed. Takes ``moto_server``'s own arguments.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler
from moto.server import main as moto_main

_DYNAMODB_LOCK = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialised_call_action(self: DynamoHandler) -> Any:
    with _DYNAMODB_LOCK:
        return _call_action(self)


def main(argv: list[str] | None = None) -> None:
    DynamoHandler.call_action = _serialised_call_action  # type: ignore[method-assign]
    moto_main(argv)


if __name__ == "__main__":
    main()
