"""Print the body of one stored event exactly as Stack sent it (its bytes, to stdout), from old or new records.

New records keep the body zlib-compressed (``body_zlib``), older ones as text (``body``): this reads either. Against
the local emulator of ``make dev`` (its outputs file) or a deployed stack (its CloudFormation outputs)::

    make body ID=msg_2abc...                                        # the local emulator of make dev
    .venv/bin/python tools/show_body.py --stack-name my-stack msg_2abc... > body.json
    .venv/bin/python tools/show_body.py --stack-name my-stack --events-table retained-table msg_2abc...

The body holds personal data: it goes to stdout only, never to a log. Exit status: 0 when printed, 1 when the record
is absent or has no readable body (or the table cannot be read), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from stack_webhook_fanout_tools.devkit.emulator import NonLoopbackEndpointError
from stack_webhook_fanout_tools.replay import EventReader, OutputsError
from stack_webhook_fanout_tools.replay.target import connect_local, connect_stack

from stack_webhook_fanout.errors import DependencyError
from stack_webhook_fanout.event_store import plain_item, stored_body

if TYPE_CHECKING:
    from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tools/show_body.py", description="Print a stored event's body exactly as Stack sent it."
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--outputs", type=Path, metavar="PATH", help="outputs file of `make dev` (local emulator)")
    where.add_argument("--stack-name", metavar="NAME", help="a deployed stack: its CloudFormation outputs are read")
    parser.add_argument("--region", help="the stack's region (default: your AWS configuration's)")
    parser.add_argument("--profile", help="AWS profile to use (default: your AWS configuration's)")
    parser.add_argument("--events-table", metavar="TABLE", help="read this table instead of the stack's")
    parser.add_argument("event_id", metavar="EVENT_ID", help="the svix-id")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.outputs is not None:
            connection = connect_local(args.outputs)
        else:
            connection = connect_stack(args.stack_name, region=args.region, profile=args.profile)
    except (OutputsError, NonLoopbackEndpointError) as exc:
        print(f"show_body: {exc}", file=sys.stderr)
        return 2
    table = args.events_table or connection.target.table_name
    try:
        item = EventReader(connection.dynamodb, table, consistent_read=True).get(args.event_id)
    except DependencyError as exc:
        print(f"show_body: cannot read the table {table}: {exc}", file=sys.stderr)
        return 1
    if item is None:
        print(f"show_body: no record of {args.event_id} in {table}", file=sys.stderr)
        return 1
    try:
        body = stored_body(plain_item(item))
    except zlib.error:
        body = None
    if body is None:
        print(f"show_body: the record of {args.event_id} holds no readable body", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(run())
