"""ClusterAutoscalers: the autoscaling add-ons the models' autoscalers need, as stack resources.

KEDA (operator, metrics apiserver, admission webhooks) reads Prometheus signals for ScaledObjects;
the Vertical Pod Autoscaler (recommender, updater, admission controller) sizes pods. Their CRDs
and RBAC are upstream's, read from the pinned modules' files (mlplatform.sources.addon_manifests);
workloads, images and flags are planned in mlplatform.plan.addons.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlplatform.certificates import serving_certificate
from mlplatform.config import AutoscalersConfig
from mlplatform.core.names import platform_labels
from mlplatform.plan.addons import (
    KEDA_SERVICE_ACCOUNT,
    KEDA_UPSTREAM_NAMESPACE,
    VPA_ADMISSION,
    VPA_CERTS_SECRET,
    VPA_NAMESPACE,
    VPA_WEBHOOK_CONFIG,
    VPA_WEBHOOK_SERVICE,
    AddonWorkload,
    addon_labels,
    keda_workloads,
    retarget_namespace,
    vpa_webhook,
    vpa_workloads,
)
from mlplatform.sources import AddonManifests


class ClusterAutoscalersArgs(BaseModel):
    """Arguments of ClusterAutoscalers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: AutoscalersConfig = Field(description="mlplatform:autoscalers. Required.")
    keda_manifests: AddonManifests | None = Field(
        default=None,
        description="KEDA's CRDs and RBAC (mlplatform.sources.addon_manifests); required when "
        "config.keda.deploy. Default none.",
    )
    vpa_manifests: AddonManifests | None = Field(
        default=None,
        description="The VPA's CRDs and RBAC (mlplatform.sources.addon_manifests); required when "
        "config.vpa.deploy. Default none.",
    )

    @model_validator(mode="after")
    def _manifests_when_deploying(self) -> ClusterAutoscalersArgs:
        for name, addon, manifests in (
            ("keda", self.config.keda, self.keda_manifests),
            ("vpa", self.config.vpa, self.vpa_manifests),
        ):
            if addon.deploy and manifests is None:
                raise ValueError(
                    f"autoscalers.{name}.deploy is true but {name}_manifests is None: pass "
                    "mlplatform.sources.addon_manifests(...) (`scripts/bootstrap.sh autoscalers` "
                    "copies them from the pinned module)"
                )
        return self


# Upstream objects that point the API server at a server of the add-on.
_REGISTRATIONS = {"APIService", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}


def _documents(files: list[Path]) -> list[dict[str, Any]]:
    docs = []
    for path in files:
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


