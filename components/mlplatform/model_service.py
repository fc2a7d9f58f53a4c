"""MLModelService: one model served on Kubernetes, scaled, protected and optionally canaried."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field

from mlplatform.config import AutoscalingConfig, ModelConfig
from mlplatform.core.names import (
    GRPC_APP_PROTOCOL,
    GRPC_PORT,
    GRPC_PORT_NAME,
    PORT,
    PORT_NAME,
    Track,
    instance_name,
    object_labels,
    selector_labels,
)
from mlplatform.plan.autoscaling import (
    KEDA_API_VERSION,
    KEDA_TRANSFER_HPA,
    autoscaler_kind,
    pdb_min_available,
    plan_hpa,
    plan_pdb,
    plan_scaled_object,
    plan_vpa,
    signal_queries,
)
from mlplatform.plan.gpu import GpuPlacement
from mlplatform.plan.network import plan_model_allow
from mlplatform.plan.pod import plan_deployment


class MLModelServiceArgs(BaseModel):
    """Arguments of MLModelService."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    model: ModelConfig = Field(description="The model's config entry. Required.")
    namespace: Any = Field(
        description="pulumi.Input[str] namespace to deploy into. Required; "
        "pass ModelNamespace.name so the namespace exists first."
    )
    image: Any = Field(
        description="pulumi.Input[str] image of the stable track. Required; e.g. ModelImage.ref."
    )
    canary_image: Any = Field(
        default=None,
        description="pulumi.Input[str] image of the canary "
        "track. Default none: the stable image (only the version differs).",
    )
    autoscaling: AutoscalingConfig = Field(
        default_factory=AutoscalingConfig,
        description="Effective autoscaling (StackConfig.effective_autoscaling(model)). Only "
        "cpu/memory signals: an HPA; any Prometheus signal: a KEDA ScaledObject (needs KEDA in "
        "the cluster). Default: AutoscalingConfig() defaults (CPU 70 %).",
    )
    prometheus_address: str | None = Field(
        default=None,
        description="Prometheus the ScaledObject's triggers query (autoscaling.prometheus_address"
        "(config)). Required with Prometheus signals.",
    )
    rate_window: str = Field(
        default="60s",
        description="Range of the rates Prometheus signals read (rate_window(scrape interval)).",
    )
    gateway_rate_window: str | None = Field(
        default=None,
        description="Range of the rates read from the platform gateway's series of this model "
        "(gateway_rate_window(config, model)). Default none: in-flight is read at the pods only.",
    )
    placement: GpuPlacement | None = Field(
        default=None,
        description="GPU pool placement (GpuNodePool.placement); required when the "
        "model requests GPUs. Default none: CPU nodes.",
    )

    def model_post_init(self, _context: Any) -> None:
        if self.model.resources.gpus and self.placement is None:
            raise ValueError(
                f"model {self.model.name!r} requests GPUs; pass the GpuNodePool's placement"
            )
        prometheus = self.autoscaling.signals.prometheus_signals()
        if prometheus and not self.prometheus_address:
            raise ValueError(
                f"model {self.model.name!r} scales on {', '.join(prometheus)}, read from "
                "Prometheus; pass prometheus_address (mlplatform.plan.autoscaling."
                "prometheus_address(config))"
            )


