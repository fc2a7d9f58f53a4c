"""GPU pool, image, namespace, batch and quantity planning; happy-path cross checks."""

from __future__ import annotations

import pytest

from mlplatform.config import BatchJobConfig, GpuPoolConfig, ModelConfig, RegistryConfig
from mlplatform.core.quantity import cpu_cores, memory_bytes
from mlplatform.loader import parse_stack_config
from mlplatform.plan.batch import batch_command, plan_batch_job, plan_cron_job
from mlplatform.plan.checks import cross_check
from mlplatform.plan.gpu import (
    gpu_node_labels,
    local_node_names,
    merged_taints,
    plan_device_plugin,
    plan_local_node,
    plan_placement,
)
from mlplatform.plan.image import ModelFolder, copied_paths, foreign_copies, plan_image
from mlplatform.plan.namespaces import model_namespace_labels
from mlplatform.sources import content_hash, read_model_folders


def pool(**changes) -> GpuPoolConfig:
    return GpuPoolConfig.model_validate(
        {"name": "t4", "backend": "local", "nodeCount": 2, "gpusPerNode": 4, **changes}
    )


def test_kwok_node_offers_gpus_and_carries_taint_and_labels():
    node = plan_local_node(
        pool(gpuProduct="Tesla-T4", local={"cpu": "8", "memory": "32Gi"}), "t4-node-0"
    )
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    labels = node["metadata"]["labels"]
    assert (
        labels["mlplatform.io/gpu-pool"] == "t4" and labels["nvidia.com/gpu.product"] == "Tesla-T4"
    )
    assert labels["type"] == "kwok" and labels["kubernetes.io/hostname"] == "t4-node-0"
    assert node["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "t4", "effect": "NoSchedule"}
    ]
    for block in ("capacity", "allocatable"):
        assert node["status"][block] == {
            "cpu": "8",
            "memory": "32Gi",
            "pods": "110",
            "nvidia.com/gpu": "4",
        }


def test_local_nodes_are_named_after_the_pool():
    assert local_node_names(pool(nodeCount=3)) == ["t4-node-0", "t4-node-1", "t4-node-2"]


def test_placement_matches_the_node_taint_and_label():
    placement = plan_placement(pool())
    taint = plan_local_node(pool(), "n")["spec"]["taints"][0]
    toleration = placement.tolerations[0]
    assert (toleration["key"], toleration["value"], toleration["effect"]) == (
        taint["key"],
        taint["value"],
        taint["effect"],
    )
    assert placement.node_selector == {"mlplatform.io/gpu-pool": "t4"}
    assert gpu_node_labels(pool())["mlplatform.io/gpu-pool"] == "t4"
    assert placement.gpu_capacity == 8


