"""The gateway's tools on the local cluster's real nodes, before any component uses them.

- The Gateway API CRDs bootstrap copies from the pinned module (`MLP_GATEWAY_API_CRDS`) apply
  server-side and become Established.
- The Traefik image cluster-up pushes runs as a non-root pod with a read-only root filesystem: its
  ping answers, `traefik version` reports the pinned version, its Kubernetes Gateway provider
  accepts our GatewayClass through the pod's service account, and an HTTPRoute carries a request
  through it to a real backend pod.
- NetworkPolicies are enforced by kube-network-policies on every real node: a client pod reaches a
  server pod in another namespace (on the same node and across nodes); a default-deny ingress
  policy stops new connections; allowing the client's namespace lets them through again, while a
  pod of a third namespace stays blocked.

Traffic stays on this machine: `kubectl port-forward` on 127.0.0.1, or curl run inside a client
pod's own network namespace, each attempt bounded by a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from harness import PodNet, cluster_layout, port_forward, wait_for

pytestmark = pytest.mark.integration

TRAEFIK_VERSION = "v3.5.4"
PROMETHEUS_VERSION = "v3.5.0"
CRDS = {
    "gatewayclasses.gateway.networking.k8s.io",
    "gateways.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "grpcroutes.gateway.networking.k8s.io",
    "referencegrants.gateway.networking.k8s.io",
}
# Restricted Pod Security for every container started here.
RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _apply(kubectl, *objects: dict) -> None:
    kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )


def _namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _pod(name: str, namespace: str, image: str, node: str, args=(), port=None, **spec) -> dict:
    container = {
        "name": "main",
        "image": image,
        "args": list(args),
        "securityContext": RESTRICTED,
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
    }
    if port is not None:
        container["ports"] = [{"containerPort": port}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "containers": [container],
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            **spec,
        },
    }


def _http_server(registry: str, name: str, namespace: str, node: str) -> dict:
    """A real HTTP server from the local registry: Prometheus with an empty config on :9090."""
    pod = _pod(
        name,
        namespace,
        f"{registry}/mlplatform/prometheus:{PROMETHEUS_VERSION}",
        node,
        args=["--config.file=/dev/null", "--storage.tsdb.path=/data", "--web.listen-address=:9090"],
        port=9090,
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return pod


def _fresh_namespaces(kubectl, *names: str) -> None:
    """Wait (bounded) until an earlier run's namespaces of these names are gone: nothing can be
    created in a namespace that is still terminating."""

    def terminating():
        found = kubectl("get", "namespaces", *names, "--ignore-not-found", "-o", "name").stdout
        return not found.strip()

    wait_for(f"earlier namespaces {names} to finish terminating", terminating, 180, 2)


def _wait_ready(kubectl, namespace: str, *pods: str) -> None:
    proc = kubectl(
        "wait",
        "-n",
        namespace,
        "--for=condition=Ready",
        "--timeout=180s",
        *(f"pod/{p}" for p in pods),
        check=False,
    )
    if proc.returncode != 0:
        described = kubectl("describe", "pods", "-n", namespace, check=False).stdout
        pytest.fail(f"pods {pods} in {namespace} not Ready: {proc.stderr}\n{described[-3000:]}")


def _condition(obj: dict, kind: str) -> str | None:
    """The status of condition `kind` of an object, or of a route's parent status entry."""
    conditions = (
        obj["conditions"] if "conditions" in obj else obj.get("status", {}).get("conditions", [])
    )
    return next((c["status"] for c in conditions if c["type"] == kind), None)


@pytest.fixture(scope="module")
def layout(tool_env) -> dict[str, str]:
    return cluster_layout(tool_env)


@pytest.fixture(scope="module")
def real_nodes(kubectl) -> list[str]:
    nodes = kubectl("get", "nodes", "-l", "node.mlplatform.io/kind=real", as_json=True)["items"]
    ready = sorted(n["metadata"]["name"] for n in nodes if _condition(n, "Ready") == "True")
    if not ready:
        pytest.fail("no Ready real node: run `make cluster-up`", pytrace=False)
    return ready


@pytest.fixture(scope="module")
def gateway_crds(tool_env, kubectl):
    """The Gateway API CRDs from bootstrap's cache, applied server-side; removed afterwards
    unless the cluster had them before."""
    folder = Path(tool_env.get("MLP_GATEWAY_API_CRDS", ""))
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    if not files:
        pytest.fail(
            f"no Gateway API CRDs in {folder}: run `scripts/bootstrap.sh gateway`", pytrace=False
        )
    had = {
        name
        for name in CRDS
        if kubectl("get", "crd", name, "-o", "name", check=False).returncode == 0
    }
    kubectl("apply", "--server-side", *(arg for f in files for arg in ("-f", str(f))))
    yield files
    # Waited for: a CRD still being deleted would count as present for the next run.
    if CRDS - had:
        kubectl("delete", "crd", *sorted(CRDS - had), "--timeout=120s", check=False)


