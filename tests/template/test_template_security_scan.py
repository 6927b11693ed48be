"""checkov finds nothing to fix in template.yaml, nor in the CloudFormation SAM generates from it.

Every accepted finding is suppressed in the template itself (``Metadata: checkov: skip`` with a one-line reason,
listed in docs/template-reference.md); the count of suppressions checkov reports must equal the count written
down, so a suppression that no longer matches anything is noticed and removed.

checkov pins its own boto3 and packaging versions, which conflict with this project's: it lives in its own
virtual environment like the SAM CLI. It is found through ``$CHECKOV``, else ``.venv-checkov/bin/checkov``, else
``.venv/bin/checkov``; when none exists the tests fail (they are never skipped).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import REPO_ROOT, TEMPLATE_PATH

if TYPE_CHECKING:
    from stack_webhook_fanout_tools.devkit.cfn_template import Template

pytestmark = pytest.mark.template


def checkov_path() -> Path:
    candidates = [REPO_ROOT / ".venv-checkov" / "bin" / "checkov", REPO_ROOT / ".venv" / "bin" / "checkov"]
    if os.environ.get("CHECKOV"):
        candidates = [Path(os.environ["CHECKOV"])]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    pytest.fail(
        "checkov not found (looked at " + ", ".join(map(str, candidates)) + "): install it in its own virtual "
        "environment (python3.13 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov) or set CHECKOV"
    )


def run_checkov(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [
            str(checkov_path()),
            "--framework",
            "cloudformation",
            "-f",
            str(path),
            "--compact",
            "--quiet",
            "-o",
            "json",
            # no network: checkov otherwise tries to fetch guideline links from its vendor's API
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
        check=False,
    )
    assert result.returncode in (0, 1), f"checkov did not run:\n{result.stdout}\n{result.stderr}"
    report = json.loads(result.stdout)
    assert isinstance(report, dict), f"checkov scanned nothing or several things: {result.stdout[:500]}"
    return report


def _failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report.get("results", {}).get("failed_checks", [])
    ]


def test_checkov_passes_on_the_template(template: Template) -> None:
    report = run_checkov(TEMPLATE_PATH)

    assert _failures(report) == []
    assert report["summary"]["failed"] == 0
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0
    written = sum(
        len((res.get("Metadata") or {}).get("checkov", {}).get("skip", [])) for res in template["Resources"].values()
    )
    assert report["summary"]["skipped"] == written, "a checkov suppression in template.yaml no longer applies"


def test_checkov_passes_on_the_generated_cloudformation(transformed_template: dict[str, Any], tmp_path: Path) -> None:
    # the generated role, API stage and invoke permission are only visible after SAM's transform
    path = tmp_path / "transformed.template.json"
    path.write_text(json.dumps(transformed_template), encoding="utf-8")

    report = run_checkov(path)

    assert _failures(report) == []
    assert report["summary"]["failed"] == 0
    assert report["summary"]["parsing_errors"] == 0
