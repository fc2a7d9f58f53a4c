"""The autoscaling add-ons as plain Kubernetes objects: KEDA's three workloads and the VPA's.

Upstream's own CRDs and RBAC come from the pinned modules (scripts/bootstrap.sh autoscalers); what
is planned here is what we choose ourselves: images, flags, probes, security, Services. Each
workload runs as a non-root user with a read-only root filesystem and no capabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlplatform.config import KedaConfig, VpaAddonConfig

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

# The VPA runs where upstream puts it: its RBAC (read from the module) binds service accounts in
# kube-system, and the recommender's lease defaults there.
VPA_NAMESPACE = "kube-system"
VPA_RECOMMENDER = "vpa-recommender"
VPA_UPDATER = "vpa-updater"
VPA_ADMISSION = "vpa-admission-controller"
VPA_WEBHOOK_SERVICE = "vpa-webhook"
VPA_WEBHOOK_CONFIG = "vpa-webhook-config"
VPA_CERTS_SECRET = "vpa-tls-certs"
VPA_CERTS_DIR = "/etc/tls-certs"
VPA_UID = 65534
VPA_WEBHOOK_PORT = 8000


@dataclass(frozen=True)
class AddonWorkload:
    """One Deployment and the Service in front of it."""

    name: str
    deployment: dict[str, Any]
    """spec of the Deployment."""
    service_ports: list[dict[str, Any]] = field(default_factory=list)
    """ports of its Service; no Service when empty."""
    service_name: str | None = None
    """name of the Service; None means the workload's name."""