def test_gateway_api_crds_apply_and_are_established(gateway_crds, kubectl):
    assert {f.name.removeprefix("gateway.networking.k8s.io_") for f in gateway_crds} == {
        f"{name.split('.')[0]}.yaml" for name in CRDS
    }
    kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in sorted(CRDS))
    )
    for name in CRDS:
        crd = kubectl("get", "crd", name, as_json=True)
        assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == (
            "v1.3.0"
        )
        assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] == "standard"
        served = {v["name"] for v in crd["spec"]["versions"] if v["served"]}
        assert served & {"v1", "v1beta1"}, (name, served)


TRAEFIK_NS = "gw-it-traefik"
TRAEFIK_CLASS = "gw-it-traefik"
TRAEFIK_ROLE = f"{TRAEFIK_NS}-traefik"
# What Traefik's Kubernetes Gateway provider reads and updates (standard channel; from its
# docs/content/reference/dynamic-configuration/kubernetes-gateway-rbac.yml), the backend Service,
# and the Gateway API objects it is to serve: a Gateway on its `web` entry point (listener port =
# entry point port) and a catch-all HTTPRoute to the backend.
TRAEFIK_OBJECTS = f"""
apiVersion: v1
kind: ServiceAccount
metadata: {{name: traefik, namespace: {TRAEFIK_NS}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {TRAEFIK_ROLE}}}
rules:
- {{apiGroups: [""], resources: [namespaces], verbs: [list, watch]}}
- {{apiGroups: [""], resources: [services, secrets, configmaps], verbs: [get, list, watch]}}
- {{apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}}
- apiGroups: [gateway.networking.k8s.io]
  resources: [gatewayclasses, gateways, httproutes, grpcroutes, referencegrants]
  verbs: [get, list, watch]
- apiGroups: [gateway.networking.k8s.io]
  resources: [gatewayclasses/status, gateways/status, httproutes/status, grpcroutes/status]
  verbs: [update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {TRAEFIK_ROLE}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {TRAEFIK_ROLE}}}
subjects: [{{kind: ServiceAccount, name: traefik, namespace: {TRAEFIK_NS}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: backend, namespace: {TRAEFIK_NS}}}
spec: {{selector: {{app: backend}}, ports: [{{name: http, port: 9090}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: {TRAEFIK_CLASS}}}
spec: {{controllerName: traefik.io/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: {TRAEFIK_NS}}}
spec:
  gatewayClassName: {TRAEFIK_CLASS}
  listeners: [{{name: web, port: 8000, protocol: HTTP}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: backend, namespace: {TRAEFIK_NS}}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /}}}}]
    backendRefs: [{{name: backend, port: 9090}}]
"""
# Traefik with its Kubernetes Gateway provider only, watching the test's namespace; no update
# check or usage report (no outside network here); /ping on the `traefik` entry point.
TRAEFIK_ARGS = [
    "--global.checkNewVersion=false",
    "--global.sendAnonymousUsage=false",
    "--entryPoints.web.address=:8000",
    "--entryPoints.traefik.address=:8080",
    "--ping=true",
    "--providers.kubernetesGateway=true",
    f"--providers.kubernetesGateway.namespaces={TRAEFIK_NS}",
    "--log.level=INFO",
]


@pytest.fixture
def traefik(kubectl, layout, real_nodes, gateway_crds):
    """Traefik and a Prometheus backend on a real node, with TRAEFIK_OBJECTS; all deleted after."""
    registry, node = layout["REGISTRY"], real_nodes[0]
    pod = _pod(
        "traefik",
        TRAEFIK_NS,
        f"{registry}/mlplatform/traefik:{TRAEFIK_VERSION}",
        node,
        args=TRAEFIK_ARGS,
        port=8000,
        serviceAccountName="traefik",
        automountServiceAccountToken=True,
    )
    pod["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/ping", "port": 8080},
        "periodSeconds": 2,
    }
    try:
        _fresh_namespaces(kubectl, TRAEFIK_NS)
        _apply(kubectl, _namespace(TRAEFIK_NS))
        kubectl("apply", "-f", "-", input=TRAEFIK_OBJECTS)
        _apply(kubectl, pod, _http_server(registry, "backend", TRAEFIK_NS, node))
        _wait_ready(kubectl, TRAEFIK_NS, "traefik", "backend")
        yield
    finally:
        logs = kubectl("logs", "-n", TRAEFIK_NS, "traefik", "--tail=40", check=False).stdout
        print(f"traefik log (last lines):\n{logs}")
        kubectl("delete", "gatewayclass", TRAEFIK_CLASS, "--wait=false", check=False)
        kubectl("delete", "namespace", TRAEFIK_NS, "--wait=false", check=False)
        kubectl("delete", "clusterrolebinding,clusterrole", TRAEFIK_ROLE, check=False)


