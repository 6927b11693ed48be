"""`sam validate --lint`: the SAM translator and cfn-lint accept template.yaml with no error and no warning."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from .conftest import REPO_ROOT, TEMPLATE_PATH, sam_env

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.template

# cfn-lint findings look like "[[W3011: Check resources with ...] (...) matched 126]" in sam's output.
LINT_FINDING = re.compile(r"\b[EWI]\d{4}\b")


def test_sam_validate_lint_is_clean(sam_cli: Path) -> None:
    result = subprocess.run(
        [str(sam_cli), "validate", "--lint", "--template-file", str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        env=sam_env(),
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in output
    assert not LINT_FINDING.search(output), output
