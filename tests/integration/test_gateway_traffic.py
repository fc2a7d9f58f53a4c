"""Traffic for real through the platform's gateway: the dev stack (trimmed, see `stack`) deployed
on the local cluster's real nodes, requests from a bounded client on 127.0.0.1 into the gateway
(Traefik, Gateway API HTTPRoutes and GRPCRoutes), counted where they land: each model pod's own
/metrics.

The tests run in order against one deployed stack; later ones change it (canary weight, version,
a drained node, a killed container). Numbers worth reporting are printed, never timed.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from harness import (
    PodNet,
    Pulumi,
    cluster_layout,
    copy_project,
    for_test_cluster,
    port_forward,
    tool,
    wait_for,
)
from mlplatform.plan.gateway import ADMIN_PORT, GATEWAY_POD_LABELS, backend_metric_names
from traffic import Load

pytestmark = pytest.mark.integration

NAMESPACE = "ml-models"
GATEWAY_NAMESPACE = "mlplatform-gateway"
MODEL = "ml-model-1"
REQUESTS = 3000
GRPC_CALLS_PER_STABLE_POD = 6000
"""gRPC calls through the gateway per stable pod: at 80 % stable, ~4,800 reach each, above the
4,096 streams zttp lets one connection carry."""
SUCCESS = "model_infer_request_success_total"


@pytest.fixture(scope="module")
def layout(tool_env) -> dict[str, str]:
    return cluster_layout(tool_env)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, tool_env, layout):
    """The dev stack with ml-model-1 at 3 stable replicas and a 2-replica v2 canary at weight 0,
    no batch job; images pushed to the test cluster's registry."""
    work = tmp_path_factory.mktemp("gateway")
    project = copy_project(work / "project")
    stack_file = project / "Pulumi.dev.yaml"
    doc = for_test_cluster(yaml.safe_load(stack_file.read_text()), layout)
    config = doc["config"]
    model = next(m for m in config["mlplatform:models"] if m["name"] == MODEL)
    # A fixed size (CPU HPA pinned) and no VPA: traffic is measured over a known set of pods, and
    # the autoscaling add-ons are not needed here (test_e2e_dev_stack runs them).
    model["autoscaling"] = {"minReplicas": 3, "maxReplicas": 3, "signals": {"cpu": 70}}
    model.pop("vpa", None)
    config.pop("mlplatform:autoscalers", None)
    model["canary"] = {"version": "v2", "weight": 0, "replicas": 2}
    config.pop("mlplatform:batchJobs", None)
    stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    state = work / "state"
    state.mkdir()
    pulumi = Pulumi(project, dict(tool_env, PULUMI_BACKEND_URL=f"file://{state}"))
    pulumi("stack", "init", "dev")
    pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy", timeout=1800)
    yield pulumi
    pulumi("destroy", "--yes", check=False, timeout=900)


@pytest.fixture(scope="module")
def gateway(stack, layout) -> str:
    """Base URL of the gateway on loopback (cluster-up forwards it to the gateway's NodePort)."""
    base = f"http://127.0.0.1:{layout['GATEWAY_PORT']}"

    def routed():
        try:
            return httpx.get(f"{base}/models/{MODEL}/v2/health/ready", timeout=2).is_success
        except httpx.HTTPError:
            return False

    wait_for("the gateway routes to ml-model-1", routed, timeout=180, interval=1)
    return base


def _pods(kubectl, track: str | None = None, model: str = MODEL) -> list[dict]:
    selector = f"app.kubernetes.io/name={model}"
    if track:
        selector += f",mlplatform.io/track={track}"
    out = kubectl("get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "json").stdout
    return [
        p
        for p in json.loads(out)["items"]
        if p["status"].get("phase") == "Running" and "deletionTimestamp" not in p["metadata"]
    ]


def _sample(kubectl, model: str = MODEL) -> dict:
    """The model's recorded sample (inputs, probabilities), read from a running pod's manifest."""
    pod = _pods(kubectl, model=model)[0]["metadata"]["name"]
    manifest = json.loads(
        kubectl("exec", "-n", NAMESPACE, pod, "--", "cat", "/model/model.json").stdout
    )
    return manifest["sample"]


def _infer_request(gateway: str, kubectl, model: str = MODEL) -> tuple[str, dict]:
    """URL and body of an Open Inference Protocol request with the model's recorded sample."""
    base = f"{gateway}/models/{model}"
    meta = httpx.get(f"{base}/v2/models/{model}", timeout=10).json()
    rows = _sample(kubectl, model)["inputs"][:1]
    tensor = meta["inputs"][0]
    body = {
        "inputs": [
            {
                "name": tensor["name"],
                "shape": [len(rows), len(rows[0])],
                "datatype": tensor["datatype"],
                "data": [x for row in rows for x in row],
            }
        ]
    }
    return f"{base}/v2/models/{model}/infer", body


def _pod_counter(
    tool_env, namespace: str, pod: str, port: int, metric: str, label: str = ""
) -> float:
    """A counter summed over its series on one pod's own /metrics (only series carrying
    ``label``, e.g. 'service="x"', when given)."""
    with port_forward(tool_env, namespace, f"pod/{pod}", port) as base:
        text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(metric + "{") and label in line
    )


