"""The children's jobs as JSON, bytes included: the handler's recorded calls carry the stored body as a DynamoDB
binary (``B``) value, which the floor and naive variants must send byte for byte.

Bytes travel as ``{"$bytes": "<base64>"}``; only the children decode them (the parent passes calls along as JSON).
Standard library C modules only: the cold-start child loads its job before its clock starts, and imports little.
"""

from __future__ import annotations

import binascii
import json
from typing import IO, Any

_KEY = "$bytes"


def _encode(value: object) -> object:
    if isinstance(value, bytes):
        return {_KEY: binascii.b2a_base64(value, newline=False).decode()}
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _decode(obj: dict[str, Any]) -> object:
    return binascii.a2b_base64(obj[_KEY]) if obj.keys() == {_KEY} else obj


def dumps(value: object) -> str:
    return json.dumps(value, default=_encode)


def loads(text: str) -> Any:
    return json.loads(text, object_hook=_decode)


def load(handle: IO[str]) -> Any:
    return json.load(handle, object_hook=_decode)