class MLModelService(pulumi.ComponentResource):
    """ServiceAccount, Deployment, Service, HPA or KEDA ScaledObject, optional VPA, PDB,
    NetworkPolicy, canary track."""

    deployment_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    canary_service_name: pulumi.Output[str | None]
    namespace: pulumi.Output[str]
    cluster_url: pulumi.Output[str]
    """In-cluster base URL of the stable Service, e.g. http://iris.ml-models.svc:8080."""

    def __init__(
        self, name: str, args: MLModelServiceArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlplatform:k8s:MLModelService", name, None, opts)
        model, namespace = args.model, args.namespace
        child = pulumi.ResourceOptions(parent=self)
        labels = object_labels(model.name, model.version)

        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={"name": model.name, "namespace": namespace, "labels": labels},
            # Model servers never call the Kubernetes API.
            automount_service_account_token=False,
            opts=child,
        )
        stable = self._track(
            name, args, "stable", model.version, args.image, args.autoscaling.min_replicas, account
        )
        stable_service = self._service(name, args, "stable", model.version)

        self._autoscaler(name, args, stable, labels)
        min_available = pdb_min_available(model.pdb, args.autoscaling)
        if min_available is not None:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata={"name": model.name, "namespace": namespace, "labels": labels},
                spec=plan_pdb(selector_labels(model.name, "stable"), min_available),
                opts=child,
            )
        if model.vpa is not None:
            k8s.apiextensions.CustomResource(
                f"{name}-vpa",
                api_version="autoscaling.k8s.io/v1",
                kind="VerticalPodAutoscaler",
                metadata={"name": model.name, "namespace": namespace, "labels": labels},
                spec=plan_vpa(model.name, model.vpa),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[stable]),
            )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata={"name": f"{model.name}-allow", "namespace": namespace, "labels": labels},
            spec=plan_model_allow(model.name),
            opts=child,
        )

        canary_service: k8s.core.v1.Service | None = None
        if model.canary is not None:
            self._track(
                name,
                args,
                "canary",
                model.canary.version,
                args.canary_image or args.image,
                model.canary.replicas,
                account,
            )
            canary_service = self._service(name, args, "canary", model.canary.version)
            if model.canary.replicas >= 2:
                # A canary with traffic is served like the stable track through a drain: one
                # replica at a time. (A single replica cannot be protected without blocking
                # drains; its share fails while it moves, so give a weighted canary 2.)
                k8s.policy.v1.PodDisruptionBudget(
                    f"{name}-canary-pdb",
                    metadata={
                        "name": instance_name(model.name, "canary"),
                        "namespace": namespace,
                        "labels": object_labels(model.name, model.canary.version, "canary"),
                    },
                    spec=plan_pdb(selector_labels(model.name, "canary"), model.canary.replicas - 1),
                    opts=child,
                )

        self.deployment_name = stable.metadata.name
        self.service_name = stable_service.metadata.name
        self.canary_service_name = (
            canary_service.metadata.name if canary_service else pulumi.Output.from_input(None)
        )
        self.namespace = stable_service.metadata.namespace
        self.cluster_url = pulumi.Output.all(self.service_name, self.namespace).apply(
            lambda parts: f"http://{parts[0]}.{parts[1]}.svc:{PORT}"
        )
        self.register_outputs(
            {
                "deploymentName": self.deployment_name,
                "serviceName": self.service_name,
                "canaryServiceName": self.canary_service_name,
                "namespace": self.namespace,
                "clusterUrl": self.cluster_url,
            }
        )

    def _autoscaler(
        self,
        name: str,
        args: MLModelServiceArgs,
        stable: k8s.apps.v1.Deployment,
        labels: dict[str, str],
    ) -> None:
        """An HPA on resource signals, or a KEDA ScaledObject when any signal is Prometheus'.

        Both name their HPA after the model: switching kinds hands the live HPA (and the current
        scale) from one owner to the other instead of two autoscalers fighting over replicas.
        """
        model, scaling = args.model, args.autoscaling
        metadata = {"name": model.name, "namespace": args.namespace, "labels": labels}
        opts = pulumi.ResourceOptions(parent=self, depends_on=[stable])
        if autoscaler_kind(scaling) == "hpa":
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa", metadata=metadata, spec=plan_hpa(model.name, scaling), opts=opts
            )
            return
        address = args.prometheus_address or ""
        spec = pulumi.Output.from_input(args.namespace).apply(
            lambda namespace: plan_scaled_object(
                model.name,
                model.name,
                scaling,
                signal_queries(
                    namespace, model.name, scaling, args.rate_window, args.gateway_rate_window
                ),
                address,
            )
        )
        k8s.apiextensions.CustomResource(
            f"{name}-scaledobject",
            api_version=KEDA_API_VERSION,
            kind="ScaledObject",
            metadata={**metadata, "annotations": {KEDA_TRANSFER_HPA: "true"}},
            spec=spec,
            opts=opts,
        )

    def _track(
        self,
        name: str,
        args: MLModelServiceArgs,
        track: Track,
        version: str,
        image: Any,
        replicas: int,
        account: k8s.core.v1.ServiceAccount,
    ) -> k8s.apps.v1.Deployment:
        model = args.model
        role = "deployment" if track == "stable" else "canary-deployment"
        # The HPA owns the stable replica count after creation; re-applying minReplicas on every
        # `up` would undo its scaling. The canary has a fixed size and stays managed here.
        ignore = ["spec.replicas"] if track == "stable" else []
        return k8s.apps.v1.Deployment(
            f"{name}-{role}",
            metadata={
                "name": instance_name(model.name, track),
                "namespace": args.namespace,
                "labels": object_labels(model.name, version, track),
            },
            spec=plan_deployment(
                model,
                track=track,
                version=version,
                replicas=replicas,
                image=image,
                service_account=account.metadata.name,
                placement=args.placement,
            ),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore),
        )

    def _service(
        self, name: str, args: MLModelServiceArgs, track: Track, version: str
    ) -> k8s.core.v1.Service:
        model = args.model
        role = "service" if track == "stable" else "canary-service"
        return k8s.core.v1.Service(
            f"{name}-{role}",
            metadata={
                "name": instance_name(model.name, track),
                "namespace": args.namespace,
                "labels": object_labels(model.name, version, track),
            },
            spec={
                "type": model.service_type,
                "selector": selector_labels(model.name, track),
                "ports": [
                    {"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"},
                    {
                        "name": GRPC_PORT_NAME,
                        "port": GRPC_PORT,
                        "targetPort": GRPC_PORT_NAME,
                        "protocol": "TCP",
                        "appProtocol": GRPC_APP_PROTOCOL,
                    },
                ],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