def _served(tool_env, pods: list[dict]) -> dict[str, float]:
    """Requests each pod answered successfully, read from the pod's own /metrics."""
    return {
        pod["metadata"]["name"]: _pod_counter(
            tool_env, NAMESPACE, pod["metadata"]["name"], 8080, SUCCESS
        )
        for pod in pods
    }


def _gateway_requests(tool_env, kubectl, backend: str) -> float:
    """Requests the gateway's pods counted for one backend (their /metrics on the admin port)."""
    selector = ",".join(f"{k}={v}" for k, v in GATEWAY_POD_LABELS.items())
    out = kubectl("get", "pods", "-n", GATEWAY_NAMESPACE, "-l", selector, "-o", "json").stdout
    return sum(
        _pod_counter(
            tool_env,
            GATEWAY_NAMESPACE,
            pod["metadata"]["name"],
            ADMIN_PORT,
            "traefik_service_requests_total",
            f'service="{backend}"',
        )
        for pod in json.loads(out)["items"]
    )


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def test_every_model_answers_through_its_route_and_unknown_paths_get_404(gateway, kubectl):
    for model in ("ml-model-1", "ml-model-2"):
        url, body = _infer_request(gateway, kubectl, model)
        response = httpx.post(url, json=body, timeout=30)
        assert response.status_code == 200, (model, response.text[:300])
        assert response.json()["model_name"] == model
    missing = httpx.get(f"{gateway}/models/no-such-model/v2/health/ready", timeout=10)
    assert missing.status_code == 404


def test_load_spreads_evenly_over_the_stable_replicas(gateway, tool_env, kubectl):
    stable = _pods(kubectl, "stable")
    assert len(stable) == 3, [p["metadata"]["name"] for p in stable]
    canary = _pods(kubectl, "canary")
    before = _served(tool_env, stable + canary)
    url, body = _infer_request(gateway, kubectl)
    result = Load(url, body, requests=REQUESTS, max_seconds=240, concurrency=8).run()
    print(f"\n[gateway] load balancing: {result.summary()}")
    assert result.ok == REQUESTS, result.summary()
    served = _delta(before, _served(tool_env, stable + canary))
    print(f"[gateway] per pod: {served}")
    even = REQUESTS / len(stable)
    for pod in stable:
        name = pod["metadata"]["name"]
        assert abs(served[name] - even) <= 0.15 * even, (name, served)
    assert all(served[p["metadata"]["name"]] == 0 for p in canary), "weight 0 sends nothing"


def test_canary_weight_change_updates_only_the_route(stack):
    stack("config", "set", "--path", "mlplatform:models[0].canary.weight", "20")
    preview = stack("preview", "--json").stdout
    steps = json.loads(preview).get("steps", [])
    changed = {(s["op"], s["urn"].rsplit("::", 1)[1]) for s in steps if s["op"] != "same"}
    routes = {f"mlplatform-route-{MODEL}-httproute", f"mlplatform-route-{MODEL}-grpcroute"}
    assert changed == {("update", route) for route in routes}, (
        changed,
        stack("preview", "--diff").stdout[-6000:],
    )
    stack("up", "--yes", "--skip-preview", "--policy-pack", "policy", timeout=900)
    stack("preview", "--expect-no-changes")


def test_canary_receives_its_weight(gateway, tool_env, kubectl):
    stable, canary = _pods(kubectl, "stable"), _pods(kubectl, "canary")
    before = _served(tool_env, stable + canary)
    url, body = _infer_request(gateway, kubectl)
    result = Load(url, body, requests=REQUESTS, max_seconds=240, concurrency=8).run()
    assert result.ok == REQUESTS, result.summary()
    served = _delta(before, _served(tool_env, stable + canary))
    share = sum(served[p["metadata"]["name"]] for p in canary) / REQUESTS
    print(f"\n[gateway] canary share at weight 20: {share:.1%} ({result.summary()})")
    assert abs(share - 0.20) <= 0.04, served
    assert set(result.versions) == {"v1", "v2"}, result.versions


