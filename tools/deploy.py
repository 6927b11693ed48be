"""``make deploy``: from nothing to Stack's test event received, in one command (docs/deploy.md).

1. Checks the AWS credentials, then ``sam build`` and ``sam deploy`` (``--guided`` when the stack named in
   ``samconfig.toml`` does not exist yet, or with ``--guided``: stack name, region and parameters are asked and saved
   into ``samconfig.toml``, as ``sam deploy --guided`` does).
2. Prints the ``WebhookUrl`` to paste into Stack's dashboard.
3. Takes the endpoint's signing secret from ``STACK_WEBHOOK_SECRET`` or a hidden prompt, checks its form and puts it
   into the stack's secret (never printed, never on a command line).
4. Waits until Stack's *Test* button has delivered ``stack.test`` (a published record newer than the wait's start in
   the events table), or says what to check.

Each failing step says what to do. Uses your usual AWS configuration (profile, SSO, ``AWS_REGION``; and
``AWS_ENDPOINT_URL``, which the tests point at the local emulator).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from stack_webhook_fanout_tools.deploy.errors import DeployStepError
from stack_webhook_fanout_tools.deploy.samconfig import read_target
from stack_webhook_fanout_tools.deploy.signing_secret import (
    holds_signing_secret,
    obtain_signing_secret,
    put_signing_secret,
)
from stack_webhook_fanout_tools.deploy.stack import (
    account_id,
    deployed_stack,
    failure_reasons,
    require_updatable,
    run_sam,
    stack_status,
)
from stack_webhook_fanout_tools.deploy.stack_test_wait import timeout_advice, wait_for_test_delivery
from stack_webhook_fanout_tools.devkit.sam_deploy import DeployError, SamCli

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent


def say(line: str) -> None:
    print(line, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make deploy", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--guided", action="store_true", help="ask for stack name, region and parameters again")
    parser.add_argument("--config-env", default="default", help="samconfig.toml environment (default: default)")
    parser.add_argument("--config-file", type=Path, default=REPO_ROOT / "samconfig.toml", help="SAM configuration file")
    parser.add_argument("--build-dir", type=Path, help="sam build's output folder (default: SAM's, .aws-sam/build)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for Stack's test event")
    parser.add_argument("--wait-seconds", type=float, default=300.0, help="how long to wait for it (300)")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="time between two checks of the table (5)")
    return parser.parse_args(argv)


def sam_config_arguments(args: argparse.Namespace) -> list[str]:
    """The configuration SAM CLI reads; a file that does not exist yet is left out (SAM CLI refuses it), and the
    guided deploy then asks where to save its answers."""
    if not args.config_file.is_file():
        return ["--config-env", args.config_env]
    return ["--config-file", str(args.config_file.resolve()), "--config-env", args.config_env]


def deploy(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        sam = SamCli.find(REPO_ROOT)
    except DeployError as exc:
        raise DeployStepError(str(exc), "run make install") from exc
    target = read_target(args.config_file, args.config_env)
    session = boto3.Session(region_name=target.region)
    account = account_id(session.client("sts"))
    status = stack_status(session.client("cloudformation"), target.stack_name)
    require_updatable(target.stack_name, status)
    guided = args.guided or status is None
    where = f"account {account}, region {session.region_name}"
    if guided:
        say(f"== first deploy ({where}): sam deploy --guided asks for the stack name, region and parameters")
    else:
        say(f"== updating {target.stack_name} ({where}, {status})")

    say("== sam build")
    build = ["build", *sam_config_arguments(args)]
    deploy_arguments = ["deploy", *sam_config_arguments(args)]
    if args.build_dir is not None:
        build_dir = args.build_dir.resolve()
        build += ["--build-dir", str(build_dir)]
        deploy_arguments += ["--template-file", str(build_dir / "template.yaml")]
    run_sam(
        sam,
        build,
        cwd=REPO_ROOT,
        env=environ,
        what="sam build",
        advice="make sure python3.13 is on PATH (make check-python) and the package index is reachable, then retry",
    )
    say("== sam deploy" + (" --guided" if guided else ""))
    try:
        run_sam(
            sam,
            [*deploy_arguments, *(["--guided"] if guided else [])],
            cwd=REPO_ROOT,
            env=environ,
            what="sam deploy",
            advice="fix what the output above and the failed events say, then run make deploy again",
        )
    except DeployStepError:
        for reason in failure_reasons(session.client("cloudformation"), target.stack_name):
            say(f"  failed: {reason}")
        raise

    # the guided deploy may have chosen another stack name or region: read what it saved
    target = read_target(args.config_file, args.config_env) if guided else target
    session = boto3.Session(region_name=target.region) if guided else session
    stack = deployed_stack(session.client("cloudformation"), target.stack_name)
    say(
        f"\n== deployed {stack.name}\n"
        f"  WebhookUrl  {stack.webhook_url}\n"
        "  In Stack's dashboard: Webhooks, create an endpoint (or edit yours) with this URL, then copy its signing "
        "secret."
    )

    secretsmanager = session.client("secretsmanager")
    already_set = holds_signing_secret(secretsmanager, stack.secret_arn)
    value = obtain_signing_secret(environ, already_set=already_set, say=say)
    if value is None:
        say("  kept the signing secret the stack holds")
    else:
        put_signing_secret(secretsmanager, stack.secret_arn, value)
        say(f"  signing secret stored in {stack.secret_arn} (not shown)")

    if args.no_wait:
        say("done (not waiting for a test event: --no-wait)")
        return 0
    since = int(time.time())
    say(
        f"\n== waiting up to {args.wait_seconds:.0f} s for Stack's test event: in the dashboard, open the endpoint and "
        "press Test (send a test event)"
    )
    delivery = wait_for_test_delivery(
        session.client("dynamodb"),
        stack.table_name,
        since=since,
        timeout_seconds=args.wait_seconds,
        interval_seconds=args.poll_seconds,
    )
    if delivery is None or not delivery.published:
        raise DeployStepError(
            f"the stack is deployed, but no published stack.test arrived within {args.wait_seconds:.0f} s",
            timeout_advice(stack.webhook_url, stack.name, delivery),
        )
    say(
        f"stack.test received and published ({delivery.event_id}): Stack's events reach {stack.name}. "
        "Subscribe your services to its topics (README, Subscribe a service)."
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return deploy(args, os.environ)
    except DeployStepError as exc:
        say(f"\nmake deploy: {exc}")
        return 1
    except KeyboardInterrupt:
        say("\nmake deploy: interrupted; run it again to carry on (an unchanged stack is not redeployed)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
