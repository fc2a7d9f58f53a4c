"""Autoscalers that fight: two HPAs/ScaledObjects on one workload, a VPA on the resource an
HPA/ScaledObject scales on. Plain Kubernetes objects, no engine."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "policy"))

from mlpolicy import examples as ex  # noqa: E402
from mlpolicy.k8s import UNKNOWN  # noqa: E402
from mlpolicy.registry import RULES  # noqa: E402
from mlpolicy.rules_autoscaling import check_one_autoscaler, check_vpa_disjoint  # noqa: E402


def resource_metric(name):
    return {
        "type": "Resource",
        "resource": {"name": name, "target": {"type": "Utilization", "averageUtilization": 70}},
    }


def renamed(props, name):
    """The same autoscaler under another object name, still targeting its model."""
    props["metadata"]["name"] = name
    return props


def hpa_on(*resources, model="iris"):
    hpa = ex.hpa(model)
    hpa["spec"]["metrics"] = [resource_metric(r) for r in resources]
    return ex.res("HPA", hpa)


def prometheus_only(so):
    so["spec"]["triggers"] = [t for t in so["spec"]["triggers"] if t["type"] == "prometheus"]
    return so


def test_compliant_stack_passes():
    stack = ex.compliant_stack()
    assert check_one_autoscaler(stack) == [] and check_vpa_disjoint(stack) == []


def test_new_rules_are_mandatory():
    levels = {r.name: r.level for r in RULES}
    assert levels["one-autoscaler-per-workload"] == "mandatory"
    assert levels["vpa-disjoint-from-autoscaler"] == "mandatory"


@pytest.mark.parametrize(
    "first, second",
    [
        (("HPA", ex.hpa), ("HPA", ex.hpa)),
        (("HPA", ex.hpa), ("ScaledObject", ex.scaled_object)),
        (("ScaledObject", ex.scaled_object), ("ScaledObject", ex.scaled_object)),
    ],
    ids=["two-hpas", "hpa-and-scaledobject", "two-scaledobjects"],
)
def test_two_autoscalers_on_one_workload(first, second):
    (kind_a, build_a), (kind_b, build_b) = first, second
    stack = [
        ex.res("Deployment", ex.deployment("iris")),
        ex.res(kind_a, renamed(build_a("iris"), "iris-a")),
        ex.res(kind_b, renamed(build_b("iris"), "iris-b")),
    ]
    [v] = check_one_autoscaler(stack)
    long = {"HPA": "HorizontalPodAutoscaler", "ScaledObject": "ScaledObject"}
    assert (
        f"Deployment 'models/iris' is scaled by 2 autoscalers ({long[kind_a]} 'models/iris-a', "
        f"{long[kind_b]} 'models/iris-b')" in v.message
    )
    assert "Keep exactly one" in v.message and "spec.triggers" in v.message
    assert v.urn.endswith("::iris-deployment")


def test_scaledobject_adopting_a_declared_hpa_is_two_owners_not_a_migration():
    # A migration's preview holds only the ScaledObject (Pulumi shows stack rules the resources the
    # program declares now); both together means the program still declares the HPA.
    deployment = ex.res("Deployment", ex.deployment("iris"))
    adopting = ex.res("ScaledObject", ex.scaled_object("iris"))
    [v] = check_one_autoscaler([deployment, ex.res("HPA", ex.hpa("iris")), adopting])
    assert (
        "ScaledObject 'models/iris' adopts HorizontalPodAutoscaler 'models/iris' "
        "(scaledobject.keda.sh/transfer-hpa-ownership)" in v.message
    )
    assert "remove the HPA from the program in the same update" in v.message
    assert check_one_autoscaler([deployment, adopting]) == []


def test_scaledobject_kind_defaults_to_deployment():
    so = ex.scaled_object("iris")
    del so["spec"]["scaleTargetRef"]["kind"]
    stack = [
        ex.res("Deployment", ex.deployment("iris")),
        ex.res("HPA", renamed(ex.hpa("iris"), "iris-cpu")),
        ex.res("ScaledObject", so),
    ]
    [v] = check_one_autoscaler(stack)
    assert "HorizontalPodAutoscaler 'models/iris-cpu', ScaledObject 'models/iris'" in v.message


def test_one_autoscaler_each_passes_and_namespaces_are_kept_apart():
    other_ns = ex.scaled_object("iris")
    other_ns["metadata"]["namespace"] = "staging"
    stack = [
        ex.res("Deployment", ex.deployment("iris")),
        ex.res("HPA", ex.hpa("iris")),
        ex.res("ScaledObject", other_ns),
        ex.res("Deployment", ex.deployment("wine")),
        ex.res("ScaledObject", ex.scaled_object("wine")),
    ]
    assert check_one_autoscaler(stack) == []


def test_workload_outside_the_stack_pins_to_an_autoscaler():
    stack = [
        ex.res("HPA", ex.hpa("iris")),
        ex.res("ScaledObject", renamed(ex.scaled_object("iris"), "iris-keda")),
    ]
    [v] = check_one_autoscaler(stack)
    assert v.message.startswith("Deployment 'models/iris' is scaled by 2 autoscalers")
    assert v.urn.endswith("::iris-hpa")


@pytest.mark.parametrize(
    "autoscaler, vpa_resources, clash",
    [
        (lambda: hpa_on("cpu"), ("cpu", "memory"), "cpu"),
        (lambda: hpa_on("memory"), ("memory",), "memory"),
        (lambda: hpa_on("cpu", "memory"), ("cpu", "memory"), "cpu and memory"),
        (lambda: ex.res("ScaledObject", ex.scaled_object("iris")), ("cpu",), "cpu"),
    ],
    ids=["hpa-cpu", "hpa-memory", "hpa-both", "scaledobject-cpu-trigger"],
)
def test_vpa_resizing_what_the_autoscaler_scales_on(autoscaler, vpa_resources, clash):
    stack = [
        ex.res("Deployment", ex.deployment("iris")),
        autoscaler(),
        ex.res("VPA", ex.vpa("iris", "Auto", vpa_resources)),
    ]
    [v] = check_vpa_disjoint(stack)
    assert (
        f"VerticalPodAutoscaler 'models/iris' (updateMode Auto) resizes the {clash} requests of "
        f"Deployment 'models/iris'" in v.message
    )
    assert f"scales it on {clash};" in v.message and "updateMode to Off" in v.message
    assert v.urn.endswith("::iris-vpa")


@pytest.mark.parametrize("mode", ["Initial", "Recreate", "InPlaceOrRecreate"])
def test_every_mode_but_off_resizes(mode):
    stack = [
        ex.res("Deployment", ex.deployment("iris")),
        hpa_on("cpu"),
        ex.res("VPA", ex.vpa("iris", mode)),
    ]
    assert len(check_vpa_disjoint(stack)) == 1
    stack[-1] = ex.res("VPA", ex.vpa("iris", "Off"))
    assert check_vpa_disjoint(stack) == []


def test_vpa_defaults_are_auto_on_cpu_and_memory():
    vpa = ex.vpa("iris")
    del vpa["spec"]["updatePolicy"], vpa["spec"]["resourcePolicy"]
    stack = [ex.res("Deployment", ex.deployment("iris")), hpa_on("cpu"), ex.res("VPA", vpa)]
    [v] = check_vpa_disjoint(stack)
    assert "(updateMode Auto) resizes the cpu requests" in v.message
    assert "Set the VPA's controlledResources to [memory]" in v.message


@pytest.mark.parametrize(
    "autoscaler, vpa",
    [
        (lambda: hpa_on("cpu"), lambda: ex.vpa("iris", "Auto", ("memory",))),
        (
            lambda: ex.res("ScaledObject", prometheus_only(ex.scaled_object("iris"))),
            lambda: ex.vpa("iris", "Auto", ("cpu", "memory")),
        ),
        (lambda: ex.res("HPA", ex.hpa("iris")), lambda: ex.vpa("iris")),
        (lambda: hpa_on("cpu"), lambda: ex.vpa("iris", "Off")),
    ],
    ids=["vpa-memory-hpa-cpu", "prometheus-only", "hpa-on-pods-metric", "vpa-off"],
)
def test_vpa_on_other_resources_passes(autoscaler, vpa):
    stack = [ex.res("Deployment", ex.deployment("iris")), autoscaler(), ex.res("VPA", vpa())]
    assert check_vpa_disjoint(stack) == []


def test_container_policies_decide_per_container():
    vpa = ex.vpa("iris")
    vpa["spec"]["resourcePolicy"]["containerPolicies"] = [
        {"containerName": "model-server", "mode": "Off"},
        {"containerName": "*", "controlledResources": ["cpu"]},
    ]
    stack = [ex.res("Deployment", ex.deployment("iris")), hpa_on("cpu"), ex.res("VPA", vpa)]
    assert check_vpa_disjoint(stack) == []  # the only container is left alone
    sidecar = ex.deployment("iris")
    sidecar["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": "p:1"})
    stack[0] = ex.res("Deployment", sidecar)
    assert len(check_vpa_disjoint(stack)) == 1  # the '*' policy resizes the sidecar's cpu


def test_vpa_and_autoscaler_of_different_workloads_pass():
    stack = [
        ex.res("Deployment", ex.deployment("iris")),
        ex.res("Deployment", ex.deployment("wine")),
        hpa_on("cpu", model="iris"),
        ex.res("VPA", ex.vpa("wine")),
    ]
    assert check_vpa_disjoint(stack) == []


ONE, VPA = "one-autoscaler-per-workload", "vpa-disjoint-from-autoscaler"
# Where a value may be unknown during preview, and the rule that must then hold its judgement.
UNKNOWN_PATHS = [
    ("ScaledObject", ("spec",), ONE),
    ("ScaledObject", ("spec", "scaleTargetRef"), ONE),
    ("ScaledObject", ("spec", "scaleTargetRef", "name"), ONE),
    ("ScaledObject", ("metadata", "namespace"), ONE),
    ("ScaledObject", ("spec", "minReplicaCount"), None),
    ("ScaledObject", ("spec", "maxReplicaCount"), None),
    ("ScaledObject", ("spec", "triggers"), None),
    ("ScaledObject", ("spec", "triggers", 0, "metricType"), None),
    ("ScaledObject", ("spec", "triggers", 0, "type"), None),
    ("ScaledObject", ("metadata", "annotations"), None),
    ("ScaledObject", ("spec", "advanced"), None),
    ("HPA", ("spec", "metrics"), None),
    ("HPA", ("spec", "metrics", 0, "resource", "name"), None),
    ("HPA", ("spec", "minReplicas"), None),
    ("VPA", ("spec",), VPA),
    ("VPA", ("spec", "targetRef", "name"), VPA),
    ("VPA", ("spec", "updatePolicy", "updateMode"), VPA),
    ("VPA", ("spec", "resourcePolicy", "containerPolicies"), VPA),
    ("VPA", ("spec", "resourcePolicy", "containerPolicies", 0, "controlledResources"), VPA),
]


def fighting_stack():
    """Everything the new rules catch at once: HPA + ScaledObject + VPA (cpu) on iris."""
    hpa = ex.hpa("iris", 2, 4)
    hpa["spec"]["metrics"] = [resource_metric("cpu")]
    return {
        "Deployment": ex.deployment("iris", replicas=2),
        "HPA": renamed(hpa, "iris-cpu"),
        "ScaledObject": ex.scaled_object("iris", 3, 6),
        "VPA": ex.vpa("iris"),
        "PDB": ex.pdb("iris"),
    }


def set_path(obj, path, value):
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


@pytest.mark.parametrize(
    "kind, path, quiet",
    UNKNOWN_PATHS,
    ids=[".".join(map(str, (kind, *path))) for kind, path, _ in UNKNOWN_PATHS],
)
def test_unknown_values_never_crash_a_stack_rule(kind, path, quiet):
    objects = fighting_stack()
    set_path(objects[kind], path, UNKNOWN)
    stack = [ex.res(k, props) for k, props in objects.items()]
    for rule in (r for r in RULES if r.kind == "stack"):
        found = rule.check(stack, rule.config())
        assert all("<unknown" not in v.message for v in found), rule.name
        if rule.name == quiet:
            assert found == [], rule.name


def test_unknown_scaledobject_target_is_not_judged():
    objects = fighting_stack()
    objects["ScaledObject"]["spec"]["scaleTargetRef"] = UNKNOWN
    del objects["HPA"]
    stack = [ex.res(k, props) for k, props in objects.items()]
    assert check_one_autoscaler(stack) == []
    objects["VPA"]["spec"]["updatePolicy"]["updateMode"] = UNKNOWN
    objects["HPA"] = fighting_stack()["HPA"]
    stack = [ex.res(k, props) for k, props in objects.items()]
    assert check_vpa_disjoint(stack) == []