def test_grpc_calls_reach_their_model_through_its_grpcroute_with_the_canary_weight(
    gateway, tool_env, kubectl
):
    """tritonclient.grpc through the gateway (h2c on the same port): the call's metadata picks
    the model's GRPCRoute, whose backends carry the same weights as its HTTPRoute (20 now).

    Enough calls that each stable pod answers more than zttp's 4,096 streams a connection: the
    gateway's pooled h2c connection to a pod crosses the server's graceful GOAWAY rotation
    (models/serving/http2.py), and the gateway, which cannot replay a proxied body, loses none."""
    import numpy as np
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    target = gateway.removeprefix("http://")
    sample = _sample(kubectl)
    x = np.asarray(sample["inputs"], dtype=np.float32)
    expected = np.asarray(sample["probabilities"], dtype=np.float32)

    def infer(client, model: str, route_to: str | None):
        tensor = grpcclient.InferInput("input-0", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        headers = {"mlplatform-model": route_to} if route_to else None
        return client.infer(model, [tensor], headers=headers, client_timeout=30)

    with grpcclient.InferenceServerClient(target) as client:
        result = infer(client, MODEL, MODEL)
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-5)
        # without the metadata no route matches; with another model's, the call reaches that
        # model, which serves no model of this name
        for route_to, status in ((None, "StatusCode.UNIMPLEMENTED"), ("ml-model-2", "NOT_FOUND")):
            with pytest.raises(InferenceServerException) as refused:
                infer(client, MODEL, route_to)
            assert status in str(refused.value.status()), (route_to, refused.value)

        stable, canary = _pods(kubectl, "stable"), _pods(kubectl, "canary")
        before = _served(tool_env, stable + canary)
        calls = GRPC_CALLS_PER_STABLE_POD * len(stable)

        def call(_) -> str | None:
            try:
                infer(client, MODEL, MODEL)
            except InferenceServerException as exc:
                return str(exc)
            return None

        with ThreadPoolExecutor(4) as pool:
            errors = [e for e in pool.map(call, range(calls)) if e is not None]
    served = _delta(before, _served(tool_env, stable + canary))
    share = sum(served[p["metadata"]["name"]] for p in canary) / calls
    print(
        f"\n[gateway] gRPC: {calls} calls, {len(errors)} failed, canary share {share:.1%}: {served}"
    )
    assert not errors, errors[:5]
    assert all(served[p["metadata"]["name"]] > 4096 for p in stable), served
    assert sum(served.values()) == calls, "each call answered by exactly one model pod"
    assert abs(share - 0.20) <= 0.04, served
    assert all(served[p["metadata"]["name"]] > 0 for p in stable), served
    # The gateway's in-flight signal reads the GRPCRoute's stable backend by Traefik's name for
    # it (plan/gateway.py): the gateway's own metrics must know that name.
    _, grpc_backend = backend_metric_names(NAMESPACE, MODEL)
    counted = _gateway_requests(tool_env, kubectl, grpc_backend)
    print(f"[gateway] gateway metrics count {counted:.0f} calls on {grpc_backend}")
    assert counted >= (1 - share) * calls, counted


def test_rolling_update_under_load_drops_nothing(stack, gateway, kubectl):
    url, body = _infer_request(gateway, kubectl)
    stack("config", "set", "--path", "mlplatform:models[0].version", "v3")
    with Load(url, body, requests=100_000, max_seconds=600, concurrency=4) as load:
        time.sleep(3)
        stack("up", "--yes", "--skip-preview", "--policy-pack", "policy", timeout=900)
        time.sleep(3)
    result = load.result
    print(f"\n[gateway] rolling update v1 -> v3 under load: {result.summary()}")
    assert result.failed == 0, result.summary()
    assert result.versions["v1"] > 0 and result.versions["v3"] > 0, result.versions
    assert {
        p["metadata"]["labels"]["app.kubernetes.io/version"] for p in _pods(kubectl, "stable")
    } == {"v3"}


def test_node_drain_under_load_keeps_the_budget_and_drops_nothing(gateway, kubectl, layout):
    stable = _pods(kubectl, "stable")
    node = stable[0]["spec"]["nodeName"]
    url, body = _infer_request(gateway, kubectl)
    budgets: list[int] = []
    stop = threading.Event()

    def watch_budget():
        while not stop.is_set():
            pdb = json.loads(kubectl("get", "pdb", "-n", NAMESPACE, MODEL, "-o", "json").stdout)
            budgets.append(pdb["status"].get("disruptionsAllowed", 0))
            stop.wait(0.5)

    watcher = threading.Thread(target=watch_budget, daemon=True)
    watcher.start()
    try:
        with Load(url, body, requests=100_000, max_seconds=600, concurrency=4) as load:
            time.sleep(2)
            kubectl(
                "drain",
                node,
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--pod-selector",
                f"app.kubernetes.io/name={MODEL}",
                "--timeout=300s",
            )
            wait_for(
                f"{MODEL} back to 3 ready stable replicas",
                lambda: len([p for p in _pods(kubectl, "stable") if _ready(p)]) == 3,
                timeout=300,
            )
            time.sleep(2)
    finally:
        stop.set()
        watcher.join(5)
        kubectl("uncordon", node)
    result = load.result
    print(f"\n[gateway] drain of {node} under load: {result.summary()}; budgets {set(budgets)}")
    assert result.failed == 0, result.summary()
    assert budgets and min(budgets) >= 0, budgets
    assert all(p["spec"]["nodeName"] != node for p in _pods(kubectl, "stable"))


