"""Fixtures every tier may use: one moto server for the whole test session, started and stopped by process id."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from stack_webhook_fanout_tools.devkit.moto_server import MotoServer, process_gone

if TYPE_CHECKING:
    from collections.abc import Iterator


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
