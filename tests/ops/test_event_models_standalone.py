"""The typed event models are usable by consumers without the rest of the package (only pydantic at run time)."""

from __future__ import annotations

import json
import subprocess
import sys

from .support import REPO_ROOT

PROBE = """
import json, sys
from stack_webhook_fanout.events import parse_stack_event
event = parse_stack_event(sys.stdin.read())
print(json.dumps({
    "type": event.type,
    "data_model": type(event.data).__name__,
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in {
        "stack_webhook_fanout", "boto3", "botocore", "aws_lambda_powertools", "standardwebhooks", "svix", "yaml"
    }),
}))
"""


def test_event_models_import_nothing_but_pydantic_from_the_package() -> None:
    # given: a fresh interpreter that parses a sample event with stack_webhook_fanout.events
    from stack_webhook_fanout_tools.devkit.samples import sample_body

    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        input=sample_body("team_membership.created").decode(),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )

    # then: the event is typed, and neither AWS SDKs, Powertools nor the verifier were imported
    probe = json.loads(result.stdout)
    assert probe["type"] == "team_membership.created"
    assert probe["data_model"] == "TeamMembership"
    assert probe["modules"] == ["stack_webhook_fanout", "stack_webhook_fanout.events", "stack_webhook_fanout.models"]
