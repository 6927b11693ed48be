"""Re-sign the API Gateway events under ``events/`` at the current time, or regenerate them from the samples.

Svix signatures are only accepted within 5 minutes of their timestamp, so an event file must be re-signed before
``sam local invoke -e`` (or any other use). Usage, from the repository root::

    .venv/bin/python tools/resign_event.py events/user.created.json          # in place, the local dev secret
    STACK_WEBHOOK_SECRET=whsec_... .venv/bin/python tools/resign_event.py --all
    .venv/bin/python tools/resign_event.py --stdout events/stack.test.json | sam local invoke -e - ...
    .venv/bin/python tools/resign_event.py --generate                       # rewrite events/ from the samples

The secret comes from ``--secret``, else ``--outputs`` (the ``WebhookSecret`` of ``make dev``'s outputs file), else
``STACK_WEBHOOK_SECRET``, else the documented local dev secret that ``events/env.json`` records. It is never printed.
Several secrets separated by whitespace sign with each (a rotation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from stack_webhook_fanout_tools.devkit.emulator import planned_stack
from stack_webhook_fanout_tools.devkit.samples import (
    LOCAL_DEV_SECRET,
    SAMPLE_TYPES,
    resign_event,
    sample_api_event,
)

from stack_webhook_fanout.webhook_secret import parse_secret_string

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
ENV_FILE_NAME = "env.json"
SECRET_ENV_VAR = "STACK_WEBHOOK_SECRET"  # noqa: S105  (the name of a variable, not a secret)


class UsageError(Exception):
    """A problem with the command line or its inputs; printed without a traceback."""


def env_file_document() -> dict[str, Any]:
    """The ``sam local --env-vars`` file: the function's settings for the emulator that ``make dev`` runs with its
    default ports and names, and the local dev secret the committed events are signed with."""
    return {
        "IngestFunction": planned_stack().env(),
        "LocalDev": {
            "WebhookSecret": LOCAL_DEV_SECRET,
            "Note": (
                "Public secret for local development only: events/*.json are signed with it. "
                "Start the emulator with it (STACK_WEBHOOK_SECRET) or re-sign the events with the secret of "
                "your running stack (tools/resign_event.py --outputs .local/outputs.json). "
                "sam local ignores this key."
            ),
        },
    }


def event_files(events_dir: Path) -> list[Path]:
    """Every event file in ``events_dir`` (the env-vars file is not an event)."""
    return sorted(p for p in events_dir.glob("*.json") if p.name != ENV_FILE_NAME)


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def resolve_secrets(args: argparse.Namespace) -> tuple[list[str], str]:
    """Return the secret(s) to sign with and where they came from (for a message that does not show them)."""
    if args.secret:
        raw, source = args.secret, "--secret"
    elif args.outputs:
        try:
            raw = json.loads(Path(args.outputs).read_text())["WebhookSecret"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"cannot read WebhookSecret from {args.outputs}: {type(exc).__name__}") from exc
        source = args.outputs
    elif os.environ.get(SECRET_ENV_VAR):
        raw, source = os.environ[SECRET_ENV_VAR], SECRET_ENV_VAR
    else:
        raw, source = LOCAL_DEV_SECRET, "the local dev secret (events/env.json)"
    if not isinstance(raw, str):
        raise UsageError(f"the secret from {source} is not a string")
    usable, ignored = parse_secret_string(raw)
    if not usable or ignored:
        raise UsageError(f"the secret from {source} is not one or more whsec_<base64> values separated by spaces")
    return usable, source


def generate(events_dir: Path, secrets: list[str]) -> list[Path]:
    """Write one event per sample type and the env-vars file; remove event files of types without a sample."""
    events_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type in SAMPLE_TYPES:
        path = events_dir / f"{event_type}.json"
        path.write_text(dumps(sample_api_event(event_type, secrets)))
        written.append(path)
    env_path = events_dir / ENV_FILE_NAME
    env_path.write_text(dumps(env_file_document()))
    written.append(env_path)
    for stale in set(event_files(events_dir)) - set(written):
        stale.unlink()
        print(f"removed {stale} (no sample of that type)", file=sys.stderr)
    return written


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Re-sign API Gateway event files at the current time (Svix signatures expire after 5 minutes), "
        "or regenerate events/ from the samples.",
    )
    parser.add_argument("files", nargs="*", type=Path, help="event files to re-sign")
    parser.add_argument("--all", action="store_true", help="re-sign every event file in the events directory")
    parser.add_argument(
        "--generate", action="store_true", help="regenerate every event file and env.json from the samples"
    )
    parser.add_argument("--events-dir", type=Path, default=EVENTS_DIR, help="default: %(default)s")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret", help=f"signing secret(s), whsec_...; default: ${SECRET_ENV_VAR}, else the local dev secret"
    )
    secret.add_argument("--outputs", help="take the secret from this outputs file of make dev (.local/outputs.json)")
    parser.add_argument(
        "--keep-id", action="store_true", help="keep each file's svix-id (a redelivery); default: a fresh one"
    )
    parser.add_argument("--stdout", action="store_true", help="print the re-signed event instead of rewriting the file")
    args = parser.parse_args(argv)
    if args.generate and (args.files or args.all or args.keep_id or args.stdout):
        parser.error("--generate takes no files and no --all, --keep-id or --stdout")
    if not args.generate and not args.all and not args.files:
        parser.error("name event files, or pass --all or --generate")
    if args.all and args.files:
        parser.error("pass either files or --all")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        secrets, source = resolve_secrets(args)
        if args.generate:
            written = generate(args.events_dir, secrets)
            print(f"wrote {len(written)} files in {args.events_dir}, signed with {source}", file=sys.stderr)
            return 0
        files = event_files(args.events_dir) if args.all else list(args.files)
        if not files:
            raise UsageError(f"no event files in {args.events_dir}")
        if args.stdout and len(files) > 1:
            raise UsageError("--stdout prints one event: name a single file")
        for path in files:
            try:
                event = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise UsageError(f"cannot read {path}: {exc}") from exc
            if not isinstance(event, dict) or "body" not in event:
                raise UsageError(f"{path} is not an API Gateway event (no body)")
            try:
                resigned = resign_event(event, secrets, keep_id=args.keep_id)
            except ValueError as exc:  # binascii.Error included: a body flagged base64 that is not
                raise UsageError(f"cannot read the body of {path}: {exc}") from exc
            if args.stdout:
                sys.stdout.write(dumps(resigned))
            else:
                path.write_text(dumps(resigned))
                print(f"re-signed {path} with {source} (svix-id {resigned['headers']['svix-id']})", file=sys.stderr)
    except UsageError as exc:
        print(f"resign_event: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
