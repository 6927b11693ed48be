"""Which stack, in which region: read from ``samconfig.toml`` the way ``sam deploy`` reads it."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import DeployStepError

if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_STACK_NAME = "stack-webhook-fanout"


@dataclass(frozen=True, slots=True)
class DeployTarget:
    """The stack ``sam deploy --config-env <env>`` deploys, and its region (None: the AWS configuration's)."""

    stack_name: str
    region: str | None


def read_target(config_file: Path, config_env: str) -> DeployTarget:
    """The stack name and region of ``config_env``: its ``deploy`` parameters first, then its ``global`` ones (as
    SAM CLI resolves them). A missing file or section means SAM CLI's defaults: ``--guided`` will ask."""
    if not config_file.is_file():
        return DeployTarget(DEFAULT_STACK_NAME, None)
    try:
        config = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DeployStepError(
            f"{config_file} is not valid TOML ({exc})", "fix the file, or move it away to start a guided deploy"
        ) from exc
    env: dict[str, Any] = config.get(config_env, {})
    merged = {**env.get("global", {}).get("parameters", {}), **env.get("deploy", {}).get("parameters", {})}
    stack_name = merged.get("stack_name") or DEFAULT_STACK_NAME
    region = merged.get("region") or None
    return DeployTarget(str(stack_name), str(region) if region else None)
