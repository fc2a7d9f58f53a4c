"""ModelIngress: the external route of one model (path or host, TLS, weighted canary), as Gateway
API HTTPRoute and GRPCRoute or, for clusters without the Gateway API, an Ingress (HTTP only)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field

from mlplatform.config import IngressConfig, ModelConfig
from mlplatform.core.names import instance_name, object_labels
from mlplatform.plan.routes import (
    GATEWAY_API,
    Route,
    plan_grpc_route,
    plan_http_route,
    plan_ingress,
    plan_route,
)


class ModelIngressArgs(BaseModel):
    """Arguments of ModelIngress."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    model: ModelConfig = Field(description="The model's config entry. Required.")
    ingress: IngressConfig = Field(
        default_factory=IngressConfig,
        description="Stack ingress settings. Default: IngressConfig().",
    )
    namespace: Any = Field(
        description="pulumi.Input[str] namespace of the model's Services. Required."
    )
    service_name: Any = Field(
        default=None,
        description="pulumi.Input[str] stable Service. Default "
        "none: the model name (MLModelService's naming).",
    )
    canary_service_name: Any = Field(
        default=None,
        description="pulumi.Input[str] canary Service. "
        "Default none: '<model>-canary' when the model has a canary.",
    )


class ModelIngress(pulumi.ComponentResource):
    """An HTTPRoute and a GRPCRoute with the stable and canary Services as weighted backends
    (api: gateway), or an Ingress to the stable Service and, with controller 'nginx', its
    weighted canary twin."""

    url: pulumi.Output[str]
    """External base URL (http or https; host '<ingress-address>' when routing matches any host)."""
    host: pulumi.Output[str | None]
    path: pulumi.Output[str]
    grpc_metadata: pulumi.Output[dict[str, str] | None]
    """gRPC metadata a call through the gateway carries to reach this model ({} when the host
    alone does); None without a GRPCRoute (api: ingress)."""

    def __init__(
        self, name: str, args: ModelIngressArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlplatform:k8s:ModelIngress", name, None, opts)
        model, settings = args.model, args.ingress
        route = plan_route(model, settings)
        stable_service = args.service_name or instance_name(model.name, "stable")
        canary_service = None
        if model.canary is not None:
            canary_service = args.canary_service_name or instance_name(model.name, "canary")
        child = pulumi.ResourceOptions(parent=self)
        grpc_metadata = None
        if settings.api == "gateway":
            # An empty annotations map would be dropped by the API server and show as a change
            # in every preview.
            metadata = {
                "name": model.name,
                "namespace": args.namespace,
                "labels": object_labels(model.name, model.version),
                **({"annotations": dict(settings.annotations)} if settings.annotations else {}),
            }
            weight = model.canary.weight if model.canary else 0
            for kind, plan in (("HTTPRoute", plan_http_route), ("GRPCRoute", plan_grpc_route)):
                k8s.apiextensions.CustomResource(
                    f"{name}-{kind.lower()}",
                    api_version=GATEWAY_API,
                    kind=kind,
                    metadata=metadata,
                    spec=plan(route, settings, stable_service, canary_service, weight),
                    opts=child,
                )
            grpc_metadata = route.grpc_metadata
        else:
            self._ingresses(name, args, route, stable_service, canary_service)
        self.url = pulumi.Output.from_input(route.url)
        self.host = pulumi.Output.from_input(route.host)
        self.path = pulumi.Output.from_input(route.path)
        self.grpc_metadata = pulumi.Output.from_input(grpc_metadata)
        self.register_outputs(
            {"url": self.url, "host": self.host, "path": self.path, "grpcMetadata": grpc_metadata}
        )

    def _ingresses(
        self, name: str, args: ModelIngressArgs, route: Route, stable: Any, canary: Any
    ) -> None:
        model, settings = args.model, args.ingress
        annotations, spec = plan_ingress(route, settings, stable)
        k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata={
                "name": model.name,
                "namespace": args.namespace,
                "annotations": annotations,
                "labels": object_labels(model.name, model.version),
            },
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if model.canary is not None and settings.controller == "nginx":
            annotations, spec = plan_ingress(
                route, settings, canary, canary_weight=model.canary.weight
            )
            k8s.networking.v1.Ingress(
                f"{name}-canary-ingress",
                metadata={
                    "name": instance_name(model.name, "canary"),
                    "namespace": args.namespace,
                    "annotations": annotations,
                    "labels": object_labels(model.name, model.canary.version, "canary"),
                },
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self),
            )
