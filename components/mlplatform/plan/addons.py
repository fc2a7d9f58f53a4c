"""The autoscaling add-ons as plain Kubernetes objects: KEDA's three workloads and the VPA's.

Upstream's own CRDs and RBAC come from the pinned modules (scripts/bootstrap.sh autoscalers); what
is planned here is what we choose ourselves: images, flags, probes, security, Services. Each
workload runs as a non-root user with a read-only root filesystem and no capabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlplatform.config import KedaConfig

# KEDA's names, fixed by its operator's defaults: the certificate rotation writes the Secret and
# patches the APIService and the webhook configuration under exactly these names.
KEDA_UPSTREAM_NAMESPACE = "keda"
KEDA_SERVICE_ACCOUNT = "keda-operator"
KEDA_CERTS_SECRET = "kedaorg-certs"
KEDA_OPERATOR = "keda-operator"
KEDA_METRICS_SERVER = "keda-metrics-apiserver"
KEDA_WEBHOOKS = "keda-admission-webhooks"
KEDA_UID = 65532
CERTS_DIR = "/certs"


@dataclass(frozen=True)
class AddonWorkload:
    """One Deployment and the Service in front of it."""

    name: str
    deployment: dict[str, Any]
    """spec of the Deployment."""
    service_ports: list[dict[str, Any]] = field(default_factory=list)
    """ports of its Service; no Service when empty."""


def addon_labels(name: str, part_of: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": part_of,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def _probe(path: str, port: int, scheme: str = "HTTP") -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port, "scheme": scheme},
        "initialDelaySeconds": 5,
        "periodSeconds": 10,
        "failureThreshold": 6,
    }


def _deployment(
    name: str,
    part_of: str,
    image: str,
    args: list[str],
    *,
    service_account: str,
    uid: int,
    ports: list[dict[str, Any]],
    ready: dict[str, Any],
    live: dict[str, Any],
    mounts: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    labels = addon_labels(name, part_of)
    return {
        "replicas": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "serviceAccountName": service_account,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": uid,
                    "runAsGroup": uid,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": name,
                        "image": image,
                        "args": args,
                        "env": env or [],
                        "ports": ports,
                        "readinessProbe": ready,
                        "livenessProbe": live,
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"cpu": "1", "memory": "512Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": mounts,
                    }
                ],
                "volumes": volumes,
            },
        },
    }


def _namespace_env() -> list[dict[str, Any]]:
    return [
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        # Empty: watch ScaledObjects in every namespace.
        {"name": "WATCH_NAMESPACE", "value": ""},
    ]


def _certs(optional: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    mount = {"name": "certificates", "mountPath": CERTS_DIR, "readOnly": True}
    volume = {
        "name": "certificates",
        "secret": {"secretName": KEDA_CERTS_SECRET, "defaultMode": 0o444, "optional": optional},
    }
    return mount, volume


def keda_workloads(keda: KedaConfig) -> list[AddonWorkload]:
    """KEDA's operator (scalers, the HPAs it owns, certificate rotation), metrics apiserver
    (external.metrics.k8s.io for the HPA controller) and admission webhooks."""
    mount, volume = _certs(optional=True)
    operator = _deployment(
        KEDA_OPERATOR,
        "keda",
        keda.operator_image,
        [
            "--leader-elect",
            "--zap-log-level=info",
            "--zap-encoder=console",
            # The operator makes the CA and serving certificates itself, keeps them in the
            # kedaorg-certs Secret and writes the CA into the APIService and webhook config.
            "--enable-cert-rotation=true",
        ],
        service_account=KEDA_SERVICE_ACCOUNT,
        uid=KEDA_UID,
        ports=[
            {"name": "metricsservice", "containerPort": 9666},
            {"name": "metrics", "containerPort": 8080},
            {"name": "probes", "containerPort": 8081},
        ],
        ready=_probe("/readyz", 8081),
        live=_probe("/healthz", 8081),
        mounts=[mount],
        volumes=[volume],
        env=_namespace_env(),
    )
    mount, volume = _certs(optional=False)
    tmp = {"name": "tmp", "emptyDir": {}}
    metrics_server = _deployment(
        KEDA_METRICS_SERVER,
        "keda",
        keda.metrics_server_image,
        [
            "--secure-port=6443",
            "--zap-log-level=error",
            f"--client-ca-file={CERTS_DIR}/ca.crt",
            f"--tls-cert-file={CERTS_DIR}/tls.crt",
            f"--tls-private-key-file={CERTS_DIR}/tls.key",
            f"--cert-dir={CERTS_DIR}",
        ],
        service_account=KEDA_SERVICE_ACCOUNT,
        uid=KEDA_UID,
        ports=[
            {"name": "https", "containerPort": 6443},
            {"name": "metrics", "containerPort": 8080},
        ],
        ready=_probe("/readyz", 6443, "HTTPS"),
        live=_probe("/healthz", 6443, "HTTPS"),
        mounts=[mount, {"name": "tmp", "mountPath": "/tmp"}],
        volumes=[volume, tmp],
        env=_namespace_env(),
    )
    webhooks = _deployment(
        KEDA_WEBHOOKS,
        "keda",
        keda.webhooks_image,
        ["--zap-log-level=info", "--zap-encoder=console", f"--cert-dir={CERTS_DIR}"],
        service_account=KEDA_SERVICE_ACCOUNT,
        uid=KEDA_UID,
        ports=[
            {"name": "https", "containerPort": 9443},
            {"name": "metrics", "containerPort": 8080},
            {"name": "probes", "containerPort": 8081},
        ],
        ready=_probe("/readyz", 8081),
        live=_probe("/healthz", 8081),
        mounts=[mount],
        volumes=[volume],
        env=_namespace_env(),
    )
    return [
        AddonWorkload(
            KEDA_OPERATOR,
            operator,
            [
                {"name": "metricsservice", "port": 9666, "targetPort": 9666},
                {"name": "metrics", "port": 8080, "targetPort": 8080},
            ],
        ),
        AddonWorkload(
            KEDA_METRICS_SERVER,
            metrics_server,
            [
                {"name": "https", "port": 443, "targetPort": 6443},
                {"name": "metrics", "port": 8080, "targetPort": 8080},
            ],
        ),
        AddonWorkload(
            KEDA_WEBHOOKS,
            webhooks,
            [
                {"name": "https", "port": 443, "targetPort": 9443},
                {"name": "metrics", "port": 8080, "targetPort": 8080},
            ],
        ),
    ]


def retarget_namespace(obj: dict[str, Any], upstream: str, namespace: str) -> dict[str, Any]:
    """An upstream manifest moved from namespace `upstream` to `namespace`: its own namespace,
    its RBAC subjects, and the Services its APIService or webhooks call. Other namespaces (a
    RoleBinding that must live in kube-system, say) are left as they are."""
    if upstream == namespace:
        return obj

    def move(holder: dict[str, Any] | None) -> None:
        if holder is not None and holder.get("namespace") == upstream:
            holder["namespace"] = namespace

    move(obj.get("metadata"))
    for subject in obj.get("subjects") or []:
        move(subject)
    move((obj.get("spec") or {}).get("service"))
    for hook in obj.get("webhooks") or []:
        move((hook.get("clientConfig") or {}).get("service"))
    return obj
