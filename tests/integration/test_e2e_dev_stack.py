"""End to end: the real `pulumi up --stack dev` (images built and pushed to the cluster's registry,
the policy pack enforced) against the local cluster, whose real nodes pull and run the model
servers, Prometheus and the batch Job; the result read back with the Kubernetes Python client,
real requests through port-forwards on 127.0.0.1 or from inside a node's network namespace.

The tests in this module run in order against one deployed stack; the last ones change and then
destroy it. Timings worth reporting (scale-out, rollout) are printed, never asserted.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client
from kubernetes import config as kconfig
from kubernetes.client.rest import ApiException
from kubernetes.utils import parse_quantity

from harness import (
    REPO,
    Pulumi,
    cluster_layout,
    copy_project,
    for_test_cluster,
    port_forward,
    tool,
    wait_for,
)

pytestmark = pytest.mark.integration

MODEL_SERVER = "app.kubernetes.io/component=model-server"
GPU_POOL_LABEL = "mlplatform.io/gpu-pool"


def wait_no_terminating_namespaces(tool_env) -> None:
    """A previous run's namespaces may still be draining; creating into them is refused."""
    kconfig.load_kube_config(config_file=tool_env["KUBECONFIG"])
    core = client.CoreV1Api()
    wait_for(
        "earlier namespaces to finish terminating",
        lambda: (
            not [
                n.metadata.name
                for n in core.list_namespace().items
                if n.status.phase == "Terminating"
            ]
        ),
        timeout=240,
        interval=2,
    )


# GPU scheduling stays proven on the simulated pool (its pods never run): a GPU variant of the
# TensorFlow model, built from the same folder, added to the test's copy of the dev stack.
GPU_VARIANT = {
    "name": "ml-model-2-gpu",
    "framework": "tensorflow",
    "version": "v1",
    "source": "ml_model_2",
    "gpuPool": "sim-gpu",
    "ingress": {"enabled": False},
    "resources": {
        "gpus": 1,
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1536Mi"},
    },
    # Admitted by KEDA's real webhook; its query has no dcgm-exporter series to read here.
    "autoscaling": {"signals": {"gpuUtilization": 80}},
}
KEDA_MODEL = "ml-model-1"  # dev scales it on requests in flight, with the VPA on memory


@pytest.fixture(scope="module")
def layout(tool_env) -> dict[str, str]:
    return cluster_layout(tool_env)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, tool_env, layout):
    """A copy of the project deployed as stack `dev` on a throwaway file backend, pushing to the
    test cluster's registry."""
    wait_no_terminating_namespaces(tool_env)
    work = tmp_path_factory.mktemp("e2e")
    proj = copy_project(work / "project")
    stack_file = proj / "Pulumi.dev.yaml"
    doc = for_test_cluster(yaml.safe_load(stack_file.read_text()), layout)
    models = doc["config"]["mlplatform:models"]
    # The test may shorten windows: back to the minimum 20 s after the load step ends.
    scaled = next(m for m in models if m["name"] == KEDA_MODEL)
    scaled["autoscaling"]["scaleDownStabilizationSeconds"] = 20
    models.append(GPU_VARIANT)
    stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    state = work / "state"
    state.mkdir()
    # The machine's passphrase (env.sh), as for the checkout: a stack file's secrets stay readable.
    env = dict(tool_env, PULUMI_BACKEND_URL=f"file://{state}")
    pulumi = Pulumi(proj, env)
    pulumi("stack", "init", "dev")
    pulumi("config", "set", "--secret", "grafanaAdminPassword", "e2e-" + work.name)
    started = time.monotonic()
    up = pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy", timeout=1800)
    print(f"\n[e2e] pulumi up --stack dev: {time.monotonic() - started:.1f}s")
    yield pulumi, up
    # Whatever a failed test left behind, the stack is torn down.
    pulumi("destroy", "--yes", check=False, timeout=900)


@pytest.fixture(scope="module")
def k8s(tool_env):
    kconfig.load_kube_config(config_file=tool_env["KUBECONFIG"])
    return client


@pytest.fixture(scope="module")
def outputs(stack):
    pulumi, _ = stack
    return json.loads(pulumi("stack", "output", "--json").stdout)


@pytest.fixture(scope="module")
def model_deployments(stack, k8s, outputs):
    apps = k8s.AppsV1Api()
    deps = apps.list_deployment_for_all_namespaces(label_selector=MODEL_SERVER).items
    assert deps, "no model Deployments in the cluster after pulumi up"
    return deps


