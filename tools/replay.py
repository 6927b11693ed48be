"""Re-publish stored events to their topics: for a new subscriber, or after a downstream outage.

A dry run by default: it prints what would be sent (ids, types, times, topics, sizes; never a body) and a summary.
``--execute`` sends. Replayed messages carry the ingest function's attributes plus ``replay=true``.

Against the local emulator of ``make dev`` (its outputs file) or a deployed stack (its CloudFormation outputs)::

    .venv/bin/python tools/replay.py --outputs .local/outputs.json --type user.created
    .venv/bin/python tools/replay.py --stack-name my-stack --since 2026-11-27T08:00Z --until 2026-11-27T09:30Z
    .venv/bin/python tools/replay.py --stack-name my-stack --id msg_2abc... --id msg_2def... --execute
    .venv/bin/python tools/replay.py --stack-name my-stack --since 6h --include-unpublished --execute --rate 20

Selection: ``--id`` (repeatable, or ``--ids-file``, one id a line) reads each id with GetItem; otherwise ``--type``
(repeatable) and ``--since`` / ``--until`` (received time; ISO 8601, epoch seconds or a duration ago such as ``6h``)
scan the table with a filter, which reads the whole table. Criteria combine with AND. Replaying everything needs
``--all``. Only records whose status is ``published`` are replayed unless asked: ``--include-unpublished`` adds the
records known unpublished (the function's publish failed and it released the claim), ``--include-publication-unknown``
those whose publication is unknown (a claim still held past its lease: the invocation stopped, or could not mark the
record, after claiming it; they may be on their topics already, so a replay may be a second copy).

``--events-table`` reads another table (one retained from a deleted stack, say) and publishes to this stack's topics.

Exit status: 0 when nothing failed, 1 when a message failed or the table could not be read, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from stack_webhook_fanout_tools.devkit.emulator import NonLoopbackEndpointError
from stack_webhook_fanout_tools.replay import (
    OutputsError,
    ProgressBar,
    ReplaySummary,
    Selection,
    SelectionError,
    TokenBucket,
    build_replayer,
    describe,
    parse_time,
)
from stack_webhook_fanout_tools.replay.target import Connection, connect_local, connect_stack

from stack_webhook_fanout.errors import DependencyError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from stack_webhook_fanout_tools.replay import ItemResult

DEFAULT_RATE = 10.0


class UsageError(Exception):
    """A problem with the command line or its inputs; printed without a traceback (exit status 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tools/replay.py",
        description="Re-publish stored Stack events to their SNS topics (a dry run unless --execute).",
    )
    where = parser.add_argument_group("where (one of)").add_mutually_exclusive_group(required=True)
    where.add_argument("--outputs", type=Path, metavar="PATH", help="outputs file of `make dev` (local emulator)")
    where.add_argument("--stack-name", metavar="NAME", help="a deployed stack: its CloudFormation outputs are read")
    aws = parser.add_argument_group("AWS (with --stack-name)")
    aws.add_argument("--region", help="the stack's region (default: your AWS configuration's)")
    aws.add_argument("--profile", help="AWS profile to use (default: your AWS configuration's)")

    what = parser.add_argument_group("what (criteria combine with AND)")
    what.add_argument("--id", dest="ids", action="append", default=[], metavar="EVENT_ID", help="an svix-id; repeat")
    what.add_argument("--ids-file", type=Path, metavar="FILE", help="svix-ids, one a line ('-' for stdin)")
    what.add_argument(
        "--type", dest="types", action="append", default=[], metavar="EVENT_TYPE", help="an event type; repeat"
    )
    what.add_argument("--since", metavar="TIME", help="received at or after (ISO 8601, epoch seconds, or 6h ago)")
    what.add_argument("--until", metavar="TIME", help="received before (same forms)")
    what.add_argument("--all", action="store_true", help="replay every stored record (needed without criteria)")
    what.add_argument(
        "--include-unpublished",
        action="store_true",
        help="also push records known unpublished (the function's publish failed and it released the claim)",
    )
    what.add_argument(
        "--include-publication-unknown",
        action="store_true",
        help="also push records whose publication is unknown (claim held past its lease: a crash, a timeout, or a "
        "record that could not be marked after publishing); subscribers may get a second copy",
    )
    what.add_argument("--consistent-read", action="store_true", help="strongly consistent reads (twice the cost)")
    what.add_argument(
        "--events-table",
        metavar="TABLE",
        help="read this table (one retained from a deleted stack) instead of the stack's; publish to its topics",
    )

    how = parser.add_argument_group("how")
    how.add_argument("--execute", action="store_true", help="really publish (default: dry run)")
    how.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"messages per second at most (default {DEFAULT_RATE:g}; 0 for no limit)",
    )
    how.add_argument("--burst", type=int, default=1, metavar="N", help="messages sent at once after a pause (1)")
    how.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    how.add_argument("--verbose", action="store_true", help="with --execute, a line per message sent")
    return parser


