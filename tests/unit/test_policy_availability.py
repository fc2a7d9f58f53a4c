"""PDB, HPA-target and NetworkPolicy rules over whole stacks of plain Kubernetes objects."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "policy"))

from mlpolicy import examples as ex  # noqa: E402
from mlpolicy.config import PdbConfig  # noqa: E402
from mlpolicy.k8s import UNKNOWN  # noqa: E402
from mlpolicy.rules_availability import (  # noqa: E402
    check_hpa_targets,
    check_network_policies,
    check_pdb,
    scaled,
)


def model(name="iris", replicas=2, hpa=None, pdb=None, scaled_object=None):
    stack = [ex.res("Deployment", ex.deployment(name, replicas=replicas))]
    if hpa is not None:
        stack.append(ex.res("HPA", ex.hpa(name, *hpa)))
    if scaled_object is not None:
        stack.append(ex.res("ScaledObject", scaled_object))
    if pdb is not None:
        stack.append(ex.res("PDB", pdb))
    return stack


def test_compliant_stack_passes():
    stack = ex.compliant_stack()
    assert (
        check_pdb(stack) == []
        and check_hpa_targets(stack) == []
        and check_network_policies(stack) == []
    )


@pytest.mark.parametrize(
    "value, total, expected",
    [(1, 3, 1), ("50%", 3, 2), ("100%", 4, 4), ("0%", 2, 0), ("x%", 2, None)],
)
def test_percentages_round_up_like_the_disruption_controller(value, total, expected):
    assert scaled(value, total) == expected


def test_two_replicas_without_pdb_is_reported_with_a_sized_fix():
    [v] = check_pdb(model(replicas=2))
    assert "Deployment 'models/iris' runs at least 2 pods (spec.replicas)" in v.message
    assert "no PodDisruptionBudget in namespace 'models'" in v.message
    assert "minAvailable 1" in v.message and v.urn.endswith("::iris-deployment")


def test_single_replica_needs_no_pdb():
    assert check_pdb(model(replicas=1)) == []


def test_hpa_floor_decides_instead_of_replicas():
    assert check_pdb(model(replicas=3, hpa=(1, 5))) == []
    [v] = check_pdb(model(replicas=1, hpa=(3, 5)))
    assert "at least 3 pods (minReplicas of HorizontalPodAutoscaler 'models/iris')" in v.message
    assert "selects its pods (app.kubernetes.io/instance=iris)" in v.message


def test_scaled_object_floor_decides_instead_of_replicas():
    [v] = check_pdb(model(replicas=1, scaled_object=ex.scaled_object("iris", 3, 6)))
    assert "at least 3 pods (minReplicaCount of ScaledObject 'models/iris')" in v.message
    assert check_pdb(model(scaled_object=ex.scaled_object("iris", 1, 6))) == []


def test_two_autoscalers_give_the_lower_floor():
    stack = model(replicas=1, hpa=(4, 6), scaled_object=ex.scaled_object("iris", 3, 6))
    [v] = check_pdb(stack)  # the pair itself is one-autoscaler-per-workload's finding
    assert "at least 3 pods (minReplicaCount of ScaledObject 'models/iris')" in v.message


def scales_to_zero():
    so = ex.scaled_object("iris")
    del so["spec"]["minReplicaCount"]  # KEDA's default: 0
    return so


def test_scale_to_zero_needs_no_pdb_but_a_pdb_must_not_keep_the_last_pod():
    assert check_pdb(model(replicas=3, scaled_object=scales_to_zero())) == []
    [v] = check_pdb(model(replicas=3, scaled_object=scales_to_zero(), pdb=ex.pdb("iris", 1)))
    assert (
        "PodDisruptionBudget 'models/iris' has minAvailable 1 for Deployment 'models/iris', which "
        "may run a single pod (minReplicaCount of ScaledObject 'models/iris' = 0, scaled to zero"
        in v.message
    )
    assert "node drains hang" in v.message and "to 2 or more" in v.message
    assert "at most -1" not in v.message and "minAvailable -1" not in v.message


@pytest.mark.parametrize(
    "spec", [{"minAvailable": 0}, {"maxUnavailable": 1}, {"maxUnavailable": "50%"}]
)
def test_pdb_letting_a_lone_pod_go_passes_below_two(spec):
    pdb = ex.pdb("iris")
    pdb["spec"] = {**spec, "selector": pdb["spec"]["selector"]}
    assert check_pdb(model(scaled_object=scales_to_zero(), pdb=pdb)) == []


def test_pdb_keeping_the_only_pod_of_a_single_replica_hpa():
    [v] = check_pdb(model(hpa=(1, 4), pdb=ex.pdb("iris", "50%")))
    assert "has minAvailable '50%'" in v.message
    assert "(minReplicas of HorizontalPodAutoscaler 'models/iris' = 1)" in v.message
    pdb = ex.pdb("iris")
    pdb["spec"] = {"maxUnavailable": 0, "selector": pdb["spec"]["selector"]}
    [v] = check_pdb(model(hpa=(1, 4), pdb=pdb))
    assert "maxUnavailable 0" in v.message and "Set maxUnavailable to 1 or more" in v.message


def test_autoscaler_with_a_target_unknown_in_preview_leaves_the_floor_open():
    so = ex.scaled_object("iris", 0, 6)
    so["spec"]["scaleTargetRef"]["name"] = UNKNOWN
    # spec.replicas says 1, but the ScaledObject may set the floor: judged again at `pulumi up`.
    assert check_pdb(model(replicas=1, scaled_object=so, pdb=ex.pdb("iris", 1))) == []
    so["spec"] = UNKNOWN
    assert check_pdb(model(replicas=3, scaled_object=so)) == []


@pytest.mark.parametrize("min_available", [3, "100%", 4])
def test_min_available_not_below_hpa_min_is_reported(min_available):
    [v] = check_pdb(model(hpa=(3, 6), pdb=ex.pdb("iris", min_available)))
    assert f"has minAvailable {min_available!r}" in v.message
    assert "not below minReplicas of HorizontalPodAutoscaler 'models/iris' = 3" in v.message
    assert "at most 2" in v.message


@pytest.mark.parametrize("min_available", [2, "50%", 0])
def test_min_available_below_hpa_min_passes(min_available):
    assert check_pdb(model(hpa=(3, 6), pdb=ex.pdb("iris", min_available))) == []


def test_max_unavailable_zero_blocks_drains():
    pdb = ex.pdb("iris")
    pdb["spec"] = {"maxUnavailable": 0, "selector": pdb["spec"]["selector"]}
    [v] = check_pdb(model(pdb=pdb))
    assert "maxUnavailable 0" in v.message
    pdb["spec"]["maxUnavailable"] = 1
    assert check_pdb(model(pdb=pdb)) == []


def test_pdb_must_select_the_pods_in_the_same_namespace():
    other_ns = ex.pdb("iris")
    other_ns["metadata"]["namespace"] = "default"
    assert len(check_pdb(model(pdb=other_ns))) == 1
    wrong_labels = ex.pdb("iris")
    wrong_labels["spec"]["selector"] = {
        "matchLabels": {"app.kubernetes.io/instance": "iris-canary"}
    }
    assert len(check_pdb(model(pdb=wrong_labels))) == 1
    by_expression = ex.pdb("iris")
    by_expression["spec"]["selector"] = {
        "matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "In", "values": ["iris", "digits"]}
        ]
    }
    assert check_pdb(model(pdb=by_expression)) == []


def test_two_pdbs_on_one_deployment_break_eviction():
    second = ex.pdb("iris")
    second["metadata"]["name"] = "iris-extra"
    stack = model(pdb=ex.pdb("iris")) + [ex.res("PDB", second)]
    [v] = check_pdb(stack)
    assert "selected by 2 PodDisruptionBudgets" in v.message


def test_exempt_and_unknown_selectors_are_not_reported():
    assert check_pdb(model(), PdbConfig(exempt=("models/iris",))) == []
    pdb = ex.pdb("iris")
    pdb["spec"]["selector"] = UNKNOWN
    assert check_pdb(model(pdb=pdb)) == []


def test_hpa_pointing_at_a_missing_deployment():
    hpa = ex.hpa("iris")
    hpa["spec"]["scaleTargetRef"]["name"] = "iris-v2"
    stack = [ex.res("Deployment", ex.deployment("iris")), ex.res("HPA", hpa)]
    [v] = check_hpa_targets(stack)
    assert "targets Deployment 'iris-v2'" in v.message and "Deployment/iris" in v.message


def test_hpa_min_above_max_and_cpu_utilization_without_requests():
    d = ex.deployment("iris")
    del d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    hpa = ex.hpa("iris", 5, 3)
    hpa["spec"]["metrics"] = [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    msgs = [v.message for v in check_hpa_targets([ex.res("Deployment", d), ex.res("HPA", hpa)])]
    assert any("minReplicas 5 above maxReplicas 3" in m for m in msgs)
    assert any("container(s) model-server" in m and "request no cpu" in m for m in msgs)


def test_scaled_object_pointing_at_a_missing_deployment():
    so = ex.scaled_object("iris")
    so["spec"]["scaleTargetRef"] = {"name": "iris-v2"}  # kind defaults to Deployment
    [v] = check_hpa_targets(
        [ex.res("Deployment", ex.deployment("iris")), ex.res("ScaledObject", so)]
    )
    assert "ScaledObject 'models/iris' targets Deployment 'iris-v2'" in v.message
    assert "KEDA would mark it not ready" in v.message


def test_scaled_object_min_above_max_counts_keda_defaults():
    deployment = ex.res("Deployment", ex.deployment("iris"))
    [v] = check_hpa_targets([deployment, ex.res("ScaledObject", ex.scaled_object("iris", 5, 3))])
    assert "ScaledObject 'models/iris' has minReplicaCount 5 above maxReplicaCount 3" in v.message
    so = ex.scaled_object("iris", 150)
    del so["spec"]["maxReplicaCount"]
    [v] = check_hpa_targets([deployment, ex.res("ScaledObject", so)])
    assert "minReplicaCount 150 above maxReplicaCount 100 (KEDA's default)" in v.message


def test_scaled_object_utilization_triggers_need_requests():
    d = ex.deployment("iris")
    del d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    so = ex.scaled_object("iris")
    [v] = check_hpa_targets([ex.res("Deployment", d), ex.res("ScaledObject", so)])
    assert "ScaledObject 'models/iris' scales on cpu utilization" in v.message
    assert "container(s) model-server of Deployment 'models/iris' request no cpu" in v.message
    so["spec"]["triggers"][0]["metricType"] = "AverageValue"  # absolute usage: no request needed
    assert check_hpa_targets([ex.res("Deployment", d), ex.res("ScaledObject", so)]) == []
    so["spec"]["triggers"][0] = {
        "type": "memory",
        "metricType": "Utilization",
        "metadata": {"value": "80", "containerName": "model-server"},
    }
    [v] = check_hpa_targets([ex.res("Deployment", d), ex.res("ScaledObject", so)])
    assert "scales on memory utilization" in v.message and "request no memory" in v.message


def test_model_namespace_without_network_policy():
    stack = model("iris") + model("digits")
    msgs = [v.message for v in check_network_policies(stack)]
    assert len(msgs) == 2
    assert (
        "Namespace 'models' holds model server(s) Deployment 'models/iris', "
        "Deployment 'models/digits'" in msgs[0]
    )


def test_egress_only_or_other_namespace_policies_do_not_count():
    egress = ex.network_policy()
    egress["spec"]["policyTypes"] = ["Egress"]
    elsewhere = ex.network_policy()
    elsewhere["metadata"]["namespace"] = "monitoring"
    stack = model() + [ex.res("NetworkPolicy", egress), ex.res("NetworkPolicy", elsewhere)]
    assert len(check_network_policies(stack)) == 1


def test_default_deny_with_empty_selector_counts_and_non_model_deployments_are_ignored():
    deny = {
        "metadata": {"name": "default-deny", "namespace": "models"},
        "spec": {"podSelector": {}},
    }
    assert check_network_policies(model() + [ex.res("NetworkPolicy", deny)]) == []
    grafana = ex.deployment("grafana")
    grafana["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = "dashboard"
    assert check_network_policies([ex.res("Deployment", grafana)]) == []