def test_every_model_deployment_is_available(model_deployments, k8s):
    apps = k8s.AppsV1Api()
    for dep in model_deployments:
        name, ns = dep.metadata.name, dep.metadata.namespace

        def available(name=name, ns=ns):
            d = apps.read_namespaced_deployment(name, ns)
            conds = {c.type: c.status for c in d.status.conditions or []}
            return conds.get("Available") == "True" and (d.status.ready_replicas or 0) >= 1 and d

        d = wait_for(f"Deployment {ns}/{name} Available", available)
        assert d.status.ready_replicas == d.spec.replicas, (name, d.status)


def test_services_have_an_endpoint_for_every_ready_pod(model_deployments, k8s):
    core, disc = k8s.CoreV1Api(), k8s.DiscoveryV1Api()
    ns = model_deployments[0].metadata.namespace
    services = core.list_namespaced_service(ns, label_selector=MODEL_SERVER).items
    assert services, f"no model Services in {ns}"
    for svc in services:
        selector = ",".join(f"{k}={v}" for k, v in (svc.spec.selector or {}).items())
        assert selector, f"Service {svc.metadata.name} has no selector"

        def match(selector=selector, svc=svc):
            pods = core.list_namespaced_pod(ns, label_selector=selector).items
            ready = {
                p.status.pod_ip
                for p in pods
                if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            }
            slices = disc.list_namespaced_endpoint_slice(
                ns, label_selector=f"kubernetes.io/service-name={svc.metadata.name}"
            ).items
            addrs = {
                a
                for s in slices
                for e in s.endpoints or []
                if (e.conditions is None or e.conditions.ready)
                for a in e.addresses
            }
            return ready and ready == addrs and (ready, addrs)

        wait_for(f"endpoints of Service {svc.metadata.name} == its ready pods", match, timeout=60)


REAL_NODE = "node.mlplatform.io/kind=real"


def _service_of(url: str) -> tuple[str, str, int]:
    """(service, namespace, port) of an in-cluster URL such as http://svc.ns.svc:8080."""
    match = re.fullmatch(r"http://([^.]+)\.([^.]+)\.svc[^:]*:(\d+)/?", url)
    assert match, f"not an in-cluster service URL: {url}"
    return match.group(1), match.group(2), int(match.group(3))


def _pods(core, dep) -> list:
    selector = ",".join(f"{k}={v}" for k, v in dep.spec.selector.match_labels.items())
    return core.list_namespaced_pod(dep.metadata.namespace, label_selector=selector).items


def _runs_for_real(dep) -> bool:
    """Pods of a Deployment run containers unless they target the simulated GPU pool."""
    return not any(
        "nvidia.com/gpu" in ((c.resources.limits or {}) if c.resources else {})
        for c in dep.spec.template.spec.containers
    )


