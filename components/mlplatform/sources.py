"""The model folders on disk: which exist, their Dockerfiles, the content hash of each build.

Beside the loader (it reads the disk): the loader hands what it read to the pure cross-checks,
and ModelImage tags each image with the hash.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlplatform.config import GatewayConfig
from mlplatform.plan.image import SHARED_RUNTIME, ModelFolder

GATEWAY_CRDS_ENV = "MLP_GATEWAY_API_CRDS"
KEDA_CRDS_ENV = "MLP_KEDA_CRDS"
KEDA_RBAC_ENV = "MLP_KEDA_RBAC"
VPA_CRDS_ENV = "MLP_VPA_CRDS"
VPA_RBAC_ENV = "MLP_VPA_RBAC"

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


def manifest_files(where: str | None) -> list[Path] | None:
    """The YAML manifests at `where` (a file, or a folder of *.yaml); None when nothing is there."""
    if not where:
        return None
    path = Path(where).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.yaml"))
        return files or None
    return [path] if path.is_file() else None


def gateway_crd_files(
    gateway: GatewayConfig, environ: Mapping[str, str] | None = None
) -> list[Path] | None:
    """The Gateway API CRD manifests to apply: `crdsPath` (a YAML file or a folder of them),
    else $MLP_GATEWAY_API_CRDS. None when neither names something that exists."""
    environ = os.environ if environ is None else environ
    return manifest_files(gateway.crds_path or environ.get(GATEWAY_CRDS_ENV))


@dataclass(frozen=True)
class AddonManifests:
    """Upstream manifests an add-on is installed from, read from its pinned module at build
    time (scripts/bootstrap.sh autoscalers) rather than committed."""

    crds: list[Path]
    rbac: list[Path]


def addon_manifests(
    crds_path: str | None, crds_env: str, rbac_env: str, environ: Mapping[str, str] | None = None
) -> AddonManifests | None:
    """CRDs from `crds_path` or $`crds_env`, RBAC from $`rbac_env`; None when either is missing."""
    environ = os.environ if environ is None else environ
    crds = manifest_files(crds_path or environ.get(crds_env))
    rbac = manifest_files(environ.get(rbac_env))
    return AddonManifests(crds, rbac) if crds and rbac else None
