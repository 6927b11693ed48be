"""``tools/show_body.py`` (``make body``) as a user runs it: a stored body printed exactly as Stack sent it, from a
new record (compressed) and from a record of before compression (plain text)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from .support import REPO_ROOT, FedStack

if TYPE_CHECKING:
    from pathlib import Path

SHOW_BODY = REPO_ROOT / "tools" / "show_body.py"

pytestmark = pytest.mark.integration


def show_body(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, str(SHOW_BODY), *args], capture_output=True, cwd=REPO_ROOT, timeout=120, check=False
    )


def test_show_body_prints_the_bytes_stack_sent(fed_stack: FedStack, tmp_path: Path) -> None:
    # given a body whose bytes a re-serialisation would change, delivered and stored compressed
    body = b'{"type":"user.created",  "data":{"id":"u-1","display_name":"Zo\\u00eb","x":1.50}}\n'
    delivery = fed_stack.deliver("user.created", body=body)
    assert delivery.answer["status"] == "published"
    item = fed_stack.stack.client("dynamodb").get_item(
        TableName=fed_stack.stack.table_name, Key={"event_id": {"S": delivery.event_id}}, ConsistentRead=True
    )["Item"]
    assert "body_zlib" in item
    assert "body" not in item

    # when
    result = show_body("--outputs", str(fed_stack.outputs_file(tmp_path)), delivery.event_id)

    # then: exactly the bytes, nothing else on stdout
    assert result.returncode == 0, result.stderr
    assert result.stdout == body


def test_show_body_reads_a_record_of_before_compression(fed_stack: FedStack, tmp_path: Path) -> None:
    # given a record as an earlier release wrote it: the body as text
    body = '{"type":"team.deleted","data":{"id":"t-1"}}'
    fed_stack.stack.client("dynamodb").put_item(
        TableName=fed_stack.stack.table_name,
        Item={
            "event_id": {"S": "msg_old_record"},
            "event_type": {"S": "team.deleted"},
            "body": {"S": body},
            "body_sha256": {"S": hashlib.sha256(body.encode()).hexdigest()},
            "event_timestamp": {"S": "1800000000"},
            "status": {"S": "published"},
        },
    )

    result = show_body("--outputs", str(fed_stack.outputs_file(tmp_path)), "msg_old_record")

    assert result.returncode == 0, result.stderr
    assert result.stdout == body.encode()


def test_show_body_of_an_unknown_id_says_so_and_exits_1(fed_stack: FedStack, tmp_path: Path) -> None:
    result = show_body("--outputs", str(fed_stack.outputs_file(tmp_path)), "msg_never_sent")

    assert result.returncode == 1
    assert result.stdout == b""
    assert b"no record of msg_never_sent" in result.stderr


def test_show_body_without_an_outputs_file_is_a_usage_error(tmp_path: Path) -> None:
    result = show_body("--outputs", str(tmp_path / "missing.json"), "msg_1")

    assert result.returncode == 2
    assert b"cannot read the outputs file" in result.stderr
