"""How a GPU pool's nodes come to exist. The seam for cloud node groups.

A backend turns a validated `GpuPoolConfig` into Pulumi resources under the GpuNodePool and
returns the node names. A cloud backend (EKS managed node group, GKE node pool, ...) adds a
`backend` literal and a settings block to `GpuPoolConfig` and a class here; the rest of the
platform only sees `GpuPlacement`, which does not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_kubernetes as k8s

from mlplatform import sdk
from mlplatform.config import GpuPoolConfig
from mlplatform.core.names import platform_labels
from mlplatform.plan.gpu import (
    gpu_node_labels,
    local_node_names,
    merged_taints,
    plan_device_plugin,
    plan_local_node,
)


@dataclass(frozen=True)
class NodeInfo:
    """What the `existing` backend needs to know about a live node."""

    name: str
    taints: tuple[dict[str, Any], ...] = ()


class NodeReader(Protocol):
    """Reads nodes of the target cluster while the program runs."""

    def list_nodes(self, selector: dict[str, str]) -> list[NodeInfo]: ...

    def get_node(self, name: str) -> NodeInfo | None: ...


class KubernetesNodeReader:
    """NodeReader over the Kubernetes API, using the same kubeconfig as the provider."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None):
        self._kubeconfig = kubeconfig
        self._context = context

    def _api(self) -> Any:
        import os

        import yaml
        from kubernetes import client, config

        source = self._kubeconfig
        if source and not os.path.exists(os.path.expanduser(source)):
            api_client = config.new_client_from_config_dict(
                yaml.safe_load(source), context=self._context
            )
        else:
            api_client = config.new_client_from_config(
                config_file=os.path.expanduser(source) if source else None, context=self._context
            )
        return client.CoreV1Api(api_client)

    @staticmethod
    def _info(node: Any) -> NodeInfo:
        taints = tuple(
            {"key": t.key, "value": t.value, "effect": t.effect} for t in (node.spec.taints or [])
        )
        return NodeInfo(name=node.metadata.name, taints=taints)

    def list_nodes(self, selector: dict[str, str]) -> list[NodeInfo]:
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        return sorted(
            (self._info(n) for n in self._api().list_node(label_selector=label_selector).items),
            key=lambda n: n.name,
        )

    def get_node(self, name: str) -> NodeInfo | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._info(self._api().read_node(name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise


class GpuPoolError(pulumi.RunError, ValueError):
    """A GPU pool's nodes do not match its config; reported without a Python traceback."""


class GpuPoolBackend(Protocol):
    def create(self, owner: pulumi.Resource, name: str, pool: GpuPoolConfig) -> list[str]:
        """Create the pool's resources as children of `owner`; return the node names."""
        ...


class SimulatedNode(pulumi.CustomResource):
    """A core/v1 Node with status capacity, for KWOK.

    The typed Node resource of pulumi-kubernetes has no `status` input, but KWOK keeps the status a
    Node is created with, and that status is what makes the node offer nvidia.com/gpu.
    """

    def __init__(
        self, resource_name: str, node: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ):
        props = {"apiVersion": "v1", "kind": "Node", **node}
        version = pulumi.ResourceOptions(version=sdk.kubernetes_provider_version())
        super().__init__(
            "kubernetes:core/v1:Node",
            resource_name,
            props,
            pulumi.ResourceOptions.merge(version, opts),
        )


class LocalBackend:
    """KWOK-simulated nodes in the local cluster: schedulable, never running anything."""

    def create(self, owner: pulumi.Resource, name: str, pool: GpuPoolConfig) -> list[str]:
        names = local_node_names(pool)
        for index, node_name in enumerate(names):
            SimulatedNode(
                f"{name}-node-{index}",
                plan_local_node(pool, node_name),
                opts=pulumi.ResourceOptions(parent=owner),
            )
        return names


class ExistingBackend:
    """Adopt nodes of a real cluster: label and taint them, run the NVIDIA device plugin."""

    def __init__(self, reader: NodeReader):
        self._reader = reader

    def _nodes(self, pool: GpuPoolConfig) -> list[NodeInfo]:
        try:
            return self._read(pool)
        except GpuPoolError:
            raise
        except Exception as error:  # the client's errors vary: config, connection, HTTP
            raise GpuPoolError(
                f"GPU pool {pool.name!r} (backend 'existing'): cannot read its nodes from the "
                f"cluster ({type(error).__name__}: {error}); check mlplatform:kubeconfig / "
                "$KUBECONFIG and that the cluster is reachable, or use backend 'local' for a "
                "simulated pool"
            ) from error

    def _read(self, pool: GpuPoolConfig) -> list[NodeInfo]:
        settings = pool.existing
        assert settings is not None, "config checks guarantee the existing block"
        if settings.node_selector:
            nodes = self._reader.list_nodes(dict(settings.node_selector))
            if pool.node_count is not None and len(nodes) != pool.node_count:
                raise GpuPoolError(
                    f"GPU pool {pool.name!r}: nodeSelector {settings.node_selector} matches "
                    f"{len(nodes)} node(s) ({', '.join(n.name for n in nodes) or 'none'}) but "
                    f"nodeCount is {pool.node_count}; fix the selector or set "
                    f"mlplatform:gpuPools[].nodeCount to {len(nodes)}"
                )
            return nodes
        found = []
        for node_name in settings.node_names:
            info = self._reader.get_node(node_name)
            if info is None:
                raise GpuPoolError(
                    f"GPU pool {pool.name!r}: node {node_name!r} from nodeNames does "
                    "not exist in the cluster; fix mlplatform:gpuPools[].existing.nodeNames"
                )
            found.append(info)
        return found

    def create(self, owner: pulumi.Resource, name: str, pool: GpuPoolConfig) -> list[str]:
        nodes = self._nodes(pool)
        child = pulumi.ResourceOptions(parent=owner)
        for node in nodes:
            k8s.core.v1.NodePatch(
                f"{name}-{node.name}",
                metadata={
                    "name": node.name,
                    "labels": gpu_node_labels(pool),
                    # The kubelet registered the taint list; take it over (merged) on purpose.
                    "annotations": {"pulumi.com/patchForce": "true"},
                },
                spec={"taints": merged_taints(list(node.taints), pool.name)},
                opts=child,
            )
        plugin = pool.existing.device_plugin if pool.existing else None
        if plugin is not None and plugin.enabled:
            k8s.apps.v1.DaemonSet(
                f"{name}-device-plugin",
                metadata={
                    "name": f"nvidia-device-plugin-{pool.name}",
                    "namespace": plugin.namespace,
                    "labels": platform_labels("device-plugin"),
                },
                spec=plan_device_plugin(pool, plugin.image),
                opts=child,
            )
        return [node.name for node in nodes]
