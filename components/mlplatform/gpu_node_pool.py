"""GpuNodePool: tainted, labelled nodes offering nvidia.com/gpu, and how pods get onto them."""

from __future__ import annotations

from typing import Any

import pulumi
from pydantic import BaseModel, ConfigDict, Field

from mlplatform.config import GpuPoolConfig
from mlplatform.gpu_backends import (
    ExistingBackend,
    GpuPoolBackend,
    KubernetesNodeReader,
    LocalBackend,
)
from mlplatform.plan.gpu import GpuPlacement, plan_placement


class GpuNodePoolArgs(BaseModel):
    """Arguments of GpuNodePool."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    pool: GpuPoolConfig = Field(description="The pool's config entry. Required.")
    node_reader: Any = Field(
        default=None,
        description="NodeReader for backend 'existing' (resolves nodeSelector/nodeNames). Default "
        "none: a KubernetesNodeReader on `kubeconfig`/`kube_context`.",
    )
    kubeconfig: str | None = Field(
        default=None,
        description="Kubeconfig path or content for the "
        "default NodeReader. Default none ($KUBECONFIG).",
    )
    kube_context: str | None = Field(
        default=None,
        description="Kubeconfig context for the default "
        "NodeReader. Default none (current context).",
    )


def backend_for(args: GpuNodePoolArgs) -> GpuPoolBackend:
    if args.pool.backend == "local":
        return LocalBackend()
    if args.pool.backend == "existing":
        return ExistingBackend(
            args.node_reader or KubernetesNodeReader(args.kubeconfig, args.kube_context)
        )
    raise ValueError(f"GPU pool {args.pool.name!r}: no backend {args.pool.backend!r}")


class GpuNodePool(pulumi.ComponentResource):
    """A GPU node pool and the scheduling constraints that target it.

    Depend on the pool (``depends_on=[pool]``) from workloads so they are created after its nodes.
    """

    placement: GpuPlacement
    """Plain-value tolerations/affinity/capacity, for planning functions."""
    pool_name: pulumi.Output[str]
    node_names: pulumi.Output[list[str]]
    tolerations: pulumi.Output[list[dict[str, Any]]]
    node_affinity: pulumi.Output[dict[str, Any]]
    node_selector: pulumi.Output[dict[str, str]]
    gpu_capacity: pulumi.Output[int]

    def __init__(
        self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlplatform:k8s:GpuNodePool", name, None, opts)
        self.placement = plan_placement(args.pool)
        names = backend_for(args).create(self, name, args.pool)
        self.pool_name = pulumi.Output.from_input(args.pool.name)
        self.node_names = pulumi.Output.from_input(names)
        self.tolerations = pulumi.Output.from_input(self.placement.tolerations)
        self.node_affinity = pulumi.Output.from_input(self.placement.node_affinity)
        self.node_selector = pulumi.Output.from_input(self.placement.node_selector)
        self.gpu_capacity = pulumi.Output.from_input(len(names) * args.pool.gpus_per_node)
        self.register_outputs(
            {
                "poolName": self.pool_name,
                "nodeNames": self.node_names,
                "tolerations": self.tolerations,
                "nodeAffinity": self.node_affinity,
                "nodeSelector": self.node_selector,
                "gpuCapacity": self.gpu_capacity,
            }
        )
