"""End to end: the real `pulumi up --stack dev` (images built for real, the policy pack enforced)
against the local cluster, then the result read back with the Kubernetes Python client.

The tests in this module run in order against one deployed stack; the last ones change and then
destroy it. Timings worth reporting (scale-out, rollout) are printed, never asserted.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from kubernetes import client, config as kconfig
from kubernetes.client.rest import ApiException

from harness import REPO, Pulumi, wait_for

pytestmark = pytest.mark.integration

MODEL_SERVER = "app.kubernetes.io/component=model-server"
GPU_POOL_LABEL = "mlplatform.io/gpu-pool"


def wait_no_terminating_namespaces(tool_env) -> None:
    """A previous run's namespaces may still be draining; creating into them is refused."""
    kconfig.load_kube_config(config_file=tool_env["KUBECONFIG"])
    core = client.CoreV1Api()
    wait_for("earlier namespaces to finish terminating", lambda: not [
        n.metadata.name for n in core.list_namespace().items if n.status.phase == "Terminating"],
        timeout=240, interval=2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, tool_env):
    """A copy of the project deployed as stack `dev` on a throwaway file backend."""
    wait_no_terminating_namespaces(tool_env)
    work = tmp_path_factory.mktemp("e2e")
    proj = work / "project"
    shutil.copytree(REPO, proj, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".pulumi-state", "__pycache__", ".pytest_cache", ".ruff_cache", "results"))
    (proj / ".venv").symlink_to((REPO / ".venv").resolve())
    policy_venv = REPO / "policy" / ".venv"
    if not policy_venv.exists():
        pytest.fail("policy/.venv missing: run `make bootstrap`", pytrace=False)
    if (proj / "policy" / ".venv").is_symlink() or (proj / "policy" / ".venv").exists():
        (proj / "policy" / ".venv").unlink()
    (proj / "policy" / ".venv").symlink_to(policy_venv.resolve())
    state = work / "state"
    state.mkdir()
    env = dict(tool_env, PULUMI_BACKEND_URL=f"file://{state}", PULUMI_CONFIG_PASSPHRASE="e2e-test")
    env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
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

        def available():
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

        def match():
            pods = core.list_namespaced_pod(ns, label_selector=selector).items
            ready = {p.status.pod_ip for p in pods if any(
                c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])}
            slices = disc.list_namespaced_endpoint_slice(
                ns, label_selector=f"kubernetes.io/service-name={svc.metadata.name}").items
            addrs = {a for s in slices for e in s.endpoints or []
                     if (e.conditions is None or e.conditions.ready) for a in e.addresses}
            return ready and ready == addrs and (ready, addrs)

        wait_for(f"endpoints of Service {svc.metadata.name} == its ready pods", match, timeout=60)


def test_gpu_pods_only_on_gpu_pool_nodes_and_cpu_pods_never_there(model_deployments, k8s):
    core = k8s.CoreV1Api()
    gpu_nodes = {n.metadata.name for n in core.list_node(label_selector=GPU_POOL_LABEL).items}
    assert gpu_nodes, "the dev stack's GpuNodePool created no nodes"
    seen_gpu = seen_cpu = 0
    for dep in model_deployments:
        selector = ",".join(f"{k}={v}" for k, v in dep.spec.selector.match_labels.items())
        pods = core.list_namespaced_pod(dep.metadata.namespace, label_selector=selector).items
        for pod in pods:
            wants_gpu = any("nvidia.com/gpu" in ((c.resources.limits or {}) if c.resources else {})
                            for c in pod.spec.containers)
            assert pod.spec.node_name, f"pod {pod.metadata.name} was not scheduled"
            if wants_gpu:
                seen_gpu += 1
                assert pod.spec.node_name in gpu_nodes, (pod.metadata.name, pod.spec.node_name)
            else:
                seen_cpu += 1
                assert pod.spec.node_name not in gpu_nodes, (pod.metadata.name, pod.spec.node_name)
    assert seen_gpu and seen_cpu, f"expected GPU and CPU model pods, saw {seen_gpu} GPU / {seen_cpu} CPU"


def test_pdb_refuses_an_eviction_below_min_available(model_deployments, k8s):
    core, policy = k8s.CoreV1Api(), k8s.PolicyV1Api()
    ns = model_deployments[0].metadata.namespace
    pdbs = policy.list_namespaced_pod_disruption_budget(ns).items
    assert pdbs, f"no PodDisruptionBudget in {ns}"
    pdb = pdbs[0]
    selector = ",".join(f"{k}={v}" for k, v in pdb.spec.selector.match_labels.items())
    wait_for(f"PDB {pdb.metadata.name} observed", lambda: (
        policy.read_namespaced_pod_disruption_budget(pdb.metadata.name, ns).status.observed_generation))
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
    assert refused is not None and refused.status == 429, f"no eviction was refused for {pdb.metadata.name}"
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
    bad = client.V1Pod(metadata=client.V1ObjectMeta(name="psa-probe"), spec=client.V1PodSpec(
        containers=[client.V1Container(name="c", image="x:1", security_context=client.V1SecurityContext(privileged=True))]))
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(ns, bad)
    assert exc.value.status == 403 and "restricted" in exc.value.body


