"""The model folders on disk: which exist, their Dockerfiles, the content hash of each build.

Beside the loader (it reads the disk): the loader hands what it read to the pure cross-checks,
and ModelImage tags each image with the hash.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from mlplatform.config import GatewayConfig
from mlplatform.plan.image import SHARED_RUNTIME, ModelFolder

GATEWAY_CRDS_ENV = "MLP_GATEWAY_API_CRDS"

# What models/.dockerignore leaves out of every build: caches and environments. The Dockerfile
# is not copied but is the recipe, so it counts.
_IGNORED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".hypothesis", ".venv", "build"}
_IGNORED_SUFFIXES = {".pyc", ".pyo"}
_TOP_LEVEL = (".dockerignore",)  # top-level files a build reads; models/README.md is not one


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not _IGNORED_DIRS.intersection(path.relative_to(folder).parts)
        and path.suffix not in _IGNORED_SUFFIXES
    )


def content_hash(models_root: Path, source: str, length: int = 16) -> str:
    """SHA-256 over what a build of `models/<source>` copies: the shared runtime, the folder and
    models/.dockerignore. Paths are hashed relative to `models_root`, so every checkout agrees."""
    digest = hashlib.sha256()
    top = [models_root / name for name in _TOP_LEVEL if (models_root / name).is_file()]
    for path in [*top, *_files(models_root / SHARED_RUNTIME), *_files(models_root / source)]:
        digest.update(path.relative_to(models_root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:length]


def read_model_folders(models_root: Path) -> dict[str, ModelFolder]:
    """Every folder under `models_root` with a Dockerfile (the shared runtime's excluded)."""
    folders = {}
    for dockerfile in sorted(models_root.glob("*/Dockerfile")):
        name = dockerfile.parent.name
        if name != SHARED_RUNTIME:
            folders[name] = ModelFolder(name, dockerfile.read_text())
    return folders


def gateway_crd_files(
    gateway: GatewayConfig, environ: Mapping[str, str] | None = None
) -> list[Path] | None:
    """The Gateway API CRD manifests to apply: `crdsPath` (a YAML file or a folder of them),
    else $MLP_GATEWAY_API_CRDS. None when neither names something that exists."""
    environ = os.environ if environ is None else environ
    where = gateway.crds_path or environ.get(GATEWAY_CRDS_ENV)
    if not where:
        return None
    path = Path(where).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.yaml"))
        return files or None
    return [path] if path.is_file() else None
