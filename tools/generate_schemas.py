"""Write a JSON Schema file per known event type, from the typed event models, for consumers in other languages.

``schemas/<type>.json`` describes the whole event (``type`` and ``data``) as ``stack_webhook_fanout.events`` models
it, generated with pydantic's ``model_json_schema()``: deterministic (sorted keys, two-space indent, a trailing
newline), so that the committed files change only when the models do. A test regenerates them into a temporary
folder and fails when the committed ones are stale. Usage, from the repository root::

    .venv/bin/python tools/generate_schemas.py            # rewrite schemas/
    .venv/bin/python tools/generate_schemas.py --check    # exit 1 (and say which) when schemas/ is stale
    .venv/bin/python tools/generate_schemas.py --out DIR  # write elsewhere
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES
from stack_webhook_fanout.events import StackEvent

if TYPE_CHECKING:
    from collections.abc import Sequence

    from stack_webhook_fanout.models import StackModel

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
README = (
    "JSON Schemas (draft 2020-12) of every Stack event type, generated from `stack_webhook_fanout.events` by "
    "`tools/generate_schemas.py` (`make schemas`); do not edit by hand.\n"
)


def event_models() -> dict[str, type[StackModel]]:
    """Map each event type to its whole-event model, read from the ``StackEvent`` union's ``type`` literals."""
    union = typing.get_args(StackEvent)[0]
    models: dict[str, type[StackModel]] = {}
    for model in typing.get_args(union):
        (event_type,) = typing.get_args(model.model_fields["type"].annotation)
        models[event_type] = model
    missing = set(KNOWN_EVENT_TYPES) - set(models)
    if missing:
        raise SystemExit(f"no event model for: {', '.join(sorted(missing))}")
    return {t: models[t] for t in KNOWN_EVENT_TYPES}


def schema_text(event_type: str, model: type[StackModel]) -> str:
    schema: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema()}
    schema["$comment"] = f"Stack Auth webhook event {event_type!r}; unknown properties may appear and must be kept."
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """File name -> content of every file ``schemas/`` should hold."""
    files = {f"{t}.json": schema_text(t, model) for t, model in event_models().items()}
    files["README.md"] = README
    return files


def write(out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    files = render()
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    # Drop schemas of types that no longer exist, so the folder holds exactly the known types.
    for stale in sorted(set(p.name for p in out.glob("*.json")) - set(files)):
        (out / stale).unlink()
    return sorted(files)


def stale_files(directory: Path) -> list[str]:
    """Names of files that are missing, different or extra in ``directory``."""
    files = render()
    present = {p.name for p in directory.glob("*") if p.is_file()}
    problems = [
        name
        for name, text in files.items()
        if not (directory / name).is_file() or (directory / name).read_text(encoding="utf-8") != text
    ]
    problems.extend(sorted(present - set(files)))
    return sorted(problems)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SCHEMAS_DIR, help=f"folder to write (default {SCHEMAS_DIR})")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the folder is stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_files(args.out)
        if problems:
            print(f"{args.out} is stale ({', '.join(problems)}): run `make schemas`", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    names = write(args.out)
    print(f"wrote {len(names)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
