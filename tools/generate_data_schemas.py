"""Write ``src/stack_webhook_fanout/data_schemas.py``: the pydantic-core schemas of the event data models, as literals.

The ingest function validates event data with ``pydantic_core.SchemaValidator``s built from these schemas
(``data_validation.py``), so that its cold start does not import pydantic. The rendering, and how each non-literal
part of pydantic's schemas is mapped, is ``stack_webhook_fanout.devkit.core_schemas``; the generator stops on any part
it does not know. Usage, from the repository root (``make schemas`` runs the first)::

    .venv/bin/python tools/generate_data_schemas.py            # rewrite the module
    .venv/bin/python tools/generate_data_schemas.py --check    # exit 1 when the committed module is stale
    .venv/bin/python tools/generate_data_schemas.py --out FILE # write elsewhere
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stack_webhook_fanout.devkit.core_schemas import MODULE_NAME, UnknownSchemaPart, render_data_schemas

if TYPE_CHECKING:
    from collections.abc import Sequence

MODULE_PATH = Path(__file__).resolve().parent.parent / "src" / "stack_webhook_fanout" / MODULE_NAME


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=MODULE_PATH, help=f"file to write (default {MODULE_PATH})")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file is stale")
    args = parser.parse_args(argv)
    try:
        text = render_data_schemas()
    except UnknownSchemaPart as exc:
        print(f"cannot generate {MODULE_NAME}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if not args.out.is_file() or args.out.read_text(encoding="utf-8") != text:
            print(f"{args.out} is stale: run `make schemas`", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
