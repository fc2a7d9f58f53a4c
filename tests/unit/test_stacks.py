"""Both stacks via the real __main__.py and Pulumi.<stack>.yaml, under mocks; graph snapshots."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from pulumi.runtime import rpc

import mlplatform.gpu_node_pool as gpu_node_pool
from conftest import stack_file_config
from mlplatform.config.errors import ConfigError
from mlplatform.gpu_backends import NodeInfo
from pulumi_harness import Graph, run_program

SNAPSHOTS = Path(__file__).parent / "snapshots"
MONITORING = "mlplatform:monitoring:MonitoringStack"


class ClusterNodes:
    """Stands in for the cluster the prod GPU pool adopts nodes from."""

    def __init__(self, *_args):
        pass

    def list_nodes(self, selector):
        assert selector == {"node.kubernetes.io/instance-type": "p4d.24xlarge"}
        return [NodeInfo("gpu-node-a"), NodeInfo("gpu-node-b")]

    def get_node(self, name):
        return NodeInfo(name)


def run_stack(project_root: Path, stack: str, config: dict | None = None, **kwargs) -> Graph:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gpu_node_pool, "KubernetesNodeReader", ClusterNodes)
        patch.setenv("MLP_GATEWAY_API_CRDS", str(project_root / "gateway-api"))
        for addon in ("keda", "vpa"):
            for part in ("crds", "rbac"):
                patch.setenv(
                    f"MLP_{addon.upper()}_{part.upper()}", str(project_root / addon / part)
                )
        return run_program(
            lambda: runpy.run_path(str(project_root / "__main__.py"), run_name="__main__"),
            stack=stack,
            config=stack_file_config(stack) if config is None else config,
            **kwargs,
        )


@pytest.fixture(scope="module")
def graphs(project_root) -> dict[str, Graph]:
    return {stack: run_stack(project_root, stack) for stack in ("dev", "prod")}


def platform_snapshot(graph: Graph) -> str:
    """The graph without MonitoringStack's children, which tests/unit/test_monitoring* snapshot."""
    monitoring = {r.key for r in graph.resources if r.type == MONITORING}
    inside = set(monitoring)
    changed = True
    while changed:
        changed = False
        for resource in graph.resources:
            if resource.parent in inside and resource.key not in inside:
                inside.add(resource.key)
                changed = True
    kept = Graph([r for r in graph.resources if r.key not in inside or r.key in monitoring])
    return kept.snapshot()


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_resource_graph_matches_snapshot(graphs, stack, update_snapshots):
    path = SNAPSHOTS / f"{stack}.txt"
    current = platform_snapshot(graphs[stack])
    if update_snapshots:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(current)
    assert path.exists(), (
        f"no snapshot yet: run pytest with --update-snapshots and commit {path.name}"
    )
    assert current == path.read_text(), (
        f"resource graph of {stack} changed; if intended, rerun with --update-snapshots and review "
        f"the diff of {path.relative_to(path.parents[3])}"
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_kubernetes_resource_uses_the_explicit_provider(graphs, stack):
    kubernetes = [
        r
        for r in graphs[stack].resources
        if r.custom and r.type.startswith("kubernetes:") and not r.type.startswith("pulumi:")
    ]
    assert kubernetes
    stray = [
        r.key for r in kubernetes if "pulumi:providers:kubernetes::kubernetes" not in r.provider
    ]
    assert stray == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_model_has_deployment_service_autoscaler_and_policy(graphs, stack):
    graph = graphs[stack]
    for model in ("ml-model-1", "ml-model-2"):
        children = {r.name for r in graph.children_of(graph.named(f"mlplatform-model-{model}"))}
        prefix = f"mlplatform-model-{model}"
        assert {
            f"{prefix}-deployment",
            f"{prefix}-service",
            f"{prefix}-netpol",
            f"{prefix}-sa",
        } <= children
        # exactly one autoscaler owns the stable Deployment's scale
        assert len({f"{prefix}-hpa", f"{prefix}-scaledobject"} & children) == 1


def test_prometheus_signals_compile_to_scaled_objects_reading_the_stacks_prometheus(graphs):
    graph = graphs["prod"]
    (scaled,) = [
        r
        for r in graph.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
        if r.name == "mlplatform-model-ml-model-2-scaledobject"
    ]
    triggers = {t.get("name", t["type"]): t for t in scaled.inputs["spec"]["triggers"]}
    # prod routes ml-model-2 through its own gateway: in-flight is read there too
    assert set(triggers) == {"gpu-utilization", "in-flight", "in-flight-gateway"}
    address = triggers["in-flight"]["metadata"]["serverAddress"]
    assert address == "http://monitoring-prometheus.monitoring.svc:9090"
    assert 'namespace="ml-prod"' in triggers["in-flight"]["metadata"]["query"]
    gateway = triggers["in-flight-gateway"]["metadata"]
    assert 'service=~"ml-prod-ml-model-2-http-8080@kubernetesgateway|' in gateway["query"]
    assert gateway["threshold"] == triggers["in-flight"]["metadata"]["threshold"]
    # ...and Prometheus scrapes the gateway's pods for it
    (config_map,) = [
        r
        for r in graph.of_type("kubernetes:core/v1:ConfigMap")
        if "prometheus.yml" in (r.inputs.get("data") or {})
    ]
    assert "job_name: gateway" in config_map.inputs["data"]["prometheus.yml"]


def test_dev_simulates_gpus_and_pulls_by_digest_from_the_local_registry(graphs):
    graph = graphs["dev"]
    nodes = graph.of_type("kubernetes:core/v1:Node")
    assert len(nodes) == 2 and not graph.of_type("kubernetes:core/v1:NodePatch")
    assert all(n.inputs["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)
    assert all(
        n.inputs["metadata"]["labels"]["node.mlplatform.io/kind"] == "simulated" for n in nodes
    )
    images = graph.of_type("docker-build:index:Image")
    assert len(images) == 2 and all(i.inputs["push"] is True for i in images)
    for model in ("ml-model-1", "ml-model-2"):
        pod = graph.named(f"mlplatform-model-{model}-deployment").inputs["spec"]["template"]["spec"]
        # The simulated GPU pool runs no container: dev's models stay off it.
        assert "tolerations" not in pod, model
        image = pod["containers"][0]["image"]
        assert image.startswith(f"localhost:5001/mlplatform/{model}@sha256:"), image
    assert graph.of_type(MONITORING), "monitoring is wired"
    assert graph.named("mlplatform-batch-ml-model-1-backfill-job").type == "kubernetes:batch/v1:Job"


def test_prod_is_highly_available_with_tls_and_real_gpu_nodes(graphs):
    graph = graphs["prod"]
    for deployment in graph.of_type("kubernetes:apps/v1:Deployment"):
        if (
            deployment.parent.startswith("mlplatform:k8s:MLModelService")
            and "canary" not in deployment.name
        ):
            assert deployment.inputs["spec"]["replicas"] >= 3, deployment.name
    pdbs = graph.of_type("kubernetes:policy/v1:PodDisruptionBudget")
    assert sorted(p.inputs["metadata"]["name"] for p in pdbs) == [
        "ml-model-1",
        "ml-model-2",
        "mlplatform-gateway",
    ]
    assert not graph.of_type("kubernetes:networking.k8s.io/v1:Ingress"), "prod is on Gateway API"
    gateway = graph.named("mlplatform-gateway-gateway").inputs
    https = next(x for x in gateway["spec"]["listeners"] if x["protocol"] == "HTTPS")
    assert https["hostname"] == "*.ml.example.com"
    assert https["tls"]["certificateRefs"] == [{"name": "ml-example-com-tls"}]
    assert gateway["metadata"]["annotations"] == {
        "cert-manager.io/cluster-issuer": "letsencrypt-prod"
    }
    for kind in ("HTTPRoute", "GRPCRoute"):
        routes = graph.of_type(f"kubernetes:gateway.networking.k8s.io/v1:{kind}")
        assert sorted(r.inputs["spec"]["hostnames"][0] for r in routes) == [
            "ml-model-1.ml.example.com",
            "ml-model-2.ml.example.com",
        ]
    # host routing: the host alone tells the models' gRPC calls apart, no metadata needed
    grpc = graph.of_type("kubernetes:gateway.networking.k8s.io/v1:GRPCRoute")
    assert all("headers" not in r.inputs["spec"]["rules"][0]["matches"][0] for r in grpc)
    patches = graph.of_type("kubernetes:core/v1:NodePatch")
    assert sorted(p.inputs["metadata"]["name"] for p in patches) == ["gpu-node-a", "gpu-node-b"]
    assert graph.of_type("kubernetes:apps/v1:DaemonSet")
    assert all(i.inputs["push"] is True for i in graph.of_type("docker-build:index:Image"))
    assert graph.named("mlplatform-ingress-namespace").type == "kubernetes:core/v1:Namespace"
    assert (
        graph.named("mlplatform-batch-ml-model-1-nightly-cronjob").type
        == "kubernetes:batch/v1:CronJob"
    )
    limits = graph.named("mlplatform-model-ml-model-2-deployment").inputs["spec"]["template"][
        "spec"
    ]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"}


def test_bad_config_fails_before_any_resource_is_registered(project_root):
    config = stack_file_config("dev")
    config["mlplatform:models"][0]["framework"] = "xgboost"
    graph = run_stack(project_root, "dev", config, catch=ConfigError)
    assert isinstance(graph.error, ConfigError)
    assert graph.error.paths == ["mlplatform:models[0].framework"]
    assert graph.resources == []


def test_registry_user_needs_the_secret_password(project_root):
    config = stack_file_config("dev")
    config["mlplatform:registry"] = {"server": "registry.example.com", "username": "ci"}
    graph = run_stack(project_root, "dev", config, catch=ConfigError)
    assert graph.error is not None and graph.error.paths == ["mlplatform:registryPassword"]
    assert "--secret mlplatform:registryPassword" in str(graph.error)
    assert graph.resources == []


def test_registry_password_reaches_the_build_only_as_a_secret(project_root):
    config = stack_file_config("dev")
    config["mlplatform:registry"] = {"server": "registry.example.com", "username": "ci"}
    config["mlplatform:registryPassword"] = "s3cret"
    graph = run_stack(project_root, "dev", config, secret_keys=["mlplatform:registryPassword"])
    for image in graph.of_type("docker-build:index:Image"):
        registries = image.inputs["registries"]
        assert registries[rpc._special_sig_key] == rpc._special_secret_sig
        assert registries["value"][0]["password"] == "s3cret"
