"""Per-model routes: host/path, TLS, canary split; as Gateway API HTTPRoute and GRPCRoute, or as
an Ingress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlplatform.config import IngressConfig, ModelConfig
from mlplatform.core.names import GRPC_PORT, GRPC_SERVICE, MODEL_HEADER, PORT, PORT_NAME

NGINX = "nginx.ingress.kubernetes.io"
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_API = f"{GATEWAY_GROUP}/v1"


@dataclass(frozen=True)
class Route:
    """Where one model is reachable from outside the cluster."""

    host: str | None
    path: str
    tls_secret: str | None

    grpc_metadata: dict[str, str]
    """gRPC metadata a call must carry to reach this model: the model header, unless the route's
    own host tells the models apart (host routing)."""

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_secret else "http"
        return f"{scheme}://{self.host or '<gateway-address>'}{self.path}"


def plan_route(model: ModelConfig, ingress: IngressConfig) -> Route:
    """The host and path of a model under the stack's routing mode."""
    if ingress.routing == "host":
        host = model.ingress.host or (f"{model.name}.{ingress.domain}" if ingress.domain else None)
        path = "/"
    else:
        host = model.ingress.host or ingress.host
        path = model.ingress.path or f"{ingress.path_prefix.rstrip('/')}/{model.name}"
    secret = (ingress.tls.secret_name or f"{model.name}-tls") if ingress.tls.enabled else None
    own_host = ingress.routing == "host" and host is not None
    metadata = {} if own_host else {MODEL_HEADER: model.name}
    return Route(host=host, path=path, tls_secret=secret, grpc_metadata=metadata)


def plan_ingress(
    route: Route, ingress: IngressConfig, service: Any, canary_weight: int | None = None
) -> tuple[dict[str, str], dict[str, Any]]:
    """(annotations, spec) of an Ingress sending `route` to `service` (a name or a Pulumi Output).

    With `canary_weight`, the Ingress is ingress-nginx's canary twin of the stable one: same host
    and path, receiving that percentage of requests.
    """
    annotations = dict(ingress.annotations)
    if not ingress.await_address:
        # Without a controller that reports status (the local cluster) Pulumi would wait
        # 10 minutes per Ingress for an address that never comes.
        annotations["pulumi.com/skipAwait"] = "true"
    rewrite = ingress.controller == "nginx" and route.path != "/"
    if rewrite:
        # The model server serves /v2/... at its root, so strip the model's prefix.
        annotations[f"{NGINX}/use-regex"] = "true"
        annotations[f"{NGINX}/rewrite-target"] = "/$2"
        http_path = {
            "path": f"{route.path.rstrip('/')}(/|$)(.*)",
            "pathType": "ImplementationSpecific",
        }
    else:
        http_path = {"path": route.path, "pathType": "Prefix"}
    if canary_weight is not None:
        annotations[f"{NGINX}/canary"] = "true"
        annotations[f"{NGINX}/canary-weight"] = str(canary_weight)
    if ingress.tls.enabled and ingress.tls.cluster_issuer and canary_weight is None:
        annotations["cert-manager.io/cluster-issuer"] = ingress.tls.cluster_issuer
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    **http_path,
                    "backend": {"service": {"name": service, "port": {"name": PORT_NAME}}},
                }
            ]
        }
    }
    if route.host:
        rule["host"] = route.host
    spec: dict[str, Any] = {"ingressClassName": ingress.class_name, "rules": [rule]}
    if route.tls_secret and route.host:
        spec["tls"] = [{"hosts": [route.host], "secretName": route.tls_secret}]
    return annotations, spec


def gateway_parent(ingress: IngressConfig) -> dict[str, str]:
    """The parentRef of every model's route: the stack's Gateway (and listener, if named)."""
    ref = {
        "group": GATEWAY_GROUP,
        "kind": "Gateway",
        "name": ingress.gateway.name,
        "namespace": ingress.controller_namespace,
    }
    if ingress.gateway.listener:
        ref["sectionName"] = ingress.gateway.listener
    return ref


def plan_http_route(
    route: Route,
    ingress: IngressConfig,
    stable_service: Any,
    canary_service: Any = None,
    canary_weight: int = 0,
) -> dict[str, Any]:
    """Spec of the HTTPRoute of one model: its host/path on the Gateway, the prefix stripped
    (the server answers at its root), stable and canary Services as weighted backends."""
    rule: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": route.path}}],
        "backendRefs": _weighted_backends(PORT, stable_service, canary_service, canary_weight),
    }
    if route.path != "/":
        rule["filters"] = [
            {
                "type": "URLRewrite",
                "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
            }
        ]
    return _route_spec(route, ingress, rule)


def _weighted_backends(
    port: int, stable_service: Any, canary_service: Any, canary_weight: int
) -> list[dict[str, Any]]:
    backends = [{"name": stable_service, "port": port, "weight": 100 - canary_weight}]
    if canary_service is not None:
        backends.append({"name": canary_service, "port": port, "weight": canary_weight})
    return backends


def _route_spec(route: Route, ingress: IngressConfig, rule: dict[str, Any]) -> dict[str, Any]:
    """A route's spec: one rule, on the stack's Gateway, for the route's host (if any)."""
    spec: dict[str, Any] = {"parentRefs": [gateway_parent(ingress)], "rules": [rule]}
    if route.host:
        spec["hostnames"] = [route.host]
    return spec


def plan_grpc_route(
    route: Route,
    ingress: IngressConfig,
    stable_service: Any,
    canary_service: Any = None,
    canary_weight: int = 0,
) -> dict[str, Any]:
    """Spec of the GRPCRoute of one model: the Open Inference Protocol's gRPC service on the
    route's host, told apart from other models' by ``route.grpc_metadata`` (where the host does
    not), to the Services' gRPC port with the HTTPRoute's canary weights."""
    match: dict[str, Any] = {"method": {"type": "Exact", "service": GRPC_SERVICE}}
    if route.grpc_metadata:
        match["headers"] = [
            {"type": "Exact", "name": name, "value": value}
            for name, value in route.grpc_metadata.items()
        ]
    backends = _weighted_backends(GRPC_PORT, stable_service, canary_service, canary_weight)
    return _route_spec(route, ingress, {"matches": [match], "backendRefs": backends})
