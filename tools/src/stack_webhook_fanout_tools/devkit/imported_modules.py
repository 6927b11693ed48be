"""Which modules of a package an entry point really loads: import it in a fresh interpreter, read ``sys.modules``.

The template tests compare this with the files a build shipped (the layer, the example subscriber), so that a build
can neither miss a module the function imports nor carry one it does not.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_SCRIPT = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
package = sys.argv[2]
print(json.dumps(sorted(
    module.__file__ for name, module in list(sys.modules.items())
    if (name == package or name.startswith(package + ".")) and getattr(module, "__file__", None)
)))
"""


class ImportFailedError(RuntimeError):
    """The entry point could not be imported (its stderr is the message)."""


def imported_package_files(
    python: str | Path,
    *,
    entry_module: str,
    package: str,
    paths: Sequence[Path],
    env: Mapping[str, str],
) -> list[Path]:
    """Import ``entry_module`` with ``python``, ``paths`` first on ``sys.path`` (no working directory: ``-P``), in
    the environment ``env`` (plus ``PATH``); return the resolved files of the ``package`` modules it loaded."""
    done = subprocess.run(
        [str(python), "-P", "-c", _SCRIPT, entry_module, package],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), **env, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)},
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise ImportFailedError(done.stderr)
    return [Path(f).resolve() for f in json.loads(done.stdout)]
