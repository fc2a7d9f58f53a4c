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


def model(name="iris", replicas=2, hpa=None, pdb=None):
    stack = [ex.res("Deployment", ex.deployment(name, replicas=replicas))]
    if hpa is not None:
        stack.append(ex.res("HPA", ex.hpa(name, *hpa)))
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
