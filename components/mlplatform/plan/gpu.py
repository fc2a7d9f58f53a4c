"""GPU pool planning: node labels and taints, what pods need to land there, simulated nodes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlplatform.config import GpuPoolConfig, LocalPoolBackend
from mlplatform.core.names import (
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    GPU_TAINT_KEY,
    LABEL_GPU_POOL,
    platform_labels,
)

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
METRICS_PATH_ANNOTATION = "metrics.k8s.io/resource-metrics-path"


class GpuPlacement(BaseModel):
    """What a pod needs to run on a GPU pool; GpuNodePool outputs it, MLModelService consumes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pool: str = Field(
        description="Pool name (value of the mlplatform.io/gpu-pool label). Required."
    )
    tolerations: list[dict[str, Any]] = Field(
        description="Pod tolerations for the pool's taint nvidia.com/gpu=<pool>:NoSchedule. "
        "Required."
    )
    node_affinity: dict[str, Any] = Field(
        description="Pod nodeAffinity requiring mlplatform.io/gpu-pool=<pool>. Required."
    )
    node_selector: dict[str, str] = Field(
        description="Equivalent nodeSelector, for workloads that prefer it. Required."
    )
    gpu_capacity: int = Field(ge=0, description="Total nvidia.com/gpu of the pool. Required; >= 0.")


def gpu_taint(pool: str) -> dict[str, str]:
    return {"key": GPU_TAINT_KEY, "value": pool, "effect": "NoSchedule"}


def gpu_tolerations(pool: str) -> list[dict[str, Any]]:
    return [{"key": GPU_TAINT_KEY, "operator": "Equal", "value": pool, "effect": "NoSchedule"}]


def gpu_node_affinity(pool: str) -> dict[str, Any]:
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": LABEL_GPU_POOL, "operator": "In", "values": [pool]}]}
            ]
        }
    }


def plan_placement(pool: GpuPoolConfig) -> GpuPlacement:
    return GpuPlacement(
        pool=pool.name,
        tolerations=gpu_tolerations(pool.name),
        node_affinity=gpu_node_affinity(pool.name),
        node_selector={LABEL_GPU_POOL: pool.name},
        gpu_capacity=pool.gpu_capacity,
    )


def gpu_node_labels(pool: GpuPoolConfig) -> dict[str, str]:
    """Labels every node of the pool carries."""
    labels = {
        **platform_labels("gpu-node"),
        LABEL_GPU_POOL: pool.name,
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.count": str(pool.gpus_per_node),
    }
    if pool.gpu_product:
        labels[GPU_PRODUCT_LABEL] = pool.gpu_product
    return labels


def local_node_names(pool: GpuPoolConfig) -> list[str]:
    return [f"{pool.name}-node-{index}" for index in range(pool.node_count or 0)]


def plan_local_node(pool: GpuPoolConfig, node_name: str) -> dict[str, Any]:
    """A KWOK-managed Node object (metadata, spec, status) simulating one GPU node.

    KWOK keeps the capacity given at creation, so the scheduler sees nvidia.com/gpu on the node
    exactly as the device plugin would advertise it on real hardware.
    """
    backend = pool.local or LocalPoolBackend()
    resources = {
        "cpu": backend.cpu,
        "memory": backend.memory,
        "pods": str(backend.pods),
        GPU_RESOURCE: str(pool.gpus_per_node),
    }
    return {
        "metadata": {
            "name": node_name,
            "labels": {
                **gpu_node_labels(pool),
                "kubernetes.io/hostname": node_name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                # Simulated: no container runs here (scripts/cluster.sh labels real nodes "real").
                "node.mlplatform.io/kind": "simulated",
            },
            "annotations": {
                KWOK_ANNOTATION: "fake",
                "node.alpha.kubernetes.io/ttl": "0",
                # metrics-server reads this node's kubelet metrics from KWOK's per-node path, so
                # the HPA sees simulated CPU/memory for pods on the pool.
                METRICS_PATH_ANNOTATION: f"/metrics/nodes/{node_name}/metrics/resource",
            },
        },
        "spec": {"taints": [gpu_taint(pool.name)]},
        "status": {"capacity": dict(resources), "allocatable": dict(resources)},
    }


def plan_device_plugin(pool: GpuPoolConfig, image: str) -> dict[str, Any]:
    """DaemonSet spec of the NVIDIA device plugin, limited to and tolerating the pool's nodes."""
    selector = {"app.kubernetes.io/name": "nvidia-device-plugin", LABEL_GPU_POOL: pool.name}
    return {
        "selector": {"matchLabels": selector},
        "updateStrategy": {"type": "RollingUpdate"},
        "template": {
            "metadata": {"labels": {**selector, **platform_labels("device-plugin")}},
            "spec": {
                "priorityClassName": "system-node-critical",
                "nodeSelector": {LABEL_GPU_POOL: pool.name},
                "tolerations": gpu_tolerations(pool.name),
                "containers": [
                    {
                        "name": "nvidia-device-plugin",
                        "image": image,
                        "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                        # The plugin registers with the kubelet through a host socket; that needs
                        # privileges, which is why it runs in kube-system and not beside the models.
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [
                            {
                                "name": "device-plugin",
                                "mountPath": "/var/lib/kubelet/device-plugins",
                            }
                        ],
                    }
                ],
                "volumes": [
                    {
                        "name": "device-plugin",
                        "hostPath": {"path": "/var/lib/kubelet/device-plugins"},
                    }
                ],
            },
        },
    }


# Taints that node controllers add and remove on their own (not-ready, unreachable, cloud
# initialisation); copying them into our desired list would pin them on the node.
_CONTROLLER_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/")


def merged_taints(current: list[dict[str, Any]], pool: str) -> list[dict[str, Any]]:
    """Taints for an adopted node: its own taints, minus controller-managed ones and any previous
    GPU pool taint, plus the pool's taint. Node taints are an atomic list under server-side apply,
    so the full list is sent."""
    kept = [
        {k: v for k, v in taint.items() if k in ("key", "value", "effect")}
        for taint in current
        if taint.get("key") != GPU_TAINT_KEY
        and not str(taint.get("key", "")).startswith(_CONTROLLER_TAINT_PREFIXES)
    ]
    return [*kept, gpu_taint(pool)]
