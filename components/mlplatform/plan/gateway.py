"""The platform's own gateway (ingress.gateway.deploy): a Traefik controller serving the Gateway
API, its GatewayClass, one Gateway, and how model routes attach to it. Plain dicts, no Pulumi."""

from __future__ import annotations

from typing import Any

from mlplatform.config import IngressConfig
from mlplatform.core.digest import checksum
from mlplatform.core.names import GRPC_PORT, LABEL_ROLE, PART_OF, PORT
from mlplatform.plan.routes import GATEWAY_GROUP

CONTROLLER_NAME = "traefik.io/gateway-controller"  # what Traefik's Gateway provider claims
HTTP_PORT = 8000  # entry point "web"; the Gateway's HTTP listener uses the same port
HTTPS_PORT = 8443  # entry point "websecure"
ADMIN_PORT = 9100  # entry point "admin": /ping (probes) and /metrics (Prometheus)
UID = 65532
MODELS_ROLE = "models"  # namespaces whose routes the Gateway admits (model_namespace_labels)
ADMIN_PORT_NAME = "admin"
PROVIDER = "kubernetesgateway"  # Traefik's name for its Gateway API provider


def backend_metric_names(namespace: str, service: str) -> tuple[str, str]:
    """The `service` labels Traefik's metrics give a model's backend Service: through its
    HTTPRoute and through its GRPCRoute.

    Its Gateway API provider names the load balancer of an HTTPRoute's backendRef `<namespace>-
    <service>-http-<port>`, a GRPCRoute's `<namespace>-<service>-<port>-grpc`, and qualifies them
    with the provider; model names are DNS labels, so its normalisation changes nothing. A
    Traefik convention rather than an API: the end-to-end tests read them back from a live
    gateway.
    """
    return (
        f"{namespace}-{service}-http-{PORT}@{PROVIDER}",
        f"{namespace}-{service}-{GRPC_PORT}-grpc@{PROVIDER}",
    )


# What every gateway pod carries, whatever the component's name: Prometheus finds them by it.
GATEWAY_POD_LABELS = {"app.kubernetes.io/name": "traefik", "app.kubernetes.io/component": "gateway"}