def selection_from_args(args: argparse.Namespace, now: float) -> Selection:
    ids = [i.strip() for i in args.ids if i.strip()]
    if args.ids_file is not None:
        text = sys.stdin.read() if str(args.ids_file) == "-" else args.ids_file.read_text()
        ids.extend(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
        if not ids:
            raise UsageError(f"{args.ids_file}: no event ids in it")
    selection = Selection(
        event_ids=tuple(ids),
        event_types=tuple(dict.fromkeys(args.types)),
        received_from=None if args.since is None else parse_time(args.since, now=now),
        received_until=None if args.until is None else parse_time(args.until, now=now),
        include_unpublished=args.include_unpublished,
        include_publication_unknown=args.include_publication_unknown,
    )
    if selection.is_everything and not args.all:
        raise UsageError("say what to replay: --id, --type, --since/--until, or --all for every stored record")
    if args.rate < 0:
        raise UsageError("--rate must be positive (or 0 for no limit)")
    if args.burst < 1:
        raise UsageError("--burst must be at least 1")
    return selection


def connect(args: argparse.Namespace) -> Connection:
    """The target of ``--outputs`` or ``--stack-name``, with its clients."""
    if args.outputs is not None:
        return connect_local(args.outputs)
    return connect_stack(args.stack_name, region=args.region, profile=args.profile)


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        selection = selection_from_args(args, time.time())
        connection = connect(args)
    except (UsageError, SelectionError, OutputsError, NonLoopbackEndpointError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    target, dynamodb, sns, where = connection.target, connection.dynamodb, connection.sns, connection.where
    if args.events_table:
        target = dataclasses.replace(target, table_name=args.events_table)

    limiter = TokenBucket(args.rate, args.burst) if args.execute and args.rate > 0 else None
    replayer = build_replayer(target, dynamodb, sns, consistent_read=args.consistent_read, limiter=limiter)
    summary = ReplaySummary(executed=args.execute)
    show_progress = not args.no_progress
    err = sys.stderr
    how = "by id (GetItem)" if selection.event_ids else "by filter (Scan: reads the whole table)"
    print(f"replay: table {target.table_name} on {where}; selecting {how}", file=err)

    def scan_progress(scanned: int, matched: int) -> None:
        if show_progress:
            print(f"  scanned {scanned} records, {matched} match", file=err)

    try:
        planned = replayer.select(selection, summary, on_scan_page=scan_progress)
    except DependencyError as exc:
        print(f"replay: cannot read the table: {exc} (nothing was published)", file=err)
        return 1

    if not args.execute:
        for message in planned:
            print("would publish  " + describe(message))
        replayer.run(planned, summary)
    else:
        bar = ProgressBar(err) if show_progress else None
        done = 0

        def say(text: str) -> None:
            if bar:
                bar.message(text)
            else:
                print(text, file=err)

        def on_result(result: ItemResult) -> None:
            nonlocal done
            done += 1
            line = describe(result.message)
            if result.failure:
                say(f"FAILED ({result.failure})  {line}")
            elif result.skip:
                say(f"skipped ({result.skip})  {line}")
            elif args.verbose:
                say(f"published {result.message_id}  {line}")
            if bar:
                bar.update(done, len(planned), f"published={summary.published} failed={summary.failed_total}")

        if bar:
            bar.update(0, len(planned))
        replayer.run(planned, summary, on_result=on_result)
        if bar:
            bar.close()

    for line in summary.lines():
        print(line)
    return 1 if summary.failed_total else 0


if __name__ == "__main__":
    sys.exit(run())