def test_second_up_reports_no_changes(stack):
    pulumi, _ = stack
    pulumi("preview", "--expect-no-changes", "--policy-pack", "policy")


def test_version_change_rolls_out_without_dropping_availability(stack, model_deployments, k8s):
    pulumi, _ = stack
    apps = k8s.AppsV1Api()
    cfg = json.loads(pulumi("config", "get", "--path", "mlplatform:models").stdout)
    idx = next(i for i, m in enumerate(cfg) if not m.get("gpuPool"))
    name = cfg[idx]["name"]
    dep = next(d for d in model_deployments if d.metadata.labels.get("app.kubernetes.io/name") == name
               and d.metadata.labels.get("mlplatform.io/track", "stable") == "stable")
    ns = dep.metadata.namespace

    def steady():
        d = apps.read_namespaced_deployment(dep.metadata.name, ns)
        return (d.status.available_replicas or 0) == d.spec.replicas == (d.status.updated_replicas or 0)
    # Earlier tests evict pods; measure the rollout from a settled Deployment, not their recovery.
    wait_for(f"{dep.metadata.name} settled before the rollout", steady, timeout=120)
    old_rs = {rs.metadata.name for rs in apps.list_namespaced_replica_set(ns).items}
    pulumi("config", "set", "--path", f"mlplatform:models[{idx}].version", "v-e2e-2")

    import subprocess
    import sys
    # Watch availability while the real engine rolls the change out.
    proc = subprocess.Popen([pulumi.exe, "up", "--yes", "--skip-preview", "--non-interactive"],
                            cwd=pulumi.cwd, env=pulumi.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    print(f"\n[e2e] rollout of {name}: lowest (available - desired) seen = {lowest}", file=sys.stderr)


# The HPA test comes after the rollout test: load-driven scaling moves the desired count,
# which would blur the rollout's availability measurement.
def test_hpa_targets_exist_and_cpu_load_scales_out(model_deployments, k8s):
    autoscaling, apps, core = k8s.AutoscalingV2Api(), k8s.AppsV1Api(), k8s.CoreV1Api()
    ns = model_deployments[0].metadata.namespace
    hpas = autoscaling.list_namespaced_horizontal_pod_autoscaler(ns).items
    assert hpas, f"no HPA in {ns}"
    for hpa in hpas:
        ref = hpa.spec.scale_target_ref
        assert ref.kind == "Deployment"
        apps.read_namespaced_deployment(ref.name, ns)  # raises if the target does not exist
    hpa = next(h for h in hpas if h.spec.max_replicas > h.spec.min_replicas)
    dep = apps.read_namespaced_deployment(hpa.spec.scale_target_ref.name, ns)
    before = dep.spec.replicas
    cpu_request = dep.spec.template.spec.containers[0].resources.requests["cpu"]
    # KWOK reports each pod's CPU use from this annotation; 10x the request is far above target.
    selector = ",".join(f"{k}={v}" for k, v in dep.spec.selector.match_labels.items())
    load = {"metadata": {"annotations": {"kwok.x-k8s.io/usage-cpu": _times(cpu_request, 10)}}}

    def annotate_all():
        for pod in core.list_namespaced_pod(ns, label_selector=selector).items:
            core.patch_namespaced_pod(pod.metadata.name, ns, load)

    started = time.monotonic()
    annotate_all()

    def scaled():
        annotate_all()  # pods created by the scale-out need the load too
        return apps.read_namespaced_deployment(dep.metadata.name, ns).spec.replicas > before

    wait_for(f"HPA {hpa.metadata.name} to scale {dep.metadata.name} above {before}", scaled, timeout=240, interval=5)
    print(f"\n[e2e] HPA scale-out of {dep.metadata.name}: {time.monotonic() - started:.1f}s after load")


def _times(quantity: str, factor: int) -> str:
    milli = int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)
    return f"{milli * factor}m"


def test_destroy_leaves_nothing_behind(stack, k8s, outputs):
    pulumi, _ = stack
    pulumi("destroy", "--yes", timeout=900)
    core, apps = k8s.CoreV1Api(), k8s.AppsV1Api()
    left = apps.list_deployment_for_all_namespaces(label_selector="app.kubernetes.io/managed-by=pulumi").items
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
        core.create_node(client.V1Node(
            metadata=client.V1ObjectMeta(name=name, annotations={"kwok.x-k8s.io/node": "fake"}, labels={
                "node.kubernetes.io/instance-type": "p4d.24xlarge", "kubernetes.io/hostname": name, "type": "kwok"}),
            status=client.V1NodeStatus(
                capacity={"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": "8"},
                allocatable={"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": "8"})))
    try:
        pulumi("stack", "init", "prod")
        pulumi("config", "set", "--secret", "grafanaAdminPassword", "prod-preview", "--stack", "prod")
        preview = pulumi("preview", "--stack", "prod", "--policy-pack", "policy", timeout=1200)
        assert "error" not in preview.stdout.lower(), preview.stdout[-3000:]
        assert "mlplatform-prod" in preview.stdout
    finally:
        for name in names:
            core.delete_node(name)