def test_model_pods_run_on_real_nodes_from_digests_in_the_local_registry(
    model_deployments, k8s, layout
):
    core = k8s.CoreV1Api()
    real = {n.metadata.name for n in core.list_node(label_selector=REAL_NODE).items}
    assert len(real) >= 2, f"expected at least two real nodes, found {sorted(real)}"
    checked = 0
    for dep in filter(_runs_for_real, model_deployments):
        for pod in _pods(core, dep):
            assert pod.status.phase == "Running", (pod.metadata.name, pod.status.phase)
            assert pod.spec.node_name in real, (pod.metadata.name, pod.spec.node_name)
            image = pod.spec.containers[0].image
            repository, _, digest = image.partition("@")
            assert repository.startswith(layout["REGISTRY"] + "/") and digest.startswith(
                "sha256:"
            ), image
            status = pod.status.container_statuses[0]
            # What the runtime pulled is exactly the digest `pulumi up` pushed.
            assert status.image_id.endswith("@" + digest), (
                pod.metadata.name,
                status.image_id,
                digest,
            )
            path = repository.removeprefix(layout["REGISTRY"] + "/")
            req = urllib.request.Request(
                f"http://127.0.0.1:{layout['REGISTRY_PORT']}/v2/{path}/manifests/{digest}",
                method="HEAD",
                headers={
                    "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                    "application/vnd.oci.image.manifest.v1+json, "
                    "application/vnd.oci.image.index.v1+json"
                },
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200
            checked += 1
    assert checked >= 3, f"only {checked} model pods run on real nodes"


def _model_manifest(tool_env, namespace: str, pod: str) -> dict:
    out = subprocess.run(
        [tool("kubectl"), "exec", "-n", namespace, pod, "--", "cat", "/model/model.json"],
        env=tool_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"kubectl exec {pod}: {out.stderr}"
    return json.loads(out.stdout)


def test_each_model_answers_its_recorded_samples_through_its_service(
    model_deployments, k8s, outputs, tool_env
):
    core = k8s.CoreV1Api()
    answered = []
    for name, url in outputs["clusterUrls"].items():
        dep = next(
            d for d in model_deployments if d.metadata.labels.get("app.kubernetes.io/name") == name
        )
        if not _runs_for_real(dep):
            continue
        service, namespace, port = _service_of(url)
        pod = next(p for p in _pods(core, dep) if p.status.phase == "Running")
        manifest = _model_manifest(tool_env, namespace, pod.metadata.name)
        sample = manifest["sample"]
        with port_forward(tool_env, namespace, f"svc/{service}", port) as base:
            resp = httpx.post(f"{base}/predict", json={"instances": sample["inputs"]}, timeout=30)
        assert resp.status_code == 200, (name, resp.status_code, resp.text[:500])
        got = resp.json()["probabilities"]
        assert len(got) == len(sample["probabilities"]), name
        for row, (want, have) in enumerate(zip(sample["probabilities"], got, strict=True)):
            assert max(abs(a - b) for a, b in zip(want, have, strict=True)) <= 1e-5, (
                name,
                row,
                want,
                have,
            )
        answered.append(name)
    assert {"ml-model-1", "ml-model-2"} <= set(answered), answered


def _prometheus_query(base: str, promql: str) -> list[dict]:
    resp = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=10)
    resp.raise_for_status()
    return resp.json()["data"]["result"]


def _own_count(base: str) -> float:
    """model_infer_request_success_total as the pod's own /metrics reports it."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("model_infer_request_success_total{")
    )


def test_in_cluster_prometheus_scrapes_each_model_pod_and_counts_its_requests(
    model_deployments, k8s, outputs, tool_env
):
    core = k8s.CoreV1Api()
    service, namespace, port = _service_of(outputs["prometheusUrl"])
    model_pods = {
        p.metadata.name: p
        for d in filter(_runs_for_real, model_deployments)
        for p in _pods(core, d)
        if p.status.phase == "Running"
    }
    with port_forward(tool_env, namespace, f"svc/{service}", port) as prom:

        def all_up():
            targets = httpx.get(f"{prom}/api/v1/targets", timeout=10).json()["data"][
                "activeTargets"
            ]
            up = {t["labels"].get("pod") for t in targets if t["health"] == "up"}
            missing = sorted(set(model_pods) - up)
            return not missing or (False, missing)

        wait_for(
            "every model pod as an `up` target of the in-cluster Prometheus",
            lambda: all_up() is True,
            timeout=120,
            interval=3,
        )

        pod = next(
            p
            for p in model_pods.values()
            if p.metadata.labels["app.kubernetes.io/name"] == "ml-model-1"
        )
        series = f'model_infer_request_success_total{{pod="{pod.metadata.name}"}}'

        def value():
            result = _prometheus_query(prom, series)
            return float(result[0]["value"][1]) if result else None

        manifest = _model_manifest(tool_env, pod.metadata.namespace, pod.metadata.name)
        requests_sent = 25
        with port_forward(
            tool_env, pod.metadata.namespace, f"pod/{pod.metadata.name}", 8080
        ) as base:
            # Earlier tests' requests may not be scraped yet: start from the pod's own count, once
            # Prometheus has caught up with it.
            before = _own_count(base)
            wait_for(
                f"{series} == {before} (the pod's own count)", lambda: value() == before, timeout=90
            )
            for _ in range(requests_sent):
                resp = httpx.post(
                    f"{base}/predict",
                    json={"instances": manifest["sample"]["inputs"][:1]},
                    timeout=10,
                )
                assert resp.status_code == 200, resp.text[:300]
            assert _own_count(base) == before + requests_sent
        after = wait_for(
            f"{series} to rise by {requests_sent}",
            lambda: (v := value()) is not None and v >= before + requests_sent and (v,),
            timeout=90,
        )[0]
        assert after == before + requests_sent, (before, after)


def test_a_killed_model_container_is_restarted_and_the_deployment_recovers(
    model_deployments, k8s, layout
):
    core, apps = k8s.CoreV1Api(), k8s.AppsV1Api()
    dep = next(
        d
        for d in model_deployments
        if d.metadata.labels.get("app.kubernetes.io/name") == "ml-model-1"
        and d.metadata.labels.get("mlplatform.io/track", "stable") == "stable"
    )
    pod = next(p for p in _pods(core, dep) if p.status.phase == "Running")
    status = pod.status.container_statuses[0]
    restarts, container_id = status.restart_count, status.container_id.removeprefix("containerd://")
    socket_path = f"{layout['CLUSTER_RUN']}/nodes/{pod.spec.node_name}/containerd.sock"
    inspect = subprocess.run(
        [tool("crictl"), "--runtime-endpoint", f"unix://{socket_path}", "inspect", container_id],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = json.loads(inspect.stdout)["info"]["pid"]
    os.kill(pid, signal.SIGKILL)

    def restarted():
        p = core.read_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
        s = p.status.container_statuses[0]
        return s.restart_count > restarts and s.ready and s

    wait_for(f"{pod.metadata.name} restarted by its kubelet and Ready", restarted, timeout=120)

    def available():
        d = apps.read_namespaced_deployment(dep.metadata.name, dep.metadata.namespace)
        return (d.status.available_replicas or 0) == d.spec.replicas

    wait_for(f"{dep.metadata.name} back to all replicas available", available, timeout=120)


def test_batch_job_scores_a_real_csv_on_a_real_volume(stack, k8s, tmp_path):
    pulumi, _ = stack
    core, batch = k8s.CoreV1Api(), k8s.BatchV1Api()
    jobs = json.loads(pulumi("config", "get", "--path", "mlplatform:batchJobs").stdout)
    job = jobs[0]
    namespace = json.loads(pulumi("stack", "output", "--json").stdout)["namespace"]
    claim = core.read_namespaced_persistent_volume_claim(job["data"]["claimName"], namespace)
    volume = Path(core.read_persistent_volume(claim.spec.volume_name).spec.host_path.path)
    # The data lands on the volume as a data pipeline would put it there: real rows of the data
    # the model was trained on (scikit-learn's bundled breast-cancer set), with its header.
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rows = 40
    mount = job["data"].get("mountPath", "/data")
    source = volume / Path(job["input"]).relative_to(mount)
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(
        ",".join(data.feature_names)
        + "\n"
        + "\n".join(",".join(repr(float(v)) for v in row) for row in data.data[:rows])
        + "\n"
    )
    # A new output path is a new run of the Job (its spec is immutable: the component replaces it).
    output = f"{mount}/out/e2e-{tmp_path.name}.jsonl"
    pulumi("config", "set", "--path", "mlplatform:batchJobs[0].output", output)
    pulumi("up", "--yes", "--skip-preview", timeout=1200)

    def finished():
        runs = [
            j
            for j in batch.list_namespaced_job(namespace).items
            if job["name"] in j.metadata.name
            and output in " ".join(j.spec.template.spec.containers[0].command or [])
        ]
        done = [j for j in runs if j.status.succeeded or j.status.failed]
        return done and done[0]

    run = wait_for(
        f"batch Job {job['name']} writing {output} to finish", finished, timeout=300, interval=3
    )
    assert run.status.succeeded == 1, (run.metadata.name, run.status)
    lines = (volume / Path(output).relative_to(mount)).read_text().splitlines()
    assert len(lines) == rows, f"{len(lines)} predictions for {rows} input rows"
    predictions = [json.loads(line) for line in lines]
    assert [p["row"] for p in predictions] == list(range(rows))
    assert all(
        len(p["probabilities"]) == 2 and abs(sum(p["probabilities"]) - 1) < 1e-4
        for p in predictions
    )


def test_gpu_pods_only_on_gpu_pool_nodes_and_cpu_pods_never_there(model_deployments, k8s):
    core = k8s.CoreV1Api()
    gpu_nodes = {n.metadata.name for n in core.list_node(label_selector=GPU_POOL_LABEL).items}
    assert gpu_nodes, "the dev stack's GpuNodePool created no nodes"
    seen_gpu = seen_cpu = 0
    for dep in model_deployments:
        selector = ",".join(f"{k}={v}" for k, v in dep.spec.selector.match_labels.items())
        pods = core.list_namespaced_pod(dep.metadata.namespace, label_selector=selector).items
        for pod in pods:
            wants_gpu = any(
                "nvidia.com/gpu" in ((c.resources.limits or {}) if c.resources else {})
                for c in pod.spec.containers
            )
            assert pod.spec.node_name, f"pod {pod.metadata.name} was not scheduled"
            if wants_gpu:
                seen_gpu += 1
                assert pod.spec.node_name in gpu_nodes, (pod.metadata.name, pod.spec.node_name)
            else:
                seen_cpu += 1
                assert pod.spec.node_name not in gpu_nodes, (pod.metadata.name, pod.spec.node_name)
    assert seen_gpu and seen_cpu, (
        f"expected GPU and CPU model pods, saw {seen_gpu} GPU / {seen_cpu} CPU"
    )


def test_pdb_refuses_an_eviction_below_min_available(model_deployments, k8s):
    core, policy = k8s.CoreV1Api(), k8s.PolicyV1Api()
    ns = model_deployments[0].metadata.namespace
    pdbs = policy.list_namespaced_pod_disruption_budget(ns).items
    assert pdbs, f"no PodDisruptionBudget in {ns}"
    pdb = pdbs[0]
    selector = ",".join(f"{k}={v}" for k, v in pdb.spec.selector.match_labels.items())
    wait_for(
        f"PDB {pdb.metadata.name} observed",
        lambda: (
            policy.read_namespaced_pod_disruption_budget(
                pdb.metadata.name, ns
            ).status.observed_generation
        ),
    )
    pods = core.list_namespaced_pod(ns, label_selector=selector).items
    # Evict until the budget says no: the API must refuse before readiness drops below minAvailable.
    refused = None
    for pod in pods:
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod.metadata.name, namespace=ns))
        try:
            core.create_namespaced_pod_eviction(pod.metadata.name, ns, body)
        except ApiException as exc:
            refused = exc
            break
    assert refused is not None and refused.status == 429, (
        f"no eviction was refused for {pdb.metadata.name}"
    )
    assert "disruption budget" in refused.body, refused.body


def test_namespaces_enforce_restricted_and_all_pods_were_admitted(model_deployments, k8s):
    core, apps = k8s.CoreV1Api(), k8s.AppsV1Api()
    namespaces = {d.metadata.namespace for d in model_deployments}
    for ns in namespaces:
        labels = core.read_namespace(ns).metadata.labels
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", labels
        for rs in apps.list_namespaced_replica_set(ns).items:
            failures = [c for c in rs.status.conditions or [] if c.type == "ReplicaFailure"]
            assert not failures, (rs.metadata.name, [c.message for c in failures])
    # And the admission is real: a privileged pod is rejected in the same namespace.
    ns = sorted(namespaces)[0]
    bad = client.V1Pod(
        metadata=client.V1ObjectMeta(name="psa-probe"),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="c",
                    image="x:1",
                    security_context=client.V1SecurityContext(privileged=True),
                )
            ]
        ),
    )
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(ns, bad)
    assert exc.value.status == 403 and "restricted" in exc.value.body


def test_second_up_reports_no_changes(stack):
    pulumi, _ = stack
    pulumi("preview", "--expect-no-changes", "--policy-pack", "policy")


def test_registry_down_during_up_names_registry_and_image_and_a_later_up_converges(
    stack, layout, tool_env
):
    pulumi, _ = stack
    # A change to the model's code makes a new image, which `up` must push.
    code = pulumi.cwd / "models" / "ml_model_1" / "model_code.py"
    code.write_text(code.read_text() + "\n# e2e: a change that makes a new image\n")
    registry_pid = int((Path(layout["CLUSTER_RUN"]) / "pids" / "registry.pid").read_text())
    os.kill(registry_pid, signal.SIGTERM)
    try:
        failed = pulumi("up", "--yes", "--skip-preview", check=False, timeout=1800)
        out = failed.stdout + failed.stderr
        assert failed.returncode != 0, out[-3000:]
        assert layout["REGISTRY"] in out and "ml-model-1" in out, out[-3000:]
    finally:
        # cluster-up starts what is not running (the registry) and leaves the rest alone.
        subprocess.run(
            ["bash", str(REPO / "scripts" / "cluster.sh"), "up"],
            env=tool_env,
            check=True,
            capture_output=True,
            timeout=300,
        )
    pulumi("up", "--yes", "--skip-preview", timeout=1800)
    pulumi("preview", "--expect-no-changes")


def test_version_change_rolls_out_without_dropping_availability(stack, model_deployments, k8s):
    pulumi, _ = stack
    apps = k8s.AppsV1Api()
    cfg = json.loads(pulumi("config", "get", "--path", "mlplatform:models").stdout)
    idx = next(i for i, m in enumerate(cfg) if not m.get("gpuPool"))
    name = cfg[idx]["name"]
    dep = next(
        d
        for d in model_deployments
        if d.metadata.labels.get("app.kubernetes.io/name") == name
        and d.metadata.labels.get("mlplatform.io/track", "stable") == "stable"
    )
    ns = dep.metadata.namespace

    def steady():
        d = apps.read_namespaced_deployment(dep.metadata.name, ns)
        return (
            (d.status.available_replicas or 0)
            == d.spec.replicas
            == (d.status.updated_replicas or 0)
        )

    # Earlier tests evict pods; measure the rollout from a settled Deployment, not their recovery.
    wait_for(f"{dep.metadata.name} settled before the rollout", steady, timeout=120)
    old_rs = {rs.metadata.name for rs in apps.list_namespaced_replica_set(ns).items}
    pulumi("config", "set", "--path", f"mlplatform:models[{idx}].version", "v-e2e-2")

    # Watch availability while the real engine rolls the change out.
    proc = subprocess.Popen(
        [pulumi.exe, "up", "--yes", "--skip-preview", "--non-interactive"],
        cwd=pulumi.cwd,
        env=pulumi.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lowest = None
    while proc.poll() is None:
        d = apps.read_namespaced_deployment(dep.metadata.name, ns)
        avail, desired = d.status.available_replicas or 0, d.spec.replicas
        lowest = min(lowest, avail - desired) if lowest is not None else avail - desired
        time.sleep(0.2)
    out = proc.stdout.read()
    assert proc.returncode == 0, out[-3000:]
    d = apps.read_namespaced_deployment(dep.metadata.name, ns)
    assert d.spec.template.metadata.labels["app.kubernetes.io/version"] == "v-e2e-2"
    new_rs = {rs.metadata.name for rs in apps.list_namespaced_replica_set(ns).items} - old_rs
    assert new_rs, "no new ReplicaSet was rolled out"
    assert lowest is not None and lowest >= 0, f"available replicas dipped {lowest} below desired"
    print(
        f"\n[e2e] rollout of {name}: lowest (available - desired) seen = {lowest}", file=sys.stderr
    )


def _scaled_object(k8s, namespace: str, name: str) -> dict:
    return k8s.CustomObjectsApi().get_namespaced_custom_object(
        "keda.sh", "v1alpha1", namespace, "scaledobjects", name
    )


def _condition(obj: dict, kind: str) -> str | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c.get("status") for c in conditions if c.get("type") == kind), None)


def test_keda_admits_the_generated_scaled_objects_and_refuses_a_broken_one(
    model_deployments, k8s, kubectl
):
    ns = model_deployments[0].metadata.namespace
    gpu = _scaled_object(k8s, ns, GPU_VARIANT["name"])
    (trigger,) = gpu["spec"]["triggers"]
    assert (
        trigger["name"] == "gpu-utilization"
        and "DCGM_FI_DEV_GPU_UTIL" in (trigger["metadata"]["query"])
    )
    # The admission webhook is live: a copy asking for more minimum than maximum replicas, on a
    # Deployment another ScaledObject already scales, is refused (server-side dry run).
    broken = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "broken", "namespace": ns},
        "spec": {**gpu["spec"], "minReplicaCount": 5, "maxReplicaCount": 2},
    }
    broken["spec"]["advanced"] = {}
    proc = kubectl("create", "--dry-run=server", "-f", "-", check=False, input=json.dumps(broken))
    assert proc.returncode != 0
    assert 'admission webhook "vscaledobject.kb.io" denied' in proc.stderr, proc.stderr


def test_keda_scales_on_requests_in_flight_and_back_to_the_minimum(
    model_deployments, k8s, layout, tool_env, tmp_path
):
    apps, autoscaling, core = k8s.AppsV1Api(), k8s.AutoscalingV2Api(), k8s.CoreV1Api()
    ns = model_deployments[0].metadata.namespace
    wait_for(
        f"ScaledObject {KEDA_MODEL} Ready",
        lambda: _condition(_scaled_object(k8s, ns, KEDA_MODEL), "Ready") == "True",
        timeout=180,
        interval=2,
    )
    # KEDA made the HPA under the model's name, one external metric it serves per trigger:
    # requests in flight read at the pods and at the gateway (the model has a route).
    hpa = autoscaling.read_namespaced_horizontal_pod_autoscaler(KEDA_MODEL, ns)
    triggers = [t["name"] for t in _scaled_object(k8s, ns, KEDA_MODEL)["spec"]["triggers"]]
    assert triggers == ["in-flight", "in-flight-gateway"]
    assert [m.type for m in hpa.spec.metrics] == ["External", "External"]
    trigger_of = {
        m.external.metric.name: t for m, t in zip(hpa.spec.metrics, triggers, strict=True)
    }
    minimum = hpa.spec.min_replicas
    dep = apps.read_namespaced_deployment(KEDA_MODEL, ns)
    wait_for(
        f"{KEDA_MODEL} at its minimum {minimum}",
        lambda: apps.read_namespaced_deployment(KEDA_MODEL, ns).spec.replicas == minimum,
        timeout=300,
        interval=2,
    )
    pod = next(p for p in _pods(core, dep) if p.status.phase == "Running")
    sample = _model_manifest(tool_env, ns, pod.metadata.name)["sample"]["inputs"]
    script = tmp_path / "predict.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps({'instances': sample}))}\n"
    )
    url = f"http://127.0.0.1:{layout['GATEWAY_PORT']}/models/{KEDA_MODEL}/predict"
    # A load step through the gateway on loopback: 32 connections, 20 s per round, at most 9.
    started, reached, peak = time.monotonic(), None, dict.fromkeys(triggers, 0.0)

    def read_peaks():
        status = autoscaling.read_namespaced_horizontal_pod_autoscaler(KEDA_MODEL, ns).status
        for metric in status.current_metrics or []:
            trigger = trigger_of[metric.external.metric.name]
            value = float(parse_quantity(metric.external.current.average_value or "0"))
            peak[trigger] = max(peak[trigger], value)
        return status

    for _ in range(9):
        # The readings are sampled during the round too: the windowed rates lag the load, and a
        # round that already brings 3 replicas ends the loop, so its end alone may show only
        # an early, partly idle window.
        load = subprocess.Popen(
            ["wrk", "-t2", "-c32", "-d20s", "-s", str(script), url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while load.poll() is None:
                read_peaks()
                time.sleep(2)
            assert load.wait(timeout=60) == 0, "wrk failed"
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
        status = read_peaks()
        if apps.read_namespaced_deployment(KEDA_MODEL, ns).spec.replicas >= 3:
            reached = time.monotonic() - started
            break
    assert reached is not None, f"{KEDA_MODEL} stayed below 3 replicas under load; {status}"
    # 32 connections on a few pods that serve one request at a time: the gateway sees the queue
    # (many per pod), the pods themselves at most about one each. A backend name that Traefik
    # does not use would read 0 here.
    assert peak["in-flight-gateway"] > 2 * max(peak["in-flight"], 1.0), peak
    stopped = time.monotonic()
    wait_for(
        f"{KEDA_MODEL} back to {minimum} replicas after the load",
        lambda: apps.read_namespaced_deployment(KEDA_MODEL, ns).spec.replicas == minimum,
        timeout=420,
        interval=2,
    )
    print(
        f"\n[e2e] KEDA on in-flight requests: {minimum} -> >=3 replicas {reached:.0f} s into "
        f"the load, back to {minimum} {time.monotonic() - stopped:.0f} s after it; peak "
        f"in flight per pod: {peak}"
    )


def _memory_bytes(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for unit, factor in units.items():
        if quantity.endswith(unit):
            return float(quantity[: -len(unit)]) * factor
    return float(quantity)


def test_vpa_recommends_memory_and_sizes_a_new_pod_with_it(model_deployments, k8s):
    core, custom = k8s.CoreV1Api(), k8s.CustomObjectsApi()
    ns = model_deployments[0].metadata.namespace

    def target():
        vpa = custom.get_namespaced_custom_object(
            "autoscaling.k8s.io", "v1", ns, "verticalpodautoscalers", KEDA_MODEL
        )
        recs = ((vpa.get("status") or {}).get("recommendation") or {}).get(
            "containerRecommendations"
        )
        return recs[0]["target"] if recs else None

    wait_for(f"a VPA recommendation for {KEDA_MODEL}", target, timeout=420, interval=5)
    recommended = target()
    assert set(recommended) == {"memory"}, recommended  # controlledResources: [memory]
    dep = next(
        d for d in model_deployments if d.metadata.labels["app.kubernetes.io/name"] == KEDA_MODEL
    )
    declared = dep.spec.template.spec.containers[0].resources.requests["memory"]
    # The load test before this one scaled the model back down: its surplus pods may still be
    # terminating (phase Running, deletion timestamp set). Deleting one of those asks for no
    # replacement, so wait until only the Deployment's own count of live pods is left.
    apps = k8s.AppsV1Api()

    def settled():
        live = [p for p in _pods(core, dep) if p.metadata.deletion_timestamp is None]
        replicas = apps.read_namespaced_deployment(KEDA_MODEL, ns).spec.replicas
        running = [p for p in live if p.status.phase == "Running"]
        return running[0] if len(live) == replicas == len(running) else None

    victim = wait_for(f"{KEDA_MODEL}'s pods settled", settled, timeout=180, interval=2)
    core.delete_namespaced_pod(victim.metadata.name, ns)

    def replacement():
        pods = [
            p
            for p in _pods(core, dep)
            if p.metadata.name != victim.metadata.name and p.metadata.deletion_timestamp is None
        ]
        newest = max(pods, key=lambda p: p.metadata.creation_timestamp, default=None)
        if (
            newest is None
            or newest.metadata.creation_timestamp <= victim.metadata.creation_timestamp
        ):
            return None
        return newest

    wait_for("a replacement pod", replacement, timeout=120, interval=1)
    pod = replacement()
    requested = pod.spec.containers[0].resources.requests["memory"]
    # The admission controller wrote the recommendation into the new pod (mode initial).
    assert _memory_bytes(requested) == pytest.approx(_memory_bytes(recommended["memory"]), rel=0.01)
    assert _memory_bytes(requested) != _memory_bytes(declared)
    assert "vpaUpdates" in (pod.metadata.annotations or {}), pod.metadata.annotations
    print(f"\n[e2e] VPA: {KEDA_MODEL} declared {declared}, new pod got {requested}")


# The HPA test comes after the rollout test: load-driven scaling moves the desired count,
# which would blur the rollout's availability measurement.
def test_hpa_targets_exist_and_real_cpu_load_scales_out(
    model_deployments, k8s, layout, tool_env, tmp_path
):
    autoscaling, apps, core = k8s.AutoscalingV2Api(), k8s.AppsV1Api(), k8s.CoreV1Api()
    ns = model_deployments[0].metadata.namespace
    hpas = autoscaling.list_namespaced_horizontal_pod_autoscaler(ns).items
    assert hpas, f"no HPA in {ns}"
    for hpa in hpas:
        ref = hpa.spec.scale_target_ref
        assert ref.kind == "Deployment"
        apps.read_namespaced_deployment(ref.name, ns)  # raises if the target does not exist
    hpa = next(
        h
        for h in hpas
        if h.spec.max_replicas > h.spec.min_replicas
        and any(m.resource and m.resource.name == "cpu" for m in h.spec.metrics or [])
    )
    dep = apps.read_namespaced_deployment(hpa.spec.scale_target_ref.name, ns)
    before = dep.spec.replicas
    pod = next(p for p in _pods(core, dep) if p.status.phase == "Running")
    sample = _model_manifest(tool_env, ns, pod.metadata.name)["sample"]["inputs"][:1]
    model = dep.metadata.labels["app.kubernetes.io/name"]
    # Real requests through the gateway on loopback (its route balances them over the pods);
    # bounded: 20 s per round, at most 12 rounds.
    script = tmp_path / "predict.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps({'instances': sample}))}\n"
    )
    url = f"http://127.0.0.1:{layout['GATEWAY_PORT']}/models/{model}/predict"
    started = time.monotonic()
    for _ in range(12):
        subprocess.run(
            ["wrk", "-t1", "-c4", "-d20s", "-s", str(script), url],
            check=True,
            capture_output=True,
            timeout=60,
        )
        if apps.read_namespaced_deployment(dep.metadata.name, ns).spec.replicas > before:
            break
    replicas = apps.read_namespaced_deployment(dep.metadata.name, ns).spec.replicas
    current = autoscaling.read_namespaced_horizontal_pod_autoscaler(hpa.metadata.name, ns).status
    assert replicas > before, (
        f"HPA {hpa.metadata.name} kept {replicas} replicas under load; status {current}"
    )
    print(
        f"\n[e2e] HPA scale-out of {dep.metadata.name} on real CPU use: "
        f"{time.monotonic() - started:.1f}s after load"
    )


def test_destroy_leaves_nothing_behind(stack, k8s, outputs):
    pulumi, _ = stack
    pulumi("destroy", "--yes", timeout=900)
    core, apps = k8s.CoreV1Api(), k8s.AppsV1Api()
    left = apps.list_deployment_for_all_namespaces(
        label_selector="app.kubernetes.io/managed-by=pulumi"
    ).items
    assert not left, [d.metadata.name for d in left]
    assert not core.list_node(label_selector=GPU_POOL_LABEL).items, "GPU pool nodes left behind"
    ns = outputs["namespace"]

    def gone():
        try:
            core.read_namespace(ns)
            return False
        except ApiException as exc:
            return exc.status == 404

    wait_for(f"namespace {ns} deleted", gone, timeout=180, interval=2)
    assert json.loads(pulumi("stack", "export").stdout)["deployment"].get("resources") in (None, [])


def test_prod_stack_previews_cleanly_against_the_same_cluster(stack, k8s):
    pulumi, _ = stack
    core = k8s.CoreV1Api()
    # Prod adopts GPU nodes that its cloud node group provides (backend `existing`, selected by
    # instance type). The local cluster gets two such simulated nodes, as that node group would.
    names = [f"p4d-{i}" for i in range(2)]
    for name in names:
        core.create_node(
            client.V1Node(
                metadata=client.V1ObjectMeta(
                    name=name,
                    annotations={"kwok.x-k8s.io/node": "fake"},
                    labels={
                        "node.kubernetes.io/instance-type": "p4d.24xlarge",
                        "kubernetes.io/hostname": name,
                        "type": "kwok",
                    },
                ),
                status=client.V1NodeStatus(
                    capacity={"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": "8"},
                    allocatable={
                        "cpu": "96",
                        "memory": "1Ti",
                        "pods": "110",
                        "nvidia.com/gpu": "8",
                    },
                ),
            )
        )
    try:
        pulumi("stack", "init", "prod")
        pulumi(
            "config", "set", "--secret", "grafanaAdminPassword", "prod-preview", "--stack", "prod"
        )
        preview = pulumi("preview", "--stack", "prod", "--policy-pack", "policy", timeout=1200)
        assert "error" not in preview.stdout.lower(), preview.stdout[-3000:]
        assert "mlplatform-prod" in preview.stdout
    finally:
        for name in names:
            core.delete_node(name)