def test_adopted_node_keeps_its_own_taints_but_not_controller_or_old_pool_ones():
    current = [
        {"key": "dedicated", "value": "ml", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute", "timeAdded": "x"},
        {"key": "nvidia.com/gpu", "value": "old-pool", "effect": "NoSchedule"},
    ]
    assert merged_taints(current, "a100") == [
        {"key": "dedicated", "value": "ml", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "value": "a100", "effect": "NoSchedule"},
    ]


def test_device_plugin_runs_only_on_the_pool_and_tolerates_it():
    spec = plan_device_plugin(pool(), "nvcr.io/nvidia/k8s-device-plugin:v0.17.1")
    pod = spec["template"]["spec"]
    assert pod["nodeSelector"] == {"mlplatform.io/gpu-pool": "t4"}
    assert pod["tolerations"][0]["value"] == "t4"
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


@pytest.fixture()
def models_root(tmp_path):
    root = tmp_path / "models"
    for folder in ("serving", "iris", "vision"):
        (root / folder).mkdir(parents=True)
        (root / folder / "Dockerfile").write_text(f"FROM scratch\n# {folder}\n")
    (root / "serving" / "app.py").write_text("print('v1')\n")
    return root


def test_content_hash_tracks_the_model_and_the_shared_runtime(models_root):
    first = content_hash(models_root, "iris")
    assert first == content_hash(models_root, "iris"), "deterministic"
    assert first != content_hash(models_root, "vision")
    (models_root / "vision" / "weights.bin").write_bytes(b"\x00\x01")
    assert first == content_hash(models_root, "iris"), "another model's files do not matter"
    (models_root / "serving" / "app.py").write_text("print('v2')\n")
    assert first != content_hash(models_root, "iris"), "the shared runtime does"


def test_content_hash_covers_only_what_a_build_reads(models_root):
    before = content_hash(models_root, "iris")
    (models_root / "README.md").write_text("how to add a model\n")
    assert content_hash(models_root, "iris") == before, "a README edit must not roll out models"
    (models_root / ".dockerignore").write_text("**/__pycache__\n")
    assert content_hash(models_root, "iris") != before, ".dockerignore decides what is copied"


def test_content_hash_ignores_caches(models_root):
    before = content_hash(models_root, "iris")
    (models_root / "iris" / "__pycache__").mkdir()
    (models_root / "iris" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    (models_root / "iris" / "model.pyc").write_bytes(b"junk")
    assert content_hash(models_root, "iris") == before


def test_image_is_local_without_registry_and_pushed_with_one(models_root):
    local = plan_image(models_root, "iris", "iris", RegistryConfig(), "abc123")
    assert local.ref == "mlplatform/iris:abc123" and not local.push
    assert local.build_args == {"MODEL_SOURCE": "iris"}
    assert local.context == str(models_root) and local.dockerfile == str(
        models_root / "iris" / "Dockerfile"
    )
    pushed = plan_image(
        models_root,
        "iris",
        "iris",
        RegistryConfig(server="registry.example.com:5000", repository="team/ml"),
        "abc123",
    )
    assert pushed.ref == "registry.example.com:5000/team/ml/iris:abc123" and pushed.push


def test_copied_paths_are_the_context_sources_of_copy_and_add():
    dockerfile = (
        "FROM scratch AS source\n"
        "ARG MODEL_SOURCE\n"
        "COPY ${MODEL_SOURCE}/ /\n"
        "COPY --chown=1:1 serving/ iris/model_code.py /src/\n"
        "COPY --from=source / /src/\n"
        "add vision/weights.bin /w\n"
    )
    assert copied_paths(dockerfile) == [
        (3, "${MODEL_SOURCE}/"),
        (4, "serving/"),
        (4, "iris/model_code.py"),
        (6, "vision/weights.bin"),
    ]
    assert foreign_copies("vision", dockerfile, {"iris", "vision"}) == [(4, "iris/model_code.py")]


def test_the_repository_models_copy_only_their_own_folder(repo_root):
    folders = read_model_folders(repo_root / "models")
    assert {"ml_model_1", "ml_model_2"} <= set(folders)
    for name, folder in folders.items():
        assert foreign_copies(name, folder.dockerfile, set(folders)) == [], name
        assert any(
            path.startswith("${MODEL_SOURCE}") for _, path in copied_paths(folder.dockerfile)
        )


def test_read_model_folders_lists_models_not_the_shared_runtime(models_root):
    folders = read_model_folders(models_root)
    assert set(folders) == {"iris", "vision"}
    assert folders["iris"] == ModelFolder("iris", "FROM scratch\n# iris\n")


def test_model_namespaces_enforce_pod_security():
    labels = model_namespace_labels("restricted", "models")
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert labels["mlplatform.io/role"] == "models"


def job(**changes) -> BatchJobConfig:
    return BatchJobConfig.model_validate(
        {
            "name": "iris-nightly",
            "model": "iris",
            "input": "/data/in.csv",
            "output": "/data/out.jsonl",
            "data": {"claimName": "datasets"},
            **changes,
        }
    )


def test_batch_job_runs_the_server_image_over_the_dataset():
    model = ModelConfig(name="iris", framework="sklearn")
    spec = plan_batch_job(
        job(), model, image="img:1", service_account="iris-nightly", placement=None
    )
    container = spec["template"]["spec"]["containers"][0]
    assert (
        container["command"]
        == batch_command(job())
        == [
            "python",
            "-m",
            "serving.batch",
            "--input",
            "/data/in.csv",
            "--output",
            "/data/out.jsonl",
        ]
    )
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "datasets"}} in spec["template"][
        "spec"
    ]["volumes"]
    labels = spec["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "batch-inference", (
        "not scraped as a model server"
    )
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (2, 3600)


def test_batch_job_on_gpu_model_gets_placement():
    model = ModelConfig.model_validate(
        {"name": "iris", "framework": "sklearn", "gpuPool": "t4", "resources": {"gpus": 1}}
    )
    spec = plan_batch_job(
        job(), model, image="i", service_account="s", placement=plan_placement(pool())
    )
    assert spec["template"]["spec"]["tolerations"][0]["value"] == "t4"
    cpu_only = plan_batch_job(
        job(resources={"gpus": 0}),
        model,
        image="i",
        service_account="s",
        placement=plan_placement(pool()),
    )
    assert "tolerations" not in cpu_only["template"]["spec"]


def test_cron_job_never_overlaps_runs():
    spec = plan_cron_job(job(schedule="0 2 * * *"), {"template": {}}, {"a": "b"})
    assert spec["schedule"] == "0 2 * * *" and spec["concurrencyPolicy"] == "Forbid"
    assert spec["jobTemplate"] == {"metadata": {"labels": {"a": "b"}}, "spec": {"template": {}}}


@pytest.mark.parametrize("text, cores", [("250m", 0.25), ("2", 2.0), ("0.5", 0.5), ("1500m", 1.5)])
def test_cpu_quantities(text, cores):
    assert cpu_cores(text) == cores


@pytest.mark.parametrize(
    "text, size", [("512Mi", 512 * 2**20), ("2Gi", 2 * 2**30), ("1G", 10**9), ("100", 100)]
)
def test_memory_quantities(text, size):
    assert memory_bytes(text) == size


@pytest.mark.parametrize("text", ["", "1.5.2", "2 cores", "-1", "1Mi"])
def test_bad_cpu_quantities(text):
    with pytest.raises(ValueError, match="CPU quantity"):
        cpu_cores(text)


def test_consistent_config_has_no_issues():
    config = parse_stack_config(
        {
            "models": [
                {
                    "name": "iris",
                    "framework": "sklearn",
                    "autoscaling": {"minReplicas": 3},
                    "canary": {"version": "v2"},
                },
                {
                    "name": "vision",
                    "framework": "tensorflow",
                    "gpuPool": "t4",
                    "resources": {"gpus": 1},
                    "autoscaling": {
                        "minReplicas": 2,
                        "maxReplicas": 6,
                        "signals": {"cpu": 70},
                    },
                    "vpa": {"mode": "auto", "controlledResources": ["memory"]},
                },
            ],
            "gpuPools": [{"name": "t4", "backend": "local", "nodeCount": 2, "gpusPerNode": 4}],
        },
        "unit",
    )
    assert cross_check(config, "unit") == []
