"""Model images: where each is built and pushed, and what its Dockerfile may copy (pure).

The tag is a content hash of everything the build copies; it is computed from the files by
`mlplatform.sources` and passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlplatform.config import ModelConfig, RegistryConfig
from mlplatform.core.names import Track

SHARED_RUNTIME = "serving"
# The build argument naming the model's folder under models/ (models/README.md, "Images").
SOURCE_ARG = "MODEL_SOURCE"

_INSTRUCTION = re.compile(r"^\s*(COPY|ADD)\s+(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class ModelFolder:
    """One folder under models/ that has a Dockerfile, as read from disk."""

    name: str
    dockerfile: str
    """The Dockerfile's text."""


@dataclass(frozen=True)
class TrackImage:
    """The image one track of a model runs: prebuilt, or built by the stack from a folder."""

    prebuilt: str | None
    """An image reference the stack does not build (`image`, `canary.image`), else None."""
    source: str
    """The folder under models/ it is built from (when not prebuilt)."""
    own: bool
    """A canary's own image; False when the track runs the stable track's image."""


def track_image(model: ModelConfig, track: Track) -> TrackImage:
    """What image a track runs. A canary gets its own image when it names one (`canary.image`)
    or a folder other than the model's (`canary.source`); otherwise it runs the stable image
    (a canary of another version or weight only)."""
    canary = model.canary if track == "canary" else None
    if canary is not None:
        if canary.image:
            return TrackImage(canary.image, model.source_dir, own=True)
        if canary.source and canary.source != model.source_dir:
            return TrackImage(None, canary.source, own=True)
    return TrackImage(model.image, model.source_dir, own=False)


@dataclass(frozen=True)
class ImagePlan:
    """Where and how one model image is built."""

    repository: str
    tag: str
    context: str
    dockerfile: str
    push: bool
    build_args: dict[str, str]

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


def plan_image(
    models_root: Path, source: str, image_name: str, registry: RegistryConfig, tag: str
) -> ImagePlan:
    """Build `models/<source>/Dockerfile` with `models/` as context and MODEL_SOURCE=<source>."""
    prefix = f"{registry.server}/{registry.repository}" if registry.server else registry.repository
    return ImagePlan(
        repository=f"{prefix}/{image_name}",
        tag=tag,
        context=str(models_root),
        dockerfile=str(models_root / source / "Dockerfile"),
        push=registry.server is not None,
        build_args={SOURCE_ARG: source},
    )


def copied_paths(dockerfile: str) -> list[tuple[int, str]]:
    """(line number, source path) of every COPY/ADD from the build context (not `--from=`)."""
    found = []
    for number, line in enumerate(dockerfile.splitlines(), start=1):
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        words = match.group(2).split()
        if any(w.startswith("--from") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        found += [(number, path) for path in paths[:-1]]  # the last word is the destination
    return found


def foreign_copies(folder: str, dockerfile: str, models: set[str]) -> list[tuple[int, str]]:
    """COPY/ADD lines of `folder`'s Dockerfile that take another model's folder."""
    return [
        (number, path)
        for number, path in copied_paths(dockerfile)
        if path.strip("./").split("/", 1)[0] in models - {folder}
    ]
