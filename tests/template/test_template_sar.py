"""The Serverless Application Repository (SAR) metadata, and that SAR can take the template (docs/publishing.md).

The version has one home, ``pyproject.toml``: the template's ``SemanticVersion`` is held to it, and the homepage and
source URLs to its ``[project.urls]``. The resource types are checked against SAR's list of supported resources
(``sar_supported_resources.txt``, which cites its source), both as written and as SAM's transform expands them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from .conftest import REPO_ROOT

if TYPE_CHECKING:
    from stack_webhook_fanout_tools.devkit.cfn_template import Template

pytestmark = pytest.mark.template

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
SUPPORTED_LIST = Path(__file__).with_name("sar_supported_resources.txt")
METADATA_KEYS: Final = {
    "Name",
    "Description",
    "Author",
    "SpdxLicenseId",
    "LicenseUrl",
    "ReadmeUrl",
    "Labels",
    "HomePageUrl",
    "SemanticVersion",
    "SourceCodeUrl",
}
#: Types the cited copy of SAR's list lacks although the template needs them. Kept exact, so that any other type
#: that list lacks fails: AWS::SecretsManager::Secret (the placeholder webhook secret) is to be checked against the
#: live page before the first publish (docs/publishing.md says what to do if SAR refuses it).
NOT_ON_THE_CITED_LIST: Final = {"AWS::SecretsManager::Secret"}
# SAR's developer guide, "Using AWS SAM with the AWS Serverless Application Repository": templates with these types
# need the capability to be acknowledged by whoever deploys the application.
CAPABILITY_IAM_TYPES: Final = {"AWS::IAM::Group", "AWS::IAM::InstanceProfile", "AWS::IAM::Policy", "AWS::IAM::Role"}
CAPABILITY_RESOURCE_POLICY_TYPES: Final = {
    "AWS::Lambda::LayerVersionPermission",
    "AWS::Lambda::Permission",
    "AWS::Events::EventBusPolicy",
}


def metadata(template: Template) -> dict[str, Any]:
    application: dict[str, Any] = template["Metadata"]["AWS::ServerlessRepo::Application"]
    return application


def supported_types() -> set[str]:
    lines = SUPPORTED_LIST.read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_metadata_has_every_field_sar_shows(template: Template) -> None:
    application = metadata(template)
    assert set(application) == METADATA_KEYS
    # SAR's limits (CreateApplication): name and author alphanumeric with hyphens, description up to 256 characters,
    # up to 10 labels of [a-zA-Z0-9+-_:/@]
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,138}[A-Za-z0-9]", application["Name"])
    assert re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,125}[A-Za-z0-9])?", application["Author"])
    assert 1 <= len(application["Description"]) <= 256
    labels = application["Labels"]
    assert 1 <= len(labels) <= 10
    assert all(re.fullmatch(r"[a-zA-Z0-9+\-_:/@]{1,127}", label) for label in labels), labels
    assert application["Name"] == PYPROJECT["name"]


def test_semantic_version_is_the_projects_one_version(template: Template) -> None:
    version = metadata(template)["SemanticVersion"]
    assert version == PYPROJECT["version"]
    assert re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)", version)
    # no second copy in the package to drift from it
    package_init = (REPO_ROOT / "src" / "stack_webhook_fanout" / "__init__.py").read_text(encoding="utf-8")
    assert "__version__" not in package_init


def test_license_and_readme_are_the_repositorys_files(template: Template) -> None:
    application = metadata(template)
    assert application["SpdxLicenseId"] == PYPROJECT["license"] == "MIT"
    license_file = REPO_ROOT / application["LicenseUrl"]
    assert license_file.is_file()
    text = license_file.read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text
    assert (REPO_ROOT / application["ReadmeUrl"]).resolve() == (REPO_ROOT / PYPROJECT["readme"]).resolve()


def test_home_page_and_source_are_the_projects_urls(template: Template) -> None:
    application = metadata(template)
    urls = PYPROJECT["urls"]
    assert application["HomePageUrl"] == urls["Homepage"]
    assert application["SourceCodeUrl"] == urls["Source"]
    for url in (application["HomePageUrl"], application["SourceCodeUrl"]):
        assert url.startswith("https://"), url


def test_every_resource_type_is_one_sar_supports(template: Template, transformed_template: dict[str, Any]) -> None:
    supported = supported_types()
    assert len(supported) > 100, "the list file lost its entries"
    declared = {r["Type"] for r in template["Resources"].values()}
    deployed = {r["Type"] for r in transformed_template["Resources"].values()}
    assert (declared | deployed) - supported == NOT_ON_THE_CITED_LIST


def test_publishing_docs_name_the_capabilities_the_template_needs(transformed_template: dict[str, Any]) -> None:
    deployed = {r["Type"] for r in transformed_template["Resources"].values()}
    needed = {
        "CAPABILITY_IAM": bool(deployed & CAPABILITY_IAM_TYPES),
        "CAPABILITY_RESOURCE_POLICY": bool(deployed & CAPABILITY_RESOURCE_POLICY_TYPES),
    }
    # the generated function role and the API's permission to invoke the function
    assert needed == {"CAPABILITY_IAM": True, "CAPABILITY_RESOURCE_POLICY": True}
    publishing = (REPO_ROOT / "docs" / "publishing.md").read_text(encoding="utf-8")
    for capability in needed:
        assert capability in publishing
