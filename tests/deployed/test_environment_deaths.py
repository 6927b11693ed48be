"""An execution environment that dies is reaped and replaced, as Lambda replaces one: the next request gets a new
environment, also after every environment has died. The runtime process killed alone (a crash, an out-of-memory
kill) and the whole environment (RIE and its runtime) are both deaths. The chaos tier kills them during invokes."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.apigw import http_api_event
from stack_webhook_fanout_tools.devkit.lambda_runtime import ExecutionEnvironment, FunctionPool, zombie_children
from stack_webhook_fanout_tools.devkit.moto_server import process_gone

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Deployed

pytestmark = pytest.mark.deployed

# A GET: the function answers it 405 before anything else, whatever the secret holds.
EVENT = http_api_event(b"", {}, method="GET", path="/webhooks/stack")


def wait_until_dropped(pool: FunctionPool, environment: ExecutionEnvironment) -> None:
    deadline = time.monotonic() + 10
    while environment in pool.environments():
        assert time.monotonic() < deadline, "the dead environment was not dropped"
        time.sleep(0.05)


def assert_reaped(pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while not all(process_gone(pid) for pid in pids):
        assert time.monotonic() < deadline, f"not reaped: {[pid for pid in pids if not process_gone(pid)]}"
        time.sleep(0.05)
    assert zombie_children(os.getpid()) == []


def test_a_dead_environment_is_reaped_and_the_next_request_gets_a_new_one(deployed: Deployed, tmp_path: Path) -> None:
    pool = deployed.new_pool(tmp_path / "pool.log", max_environments=2)
    try:
        # given a warm environment
        assert pool.invoke(EVENT)["statusCode"] == 405
        [first] = pool.environments()
        runtime = first.runtime_pids()
        assert len(runtime) == 1
        # when its runtime process alone is killed between invocations
        assert first.kill_runtime() == runtime
        # then the environment is dropped, RIE and the runtime reaped, and the next request gets a new environment
        wait_until_dropped(pool, first)
        assert_reaped([first.pid, *runtime])
        assert pool.invoke(EVENT)["statusCode"] == 405
        [second] = pool.environments()
        assert second is not first
        assert second.runtime_pids() != runtime

        # when the whole environment is killed: the same
        killed = second.kill()
        assert second.pid in killed
        wait_until_dropped(pool, second)
        assert_reaped(killed)
        assert pool.invoke(EVENT)["statusCode"] == 405

        # when every environment dies at once (two started by overlapping requests)
        answers: list[Any] = []
        pool_full = [threading.Thread(target=lambda: answers.append(pool.invoke(EVENT))) for _ in range(2)]
        for thread in pool_full:
            thread.start()
        for thread in pool_full:
            thread.join(timeout=60)
        everyone = pool.environments()
        assert len(everyone) == 2
        killed = [pid for environment in everyone for pid in environment.kill()]
        for environment in everyone:
            wait_until_dropped(pool, environment)
        assert_reaped(killed)
        # then new requests are still served, by new environments
        assert [pool.invoke(EVENT)["statusCode"] for _ in range(3)] == [405, 405, 405]
        assert not set(pool.environments()) & set(everyone)
        assert pool.deaths == 4
        assert pool.environments_started == 5
    finally:
        pool.close()
    assert zombie_children(os.getpid()) == []
