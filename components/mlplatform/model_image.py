"""ModelImage: builds models/<source>/ into an image tagged by content hash, inside `pulumi up`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker_build as docker_build
from pydantic import BaseModel, ConfigDict, Field

from mlplatform.config import ImagesConfig, RegistryConfig
from mlplatform.plan.image import plan_image
from mlplatform.sources import content_hash


class ModelImageArgs(BaseModel):
    """Arguments of ModelImage."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    models_root: Path = Field(
        description="The models/ folder: build context holding models/serving and models/<source>. "
        "Required."
    )
    source: str = Field(description="Folder under models_root with the Dockerfile. Required.")
    image_name: str = Field(
        description="Last path element of the image name, usually the model name. Required."
    )
    registry: RegistryConfig = Field(
        default_factory=RegistryConfig,
        description="Registry to push to; default none (server unset): the image is loaded into "
        "the local Docker daemon instead.",
    )
    registry_password: Any = Field(
        default=None,
        repr=False,
        description="pulumi.Input[str] password for registry.username, from config.require_secret. "
        "Default none (anonymous push).",
    )
    build: ImagesConfig = Field(
        default_factory=ImagesConfig,
        description="Build settings. Default: ImagesConfig() defaults.",
    )


class ModelImage(pulumi.ComponentResource):
    """One model-server image. The tag changes only when files the build copies change."""

    ref: pulumi.Output[str]
    """Image reference for pods: `<repository>@<digest>` when pushed, the content-hash tag when
    kept in the local daemon. Resolves after the build, so dependents wait for it."""
    tag: pulumi.Output[str]
    """The content-hash tag."""
    pushed: pulumi.Output[bool]
    """True when pushed to a registry, False when loaded into the local daemon."""

    def __init__(self, name: str, args: ModelImageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplatform:docker:ModelImage", name, None, opts)
        tag = content_hash(args.models_root, args.source)
        plan = plan_image(args.models_root, args.source, args.image_name, args.registry, tag)
        registries = None
        if plan.push and args.registry.username:
            registries = [
                docker_build.RegistryArgs(
                    address=args.registry.server,
                    username=args.registry.username,
                    password=args.registry_password,
                )
            ]
        image = docker_build.Image(
            f"{name}-image",
            push=plan.push,
            tags=[plan.ref],
            context=docker_build.BuildContextArgs(location=plan.context),
            dockerfile=docker_build.DockerfileArgs(location=plan.dockerfile),
            build_args=plan.build_args,
            # Without a registry the image must land in the daemon the local cluster reads from.
            exports=None
            if plan.push
            else [docker_build.ExportArgs(docker=docker_build.ExportDockerArgs())],
            network=docker_build.NetworkMode(args.build.network),
            platforms=[docker_build.Platform(args.build.platform)] if args.build.platform else None,
            build_on_preview=args.build.build_on_preview,
            builder=docker_build.BuilderConfigArgs(name=args.build.builder),
            exec_=args.build.exec_cli,
            registries=registries,
            labels={"mlplatform.io/model": args.image_name, "mlplatform.io/content-hash": plan.tag},
            opts=pulumi.ResourceOptions(parent=self),
        )
        if plan.push:
            # Pushed images are referenced by the digest the registry stored: what a pod runs
            # is exactly what this build produced, whatever happens to the tag later.
            self.ref = image.digest.apply(lambda digest: f"{plan.repository}@{digest}")
        else:
            # The tag is known before the build, but pods must not be scheduled before it
            # exists: deriving the value from the image's URN carries that dependency along.
            self.ref = image.urn.apply(lambda _: plan.ref)
        self.tag = pulumi.Output.from_input(plan.tag)
        self.pushed = pulumi.Output.from_input(plan.push)
        self.register_outputs({"ref": self.ref, "tag": self.tag, "pushed": self.pushed})
