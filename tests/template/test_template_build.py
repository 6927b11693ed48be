"""`sam build` of the real template: the layer is pure Python, pinned, complete, free of what the runtime ships.

One build per module (it takes ten seconds or so and downloads wheels from the package index), into a temporary
directory: the working tree's .aws-sam/ is never touched. sam runs from the repository root, which the layer's
requirements.txt needs (its own-package line is a path relative to the working directory).
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
from typing import TYPE_CHECKING

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .conftest import REPO_ROOT, TEMPLATE_PATH, sam_cli_path, sam_env

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.template

REQUIREMENTS = REPO_ROOT / "layers" / "dependencies" / "requirements.txt"
OWN_PACKAGE_LINE = "./"
OWN_DISTRIBUTION = "stack-webhook-fanout"
# Shipped by the Lambda Python runtime (boto3 & co.) or deliberately replaced (svix -> standardwebhooks).
FORBIDDEN = {"boto3", "botocore", "s3transfer", "svix", "httpx", "httpcore", "anyio", "urllib3", "python-dateutil"}


def requirement_lines() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def pinned_versions() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in requirement_lines():
        if line == OWN_PACKAGE_LINE:
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("sam-build") / "build"
    result = subprocess.run(
        [
            str(sam_cli_path()),
            "build",
            "--template-file",
            str(TEMPLATE_PATH),
            "--build-dir",
            str(build),
            "--cache-dir",
            str(build.parent / "cache"),
        ],
        capture_output=True,
        text=True,
        env=sam_env(),
        cwd=REPO_ROOT,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"sam build failed:\n{result.stdout}\n{result.stderr}"
    return build


@pytest.fixture(scope="module")
def layer_dir(build_dir: Path) -> Path:
    return build_dir / "DependenciesLayer" / "python"


def test_every_requirement_is_pinned_exactly() -> None:
    lines = requirement_lines()
    assert lines.count(OWN_PACKAGE_LINE) == 1
    for line in lines:
        if line == OWN_PACKAGE_LINE:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1, f"not pinned with ==: {line}"
        assert specifiers[0].operator == "==", f"not pinned with ==: {line}"
        assert not requirement.marker, line
        assert not requirement.url, line
        assert not requirement.extras, line
        assert canonicalize_name(requirement.name) not in FORBIDDEN, line


def test_pins_satisfy_the_package_metadata_and_match_the_test_environment() -> None:
    # given the versions the layer ships
    pins = pinned_versions()
    # then the project's declared dependency ranges accept them
    for declared in importlib.metadata.requires(OWN_DISTRIBUTION) or []:
        requirement = Requirement(declared)
        if requirement.marker is not None:
            continue  # extras (dev)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is a dependency but not pinned in the layer"
        assert requirement.specifier.contains(Version(pins[name])), f"{name}=={pins[name]} vs {requirement}"
    # and the tests run against the very versions that ship
    for pinned_name, version in pins.items():
        assert importlib.metadata.version(pinned_name) == version, f"test environment has another {pinned_name}"


def test_layer_holds_no_native_code(layer_dir: Path) -> None:
    # a pure-Python layer runs unchanged on arm64 and x86_64, and under a local Lambda runtime on any machine
    shared_libraries = [
        str(p.relative_to(layer_dir)) for p in layer_dir.rglob("*") if p.suffix == ".so" or ".so." in p.name
    ]
    assert shared_libraries == []
    elf_files = [str(p.relative_to(layer_dir)) for p in layer_dir.rglob("*") if p.is_file() and is_elf(p)]
    assert elf_files == []


def test_layer_holds_the_own_package_and_its_dependencies(layer_dir: Path) -> None:
    for package in ("stack_webhook_fanout", "standardwebhooks", "aws_lambda_powertools"):
        assert (layer_dir / package / "__init__.py").is_file(), package
    # the function routes on the verified type; pydantic is for subscribers' typed models (the `models` extra)
    assert not (layer_dir / "pydantic").exists()
    assert not (layer_dir / "pydantic_core").exists()


def test_layer_holds_nothing_the_runtime_ships_or_that_is_not_pinned(layer_dir: Path) -> None:
    for name in ("boto3", "botocore", "s3transfer", "svix", "httpx", "dateutil"):
        assert not (layer_dir / name).exists(), name
    # every distribution in the layer is pinned (an unpinned transitive dependency would show up here)
    installed: dict[str, str] = {}
    for dist_info in layer_dir.glob("*.dist-info"):
        match = re.fullmatch(r"(.+?)-([^-]+)\.dist-info", dist_info.name)
        assert match, dist_info.name
        installed[canonicalize_name(match.group(1))] = match.group(2)
    own_version = installed.pop(canonicalize_name(OWN_DISTRIBUTION))
    assert own_version == importlib.metadata.version(OWN_DISTRIBUTION)
    assert installed == pinned_versions()


def test_layer_ships_the_current_source_of_the_own_package(layer_dir: Path) -> None:
    source = REPO_ROOT / "src" / "stack_webhook_fanout"
    shipped = layer_dir / "stack_webhook_fanout"
    source_files = {p.relative_to(source) for p in source.rglob("*.py")}
    assert {p.relative_to(shipped) for p in shipped.rglob("*.py")} == source_files
    for relative in source_files:
        assert (shipped / relative).read_bytes() == (source / relative).read_bytes(), relative


def test_function_artifact_has_no_dependencies_of_its_own(build_dir: Path) -> None:
    function_dir = build_dir / "IngestFunction"
    assert (function_dir / "app.py").is_file()
    # anything here would shadow the layer (/var/task comes before /opt/python on sys.path)
    assert not list(function_dir.glob("*.dist-info"))
    assert not (function_dir / "stack_webhook_fanout").exists()
