"""`sam build` of the real template: the layer is pure Python, pinned, complete, free of what the runtime ships, and
holds of the project's package only the modules the function imports.

One build per module (it takes ten seconds or so and downloads wheels from the package index), into a temporary
directory: the working tree's .aws-sam/ is never touched. The layer is built by layers/dependencies/Makefile
(``BuildMethod: makefile``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from stack_webhook_fanout_tools.devkit.imported_modules import imported_package_files

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

from .conftest import REPO_ROOT, TEMPLATE_PATH, sam_cli_path, sam_env

pytestmark = pytest.mark.template

REQUIREMENTS = REPO_ROOT / "layers" / "dependencies" / "requirements.txt"
OWN_DISTRIBUTION = "stack-webhook-fanout"
OWN_PACKAGE = "stack_webhook_fanout"
TOPIC_ARN_PREFIX = "arn:aws:sns:us-east-1:123456789012:"
# Shipped by the Lambda Python runtime (boto3 & co.) or deliberately replaced (svix -> standardwebhooks).
FORBIDDEN = {"boto3", "botocore", "s3transfer", "svix", "httpx", "httpcore", "anyio", "urllib3", "python-dateutil"}


def requirement_lines() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def pinned_versions() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in requirement_lines():
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
    assert lines
    for line in lines:
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
    # the own package ships as modules, without a wheel's metadata (which embedded the whole README)
    assert canonicalize_name(OWN_DISTRIBUTION) not in installed
    assert installed == pinned_versions()


def lambda_python() -> str:
    """The interpreter of the Lambda runtime's packages (boto3 and nothing of the project): .venv-lambda."""
    path = Path(os.environ.get("LAMBDA_PYTHON") or REPO_ROOT / ".venv-lambda" / "bin" / "python")
    if not path.is_file():
        pytest.fail(f"{path} not found: run `make install`")
    return str(path)


def test_layer_holds_only_the_package_modules_the_function_imports(build_dir: Path, layer_dir: Path) -> None:
    # given the built layer's files of the own package
    shipped_root = layer_dir / OWN_PACKAGE
    shipped = sorted(p.relative_to(layer_dir).as_posix() for p in shipped_root.rglob("*") if p.is_file())
    # when the built function is imported as Lambda does (its folder, then the layer; boto3 from the runtime's
    # interpreter), with the configuration the template gives it
    env = {
        "PYTHONNOUSERSITE": "1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "EVENTS_TABLE_NAME": "events",
        "WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:webhook-AbCdEf",
        "TOPIC_ARNS": json.dumps({t: f"{TOPIC_ARN_PREFIX}{t.replace('.', '-')}" for t in KNOWN_EVENT_TYPES}),
        "FALLBACK_TOPIC_ARN": f"{TOPIC_ARN_PREFIX}fallback",
    }
    loaded = imported_package_files(
        lambda_python(),
        entry_module="app",
        package=OWN_PACKAGE,
        paths=[build_dir / "IngestFunction", layer_dir],
        env=env,
    )
    imported = sorted(f.relative_to(layer_dir.resolve()).as_posix() for f in loaded)
    # then the layer holds exactly the modules the import loaded (and every one of them came from the layer)
    assert shipped == imported
    assert f"{OWN_PACKAGE}/models.py" not in shipped  # the subscribers' typed models (pydantic)
    # and each is the current source, byte for byte
    source = REPO_ROOT / "src"
    for relative in shipped:
        assert (layer_dir / relative).read_bytes() == (source / relative).read_bytes(), relative


def test_function_artifact_has_no_dependencies_of_its_own(build_dir: Path) -> None:
    function_dir = build_dir / "IngestFunction"
    assert (function_dir / "app.py").is_file()
    # anything here would shadow the layer (/var/task comes before /opt/python on sys.path)
    assert not list(function_dir.glob("*.dist-info"))
    assert not (function_dir / "stack_webhook_fanout").exists()
