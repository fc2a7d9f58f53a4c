"""Model image naming: a tag derived from the content of everything the build copies."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mlplatform.config import RegistryConfig

SHARED_RUNTIME = "serving"
# Build by-products that do not change the image; hashing them would retag on every test run.
_IGNORED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".hypothesis", ".venv", ".git"}
_IGNORED_SUFFIXES = {".pyc", ".pyo"}


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
    """SHA-256 over the model folder, the shared runtime and top-level files of `models/`.

    Paths are hashed relative to `models_root`, so the tag is the same on every checkout.
    """
    digest = hashlib.sha256()
    top_level = (
        sorted(p for p in models_root.iterdir() if p.is_file()) if models_root.is_dir() else []
    )
    for path in [*top_level, *_files(models_root / SHARED_RUNTIME), *_files(models_root / source)]:
        digest.update(path.relative_to(models_root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:length]


@dataclass(frozen=True)
class ImagePlan:
    """Where and how one model image is built."""

    repository: str
    tag: str
    context: str
    dockerfile: str
    push: bool

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


def plan_image(
    models_root: Path, source: str, image_name: str, registry: RegistryConfig
) -> ImagePlan:
    """Build `models/<source>/Dockerfile` with `models/` as context (contracts.md, "Images")."""
    prefix = f"{registry.server}/{registry.repository}" if registry.server else registry.repository
    return ImagePlan(
        repository=f"{prefix}/{image_name}",
        tag=content_hash(models_root, source),
        context=str(models_root),
        dockerfile=str(models_root / source / "Dockerfile"),
        push=registry.server is not None,
    )
