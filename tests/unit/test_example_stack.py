"""examples/team-stack: another project importing the components, run under mocks."""

from __future__ import annotations

import runpy

import yaml

from pulumi_harness import run_program


def test_example_project_declares_its_config(repo_root):
    project = yaml.safe_load((repo_root / "examples/team-stack/Pulumi.yaml").read_text())
    assert project["name"] == "team-fraud-scoring"
    assert set(project["config"]) == {"image", "domain", "gateway", "gatewayNamespace"}
    assert "../../components" in (repo_root / "examples/team-stack/requirements.txt").read_text()


def test_example_stack_builds_a_namespaced_model_with_canary_route(repo_root):
    graph = run_program(
        lambda: runpy.run_path(
            str(repo_root / "examples/team-stack/__main__.py"), run_name="__main__"
        ),
        project="team-fraud-scoring",
        stack="staging",
        config={"image": "registry.example.com/fraud/scorer:1.4.2", "domain": "fraud.example.com"},
    )
    service = graph.named("fraud-scorer")
    assert service.type == "mlplatform:k8s:MLModelService"
    kinds = sorted(r.type.split(":")[-1] for r in graph.children_of(service))
    assert kinds == [
        "Deployment",
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "Service",
        "ServiceAccount",
    ]

    canary = graph.named("fraud-scorer-canary-deployment").inputs
    container = canary["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/fraud/scorer:1.5.0-rc1"
    assert {"name": "MODEL_VERSION", "value": "1.5.0-rc1"} in container["env"]

    route = graph.named("fraud-scorer-route-httproute").inputs["spec"]
    assert route["hostnames"] == ["fraud-scorer.fraud.example.com"]
    assert (route["parentRefs"][0]["name"], route["parentRefs"][0]["namespace"]) == (
        "mlplatform",
        "mlplatform-gateway",
    )
    weights = {b["name"]: b["weight"] for b in route["rules"][0]["backendRefs"]}
    assert weights == {"fraud-scorer": 95, "fraud-scorer-canary": 5}
    # The team attaches to the platform's Gateway; it runs no gateway of its own.
    assert not graph.of_type("mlplatform:k8s:ModelGateway")
    assert graph.named("fraud-namespace").inputs["metadata"]["name"] == "team-fraud"
    # No platform resources leak into a team stack.
    assert not [
        r for r in graph.resources if r.type.startswith(("docker-build", "mlplatform:stack"))
    ]
