"""What the ingest function runs on: pure Python, no pydantic, and only the public names of its libraries.

The handler must load and route events in an interpreter where pydantic and pydantic-core cannot be imported at all
(the layer ships neither). And no module of the package, the function or the tools may import an underscore name of
Powertools or pydantic: a release that renames one would break every invocation at init. The imports are read from
the source with ``ast``, so the check covers modules no test happens to import.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_PATH = REPO_ROOT / "functions" / "ingest" / "app.py"
CHECKED_TREES = ("src", "functions", "tools")
GUARDED_PACKAGES = ("aws_lambda_powertools", "pydantic", "pydantic_core")

# None in sys.modules makes `import x` raise ImportError: the probe runs as if pydantic were not installed.
_IMPORT_PROBE = """
import importlib.util, json, sys
for name in ("pydantic", "pydantic_core"):
    sys.modules[name] = None
spec = importlib.util.spec_from_file_location("ingest_app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
from stack_webhook_fanout.event_parser import parse_event
known = parse_event('{"type": "team.deleted", "data": {"id": "t1"}}')
rejected_by_models = parse_event('{"type": "team.deleted", "data": {"id": 1}}')
print(json.dumps({
    "pydantic": sorted(m for m in sys.modules if m.startswith("pydantic") and sys.modules[m] is not None),
    "models": [m for m in ("stack_webhook_fanout.models", "stack_webhook_fanout.events") if m in sys.modules],
    "handler": callable(app.lambda_handler),
    "routing": [[known.known, known.invalid_reason], [rejected_by_models.known, rejected_by_models.invalid_reason]],
}))
"""


def test_the_ingest_function_loads_and_routes_without_pydantic_installed() -> None:
    # given: the environment the function runs with (dummy credentials; nothing is called during init)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "EVENTS_TABLE_NAME": "events",
            "WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:stack-AbCdEf",
            "TOPIC_ARNS": json.dumps(
                {t: f"arn:aws:sns:us-east-1:123456789012:{t.replace('.', '-')}" for t in KNOWN_EVENT_TYPES}
            ),
            "FALLBACK_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:fallback",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "stack-webhook-fanout",
            "POWERTOOLS_METRICS_NAMESPACE": "StackWebhookFanout",
        }
    )

    # when: a fresh interpreter that cannot import pydantic loads the handler file as Lambda does, and parses events
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, str(APP_PATH)], env=env, capture_output=True, text=True, check=False
    )

    # then: it loads, and both events route on their type (the second one's data the models would reject)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"pydantic": [], "models": [], "handler": True, "routing": [[True, None], [True, None]]}


def private_imports(source: str) -> list[str]:
    """``module:name`` of every import in ``source`` that reaches an underscore name of a guarded package."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
            names = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] not in GUARDED_PACKAGES:
                continue
            private = [p for p in parts[1:] if p.startswith("_")] + [n for n in names if n.startswith("_")]
            found += [f"{module}:{p}" for p in private]
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "from aws_lambda_powertools.logging.formatter import _get_context",
            ["aws_lambda_powertools.logging.formatter:_get_context"],
        ),
        ("from pydantic.types import _get_type_name as g", ["pydantic.types:_get_type_name"]),
        (
            "import pydantic._internal._core_utils",
            ["pydantic._internal._core_utils:_internal", "pydantic._internal._core_utils:_core_utils"],
        ),
        ("from pydantic_core import _pydantic_core", ["pydantic_core:_pydantic_core"]),
        ("def f():\n    from aws_lambda_powertools.shared import _x\n", ["aws_lambda_powertools.shared:_x"]),
        ("from aws_lambda_powertools import Logger\nfrom pydantic import BaseModel", []),
        ("from ._private import x\nfrom json import _default_encoder", []),
    ],
)
def test_private_imports_finds_underscore_names_of_guarded_packages(source: str, expected: list[str]) -> None:
    assert private_imports(source) == expected


def test_no_private_name_of_powertools_or_pydantic_is_imported() -> None:
    # given every Python file of the package, the function and the tools
    files = sorted(p for tree in CHECKED_TREES for p in (REPO_ROOT / tree).rglob("*.py"))
    assert len(files) > 20
    # then none imports an underscore name of Powertools, pydantic or pydantic-core
    offenders = {
        str(path.relative_to(REPO_ROOT)): found
        for path in files
        if (found := private_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