def test_traefik_image_runs_and_routes_an_httproute(traefik, kubectl, tool_env):
    version = kubectl("exec", "-n", TRAEFIK_NS, "traefik", "--", "/bin/traefik", "version").stdout
    assert f"Version:      {TRAEFIK_VERSION}" in version, version

    # Non-root, read-only root filesystem, no capabilities: and it never restarted.
    pod = kubectl("get", "pod", "-n", TRAEFIK_NS, "traefik", as_json=True)
    assert pod["spec"]["containers"][0]["securityContext"] == RESTRICTED
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0, pod["status"]

    def accepted(kind: str, name: str, *ns: str):
        obj = kubectl("get", kind, name, *ns, as_json=True, check=False)
        return obj and _condition(obj, "Accepted") == "True" and obj

    wait_for(
        "Traefik to accept its GatewayClass", lambda: accepted("gatewayclass", TRAEFIK_CLASS), 60
    )
    gateway = wait_for(
        "Traefik to program the Gateway",
        lambda: (
            (g := accepted("gateway", "gw", "-n", TRAEFIK_NS))
            and _condition(g, "Programmed") == "True"
            and g
        ),
        60,
    )
    assert gateway["status"]["listeners"][0]["attachedRoutes"] == 1, gateway["status"]

    def route_accepted():
        route = kubectl("get", "httproute", "backend", "-n", TRAEFIK_NS, as_json=True)
        parents = route.get("status", {}).get("parents", [])
        return parents and all(
            _condition(p, "Accepted") == "True" and _condition(p, "ResolvedRefs") == "True"
            for p in parents
        )

    wait_for("the HTTPRoute to be accepted with resolved refs", route_accepted, 60)

    with port_forward(tool_env, TRAEFIK_NS, "pod/traefik", 8080) as ping_url:
        ping = httpx.get(f"{ping_url}/ping", timeout=5)
        assert (ping.status_code, ping.text) == (200, "OK")
    with port_forward(tool_env, TRAEFIK_NS, "pod/traefik", 8000) as web:

        def routed():
            try:
                r = httpx.get(f"{web}/-/healthy", timeout=5)
            except httpx.HTTPError as exc:
                return f"no answer: {exc!r}"
            return r.status_code == 200 and "Prometheus" in r.text

        answer = wait_for(
            "a request through Traefik to reach the backend", lambda: routed() is True, 30
        )
        assert answer


NP_SERVER, NP_CLIENT, NP_OTHER = "gw-it-np-server", "gw-it-np-client", "gw-it-np-other"


@pytest.fixture
def np_pods(kubectl, layout, real_nodes):
    """A Prometheus server on the first real node; pause-image clients on the same node and on
    another real node (when there is one) in the client namespace, and one in a third namespace."""
    registry = layout["REGISTRY"]
    near, far = real_nodes[0], real_nodes[-1]
    pause = f"{registry}/pause:3.10.1"
    clients = {"near": (NP_CLIENT, near), "far": (NP_CLIENT, far), "stranger": (NP_OTHER, far)}
    try:
        _fresh_namespaces(kubectl, NP_SERVER, NP_CLIENT, NP_OTHER)
        _apply(
            kubectl,
            *(_namespace(ns) for ns in (NP_SERVER, NP_CLIENT, NP_OTHER)),
            _http_server(registry, "server", NP_SERVER, near),
            *(_pod(name, ns, pause, node) for name, (ns, node) in clients.items()),
        )
        _wait_ready(kubectl, NP_SERVER, "server")
        _wait_ready(kubectl, NP_CLIENT, "near", "far")
        _wait_ready(kubectl, NP_OTHER, "stranger")
        ip = kubectl("get", "pod", "-n", NP_SERVER, "server", "-o", "jsonpath={.status.podIP}")
        yield f"http://{ip.stdout}:9090/-/healthy", {n: ns for n, (ns, _) in clients.items()}
    finally:
        for ns in (NP_SERVER, NP_CLIENT, NP_OTHER):
            kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _policy(name: str, ingress: list[dict]) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": NP_SERVER},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def test_network_policies_are_enforced_on_real_nodes(np_pods, kubectl, layout):
    url, clients = np_pods
    net = PodNet(layout, kubectl)

    def reachable() -> dict[str, bool]:
        return {name: net.reaches(ns, name, url) for name, ns in clients.items()}

    opened = wait_for("every client to reach the server", lambda: all(reachable().values()), 30)
    assert opened

    _apply(kubectl, _policy("default-deny-ingress", []))
    wait_for(
        "default-deny to stop every client's new connections",
        lambda: not any(reachable().values()),
        timeout=30,
        interval=2,
    )
    assert reachable() == {"near": False, "far": False, "stranger": False}

    allow_clients = _policy(
        "allow-client-namespace",
        [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": NP_CLIENT}
                        }
                    }
                ]
            }
        ],
    )
    _apply(kubectl, allow_clients)
    expected = {"near": True, "far": True, "stranger": False}
    wait_for("the client namespace to be allowed again", lambda: reachable() == expected, 30, 2)
    assert reachable() == expected

    kubectl("delete", "networkpolicy", "-n", NP_SERVER, "--all")
    wait_for("no policy: everyone reaches the server", lambda: all(reachable().values()), 30, 2)
