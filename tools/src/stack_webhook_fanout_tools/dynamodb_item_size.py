"""The size of a DynamoDB item by the rules of "DynamoDB item sizes and formats" (Developer Guide,
CapacityUnitCalculations): what write units and storage are billed on.

- String: UTF-8 bytes of the attribute name + UTF-8 bytes of the value.
- Number: name bytes + 1 byte per two significant digits (leading and trailing zeroes trimmed) + 1 byte.
- Binary: name bytes + raw bytes. Null and Boolean: name bytes + 1 byte.
- List and Map: name bytes + the nested elements' sizes + 3 bytes, plus 1 byte per element.
- Storage adds 100 bytes of indexing overhead per item (:data:`STORAGE_OVERHEAD_BYTES`); write units do not.
"""

from __future__ import annotations

import base64
import math
from typing import Any, Final

STORAGE_OVERHEAD_BYTES: Final = 100
WRITE_UNIT_BYTES: Final = 1024


def number_size(text: str) -> int:
    """Bytes of a number value (without its name): 1 per two significant digits, plus 1."""
    mantissa = text.strip().lstrip("+-").lower().split("e", 1)[0]
    digits = mantissa.replace(".", "").lstrip("0").rstrip("0")
    return math.ceil(max(len(digits), 1) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one low-level attribute value (``{"S": ...}``, ``{"N": ...}``, ...), without its name."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return number_size(raw)
    if kind == "B":
        return len(raw) if isinstance(raw, bytes) else len(base64.b64decode(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in raw)
    if kind == "NS":
        return sum(number_size(n) for n in raw)
    if kind == "BS":
        return sum(len(b) if isinstance(b, bytes) else len(base64.b64decode(b)) for b in raw)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in raw)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in raw.items())
    raise ValueError(f"unknown attribute type {kind!r}")


def dynamodb_item_size(item: dict[str, dict[str, Any]]) -> int:
    """Bytes of a low-level item (as GetItem returns it): names plus values."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(item_bytes: int) -> int:
    """Write request units of one standard write of an item this size (1 per started KB)."""
    return max(1, math.ceil(item_bytes / WRITE_UNIT_BYTES))
