"""ModelNamespace: a namespace for model workloads, Pod Security "restricted", default-deny."""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field

from mlplatform.plan.namespaces import model_namespace_labels
from mlplatform.plan.network import plan_default_deny


class ModelNamespaceArgs(BaseModel):
    """Arguments of ModelNamespace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Namespace name. Required; RFC 1123 label.")
    pod_security: Literal["restricted", "baseline"] = Field(
        default="restricted",
        description="Pod Security level enforced, audited and warned. Default 'restricted'; "
        "allowed 'restricted' or 'baseline'.",
    )
    role: str = Field(
        default="models",
        description="Value of the mlplatform.io/role label. Default 'models'; e.g. 'batch'.",
    )


class ModelNamespace(pulumi.ComponentResource):
    """Namespace + default-deny ingress NetworkPolicy; models then open only what they serve."""

    name: pulumi.Output[str]
    """The namespace name, resolved once the Namespace exists (use it to order dependents)."""

    def __init__(
        self, name: str, args: ModelNamespaceArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlplatform:k8s:ModelNamespace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": args.name,
                "labels": model_namespace_labels(args.pod_security, args.role),
            },
            opts=child,
        )
        self.name = namespace.metadata.name
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata={"name": "default-deny-ingress", "namespace": self.name},
            spec=plan_default_deny(),
            opts=child,
        )
        self.register_outputs({"name": self.name})
