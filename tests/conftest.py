"""Fixtures every tier may use: one moto server for the whole test session, started and stopped by process id; the
deployment of the deployed tier (``deployed``: sam build + sam deploy onto its own emulator, the function under AWS's
runtime emulator), which the chaos tier shares; and the chaos tier last."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from stack_webhook_fanout_tools.devkit.moto_server import MotoServer, process_gone

if TYPE_CHECKING:
    from collections.abc import Iterator

# One session fixture, one deployment, for both tiers that need it (a build and a deploy take about a minute).
pytest_plugins = ["deployed.deployment"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The chaos tier runs after every other test (a stable sort keeps their order): it is the longest, and it puts
    the webhook secret into the shared deployment, which the deployed tier's first test expects empty."""
    items.sort(key=lambda item: item.get_closest_marker("chaos") is not None)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``moto_server`` on a free loopback port, shared by the session (each test provisions its own resources);
    stopped by its pid at the end, and checked to be gone."""
    server = MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto_server.log")
    try:
        endpoint = server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    pid = server.pid
    try:
        yield endpoint
    finally:
        server.stop()
        assert process_gone(pid), f"moto_server (pid {pid}) is still running"
