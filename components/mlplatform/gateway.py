"""ModelGateway: the platform's own Gateway API entry point (ingress.gateway.deploy): the Gateway
API CRDs, a Traefik controller, its GatewayClass and the Gateway every model's HTTPRoute uses."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlplatform.config import IngressConfig
from mlplatform.plan import gateway as plan
from mlplatform.plan.routes import GATEWAY_API


class ModelGatewayArgs(BaseModel):
    """Arguments of ModelGateway."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ingress: IngressConfig = Field(
        default_factory=IngressConfig,
        description="Route settings; the gateway runs in `controller_namespace` (which must "
        "exist) and is shaped by `gateway` and `tls`. Default: IngressConfig().",
    )
    crd_files: list[Path] = Field(
        default_factory=list,
        description="Gateway API CRD manifests to apply first (mlplatform.sources."
        "gateway_crd_files); empty when `gateway.install_crds` is false. Default empty.",
    )

    @model_validator(mode="after")
    def _crds_when_installing(self) -> ModelGatewayArgs:
        if self.ingress.gateway.install_crds and not self.crd_files:
            raise ValueError(
                "ingress.gateway.installCrds is true but crd_files is empty: pass the Gateway "
                "API CRD manifests (mlplatform.sources.gateway_crd_files; `scripts/bootstrap.sh "
                "gateway` makes them), or set installCrds false where the cluster has them"
            )
        return self


class ModelGateway(pulumi.ComponentResource):
    """Traefik serving the Gateway API, one GatewayClass and one Gateway."""

    gateway: pulumi.Output[str]
    """`<namespace>/<name>` of the Gateway."""
    service: pulumi.Output[str]
    """Name of the controller's Service (NodePort)."""
    node_port: pulumi.Output[int | None]
    """NodePort of the HTTP listener."""

    def __init__(
        self, name: str, args: ModelGatewayArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlplatform:k8s:ModelGateway", name, None, opts)
        ingress = args.ingress
        namespace = ingress.controller_namespace
        child = pulumi.ResourceOptions(parent=self)
        labels = plan.labels(name)

        crds: list[pulumi.Resource] = []
        if ingress.gateway.install_crds:
            crds.append(
                k8s.yaml.v2.ConfigGroup(
                    f"{name}-crds", files=[str(f) for f in args.crd_files], opts=child
                )
            )
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=crds)

        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata={"name": name, "namespace": namespace, "labels": labels},
            opts=child,
        )  # fmt: skip
        # Cluster-scoped: the namespace goes into the name to keep two stacks apart.
        role_name = f"{namespace}-{name}"
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-role",
            metadata={"name": role_name, "labels": labels},
            rules=plan.controller_rules(),
            opts=child,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-binding",
            metadata={"name": role_name, "labels": labels},
            role_ref={
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role.metadata.apply(lambda m: m.name),
            },
            subjects=[{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": name, "namespace": namespace, "labels": labels},
            spec=plan.controller_service(ingress, name),
            opts=child,
        )
        dynamic_map = None
        if (dynamic := plan.dynamic_config(ingress)) is not None:
            dynamic_map = k8s.core.v1.ConfigMap(
                f"{name}-dynamic",
                metadata={"name": f"{name}-dynamic", "namespace": namespace, "labels": labels},
                data={plan.DYNAMIC_FILE: yaml.safe_dump(dynamic, sort_keys=False)},
                opts=child,
            ).metadata.apply(lambda m: m.name)
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={"name": name, "namespace": namespace, "labels": labels},
            spec=plan.controller_deployment(
                ingress, name, account.metadata.apply(lambda m: m.name), name, dynamic_map
            ),
            opts=after_crds,
        )
        if ingress.gateway.replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata={"name": name, "namespace": namespace, "labels": labels},
                spec={"minAvailable": 1, "selector": {"matchLabels": labels}},
                opts=child,
            )
        k8s.apiextensions.CustomResource(
            f"{name}-class",
            api_version=GATEWAY_API,
            kind="GatewayClass",
            metadata={"name": ingress.gateway.class_name, "labels": labels},
            spec=plan.gateway_class(),
            opts=after_crds,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version=GATEWAY_API,
            kind="Gateway",
            metadata={
                "name": ingress.gateway.name,
                "namespace": namespace,
                "labels": labels,
                **({"annotations": notes} if (notes := plan.gateway_annotations(ingress)) else {}),
            },
            spec=plan.gateway_spec(ingress),
            opts=after_crds,
        )
        self.gateway = pulumi.Output.from_input(f"{namespace}/{ingress.gateway.name}")
        self.service = service.metadata.apply(lambda m: m.name)
        self.node_port = service.spec.apply(
            lambda spec: next((p.node_port for p in spec.ports if p.name == "web"), None)
        )
        self.register_outputs(
            {"gateway": self.gateway, "service": self.service, "nodePort": self.node_port}
        )
