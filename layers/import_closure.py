"""Copy the modules of a package that an entry point imports at run time, and nothing else of it.

    python3.13 layers/import_closure.py --entry functions/ingest/app.py --src src --package stack_webhook_fanout \
        --target "$ARTIFACTS_DIR/python"

Run by the layers' and the example subscriber's Makefiles (``sam build``, ``BuildMethod: makefile``), on the build
machine's interpreter with the standard library only: the package's dependencies are not importable there (boto3 is
the Lambda runtime's), so the imports are read from the source (``ast``), not executed. Every ``import`` and
``from ... import`` counts, at module level or in a function, except those under ``if TYPE_CHECKING:`` (annotations
only); ``from package import name`` counts ``name`` when it is a module. tests/template builds the layer and checks
the result against what really importing the handler on it puts in ``sys.modules``.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import sys
from pathlib import Path


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.AST, current: str, is_package: bool) -> list[str]:
    """Dotted names imported by a module's source (``current`` is its dotted name), TYPE_CHECKING blocks left out."""
    names: list[str] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = current.split(".")
                base_parts = parts if is_package else parts[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))
    return names


def _module_file(src: Path, dotted: str) -> Path | None:
    path = src.joinpath(*dotted.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    module = path.with_suffix(".py")
    return module if module.is_file() else None


def closure(entry: Path, src: Path, package: str) -> list[Path]:
    """The files (relative to ``src``) of ``package`` that ``entry`` imports, directly or through each other."""
    found: set[Path] = set()
    queue: list[tuple[Path, str, bool]] = [(entry, "__main__", False)]
    while queue:
        path, dotted, is_package = queue.pop()
        for name in _imported_names(ast.parse(path.read_text(encoding="utf-8")), dotted, is_package):
            if name != package and not name.startswith(package + "."):
                continue
            parts = name.split(".")
            # importing a.b.c imports the packages a and a.b first
            for depth in range(1, len(parts) + 1):
                prefix = ".".join(parts[:depth])
                module = _module_file(src, prefix)
                if module is None or module in found:
                    continue
                found.add(module)
                queue.append((module, prefix, module.name == "__init__.py"))
    return sorted(p.relative_to(src) for p in found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entry", type=Path, required=True, help="the handler's file (e.g. functions/ingest/app.py)")
    parser.add_argument("--src", type=Path, required=True, help="the folder that holds the package")
    parser.add_argument("--package", required=True, help="the package's import name")
    parser.add_argument("--target", type=Path, help="copy the modules here (default: print their paths)")
    args = parser.parse_args(argv)
    files = closure(args.entry, args.src, args.package)
    if not files:
        print(f"{args.entry} imports nothing of {args.package}", file=sys.stderr)
        return 1
    for relative in files:
        if args.target is None:
            print(relative.as_posix())
            continue
        destination = args.target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.src / relative, destination)
    return 0


if __name__ == "__main__":
    sys.exit(main())
