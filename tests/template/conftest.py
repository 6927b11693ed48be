"""Shared fixtures of the template tier.

The SAM CLI lives in its own virtual environment (it pins pydantic): it is found through ``SAM_CLI`` (exported by
the Makefile) or at ``.venv-sam/bin/sam``. Nothing here reaches AWS: ``sam validate --lint`` and the SAM transform
run offline, and ``sam build`` only downloads wheels from the package index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from stack_webhook_fanout_tools.devkit.cfn_template import Template, load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

# Runs inside the SAM CLI's interpreter: SAM's own translator turns template.yaml into the CloudFormation that would be
# deployed (generated role, API stage, permission), without AWS, for the parameter values given as JSON in its second
# argument (defaults for the rest: CloudFormation passes the values to the transform). Local CodeUri/ContentUri become
# placeholder S3 URIs as `sam package` would make them, and managed policy names map to their well-known ARNs instead of
# being looked up in IAM.
_SAM_TRANSFORM_SCRIPT = """
import json, os, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class ManagedPolicies:
    def load(self):
        return {
            "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        }

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
with open(sys.argv[1], encoding="utf-8") as f:
    template = yaml_parse(f.read())
for res in template.get("Resources", {}).values():
    props = res.get("Properties") or {}
    for key in ("CodeUri", "ContentUri"):
        if isinstance(props.get(key), str):
            props[key] = "s3://placeholder-bucket/" + props[key].strip("/")
json.dump(transform(template, json.loads(sys.argv[2]), ManagedPolicies()), sys.stdout)
"""


def sam_cli_path() -> Path:
    """Return the SAM CLI executable (``$SAM_CLI`` or ``.venv-sam/bin/sam``); fail, never skip, when absent."""
    path = Path(os.environ.get("SAM_CLI") or REPO_ROOT / ".venv-sam" / "bin" / "sam")
    if not path.is_file():
        pytest.fail(f"SAM CLI not found at {path}: run `make install` (or set SAM_CLI to the sam executable)")
    return path


def sam_python(sam_cli: Path) -> Path:
    """Return the interpreter the SAM CLI runs on (its script's shebang, else the ``python`` beside it)."""
    resolved = sam_cli.resolve()
    first_line = resolved.read_bytes().split(b"\n", 1)[0]
    if first_line.startswith(b"#!"):
        candidate = Path(first_line[2:].decode().strip().split()[0])
        if candidate.is_file():
            return candidate
    candidate = resolved.parent / "python"
    if not candidate.is_file():
        pytest.fail(f"cannot find the Python interpreter of the SAM CLI at {sam_cli}")
    return candidate


def sam_env() -> dict[str, str]:
    """Environment for SAM CLI commands: telemetry off, and this interpreter's base python3.13 first on PATH.

    ``sam build`` without a container needs ``python3.13`` on PATH ("Binary validation failed" otherwise). The
    tests run on the project's 3.13 virtual environment, whose base installation has that binary.
    """
    base_bin = Path(sys.base_prefix) / "bin"
    return {
        **os.environ,
        "PATH": f"{base_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
    }


@pytest.fixture(scope="session")
def template() -> Template:
    """``template.yaml`` as data, short-form tags in long form."""
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="session")
def sam_cli() -> Path:
    return sam_cli_path()


def transform(sam_cli: Path, parameter_values: dict[str, str]) -> dict[str, Any]:
    """The CloudFormation template SAM's translator makes of ``template.yaml`` with these parameter values."""
    result = subprocess.run(
        [str(sam_python(sam_cli)), "-c", _SAM_TRANSFORM_SCRIPT, str(TEMPLATE_PATH), json.dumps(parameter_values)],
        capture_output=True,
        text=True,
        env=sam_env(),
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"SAM transform failed:\n{result.stderr}"
    transformed: dict[str, Any] = json.loads(result.stdout)
    return transformed


@pytest.fixture(scope="session")
def transformed_template(sam_cli: Path) -> dict[str, Any]:
    """The CloudFormation template SAM's translator makes of ``template.yaml`` (what CloudFormation deploys)."""
    return transform(sam_cli, {})
