"""MLPlatform: the whole stack from one StackConfig (namespaces, GPU pools, images, models, routes,
batch jobs, monitoring). `__main__.py` and other stacks use it; each part is usable on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field

from mlplatform.autoscalers import ClusterAutoscalers, ClusterAutoscalersArgs
from mlplatform.batch_job import BatchInference, BatchInferenceArgs
from mlplatform.config import StackConfig
from mlplatform.gateway import ModelGateway, ModelGatewayArgs
from mlplatform.gpu_node_pool import GpuNodePool, GpuNodePoolArgs
from mlplatform.ingress import ModelIngress, ModelIngressArgs
from mlplatform.loader import StackSecrets
from mlplatform.model_image import ModelImage, ModelImageArgs
from mlplatform.model_service import MLModelService, MLModelServiceArgs
from mlplatform.monitoring import MonitoringStack, MonitoringStackArgs
from mlplatform.namespace import ModelNamespace, ModelNamespaceArgs
from mlplatform.plan.autoscaling import gateway_rate_window, prometheus_address, rate_window
from mlplatform.plan.image import track_image
from mlplatform.plan.namespaces import ingress_namespace_labels
from mlplatform.sources import (
    KEDA_CRDS_ENV,
    KEDA_RBAC_ENV,
    VPA_CRDS_ENV,
    VPA_RBAC_ENV,
    addon_manifests,
    gateway_crd_files,
)


class MLPlatformArgs(BaseModel):
    """Arguments of MLPlatform."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    config: StackConfig = Field(description="Validated stack config (load_stack_config). Required.")
    project_root: Path = Field(
        description="Folder holding models/ (the image build context). Required."
    )
    secrets: StackSecrets = Field(
        default_factory=StackSecrets,
        repr=False,
        description="Secret config values (read_secrets): the registry password for "
        "registry.username, Grafana's admin password. Default: none of them.",
    )
    node_reader: Any = Field(
        default=None,
        description="NodeReader for 'existing' GPU pools. "
        "Default none: read the cluster through the kubeconfig.",
    )


