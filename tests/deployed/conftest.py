"""The deployed tier. Its deployment (:mod:`deployed.deployment`, the session fixture ``deployed``) is a plugin of
the root conftest, so that the chaos tier (``tests/chaos``) runs on the same deployment rather than a second one."""

from __future__ import annotations

from .deployment import REGION, REPO_ROOT, STACK_NAME, Deployed

__all__ = ["REGION", "REPO_ROOT", "STACK_NAME", "Deployed"]