def labels(name: str) -> dict[str, str]:
    return {
        **GATEWAY_POD_LABELS,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def controller_rules() -> list[dict[str, Any]]:
    """ClusterRole of Traefik's Gateway API provider: read routes and what they point at, write
    the status of the Gateway API objects it serves."""
    routes = ["gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants"]
    return [
        {
            "apiGroups": [""],
            "resources": ["namespaces", "services", "secrets", "configmaps"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": [GATEWAY_GROUP], "resources": routes, "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": [GATEWAY_GROUP],
            "resources": [f"{r}/status" for r in routes if r != "referencegrants"],
            "verbs": ["update", "patch"],
        },
    ]


RETRY_MIDDLEWARE = "retry-unreachable"
DYNAMIC_DIR = "/etc/traefik/dynamic"  # the file provider's folder: the ConfigMap below
DYNAMIC_FILE = "middlewares.yaml"


def dynamic_config(ingress: IngressConfig) -> dict[str, Any] | None:
    """Traefik's file-provider configuration: the retry middleware every route on the gateway's
    entry points goes through, or None when retries are off (ingress.gateway.retryAttempts 1).

    Traefik's retry sends a request again only when it could not be written to the backend
    (connection refused or reset first), so a POST that reached a model is never repeated.
    """
    attempts = ingress.gateway.retry_attempts
    if attempts < 2:
        return None
    # initialInterval: the first retry waits 50 ms (then backs off), enough for the load
    # balancer's next pick to be another pod, short against a model's latency.
    retry = {"attempts": attempts, "initialInterval": "50ms"}
    return {"http": {"middlewares": {RETRY_MIDDLEWARE: {"retry": retry}}}}


def controller_args(ingress: IngressConfig, service: str) -> list[str]:
    args = [
        f"--entryPoints.web.address=:{HTTP_PORT}",
        f"--entryPoints.admin.address=:{ADMIN_PORT}",
        "--ping=true",
        "--ping.entryPoint=admin",
        "--metrics.prometheus=true",
        "--metrics.prometheus.entryPoint=admin",
        "--providers.kubernetesgateway=true",
        # The Gateway's status carries the Service's address, as clients look it up.
        f"--providers.kubernetesgateway.statusAddress.service.name={service}",
        f"--providers.kubernetesgateway.statusAddress.service.namespace={ingress.controller_namespace}",
        "--log.level=INFO",
    ]
    if ingress.tls.enabled:
        args.insert(1, f"--entryPoints.websecure.address=:{HTTPS_PORT}")
    if dynamic_config(ingress) is not None:
        # Entry-point middlewares run before every router's own: each model route retries.
        args.append(f"--providers.file.filename={DYNAMIC_DIR}/{DYNAMIC_FILE}")
        for entry_point in ("web", "websecure") if ingress.tls.enabled else ("web",):
            args.append(f"--entryPoints.{entry_point}.http.middlewares={RETRY_MIDDLEWARE}@file")
    return args


def controller_deployment(
    ingress: IngressConfig,
    name: str,
    service_account: Any,
    service: str,
    dynamic_config_map: Any = None,
) -> dict[str, Any]:
    """Deployment spec of the controller: non-root, read-only root, spread over nodes.

    `dynamic_config_map` (required when `dynamic_config` is not None) holds that configuration
    for the file provider; its checksum on the pod template rolls the controller on a change.
    """
    gateway = ingress.gateway
    pod_labels = labels(name)
    ports = [
        {"name": "web", "containerPort": HTTP_PORT},
        {"name": ADMIN_PORT_NAME, "containerPort": ADMIN_PORT},
    ]
    if ingress.tls.enabled:
        ports.insert(1, {"name": "websecure", "containerPort": HTTPS_PORT})
    probe = {"httpGet": {"path": "/ping", "port": ADMIN_PORT_NAME}, "periodSeconds": 5}
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    template_meta: dict[str, Any] = {"labels": pod_labels}
    dynamic = dynamic_config(ingress)
    if dynamic is not None:
        if dynamic_config_map is None:
            raise ValueError("controller_deployment: dynamic_config_map is required with retries")
        mounts.append({"name": "dynamic", "mountPath": DYNAMIC_DIR, "readOnly": True})
        volumes.append({"name": "dynamic", "configMap": {"name": dynamic_config_map}})
        template_meta["annotations"] = {"mlplatform.io/dynamic-config": checksum(dynamic)}
    return {
        "replicas": gateway.replicas,
        "selector": {"matchLabels": pod_labels},
        # One replica at a time, the new one Ready before an old one goes: routes stay served.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
        "template": {
            "metadata": template_meta,
            "spec": {
                "serviceAccountName": service_account,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": UID,
                    "runAsGroup": UID,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": pod_labels},
                    }
                ],
                # Finish requests in flight when a pod is stopped (drain, rollout).
                "terminationGracePeriodSeconds": 30,
                "containers": [
                    {
                        "name": "traefik",
                        "image": gateway.image,
                        "args": controller_args(ingress, service),
                        "ports": ports,
                        "readinessProbe": probe,
                        "livenessProbe": {**probe, "failureThreshold": 6},
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "64Mi"},
                            "limits": {"cpu": "1", "memory": "256Mi"},
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


def controller_service(ingress: IngressConfig, name: str) -> dict[str, Any]:
    """The gateway's Service: NodePort, so the local cluster (and any node) can reach it."""
    http: dict[str, Any] = {"name": "web", "port": 80, "targetPort": "web", "protocol": "TCP"}
    if ingress.gateway.node_port is not None:
        http["nodePort"] = ingress.gateway.node_port
    ports = [http]
    if ingress.tls.enabled:
        ports.append({"name": "websecure", "port": 443, "targetPort": "websecure"})
    return {"type": "NodePort", "selector": labels(name), "ports": ports}


def gateway_class() -> dict[str, Any]:
    return {"controllerName": CONTROLLER_NAME}


def gateway_spec(ingress: IngressConfig) -> dict[str, Any]:
    """The Gateway: an HTTP listener (HTTPS too with tls.enabled) admitting the routes of the
    platform's model namespaces."""
    allowed = {
        "namespaces": {"from": "Selector", "selector": {"matchLabels": {LABEL_ROLE: MODELS_ROLE}}}
    }
    hostname = (
        f"*.{ingress.domain}" if ingress.routing == "host" and ingress.domain else ingress.host
    )
    listener: dict[str, Any] = {
        "name": "http",
        "protocol": "HTTP",
        "port": HTTP_PORT,
        "allowedRoutes": allowed,
    }
    listeners = [listener]
    if ingress.tls.enabled:
        secure: dict[str, Any] = {
            "name": "https",
            "protocol": "HTTPS",
            "port": HTTPS_PORT,
            "allowedRoutes": allowed,
            "tls": {
                "mode": "Terminate",
                "certificateRefs": [{"name": ingress.tls.secret_name or "mlplatform-gateway-tls"}],
            },
        }
        listeners.append(secure)
    if hostname:
        for each in listeners:
            each["hostname"] = hostname
    return {"gatewayClassName": ingress.gateway.class_name, "listeners": listeners}


def gateway_annotations(ingress: IngressConfig) -> dict[str, str]:
    """cert-manager's gateway-shim fills the HTTPS listener's Secret from this issuer."""
    if ingress.tls.enabled and ingress.tls.cluster_issuer:
        return {"cert-manager.io/cluster-issuer": ingress.tls.cluster_issuer}
    return {}
