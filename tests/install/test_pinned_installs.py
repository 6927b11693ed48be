"""One pinned set of versions decides every install: requirements/*.txt, written by ``make lock``.

The project's environment holds exactly its lock; a fresh resolution of ``.[dev]`` under the lock is the lock; the
layer's pins are the lock's versions of exactly the ``ingest`` extra's closure; the SAM CLI's and checkov's
environments hold exactly theirs; an install is redone when a file that decides it changes; and ``make lock`` run
again on its own output changes nothing. The last two resolutions use the package index (PyPI), as installs do.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_LOCK = REPO_ROOT / "requirements" / "dev.txt"
LAYER_REQUIREMENTS = REPO_ROOT / "layers" / "dependencies" / "requirements.txt"
OWN_PACKAGE = "stack-webhook-fanout"
# The development-only tooling (tools/pyproject.toml), installed editable with no dependencies of its own.
TOOLS_PACKAGE = "stack-webhook-fanout-tools"
# The Lambda Python runtime ships these: the layer leaves them out.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer"}
# Installed by the Makefile before the project, from the same lock: no package depends on it.
INSTALLER = "pip"


def pinned(path: Path) -> dict[str, str]:
    """Name -> version of every ``name==version`` line of a requirements file whose marker holds here."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "./", "-")):
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: not pinned exactly: {line}"
        if requirement.marker is None or requirement.marker.evaluate():
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def environment_distributions(python: Path | str) -> dict[str, str]:
    """Name -> version of every distribution installed in the environment of ``python``."""
    listing = (
        "import importlib.metadata, json\n"
        "print(json.dumps({d.metadata['Name']: d.version for d in importlib.metadata.distributions()}))"
    )
    result = subprocess.run([str(python), "-c", listing], capture_output=True, text=True, timeout=60, check=True)
    return {canonicalize_name(name): version for name, version in json.loads(result.stdout).items()}


def test_this_environment_holds_exactly_the_development_lock() -> None:
    installed = environment_distributions(sys.executable)
    assert installed.pop(OWN_PACKAGE) == importlib.metadata.version(OWN_PACKAGE)
    assert installed.pop(TOOLS_PACKAGE) == importlib.metadata.version(TOOLS_PACKAGE)
    assert installed == pinned(DEV_LOCK), "run `make lock` after changing pyproject.toml, then reinstall"


@pytest.mark.parametrize(
    ("environment", "lock"),
    [(".venv-sam", "sam.txt"), (".venv-checkov", "checkov.txt"), (".venv-lambda", "lambda-runtime.txt")],
)
def test_tool_environments_hold_exactly_their_locks(environment: str, lock: str) -> None:
    python = REPO_ROOT / environment / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{environment} is missing: run `make install`")
    assert environment_distributions(python) == pinned(REPO_ROOT / "requirements" / lock)


def ingest_closure() -> set[str]:
    """Every distribution the package's ``ingest`` extra needs, read from the installed metadata."""
    wanted, seen = [(OWN_PACKAGE, "ingest")], set()
    while wanted:
        name, extra = wanted.pop()
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate(
                {**default_environment(), "extra": extra}
            ):
                continue
            dependency = canonicalize_name(requirement.name)
            for requested in requirement.extras or {""}:
                if (dependency, requested) not in seen:
                    seen.add((dependency, requested))
                    wanted.append((dependency, requested))
    return {name for name, _ in seen} - {OWN_PACKAGE}


def test_layer_pins_are_the_locks_versions_of_exactly_the_ingest_closure() -> None:
    layer, lock = pinned(LAYER_REQUIREMENTS), pinned(DEV_LOCK)
    assert {name: lock.get(name) for name in layer} == layer
    assert set(layer) == ingest_closure() - RUNTIME_PROVIDED


@pytest.mark.parametrize(
    ("stamp", "changed"),
    [
        (".venv/.installed", "pyproject.toml"),
        (".venv/.installed", "requirements/dev.txt"),
        (".venv-sam/.installed", "requirements/sam.txt"),
        (".venv-checkov/.installed", "requirements/checkov.txt"),
        (".venv-lambda/.installed", "requirements/lambda-runtime.txt"),
    ],
)
def test_an_environment_is_reinstalled_when_a_file_that_decides_it_changes(stamp: str, changed: str) -> None:
    # make -n -W FILE: what make would run if FILE had just changed, without running it
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-W", changed, stamp],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "venv --clear" in result.stdout, result.stdout
    assert "pip install" in result.stdout, result.stdout


def test_the_build_backend_is_pinned_exactly() -> None:
    # pip builds the package (editable install, the layer's and the subscriber's sam build) in an isolated environment
    # that no lock constrains: the backend must be pinned where pip reads it
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert requires
    for line in requires:
        specifiers = list(Requirement(line).specifier)
        assert [s.operator for s in specifiers] == ["=="], line


def test_a_fresh_resolution_of_the_dev_install_under_the_lock_is_the_lock(tmp_path: Path) -> None:
    # what `make` would install on a fresh machine, resolved against the package index without installing
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "-c",
            str(DEV_LOCK),
            f"{REPO_ROOT}[dev]",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resolved = {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    resolved.pop(OWN_PACKAGE)
    expected = pinned(DEV_LOCK)
    expected.pop(INSTALLER)
    assert resolved == expected


def test_make_lock_run_on_its_own_output_changes_nothing(tmp_path: Path) -> None:
    # given a copy of everything make lock reads and writes
    for path in ("Makefile", "pyproject.toml", "README.md", "requirements", "layers/dependencies/requirements.txt"):
        source, target = REPO_ROOT / path, tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    # when make lock runs there (it installs uv into the copy's own .venv-lock first)
    result = subprocess.run(
        ["make", "--no-print-directory", "lock"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MAKEFLAGS": ""},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # then every lock file and the layer's requirements are byte for byte what they were
    after = {
        p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and ".venv" not in str(p)
    }
    assert after == before
