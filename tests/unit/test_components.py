"""Each component under Pulumi mocks: children, names, parents, wiring of inputs and outputs."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
from pulumi.runtime import rpc

from mlplatform import (
    AutoscalingConfig,
    BatchInference,
    BatchInferenceArgs,
    BatchJobConfig,
    GpuNodePool,
    GpuNodePoolArgs,
    GpuPoolConfig,
    IngressConfig,
    MLModelService,
    MLModelServiceArgs,
    ModelConfig,
    ModelImage,
    ModelImageArgs,
    ModelIngress,
    ModelIngressArgs,
    ModelNamespace,
    ModelNamespaceArgs,
)
from mlplatform.config import ImagesConfig, RegistryConfig
from mlplatform.gpu_backends import GpuPoolError, NodeInfo
from mlplatform.plan.gpu import plan_placement
from pulumi_harness import capture, run_program


def model(**changes) -> ModelConfig:
    return ModelConfig.model_validate({"name": "iris", "framework": "sklearn", **changes})


def kinds(graph, parent_name: str) -> list[str]:
    parent = next(
        r for r in graph.resources if r.name == parent_name and r.type.startswith("mlplatform:")
    )
    return sorted(r.type.rsplit(":", 1)[-1] for r in graph.children_of(parent))


def test_model_service_with_one_replica_has_no_pdb():
    outputs: dict = {}

    def program():
        service = MLModelService(
            "iris", MLModelServiceArgs(model=model(), namespace="ml", image="img:1")
        )
        return capture({"url": service.cluster_url, "canary": service.canary_service_name}, outputs)

    graph = run_program(program)
    assert graph.named("iris").type == "mlplatform:k8s:MLModelService"
    assert kinds(graph, "iris") == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "Service",
        "ServiceAccount",
    ]
    assert outputs == {"url": "http://iris.ml.svc:8080", "canary": None}


def test_a_canary_with_two_replicas_keeps_one_through_a_drain():
    graph = run_program(
        lambda: MLModelService(
            "iris",
            MLModelServiceArgs(
                model=model(canary={"version": "v2", "weight": 20, "replicas": 2}),
                namespace="ml",
                image="img:1",
            ),
        )
    )
    pdb = graph.named("iris-canary-pdb").inputs
    assert pdb["metadata"]["name"] == "iris-canary"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "iris-canary"


def test_model_service_children_and_wiring_for_ha_and_canary():
    scaling = AutoscalingConfig(min_replicas=3, max_replicas=9)
    args = MLModelServiceArgs(
        model=model(canary={"version": "v2", "replicas": 2}),
        namespace="ml",
        image="img:1",
        canary_image="img:2",
        autoscaling=scaling,
    )
    graph = run_program(lambda: MLModelService("iris", args))
    names = sorted(r.name for r in graph.children_of(graph.named("iris")))
    assert names == [
        "iris-canary-deployment",
        "iris-canary-pdb",
        "iris-canary-service",
        "iris-deployment",
        "iris-hpa",
        "iris-netpol",
        "iris-pdb",
        "iris-sa",
        "iris-service",
    ]

    stable = graph.named("iris-deployment").inputs
    assert stable["metadata"] == {
        "name": "iris",
        "namespace": "ml",
        "labels": stable["metadata"]["labels"],
    }
    assert stable["spec"]["replicas"] == 3
    pod = stable["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "img:1"
    assert pod["serviceAccountName"] == "iris"

    canary = graph.named("iris-canary-deployment").inputs
    assert canary["metadata"]["name"] == "iris-canary" and canary["spec"]["replicas"] == 2
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"] == "img:2"

    service = graph.named("iris-service").inputs["spec"]
    assert service["selector"] == {
        "app.kubernetes.io/name": "iris",
        "app.kubernetes.io/instance": "iris",
    }
    assert service["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"},
        # The server's Open Inference Protocol gRPC port; gateways speak cleartext HTTP/2 to it.
        {
            "name": "grpc",
            "port": 8081,
            "targetPort": "grpc",
            "protocol": "TCP",
            "appProtocol": "kubernetes.io/h2c",
        },
    ]
    assert (
        graph.named("iris-canary-service").inputs["spec"]["selector"]["app.kubernetes.io/instance"]
        == "iris-canary"
    )

    hpa = graph.named("iris-hpa").inputs["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 9)
    assert hpa["scaleTargetRef"]["name"] == "iris"
    assert graph.named("iris-pdb").inputs["spec"]["minAvailable"] == 2
    assert graph.named("iris-sa").inputs["automountServiceAccountToken"] is False


def test_model_service_vpa_is_a_custom_resource():
    graph = run_program(
        lambda: MLModelService(
            "iris",
            MLModelServiceArgs(model=model(vpa={"mode": "off"}), namespace="ml", image="img:1"),
        )
    )
    vpa = graph.named("iris-vpa")
    assert vpa.type == "kubernetes:autoscaling.k8s.io/v1:VerticalPodAutoscaler"
    assert vpa.inputs["spec"]["updatePolicy"]["updateMode"] == "Off"


def test_model_service_refuses_gpus_without_placement():
    with pytest.raises(ValueError, match="requests GPUs; pass the GpuNodePool's placement"):
        MLModelServiceArgs(
            model=model(gpuPool="t4", resources={"gpus": 1}), namespace="ml", image="i"
        )


def test_local_gpu_pool_creates_kwok_nodes_and_outputs_placement():
    outputs: dict = {}
    config = GpuPoolConfig.model_validate(
        {"name": "t4", "backend": "local", "nodeCount": 2, "gpusPerNode": 4}
    )

    def program():
        pool = GpuNodePool("gpus", GpuNodePoolArgs(pool=config))
        return capture(
            {
                "nodes": pool.node_names,
                "capacity": pool.gpu_capacity,
                "tolerations": pool.tolerations,
                "selector": pool.node_selector,
            },
            outputs,
        )

    graph = run_program(program)
    nodes = graph.of_type("kubernetes:core/v1:Node")
    assert [n.name for n in nodes] == ["gpus-node-0", "gpus-node-1"]
    assert all(n.parent == "mlplatform:k8s:GpuNodePool::gpus" for n in nodes)
    assert nodes[0].inputs["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    assert outputs["nodes"] == ["t4-node-0", "t4-node-1"] and outputs["capacity"] == 8
    assert outputs["selector"] == {"mlplatform.io/gpu-pool": "t4"}
    assert outputs["tolerations"][0]["value"] == "t4"


class FakeReader:
    def __init__(self, nodes: list[NodeInfo]):
        self.nodes = {n.name: n for n in nodes}
        self.selectors: list[dict] = []

    def list_nodes(self, selector):
        self.selectors.append(selector)
        return list(self.nodes.values())

    def get_node(self, name):
        return self.nodes.get(name)


def test_existing_gpu_pool_patches_selected_nodes_and_runs_device_plugin():
    reader = FakeReader(
        [
            NodeInfo("gpu-a", ({"key": "dedicated", "value": "ml", "effect": "NoSchedule"},)),
            NodeInfo("gpu-b"),
        ]
    )
    config = GpuPoolConfig.model_validate(
        {
            "name": "a100",
            "backend": "existing",
            "nodeCount": 2,
            "gpusPerNode": 8,
            "existing": {"nodeSelector": {"node.kubernetes.io/instance-type": "p4d.24xlarge"}},
        }
    )
    graph = run_program(
        lambda: GpuNodePool("a100", GpuNodePoolArgs(pool=config, node_reader=reader))
    )
    assert reader.selectors == [{"node.kubernetes.io/instance-type": "p4d.24xlarge"}]
    patch = graph.named("a100-gpu-a")
    assert patch.type == "kubernetes:core/v1:NodePatch"
    assert patch.inputs["metadata"]["labels"]["mlplatform.io/gpu-pool"] == "a100"
    assert patch.inputs["spec"]["taints"] == [
        {"key": "dedicated", "value": "ml", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "value": "a100", "effect": "NoSchedule"},
    ]
    plugin = graph.named("a100-device-plugin")
    assert plugin.type == "kubernetes:apps/v1:DaemonSet"
    assert plugin.inputs["metadata"]["namespace"] == "kube-system"
    assert not graph.of_type("kubernetes:core/v1:Node"), "real nodes are never created"


def test_existing_gpu_pool_fails_when_selector_count_differs():
    config = GpuPoolConfig.model_validate(
        {
            "name": "a100",
            "backend": "existing",
            "nodeCount": 3,
            "existing": {"nodeSelector": {"gpu": "yes"}},
        }
    )
    with pytest.raises(GpuPoolError, match=r"matches 1 node\(s\) \(gpu-a\) but nodeCount is 3"):
        run_program(
            lambda: GpuNodePool(
                "a100", GpuNodePoolArgs(pool=config, node_reader=FakeReader([NodeInfo("gpu-a")]))
            )
        )


def test_existing_gpu_pool_explains_an_unreachable_cluster():
    class Unreachable:
        def list_nodes(self, selector):
            raise ConnectionRefusedError("connection refused")

    config = GpuPoolConfig.model_validate(
        {
            "name": "a100",
            "backend": "existing",
            "nodeCount": 1,
            "existing": {"nodeSelector": {"gpu": "yes"}},
        }
    )
    with pytest.raises(
        GpuPoolError, match="cannot read its nodes from the cluster .*connection refused"
    ):
        run_program(
            lambda: GpuNodePool("a100", GpuNodePoolArgs(pool=config, node_reader=Unreachable()))
        )


def test_existing_gpu_pool_fails_on_unknown_node_name():
    config = GpuPoolConfig.model_validate(
        {"name": "a100", "backend": "existing", "existing": {"nodeNames": ["gpu-z"]}}
    )
    with pytest.raises(GpuPoolError, match="node 'gpu-z' from nodeNames does not exist"):
        run_program(
            lambda: GpuNodePool("a100", GpuNodePoolArgs(pool=config, node_reader=FakeReader([])))
        )


@pytest.fixture()
def models_root(tmp_path) -> Path:
    for folder in ("serving", "ml_model_1"):
        (tmp_path / "models" / folder).mkdir(parents=True)
    (tmp_path / "models" / "ml_model_1" / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path / "models"


def test_model_image_is_loaded_locally_without_registry(models_root):
    outputs: dict = {}

    def program():
        image = ModelImage(
            "img", ModelImageArgs(models_root=models_root, source="ml_model_1", image_name="iris")
        )
        return capture({"ref": image.ref, "tag": image.tag, "pushed": image.pushed}, outputs)

    graph = run_program(program)
    build = graph.named("img-image")
    assert (
        build.type == "docker-build:index:Image"
        and build.parent == "mlplatform:docker:ModelImage::img"
    )
    assert build.inputs["push"] is False
    assert [list(e) for e in build.inputs["exports"]] == [["docker"]], (
        "loaded into the local daemon"
    )
    assert build.inputs["context"] == {"location": str(models_root)}
    assert build.inputs["dockerfile"] == {
        "location": str(models_root / "ml_model_1" / "Dockerfile")
    }
    assert build.inputs["network"] == "host"
    assert outputs["ref"] == f"mlplatform/iris:{outputs['tag']}" and outputs["pushed"] is False
    assert build.inputs["tags"] == [outputs["ref"]]


def test_model_image_pushes_with_registry_credentials(models_root):
    def program():
        ModelImage(
            "img",
            ModelImageArgs(
                models_root=models_root,
                source="ml_model_1",
                image_name="iris",
                registry=RegistryConfig(server="registry.example.com", username="ci"),
                registry_password=pulumi.Output.secret("s3cret"),
                build=ImagesConfig(platform="linux/amd64"),
            ),
        )

    build = run_program(program).named("img-image").inputs
    assert build["push"] is True and "exports" not in build
    assert build["tags"][0].startswith("registry.example.com/mlplatform/iris:")
    # The password is a secret, so the engine receives the whole registries list as a secret.
    registries = build["registries"]
    assert registries[rpc._special_sig_key] == rpc._special_secret_sig
    assert registries["value"] == [
        {"address": "registry.example.com", "username": "ci", "password": "s3cret"}
    ]
    assert build["platforms"] == ["linux/amd64"]


def test_model_routes_are_an_httproute_and_a_grpcroute_with_weighted_stable_and_canary_backends():
    outputs: dict = {}

    def program():
        route = ModelIngress(
            "iris",
            ModelIngressArgs(
                model=model(canary={"version": "v2", "weight": 30}),
                ingress=IngressConfig(routing="path", gateway={"listener": "http"}),
                namespace="ml",
            ),
        )
        return capture({"url": route.url, "grpc": route.grpc_metadata}, outputs)

    graph = run_program(program)
    route, grpc = graph.children_of(graph.named("iris"))
    assert route.type == "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
    spec = route.inputs["spec"]
    parent = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": "mlplatform",
        "namespace": "mlplatform-gateway",
        "sectionName": "http",
    }
    assert spec["parentRefs"] == [parent]
    # gRPC: the protocol's service, this model's calls told apart by their metadata (every
    # model serves the same service), to the gRPC port, with the same weights
    assert grpc.type == "kubernetes:gateway.networking.k8s.io/v1:GRPCRoute"
    assert grpc.inputs["metadata"]["name"] == "iris"
    assert grpc.inputs["spec"] == {
        "parentRefs": [parent],
        "rules": [
            {
                "matches": [
                    {
                        "method": {"type": "Exact", "service": "inference.GRPCInferenceService"},
                        "headers": [{"type": "Exact", "name": "mlplatform-model", "value": "iris"}],
                    }
                ],
                "backendRefs": [
                    {"name": "iris", "port": 8081, "weight": 70},
                    {"name": "iris-canary", "port": 8081, "weight": 30},
                ],
            }
        ],
    }
    (rule,) = spec["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/models/iris"}}]
    assert rule["filters"][0]["urlRewrite"]["path"]["replacePrefixMatch"] == "/"
    assert rule["backendRefs"] == [
        {"name": "iris", "port": 8080, "weight": 70},
        {"name": "iris-canary", "port": 8080, "weight": 30},
    ]
    assert "hostnames" not in spec
    assert outputs == {
        "url": "http://<gateway-address>/models/iris",
        "grpc": {"mlplatform-model": "iris"},
    }


def test_plain_ingress_with_nginx_canary_creates_twin_ingresses():
    outputs: dict = {}

    def program():
        route = ModelIngress(
            "iris",
            ModelIngressArgs(
                model=model(canary={"version": "v2", "weight": 30}),
                ingress=IngressConfig(
                    api="ingress", controller="nginx", routing="host", domain="ml.example.com"
                ),
                namespace="ml",
            ),
        )
        return capture({"url": route.url, "host": route.host, "grpc": route.grpc_metadata}, outputs)

    graph = run_program(program)
    # no GRPCRoute: an Ingress has no gRPC semantics of its own
    assert sorted(r.name for r in graph.children_of(graph.named("iris"))) == [
        "iris-canary-ingress",
        "iris-ingress",
    ]
    canary = graph.named("iris-canary-ingress").inputs
    assert canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "30"
    backend = canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    assert backend == "iris-canary"
    assert outputs == {
        "url": "http://iris.ml.example.com/",
        "host": "iris.ml.example.com",
        "grpc": None,
    }


def test_batch_inference_one_off_job_does_not_block_up():
    job = BatchJobConfig.model_validate(
        {
            "name": "iris-backfill",
            "model": "iris",
            "input": "/data/in.csv",
            "output": "/data/out.jsonl",
            "data": {"claimName": "datasets", "create": True, "size": "5Gi"},
        }
    )
    graph = run_program(
        lambda: BatchInference(
            "backfill", BatchInferenceArgs(job=job, model=model(), namespace="ml", image="img:1")
        )
    )
    assert kinds(graph, "backfill") == ["Job", "PersistentVolumeClaim", "ServiceAccount"]
    created = graph.named("backfill-job").inputs
    assert created["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert graph.named("backfill-data").inputs["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_batch_inference_with_schedule_is_a_cron_job_on_the_gpu_pool():
    job = BatchJobConfig.model_validate(
        {
            "name": "vision-nightly",
            "model": "vision",
            "input": "/data/in",
            "output": "/data/out",
            "data": {"claimName": "d"},
            "schedule": "@daily",
        }
    )
    gpu_model = ModelConfig.model_validate(
        {"name": "vision", "framework": "tensorflow", "gpuPool": "t4", "resources": {"gpus": 1}}
    )
    placement = plan_placement(GpuPoolConfig(name="t4", backend="local", node_count=1))
    graph = run_program(
        lambda: BatchInference(
            "nightly",
            BatchInferenceArgs(
                job=job, model=gpu_model, namespace="ml", image="img:1", placement=placement
            ),
        )
    )
    assert kinds(graph, "nightly") == ["CronJob", "ServiceAccount"]
    pod = graph.named("nightly-cronjob").inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["tolerations"][0]["value"] == "t4"


def test_batch_inference_rejects_a_mismatched_model():
    job = BatchJobConfig.model_validate(
        {
            "name": "x",
            "model": "other",
            "input": "/data/a",
            "output": "/data/b",
            "data": {"claimName": "d"},
        }
    )
    with pytest.raises(ValueError, match="runs model 'other', not 'iris'"):
        run_program(
            lambda: BatchInference(
                "x", BatchInferenceArgs(job=job, model=model(), namespace="ml", image="i")
            )
        )


def test_model_namespace_is_restricted_and_default_deny():
    outputs: dict = {}

    def program():
        namespace = ModelNamespace("models", ModelNamespaceArgs(name="ml"))
        return capture({"name": namespace.name}, outputs)

    graph = run_program(program)
    labels = graph.named("models-namespace").inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    deny = graph.named("models-default-deny").inputs
    assert deny["metadata"]["namespace"] == "ml" and deny["spec"]["podSelector"] == {}
    assert outputs == {"name": "ml"}
