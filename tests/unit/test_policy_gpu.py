"""GPU placement rules over whole stacks built from plain Kubernetes objects."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "policy"))

from mlpolicy import examples as ex  # noqa: E402
from mlpolicy.config import GpuPoolsConfig  # noqa: E402
from mlpolicy.k8s import UNKNOWN, Resource  # noqa: E402
from mlpolicy.rules_gpu import (  # noqa: E402
    check_cpu_pods_off_gpu_nodes,
    check_gpu_capacity,
    check_gpu_pool_oversubscription,
    check_gpu_tolerations,
    gpu_pools,
)


def gpu_stack(deploy, hpa=None, nodes=2, gpus_per_node=4, pool="a100"):
    stack = [ex.res("Deployment", deploy)]
    if hpa is not None:
        stack.append(ex.res("HPA", hpa))
    stack += [ex.res("Node", ex.gpu_node(f"{pool}-{i}", pool, gpus_per_node)) for i in range(nodes)]
    return stack


def without_scheduling(deploy):
    spec = deploy["spec"]["template"]["spec"]
    spec.pop("tolerations"), spec.pop("affinity")
    return deploy


def test_compliant_stack_passes_every_gpu_rule():
    stack = ex.compliant_stack()
    for check in (
        check_gpu_tolerations,
        check_gpu_capacity,
        check_gpu_pool_oversubscription,
        check_cpu_pods_off_gpu_nodes,
    ):
        assert check(stack) == [], check.__name__


def test_pools_are_read_from_tainted_nodes_with_their_capacity():
    pools = gpu_pools(
        gpu_stack(ex.deployment("d", gpus=1), nodes=3, gpus_per_node=2), GpuPoolsConfig()
    )
    assert list(pools) == ["a100"]
    assert pools["a100"].capacity == 6 and pools["a100"].largest_node == 2
    assert len(pools["a100"].nodes) == 3


def test_gpu_pod_without_toleration_names_the_declared_pools():
    stack = gpu_stack(without_scheduling(ex.deployment("digits", gpus=1)))
    [v] = check_gpu_tolerations(stack)
    assert "Deployment 'models/digits' requests 1 nvidia.com/gpu per pod" in v.message
    assert "value: <pool>, effect: NoSchedule" in v.message and "a100" in v.message
    assert v.urn.endswith("::digits-deployment")


def test_toleration_for_an_undeclared_pool_is_named():
    stack = gpu_stack(ex.deployment("digits", gpus=1, pool="h100"))
    [v] = check_gpu_tolerations(stack)
    assert "tolerates pool(s) h100, which no GpuNodePool declares" in v.message


def test_without_any_pool_the_fix_points_at_external_pools():
    stack = [ex.res("Deployment", ex.deployment("digits", gpus=1))]
    [v] = check_gpu_tolerations(stack)
    assert "no GpuNodePool is declared" in v.message and "externalPools" in v.message
    assert check_gpu_tolerations(stack, GpuPoolsConfig(external_pools={"a100": 8})) == []


def test_exists_toleration_on_the_gpu_key_matches_any_pool():
    d = without_scheduling(ex.deployment("digits", gpus=1))
    d["spec"]["template"]["spec"]["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    assert check_gpu_tolerations(gpu_stack(d)) == []


def test_wrong_effect_does_not_tolerate_no_schedule():
    d = ex.deployment("digits", gpus=1)
    d["spec"]["template"]["spec"]["tolerations"][0]["effect"] = "NoExecute"
    assert len(check_gpu_tolerations(gpu_stack(d))) == 1


def test_pinned_pool_must_be_the_tolerated_one():
    d = ex.deployment("digits", gpus=1, pool="a100")
    spec = d["spec"]["template"]["spec"]
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]["matchExpressions"][0]["values"] = ["t4"]
    stack = gpu_stack(d) + [ex.res("Node", ex.gpu_node("t4-0", "t4", 1))]
    [v] = check_gpu_tolerations(stack)
    assert (
        "pinned to GPU pool(s) t4" in v.message and "tolerates only the taint of a100" in v.message
    )
    spec["nodeSelector"] = {"mlplatform.io/gpu-pool": "a100"}
    [v] = check_gpu_tolerations(stack)
    assert (
        "nodeSelector and a required node affinity" in v.message and "no common pool" in v.message
    )


def test_gpu_labelled_node_without_taint_is_reported():
    node = ex.gpu_node("a100-0")
    node["spec"]["taints"] = []
    [v] = check_gpu_tolerations([ex.res("Node", node)])
    assert "Node 'a100-0' is labelled mlplatform.io/gpu-pool=a100" in v.message
    assert "nvidia.com/gpu=a100:NoSchedule" in v.message


def test_hpa_max_replicas_times_gpus_above_pool_capacity():
    stack = gpu_stack(ex.deployment("digits", gpus=1), ex.hpa("digits", 2, 9))
    [v] = check_gpu_capacity(stack)
    assert "can run 9 pods (HPA maxReplicas) x 1 nvidia.com/gpu = 9 GPUs" in v.message
    assert "a100 have 8" in v.message and "at most 8" in v.message
    assert (
        check_gpu_capacity(gpu_stack(ex.deployment("digits", gpus=1), ex.hpa("digits", 2, 8))) == []
    )


def test_scaled_object_max_replica_count_bounds_the_pods():
    deploy = ex.res("Deployment", ex.deployment("digits", replicas=9, gpus=1))
    nodes = gpu_stack(ex.deployment("other"))[1:]
    so = ex.scaled_object("digits", 2, 9)
    [v] = check_gpu_capacity([deploy, ex.res("ScaledObject", so), *nodes])
    assert "can run 9 pods (ScaledObject maxReplicaCount) x 1 nvidia.com/gpu = 9 GPUs" in v.message
    assert "Lower ScaledObject maxReplicaCount to at most 8" in v.message
    del so["spec"]["maxReplicaCount"]  # KEDA's default: 100
    [v] = check_gpu_capacity([deploy, ex.res("ScaledObject", so), *nodes])
    assert "can run 100 pods (ScaledObject maxReplicaCount)" in v.message
    so["spec"]["maxReplicaCount"] = 8
    assert check_gpu_capacity([deploy, ex.res("ScaledObject", so), *nodes]) == []
    so["spec"]["scaleTargetRef"] = UNKNOWN  # may scale digits: replicas 9 are not the bound
    assert check_gpu_capacity([deploy, ex.res("ScaledObject", so), *nodes]) == []


def test_replicas_bound_the_pods_when_there_is_no_hpa():
    stack = gpu_stack(ex.deployment("digits", replicas=3, gpus=4))
    [v] = check_gpu_capacity(stack)
    assert (
        "3 pods (replicas) x 4 nvidia.com/gpu = 12 GPUs" in v.message and "at most 2" in v.message
    )


def test_pod_larger_than_any_node_can_never_schedule():
    stack = gpu_stack(ex.deployment("big", replicas=1, gpus=6), nodes=2, gpus_per_node=4)
    [v] = check_gpu_capacity(stack)
    assert "asks for 6 nvidia.com/gpu per pod but the largest node" in v.message


def test_job_parallelism_counts_against_the_pool():
    spec = ex.pod_spec("train", gpus=2)
    job = {
        "metadata": {"name": "train", "namespace": "models"},
        "spec": {"parallelism": 5, "template": {"metadata": {}, "spec": spec}},
    }
    stack = [ex.res("Job", job)] + [ex.res("Node", ex.gpu_node(f"a100-{i}")) for i in range(2)]
    [v] = check_gpu_capacity(stack)
    assert "Job 'models/train' can run 5 pods" in v.message and "10 GPUs" in v.message


def test_existing_pool_declared_by_a_gpu_node_pool_component():
    pool = Resource(
        "mlplatform:k8s:GpuNodePool",
        {"poolName": "a100", "gpuCapacity": 2},
        "urn:pulumi:dev::mlplatform::mlplatform:k8s:GpuNodePool::a100",
        "a100",
    )
    deploy = ex.res("Deployment", ex.deployment("digits", gpus=1))
    assert check_gpu_tolerations([deploy, pool]) == []
    [v] = check_gpu_capacity([deploy, ex.res("HPA", ex.hpa("digits", 2, 3)), pool])
    assert "3 GPUs" in v.message and "have 2" in v.message


def test_external_pools_option_supplies_capacity():
    stack = [
        ex.res("Deployment", ex.deployment("digits", gpus=1)),
        ex.res("HPA", ex.hpa("digits", 2, 5)),
    ]
    assert len(check_gpu_capacity(stack, GpuPoolsConfig(external_pools={"a100": 4}))) == 1
    assert check_gpu_capacity(stack, GpuPoolsConfig(external_pools={"a100": 5})) == []


def test_unknown_node_capacity_skips_only_the_capacity_check():
    stack = gpu_stack(ex.deployment("digits", gpus=1), ex.hpa("digits", 2, 50))
    for r in stack:
        if r.type == "kubernetes:core/v1:Node":
            r.props["status"] = UNKNOWN
    assert check_gpu_capacity(stack) == []
    assert check_gpu_tolerations(stack) == []


def test_oversubscribed_pool_across_workloads():
    stack = gpu_stack(ex.deployment("a", gpus=1), ex.hpa("a", 2, 6))
    stack += [ex.res("Deployment", ex.deployment("b", gpus=1)), ex.res("HPA", ex.hpa("b", 2, 6))]
    assert check_gpu_capacity(stack) == []  # each alone fits in 8
    [v] = check_gpu_pool_oversubscription(stack)
    assert "GPU pool 'a100' has 8 GPUs but its workloads at full scale need 12" in v.message


def test_cpu_pod_tolerating_a_gpu_taint_is_reported():
    d = ex.deployment("iris")
    d["spec"]["template"]["spec"]["tolerations"] = [{"operator": "Exists"}]
    stack = [ex.res("Deployment", d), ex.res("Node", ex.gpu_node("a100-0"))]
    [v] = check_cpu_pods_off_gpu_nodes(stack)
    assert "Deployment 'models/iris' requests no nvidia.com/gpu but tolerates" in v.message


def test_patched_existing_nodes_with_capacity_from_the_component():
    patch = ex.gpu_node("gpu-1")
    del patch["status"]  # a NodePatch carries only what it changes
    stack = [
        ex.res("Deployment", ex.deployment("digits", gpus=1)),
        ex.res("HPA", ex.hpa("digits", 2, 5)),
        Resource("kubernetes:core/v1:NodePatch", patch, "urn:x::gpu-1-patch", "gpu-1"),
    ]
    assert check_gpu_tolerations(stack) == []
    assert check_gpu_capacity(stack) == []  # capacity unknown: not judged
    pool = Resource(
        "mlplatform:k8s:GpuNodePool", {"poolName": "a100", "gpuCapacity": 4}, "u", "a100"
    )
    [v] = check_gpu_capacity(stack + [pool])
    assert "5 GPUs" in v.message and "have 4" in v.message
    patch["spec"]["taints"] = []
    [v] = check_gpu_tolerations(stack + [pool])
    assert "NodePatch 'gpu-1' is labelled" in v.message


def test_daemonsets_may_tolerate_gpu_taints():
    ds = ex.deployment("node-exporter")
    ds["metadata"]["namespace"] = "monitoring"
    ds["spec"]["template"]["spec"]["tolerations"] = [{"operator": "Exists"}]
    stack = [
        Resource("kubernetes:apps/v1:DaemonSet", ds, "urn:x::node-exporter", "node-exporter"),
        ex.res("Node", ex.gpu_node("a100-0")),
    ]
    assert check_cpu_pods_off_gpu_nodes(stack) == []
