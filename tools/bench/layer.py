"""The layer's zipped size for arm64, against a layer of svix + Powertools + pydantic.

Ours: ``sam build`` of ``template.yaml`` (the ``DependenciesLayer``, ``BuildMethod: python3.13``,
``BuildArchitecture: arm64``) into a build directory of the benchmark's own, so it never races ``make build`` or the
template tests over ``.aws-sam``. The naive layer: ``pip install --platform manylinux2014_aarch64 --only-binary=:all:
--python-version 3.13`` of svix, aws-lambda-powertools and pydantic at the versions this project pins (no boto3: the
runtime ships it), cached under ``.local/bench`` because it only changes with those pins. Both are zipped the same
way: every file under the layer's root (``python/...``), ``__pycache__`` left out (pip compiles bytecode, SAM's
builder does not; Lambda does not need it), deflate at zlib's default level, as ``sam deploy`` does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Final

from common import OUT_DIR, REPO

#: The naive build's libraries, at the versions of our own pins (pyproject's dev extra and the layer's lock).
NAIVE_REQUIREMENTS: Final = ("svix==2.9.1", "aws-lambda-powertools==3.37.0", "pydantic==2.14.4")
_RUNTIME_PROVIDED: Final = ("boto3", "botocore", "s3transfer")
_ELF_AARCH64: Final = 183  # e_machine of ARM 64-bit


def zip_tree(root: Path, target: Path) -> int:
    """Zip every file under ``root`` (paths relative to it, sorted, no ``__pycache__``); return the zip's bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(root).as_posix())
    return target.stat().st_size


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def native_machines(root: Path) -> set[int]:
    """The ELF ``e_machine`` of every shared library under ``root`` (183 = aarch64, 62 = x86-64)."""
    machines = set()
    for path in root.rglob("*.so*"):
        header = path.read_bytes()[:20]
        if header[:4] == b"\x7fELF":
            machines.add(int.from_bytes(header[18:20], "little"))
    return machines


def sam_cli() -> str:
    return os.environ.get("SAM_CLI") or str(REPO / ".venv-sam" / "bin" / "sam")


def _path_with_python313() -> str:
    """PATH with this interpreter's own ``bin`` first: ``sam build`` without containers needs ``python3.13`` there
    (the Makefile exports the same; this covers running the script directly)."""
    base_bin = str(Path(os.path.realpath(sys.executable)).parent)
    return os.pathsep.join([base_bin, os.environ.get("PATH", "")])


def build_ours(build_dir: Path) -> Path:
    """``sam build`` into ``build_dir``; return the layer's root (the folder holding ``python/``)."""
    if build_dir.exists():
        shutil.rmtree(build_dir)
    done = subprocess.run(
        [sam_cli(), "build", "--build-dir", str(build_dir), "--template-file", str(REPO / "template.yaml")],
        cwd=REPO,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": _path_with_python313()},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"sam build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    root = build_dir / "DependenciesLayer"
    if not (root / "python").is_dir():
        raise RuntimeError(f"sam build produced no {root}/python")
    return root


def build_naive(cache: Path) -> Path:
    """pip-install the naive layer for arm64 into ``cache`` (reused while the pins are the same); return its root."""
    key = hashlib.sha256(json.dumps(NAIVE_REQUIREMENTS).encode()).hexdigest()[:16]
    root = cache / f"naive-layer-{key}"
    if (root / ".complete").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--platform",
            "manylinux2014_aarch64",
            "--implementation",
            "cp",
            "--python-version",
            "3.13",
            "--only-binary=:all:",
            "--target",
            str(root / "python"),
            *NAIVE_REQUIREMENTS,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip install of the naive layer failed:\n{done.stderr[-3000:]}")
    for name in _RUNTIME_PROVIDED:  # the Lambda runtime ships these; neither layer may carry them
        for path in (root / "python").glob(f"{name}*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    (root / ".complete").write_text("\n".join(NAIVE_REQUIREMENTS))
    return root


def measure(*, skip_sam: bool = False) -> dict[str, object]:
    work = OUT_DIR / "layer"
    ours_root = build_ours(work / "sam-build") if not skip_sam else REPO / ".aws-sam" / "build" / "DependenciesLayer"
    naive_root = build_naive(OUT_DIR / "cache")
    ours_zip = zip_tree(ours_root, work / "ours.zip")
    naive_zip = zip_tree(naive_root, work / "naive.zip")
    return {
        "ours_zip_bytes": ours_zip,
        "ours_unzipped_bytes": tree_bytes(ours_root),
        "ours_native_machines": sorted(native_machines(ours_root)),
        "naive_zip_bytes": naive_zip,
        "naive_unzipped_bytes": tree_bytes(naive_root),
        "naive_native_machines": sorted(native_machines(naive_root)),
        "ours_packages": sorted(p.name for p in (ours_root / "python").iterdir() if p.name.endswith(".dist-info")),
        "naive_packages": sorted(p.name for p in (naive_root / "python").iterdir() if p.name.endswith(".dist-info")),
        "ratio": ours_zip / naive_zip,
        "arm64_ok": native_machines(ours_root) <= {_ELF_AARCH64} and native_machines(naive_root) <= {_ELF_AARCH64},
        "built_with": "sam build" if not skip_sam else "existing .aws-sam/build",
    }