def addon_labels(name: str, part_of: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": part_of,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def _tcp_probe(port: int) -> dict[str, Any]:
    return {"tcpSocket": {"port": port}, "initialDelaySeconds": 5, "periodSeconds": 10}


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


def _keda_deployment(name: str, image: str, args: list[str], **spec: Any) -> dict[str, Any]:
    """A KEDA workload: the operator's service account and user, its namespace environment."""
    return _deployment(
        name,
        "keda",
        image,
        args,
        service_account=KEDA_SERVICE_ACCOUNT,
        uid=KEDA_UID,
        env=_namespace_env(),
        **spec,
    )


def keda_workloads(keda: KedaConfig) -> list[AddonWorkload]:
    """KEDA's operator (scalers, the HPAs it owns, certificate rotation), metrics apiserver
    (external.metrics.k8s.io for the HPA controller) and admission webhooks."""
    mount, volume = _certs(optional=True)
    operator = _keda_deployment(
        KEDA_OPERATOR,
        keda.operator_image,
        [
            "--leader-elect",
            "--zap-log-level=info",
            "--zap-encoder=console",
            # The operator makes the CA and serving certificates itself, keeps them in the
            # kedaorg-certs Secret and writes the CA into the APIService and webhook config.
            "--enable-cert-rotation=true",
        ],
        ports=[
            {"name": "metricsservice", "containerPort": 9666},
            {"name": "metrics", "containerPort": 8080},
            {"name": "probes", "containerPort": 8081},
        ],
        ready=_probe("/readyz", 8081),
        live=_probe("/healthz", 8081),
        mounts=[mount],
        volumes=[volume],
    )
    mount, volume = _certs(optional=False)
    tmp = {"name": "tmp", "emptyDir": {}}
    metrics_server = _keda_deployment(
        KEDA_METRICS_SERVER,
        keda.metrics_server_image,
        [
            "--secure-port=6443",
            "--zap-log-level=error",
            # No --client-ca-file: callers are then checked against the cluster's own client CA
            # and front-proxy settings (kube-system/extension-apiserver-authentication), which
            # is what the API server's proxied requests carry. KEDA's CA stays for its serving
            # certificate and its gRPC link to the operator.
            f"--tls-cert-file={CERTS_DIR}/tls.crt",
            f"--tls-private-key-file={CERTS_DIR}/tls.key",
            f"--cert-dir={CERTS_DIR}",
        ],
        ports=[
            {"name": "https", "containerPort": 6443},
            {"name": "metrics", "containerPort": 8080},
        ],
        ready=_probe("/readyz", 6443, "HTTPS"),
        live=_probe("/healthz", 6443, "HTTPS"),
        mounts=[mount, {"name": "tmp", "mountPath": "/tmp"}],
        volumes=[volume, tmp],
    )
    webhooks = _keda_deployment(
        KEDA_WEBHOOKS,
        keda.webhooks_image,
        ["--zap-log-level=info", "--zap-encoder=console", f"--cert-dir={CERTS_DIR}"],
        ports=[
            {"name": "https", "containerPort": 9443},
            {"name": "metrics", "containerPort": 8080},
            {"name": "probes", "containerPort": 8081},
        ],
        ready=_probe("/readyz", 8081),
        live=_probe("/healthz", 8081),
        mounts=[mount],
        volumes=[volume],
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


def vpa_workloads(vpa: VpaAddonConfig) -> list[AddonWorkload]:
    """The VPA's recommender (metrics-server samples -> recommendations), updater (evicts pods
    far from theirs, in mode Auto) and admission controller (sets requests on new pods). The
    webhook configuration is a stack resource (vpa_webhook), so the controller does not register
    one of its own that `pulumi destroy` would leave behind."""
    no_volumes: list[dict[str, Any]] = []
    recommender = _deployment(
        VPA_RECOMMENDER,
        "vertical-pod-autoscaler",
        vpa.recommender_image,
        ["--v=2", "--recommender-interval=1m"],
        service_account=VPA_RECOMMENDER,
        uid=VPA_UID,
        ports=[{"name": "metrics", "containerPort": 8942}],
        ready=_tcp_probe(8942),
        live=_tcp_probe(8942),
        mounts=no_volumes,
        volumes=no_volumes,
    )
    updater = _deployment(
        VPA_UPDATER,
        "vertical-pod-autoscaler",
        vpa.updater_image,
        ["--v=2", "--updater-interval=1m"],
        service_account=VPA_UPDATER,
        uid=VPA_UID,
        ports=[{"name": "metrics", "containerPort": 8943}],
        ready=_tcp_probe(8943),
        live=_tcp_probe(8943),
        mounts=no_volumes,
        volumes=no_volumes,
        env=[{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
    )
    admission = _deployment(
        VPA_ADMISSION,
        "vertical-pod-autoscaler",
        vpa.admission_controller_image,
        [
            "--v=2",
            f"--client-ca-file={VPA_CERTS_DIR}/caCert.pem",
            f"--tls-cert-file={VPA_CERTS_DIR}/serverCert.pem",
            f"--tls-private-key={VPA_CERTS_DIR}/serverKey.pem",
            f"--port={VPA_WEBHOOK_PORT}",
            "--register-webhook=false",
        ],
        service_account=VPA_ADMISSION,
        uid=VPA_UID,
        ports=[
            {"name": "https", "containerPort": VPA_WEBHOOK_PORT},
            {"name": "metrics", "containerPort": 8944},
        ],
        ready=_tcp_probe(VPA_WEBHOOK_PORT),
        live=_tcp_probe(VPA_WEBHOOK_PORT),
        mounts=[{"name": "certificates", "mountPath": VPA_CERTS_DIR, "readOnly": True}],
        volumes=[{"name": "certificates", "secret": {"secretName": VPA_CERTS_SECRET}}],
        env=[{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
    )
    return [
        AddonWorkload(VPA_RECOMMENDER, recommender),
        AddonWorkload(VPA_UPDATER, updater),
        AddonWorkload(
            VPA_ADMISSION,
            admission,
            [{"name": "https", "port": 443, "targetPort": VPA_WEBHOOK_PORT}],
            service_name=VPA_WEBHOOK_SERVICE,
        ),
    ]


def vpa_webhook(ca_bundle_b64: str) -> list[dict[str, Any]]:
    """The admission controller's webhook (what its self-registration would write): set requests
    on pods at creation, validate VerticalPodAutoscalers. Failure is ignored, so pods are still
    created (unsized) while the controller is down; kube-system is left alone."""
    return [
        {
            "name": "vpa.k8s.io",
            "admissionReviewVersions": ["v1"],
            "rules": [
                {
                    "operations": ["CREATE"],
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "resources": ["pods"],
                },
                {
                    "operations": ["CREATE", "UPDATE"],
                    "apiGroups": ["autoscaling.k8s.io"],
                    "apiVersions": ["*"],
                    "resources": ["verticalpodautoscalers"],
                },
            ],
            "failurePolicy": "Ignore",
            "sideEffects": "None",
            "timeoutSeconds": 10,
            "clientConfig": {
                "service": {"name": VPA_WEBHOOK_SERVICE, "namespace": VPA_NAMESPACE},
                "caBundle": ca_bundle_b64,
            },
            "namespaceSelector": {
                "matchExpressions": [
                    {
                        "key": "kubernetes.io/metadata.name",
                        "operator": "NotIn",
                        "values": [VPA_NAMESPACE],
                    }
                ]
            },
        }
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
