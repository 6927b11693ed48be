"""Run moto's server with its DynamoDB requests serialised.

Started as ``python -m stack_webhook_fanout_tools.devkit.moto_launcher``.

moto checks a ``ConditionExpression`` and writes the item in separate Python steps, and its server handles requests
on several threads, so two concurrent conditional writes on one key can both succeed. Real DynamoDB never allows
that: every single-item write is atomic, and the ingest function's claim relies on it. One lock around moto's
DynamoDB request handling restores the guarantee (seen without it: 2 of 20 concurrent claims of one id succeeding).
Takes ``moto_server``'s own arguments, and ``--sam-python PATH`` (an interpreter with aws-sam-translator) to install
:mod:`.cfn_extensions`, what ``sam deploy`` needs of moto's CloudFormation (``make dev-lambda``, ``tests/deployed``).
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from moto.dynamodb.responses import DynamoHandler
from moto.server import main as moto_main

_DYNAMODB_LOCK = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialised_call_action(self: DynamoHandler) -> Any:
    with _DYNAMODB_LOCK:
        return _call_action(self)


def main(argv: list[str] | None = None) -> None:
    ours = argparse.ArgumentParser(add_help=False)
    ours.add_argument("--sam-python", type=Path)
    options, moto_argv = ours.parse_known_args(sys.argv[1:] if argv is None else argv)
    if options.sam_python is not None:
        from .cfn_extensions import install

        port = argparse.ArgumentParser(add_help=False)
        port.add_argument("-p", "--port", type=int, default=5000)
        # moto reads path-style S3 URLs (templates, code) only for the host name localhost.
        endpoint = f"http://localhost:{port.parse_known_args(moto_argv)[0].port}"
        install(s3_endpoint=endpoint, sam_python=options.sam_python)
    DynamoHandler.call_action = _serialised_call_action  # type: ignore[method-assign]
    moto_main(moto_argv)


if __name__ == "__main__":
    main()