class MLPlatform(pulumi.ComponentResource):
    """Everything one stack config describes, wired in dependency order."""

    services: dict[str, MLModelService]
    """Per model name; for wiring further components in Python."""
    endpoints: pulumi.Output[dict[str, str]]
    """External URL per model (models with a route)."""
    grpc_metadata: pulumi.Output[dict[str, dict[str, str]]]
    """Per model with a GRPCRoute: the gRPC metadata a call through the gateway carries."""
    cluster_urls: pulumi.Output[dict[str, str]]
    """In-cluster URL per model."""
    images: pulumi.Output[dict[str, str]]
    """Image reference per model."""
    namespace: pulumi.Output[str]
    gpu_nodes: pulumi.Output[dict[str, list[str]]]
    """Node names per GPU pool."""
    monitoring: MonitoringStack | None
    """The monitoring stack when `monitoring.enabled`, else None."""
    gateway: ModelGateway | None
    """The platform's own gateway (ingress.api 'gateway' with gateway.deploy), else None."""
    autoscalers: ClusterAutoscalers | None
    """KEDA / VPA add-ons when `autoscalers.keda.deploy` or `autoscalers.vpa.deploy`, else None."""

    def __init__(self, name: str, args: MLPlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplatform:stack:MLPlatform", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)

        models_ns = ModelNamespace(
            f"{name}-models",
            ModelNamespaceArgs(
                name=config.namespaces.models, pod_security=config.namespaces.pod_security
            ),
            opts=child,
        )
        batch_ns = models_ns
        if config.batch_jobs and config.namespaces.batch_namespace != config.namespaces.models:
            batch_ns = ModelNamespace(
                f"{name}-batch",
                ModelNamespaceArgs(
                    name=config.namespaces.batch_namespace,
                    pod_security=config.namespaces.pod_security,
                    role="batch",
                ),
                opts=child,
            )
        gateway = self._gateway(name, config, self._ingress_namespace(name, config))
        self.gateway = gateway
        self.autoscalers = self._autoscalers(name, config)
        scaling_ready = self.autoscalers.ready if self.autoscalers else []

        pools = {
            pool.name: GpuNodePool(
                f"{name}-pool-{pool.name}",
                GpuNodePoolArgs(
                    pool=pool,
                    node_reader=args.node_reader,
                    kubeconfig=config.kubeconfig,
                    kube_context=config.kube_context,
                ),
                opts=child,
            )
            for pool in config.gpu_pools
        }

        self.services = {}
        images: dict[str, pulumi.Output[str]] = {}
        endpoints: dict[str, pulumi.Output[str]] = {}
        grpc_metadata: dict[str, pulumi.Output] = {}
        for model in config.models:
            image = self._image(name, model.image, model.source_dir, model.name, args)
            images[model.name] = image
            canary_image = None
            if (canary := track_image(model, "canary")).own:
                canary_image = self._image(
                    name, canary.prebuilt, canary.source, f"{model.name}-canary", args
                )
            pool = pools.get(model.gpu_pool) if model.gpu_pool else None
            service = MLModelService(
                f"{name}-model-{model.name}",
                MLModelServiceArgs(
                    model=model,
                    namespace=models_ns.name,
                    image=image,
                    canary_image=canary_image,
                    autoscaling=config.effective_autoscaling(model),
                    prometheus_address=prometheus_address(config),
                    rate_window=rate_window(config.monitoring.scrape_interval),
                    gateway_rate_window=gateway_rate_window(config, model),
                    placement=pool.placement if pool else None,
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=([pool] if pool else []) + scaling_ready
                ),
            )
            self.services[model.name] = service
            if config.ingress.enabled and model.ingress.enabled:
                route = ModelIngress(
                    f"{name}-route-{model.name}",
                    ModelIngressArgs(
                        model=model,
                        ingress=config.ingress,
                        namespace=models_ns.name,
                        service_name=service.service_name,
                        canary_service_name=service.canary_service_name if model.canary else None,
                    ),
                    # The routes' kinds exist once the gateway's CRDs do.
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=[gateway] if gateway else []
                    ),
                )
                endpoints[model.name] = route.url
                if config.ingress.api == "gateway":
                    grpc_metadata[model.name] = route.grpc_metadata

        for job in config.batch_jobs:
            model = config.model_named(job.model)
            pool = pools.get(model.gpu_pool) if model.gpu_pool else None
            BatchInference(
                f"{name}-batch-{job.name}",
                BatchInferenceArgs(
                    job=job,
                    model=model,
                    namespace=batch_ns.name,
                    image=images[model.name],
                    placement=pool.placement if pool else None,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[pool] if pool else []),
            )

        self.monitoring = None
        if config.monitoring.enabled:
            # Named "monitoring" (not f"{name}-...") because its objects' names derive from it;
            # the alias keeps the URNs of stacks deployed when it was a root resource.
            self.monitoring = MonitoringStack(
                "monitoring",
                MonitoringStackArgs.from_stack_config(
                    config, grafana_admin_password=args.secrets.grafana_admin_password
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]
                ),
            )

        self.endpoints = (
            pulumi.Output.all(**endpoints) if endpoints else pulumi.Output.from_input({})
        )
        self.grpc_metadata = (
            pulumi.Output.all(**grpc_metadata) if grpc_metadata else pulumi.Output.from_input({})
        )
        self.cluster_urls = (
            pulumi.Output.all(**{k: s.cluster_url for k, s in self.services.items()})
            if self.services
            else pulumi.Output.from_input({})
        )
        self.images = pulumi.Output.all(**images) if images else pulumi.Output.from_input({})
        self.namespace = models_ns.name
        self.gpu_nodes = (
            pulumi.Output.all(**{k: p.node_names for k, p in pools.items()})
            if pools
            else pulumi.Output.from_input({})
        )
        self.register_outputs(
            {
                "endpoints": self.endpoints,
                "grpcMetadata": self.grpc_metadata,
                "clusterUrls": self.cluster_urls,
                "images": self.images,
                "namespace": self.namespace,
                "gpuNodes": self.gpu_nodes,
            }
        )

    def _image(
        self,
        name: str,
        prebuilt: str | None,
        source: str,
        image_name: str,
        args: MLPlatformArgs,
    ) -> pulumi.Output[str]:
        if prebuilt:
            return pulumi.Output.from_input(prebuilt)
        config = args.config
        image = ModelImage(
            f"{name}-image-{image_name}",
            ModelImageArgs(
                models_root=args.project_root / "models",
                source=source,
                image_name=image_name,
                registry=config.registry,
                registry_password=args.secrets.registry_password,
                build=config.images,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return image.ref

    def _ingress_namespace(self, name: str, config: StackConfig) -> list[pulumi.Resource]:
        ingress = config.ingress
        if not ingress.enabled or ingress.controller_namespace_mode == "none":
            return []
        metadata = {"name": ingress.controller_namespace, "labels": ingress_namespace_labels()}
        if ingress.controller_namespace_mode == "create":
            return [
                k8s.core.v1.Namespace(
                    f"{name}-ingress-namespace",
                    metadata=metadata,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            ]
        # Adopt the controller's namespace: add our label, leave everything else alone.
        return [
            k8s.core.v1.NamespacePatch(
                f"{name}-ingress-namespace",
                metadata=metadata,
                opts=pulumi.ResourceOptions(parent=self),
            )
        ]

    def _autoscalers(self, name: str, config: StackConfig) -> ClusterAutoscalers | None:
        addons = config.autoscalers
        if not (addons.keda.deploy or addons.vpa.deploy):
            return None
        return ClusterAutoscalers(
            f"{name}-autoscalers",
            ClusterAutoscalersArgs(
                config=addons,
                keda_manifests=addon_manifests(addons.keda.crds_path, KEDA_CRDS_ENV, KEDA_RBAC_ENV)
                if addons.keda.deploy
                else None,
                vpa_manifests=addon_manifests(addons.vpa.crds_path, VPA_CRDS_ENV, VPA_RBAC_ENV)
                if addons.vpa.deploy
                else None,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _gateway(
        self, name: str, config: StackConfig, namespace: list[pulumi.Resource]
    ) -> ModelGateway | None:
        ingress = config.ingress
        if not ingress.deploys_gateway:
            return None
        files = gateway_crd_files(ingress.gateway) if ingress.gateway.install_crds else []
        return ModelGateway(
            f"{name}-gateway",
            ModelGatewayArgs(ingress=ingress, crd_files=files or []),
            opts=pulumi.ResourceOptions(parent=self, depends_on=namespace),
        )