class ClusterAutoscalers(pulumi.ComponentResource):
    """KEDA and/or the VPA, each only when its `deploy` key is true."""

    ready: list[pulumi.Resource]
    """What a ScaledObject or VerticalPodAutoscaler must wait for (the CRDs, the controllers)."""

    def __init__(
        self,
        name: str,
        args: ClusterAutoscalersArgs,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("mlplatform:k8s:ClusterAutoscalers", name, None, opts)
        self._name = name
        self.ready = []
        if args.config.keda.deploy and args.keda_manifests is not None:
            self.ready += self._keda(args, args.keda_manifests)
        if args.config.vpa.deploy and args.vpa_manifests is not None:
            self.ready += self._vpa(args, args.vpa_manifests)
        self.register_outputs({})

    def _keda(self, args: ClusterAutoscalersArgs, manifests: AddonManifests) -> list[Any]:
        keda = args.config.keda
        child = pulumi.ResourceOptions(parent=self)
        namespace = k8s.core.v1.Namespace(
            f"{self._name}-keda-namespace",
            metadata={"name": keda.namespace, "labels": platform_labels("autoscaling")},
            opts=child,
        )
        after_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        crds = k8s.yaml.v2.ConfigGroup(
            f"{self._name}-keda-crds", files=[str(f) for f in manifests.crds], opts=child
        )
        upstream = [
            retarget_namespace(doc, KEDA_UPSTREAM_NAMESPACE, keda.namespace)
            for doc in _documents(manifests.rbac)
        ]
        rbac = k8s.yaml.v2.ConfigGroup(
            f"{self._name}-keda-rbac",
            objs=[doc for doc in upstream if doc.get("kind") not in _REGISTRATIONS],
            opts=after_ns,
        )
        k8s.core.v1.ServiceAccount(
            f"{self._name}-keda-sa",
            metadata={
                "name": KEDA_SERVICE_ACCOUNT,
                "namespace": keda.namespace,
                "labels": addon_labels(KEDA_SERVICE_ACCOUNT, "keda"),
            },
            opts=after_ns,
        )
        deployments = [
            self._workload(workload, keda.namespace, "keda", [namespace, crds, rbac])
            for workload in keda_workloads(keda)
        ]
        # The APIService and the webhook configuration only once their servers run, and gone
        # before them on destroy: an APIService without a server stalls API discovery, and with
        # it the deletion of every namespace.
        registration = k8s.yaml.v2.ConfigGroup(
            f"{self._name}-keda-registration",
            objs=[doc for doc in upstream if doc.get("kind") in _REGISTRATIONS],
            opts=pulumi.ResourceOptions(parent=self, depends_on=deployments),
        )
        return [crds, *deployments, registration]

    def _vpa(self, args: ClusterAutoscalersArgs, manifests: AddonManifests) -> list[Any]:
        child = pulumi.ResourceOptions(parent=self)
        crds = k8s.yaml.v2.ConfigGroup(
            f"{self._name}-vpa-crds", files=[str(f) for f in manifests.crds], opts=child
        )
        rbac = k8s.yaml.v2.ConfigGroup(
            f"{self._name}-vpa-rbac", objs=_documents(manifests.rbac), opts=child
        )
        # Made anew on every run, kept from the first (ignore_changes): see mlplatform.certificates.
        tls = serving_certificate(VPA_WEBHOOK_SERVICE, VPA_NAMESPACE)
        keep = pulumi.ResourceOptions(parent=self, ignore_changes=["data", "stringData"])
        secret = k8s.core.v1.Secret(
            f"{self._name}-vpa-certs",
            metadata={
                "name": VPA_CERTS_SECRET,
                "namespace": VPA_NAMESPACE,
                "labels": addon_labels(VPA_ADMISSION, "vertical-pod-autoscaler"),
            },
            string_data=pulumi.Output.secret(
                {
                    "caCert.pem": tls.ca_pem,
                    "serverCert.pem": tls.cert_pem,
                    "serverKey.pem": tls.key_pem,
                }
            ),
            opts=keep,
        )
        deployments = [
            self._workload(workload, VPA_NAMESPACE, "vertical-pod-autoscaler", [crds, rbac, secret])
            for workload in vpa_workloads(args.config.vpa)
        ]
        webhook = k8s.admissionregistration.v1.MutatingWebhookConfiguration(
            f"{self._name}-vpa-webhook",
            metadata={
                "name": VPA_WEBHOOK_CONFIG,
                "labels": addon_labels(VPA_ADMISSION, "vertical-pod-autoscaler"),
            },
            webhooks=vpa_webhook(base64.b64encode(tls.ca_pem.encode()).decode()),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=deployments,
                ignore_changes=["webhooks[0].clientConfig.caBundle"],
            ),
        )
        return [crds, *deployments, webhook]

    def _workload(
        self, workload: AddonWorkload, namespace: str, part_of: str, after: list[Any]
    ) -> k8s.apps.v1.Deployment:
        labels = addon_labels(workload.name, part_of)
        metadata = {"name": workload.name, "namespace": namespace, "labels": labels}
        deployment = k8s.apps.v1.Deployment(
            f"{self._name}-{workload.name}",
            metadata=metadata,
            spec=workload.deployment,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        if workload.service_ports:
            k8s.core.v1.Service(
                f"{self._name}-{workload.name}-service",
                metadata={**metadata, "name": workload.service_name or workload.name},
                spec={
                    "selector": {"app.kubernetes.io/name": workload.name},
                    "ports": workload.service_ports,
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
        return deployment