def _ready(pod: dict) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
    )


def test_a_killed_replica_fails_at_most_the_requests_it_held_and_comes_back(
    gateway, kubectl, layout
):
    """SIGKILL one stable replica's container under load; a few requests fail, then none, and the
    replica comes back.

    What may fail, with 8 requests in flight in all: those the pod held at the kill, and one per
    keep-alive connection the gateway had pooled to it (a POST written on a connection found dead
    is not sent again); both together are at most 8. Requests sent after the kill, until the
    pod's endpoint leaves the route (~1 s, ~200 requests), find its port closed and the gateway's
    retry (ingress.gateway.retryAttempts, 3) sends them on. But each try picks the dead pod with
    p ~ 0.27 (80 % stable over 3 pods), so ~2 % of them fail all three: ~4 in that second. Hence
    at most 16 (twice the concurrency). Without retries ~27 % of them, ~50, would fail. Nine
    kills in a row, each stable pod three times (2026-12-03): 1-7 failed, 4 on average; the run
    that broke the earlier bound of 8 had 9."""
    victim = _pods(kubectl, "stable")[0]
    name, node = victim["metadata"]["name"], victim["spec"]["nodeName"]
    status = victim["status"]["containerStatuses"][0]
    container = status["containerID"].removeprefix("containerd://")
    socket = f"unix://{layout['CLUSTER_RUN']}/nodes/{node}/containerd.sock"
    url, body = _infer_request(gateway, kubectl)
    concurrency = 8
    with Load(url, body, requests=100_000, max_seconds=300, concurrency=concurrency) as load:
        time.sleep(2)
        killed = time.monotonic()
        subprocess.run(
            [tool("crictl"), "--runtime-endpoint", socket, "stop", "--timeout", "0", container],
            check=True,
            capture_output=True,
            timeout=60,
        )

        def replaced():
            pod = json.loads(kubectl("get", "pod", "-n", NAMESPACE, name, "-o", "json").stdout)
            restarts = pod["status"]["containerStatuses"][0]["restartCount"]
            return restarts > status["restartCount"] and _ready(pod)

        wait_for(f"{name} restarted and Ready", replaced, timeout=180)
        back = time.monotonic()
        time.sleep(3)
    result = load.result
    window = max((t - killed for t in result.failure_times), default=0.0)
    print(
        f"\n[gateway] container of {name} killed under load: {result.failed} failed "
        f"({dict(result.statuses)} {dict(result.errors)}) within {window:.2f}s of the kill; "
        f"replica Ready again after {back - killed:.1f}s; {result.summary()}"
    )
    # Nothing fails outside the kill, and no more than the docstring's bound.
    assert all(killed <= t <= back for t in result.failure_times), result.summary()
    assert result.failed <= 2 * concurrency, result.summary()


def test_network_policy_admits_the_gateway_and_prometheus_but_not_other_namespaces(
    gateway, layout, kubectl
):
    """New connections to a model pod, each made from inside another pod's own network
    namespace: from the gateway's and Prometheus' pods they are answered, from a pod of an
    unrelated namespace they are not (kube-network-policies enforces the default-deny)."""
    url = f"http://{_pods(kubectl, 'stable')[0]['status']['podIP']}:8080/v2/health/live"
    net = PodNet(layout, kubectl)
    outsider = "gw-it-outsider"
    pause = f"{layout['REGISTRY']}/pause:3.10.1"
    kubectl("create", "namespace", outsider)
    try:
        kubectl("run", "outsider", "-n", outsider, "--image", pause, "--restart=Never")
        kubectl("wait", "-n", outsider, "pod/outsider", "--for=condition=Ready", "--timeout=120s")
        gateway_pod = json.loads(
            kubectl("get", "pods", "-n", "mlplatform-gateway", "-o", "json").stdout
        )["items"][0]["metadata"]["name"]
        prometheus_pod = json.loads(
            kubectl(
                "get",
                "pods",
                "-n",
                "monitoring",
                "-l",
                "app.kubernetes.io/name=prometheus",
                "-o",
                "json",
            ).stdout
        )["items"][0]["metadata"]["name"]
        assert net.reaches("mlplatform-gateway", gateway_pod, url)
        assert net.reaches("monitoring", prometheus_pod, url)
        assert not net.reaches(outsider, "outsider", url)
    finally:
        kubectl("delete", "namespace", outsider, "--wait=false", check=False)


def test_preview_after_everything_has_no_changes(stack):
    stack("preview", "--expect-no-changes")
