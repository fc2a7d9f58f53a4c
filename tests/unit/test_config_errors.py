"""Bad configs: each rejected with one ConfigError naming stack, key path, value, allowed, fix."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from mlplatform.config.errors import ConfigError
from mlplatform.loader import parse_stack_config

STACK = "qa"


def base() -> dict[str, Any]:
    """A valid config touching every area, mutated by each case below."""
    return {
        "mlplatform:models": [
            {"name": "iris", "framework": "sklearn"},
            {
                "name": "vision",
                "framework": "tensorflow",
                "gpuPool": "t4",
                "resources": {"gpus": 1},
            },
        ],
        "mlplatform:gpuPools": [
            {"name": "t4", "backend": "local", "nodeCount": 2, "gpusPerNode": 2}
        ],
        "mlplatform:batchJobs": [
            {
                "name": "iris-nightly",
                "model": "iris",
                "input": "/data/in.csv",
                "output": "/data/out.jsonl",
                "data": {"claimName": "datasets"},
            }
        ],
    }


def model(index: int, **changes: Any) -> Callable[[dict], None]:
    def mutate(config: dict) -> None:
        config["mlplatform:models"][index].update(changes)

    return mutate


def key(name: str, value: Any) -> Callable[[dict], None]:
    def mutate(config: dict) -> None:
        if value is _DELETE:
            config.pop(name, None)
        else:
            config[name] = value

    return mutate


def pool(**changes: Any) -> Callable[[dict], None]:
    def mutate(config: dict) -> None:
        config["mlplatform:gpuPools"][0].update(changes)

    return mutate


def job(**changes: Any) -> Callable[[dict], None]:
    def mutate(config: dict) -> None:
        config["mlplatform:batchJobs"][0].update(changes)

    return mutate


def both(*mutations: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(config: dict) -> None:
        for mutation in mutations:
            mutation(config)

    return mutate


def duplicate_model(config: dict) -> None:
    config["mlplatform:models"][1] = {"name": "iris", "framework": "sklearn"}


_DELETE = object()


def canary_with_generic_ingress(config: dict) -> None:
    config["mlplatform:ingress"] = {"api": "ingress", "controller": "generic"}
    config["mlplatform:models"][0]["canary"] = {"version": "v2", "weight": 10}


# (id, mutation, expected key path, a fragment the problem or allowed text must contain)
CASES = [
    (
        "framework",
        model(0, framework="pytorch"),
        "mlplatform:models[0].framework",
        "'sklearn' or 'tensorflow'",
    ),
    ("model-name", model(0, name="Iris_1"), "mlplatform:models[0].name", "RFC 1035"),
    (
        "cpu-quantity",
        model(0, resources={"limits": {"cpu": "lots", "memory": "1Gi"}}),
        "mlplatform:models[0].resources.limits.cpu",
        "CPU quantity",
    ),
    (
        "request-over-limit",
        model(0, resources={"requests": {"cpu": "100m", "memory": "2Gi"}}),
        "mlplatform:models[0].resources.requests.memory",
        "exceeds the limit",
    ),
    (
        "max-below-min",
        model(0, autoscaling={"minReplicas": 5, "maxReplicas": 2}),
        "mlplatform:models[0].autoscaling.maxReplicas",
        "below minReplicas",
    ),
    (
        "min-replicas-zero",
        model(0, autoscaling={"minReplicas": 0}),
        "mlplatform:models[0].autoscaling.minReplicas",
        "1..1000",
    ),
    (
        "pdb-not-below-min",
        model(0, autoscaling={"minReplicas": 2}, pdb={"minAvailable": 2}),
        "mlplatform:models[0].pdb.minAvailable",
        "below the HPA minReplicas",
    ),
    (
        "pdb-single-replica",
        model(0, pdb={"minAvailable": 1}),
        "mlplatform:models[0].pdb.minAvailable",
        "below the HPA minReplicas 1",
    ),
    (
        "gpu-without-pool",
        model(0, resources={"gpus": 1}),
        "mlplatform:models[0].gpuPool",
        "names no GPU pool",
    ),
    ("unknown-pool", model(1, gpuPool="a100"), "mlplatform:models[1].gpuPool", "one of: t4"),
    (
        "pool-capacity",
        model(1, autoscaling={"maxReplicas": 8}),
        "mlplatform:models[1].autoscaling.maxReplicas",
        "exceeds pool 't4' capacity 4",
    ),
    (
        "gpus-per-node",
        model(1, resources={"gpus": 4}),
        "mlplatform:models[1].resources.gpus",
        "nodes have 2",
    ),
    (
        "pool-without-gpus",
        model(1, resources={"gpus": 0}),
        "mlplatform:models[1].resources.gpus",
        "requests no GPU",
    ),
    (
        "vpa-fights-hpa",
        model(0, vpa={"mode": "auto"}),
        "mlplatform:models[0].vpa.controlledResources",
        "signals.cpu would both act on cpu",
    ),
    (
        "vpa-mode",
        model(0, vpa={"mode": "sometimes"}),
        "mlplatform:models[0].vpa.mode",
        "'off', 'initial' or 'auto'",
    ),
    (
        "canary-weight",
        model(0, canary={"version": "v2", "weight": 150}),
        "mlplatform:models[0].canary.weight",
        "0..100",
    ),
    (
        "canary-same-version",
        model(0, canary={"version": "v1"}),
        "mlplatform:models[0].canary.version",
        "indistinguishable",
    ),
    (
        "canary-generic-ingress",
        canary_with_generic_ingress,
        "mlplatform:models[0].canary.weight",
        "a plain Ingress cannot split traffic by weight",
    ),
    (
        "host-with-scheme",
        key("mlplatform:ingress", {"routing": "host", "domain": "https://ml.example.com"}),
        "mlplatform:ingress.domain",
        "has a scheme (https://); give the host name only, e.g. 'ml.example.com'",
    ),
    (
        "canary-weight-range",
        model(0, canary={"version": "v2", "weight": 120}),
        "mlplatform:models[0].canary.weight",
        "less than or equal to 100",
    ),
    (
        "gateway-node-port-range",
        key("mlplatform:ingress", {"gateway": {"nodePort": 8080}}),
        "mlplatform:ingress.gateway.nodePort",
        "greater than or equal to 30000",
    ),
    (
        "slo-latency",
        model(0, slo={"latencyP99Ms": 300}),
        "mlplatform:models[0].slo.latencyP99Ms",
        "histogram",
    ),
    (
        "slo-error-rate",
        model(0, slo={"errorRatePercent": 10}),
        "mlplatform:models[0].slo.errorRatePercent",
        "6.94",
    ),
    (
        "slo-availability",
        model(0, slo={"availabilityPercent": 100}),
        "mlplatform:models[0].slo.availabilityPercent",
        "< 100",
    ),
    ("duplicate-model", duplicate_model, "mlplatform:models[1].name", "already uses it"),
    (
        "typo-top-level",
        key("mlplatform:modles", []),
        "mlplatform:modles",
        "did you mean 'mlplatform:models'",
    ),
    ("unknown-model-key", model(0, replicas=3), "mlplatform:models[0].replicas", "unknown key"),
    (
        "plain-password",
        key("mlplatform:registry", {"server": "r.example.com", "password": "hunter2"}),
        "mlplatform:registry.password",
        "--secret mlplatform:registryPassword",
    ),
    (
        "user-without-server",
        key("mlplatform:registry", {"username": "ci"}),
        "mlplatform:registry.username",
        "nowhere to log in",
    ),
    (
        "local-pool-count",
        pool(nodeCount=None),
        "mlplatform:gpuPools[0].nodeCount",
        "needs the number of nodes",
    ),
    (
        "pool-backend",
        pool(backend="eks"),
        "mlplatform:gpuPools[0].backend",
        "'local' or 'existing'",
    ),
    (
        "existing-without-nodes",
        pool(backend="existing"),
        "mlplatform:gpuPools[0].existing",
        "which nodes to use",
    ),
    (
        "existing-names-and-selector",
        pool(backend="existing", existing={"nodeNames": ["gpu-1"], "nodeSelector": {"gpu": "yes"}}),
        "mlplatform:gpuPools[0].existing.nodeSelector",
        "exactly one",
    ),
    (
        "host-routing-domain",
        key("mlplatform:ingress", {"routing": "host"}),
        "mlplatform:ingress.domain",
        "needs a domain",
    ),
    (
        "tls-without-host",
        key("mlplatform:ingress", {"tls": {"enabled": True}}),
        "mlplatform:ingress.host",
        "TLS needs a host",
    ),
    (
        "duplicate-route",
        model(1, ingress={"path": "/models/iris"}),
        "mlplatform:models[1].ingress.path",
        "already used by models[0]",
    ),
    ("job-model", job(model="churn"), "mlplatform:batchJobs[0].model", "one of: iris, vision"),
    (
        "job-path",
        job(input="/tmp/in.csv"),
        "mlplatform:batchJobs[0].input",
        "outside the data volume",
    ),
    ("job-schedule", job(schedule="every night"), "mlplatform:batchJobs[0].schedule", "cron"),
    (
        "retention",
        key("mlplatform:monitoring", {"retention": "a week"}),
        "mlplatform:monitoring.retention",
        "Prometheus duration",
    ),
    (
        "operator-alertmanager",
        key("mlplatform:monitoring", {"mode": "operator", "alertmanager": True}),
        "mlplatform:monitoring.alertmanager",
        "only applies to monitoring.mode 'deploy'",
    ),
    (
        "namespace-clash",
        key("mlplatform:namespaces", {"models": "monitoring"}),
        "mlplatform:namespaces.models",
        "also monitoring.namespace",
    ),
    ("models-not-list", key("mlplatform:models", "iris"), "mlplatform:models", "valid list"),
    (
        "models-missing",
        key("mlplatform:models", _DELETE),
        "mlplatform:models",
        "required key is missing",
    ),
    (
        "no-signal",
        model(0, autoscaling={"signals": {}}),
        "mlplatform:models[0].autoscaling.signals",
        "no autoscaling signal is set",
    ),
    (
        "moved-autoscaling-key",
        key("mlplatform:autoscaling", {"targetCpuUtilization": 70}),
        "mlplatform:autoscaling.targetCpuUtilization",
        "moved to mlplatform:autoscaling.signals.cpu",
    ),
    (
        "prometheus-signal-without-monitoring",
        both(
            model(0, autoscaling={"signals": {"inFlight": 4}}),
            key("mlplatform:monitoring", {"enabled": False}),
        ),
        "mlplatform:models[0].autoscaling.signals.inFlight",
        "monitoring is off",
    ),
    (
        "gpu-signal-on-cpu-model",
        model(0, autoscaling={"signals": {"gpuUtilization": 80}}),
        "mlplatform:models[0].autoscaling.signals.gpuUtilization",
        "requests no GPU",
    ),
    (
        "operator-mode-without-prometheus-address",
        both(
            model(0, autoscaling={"signals": {"latencyP99Ms": 100}}),
            key("mlplatform:monitoring", {"mode": "operator"}),
        ),
        "mlplatform:autoscaling.prometheusAddress",
        "runs no Prometheus of its own",
    ),
    (
        "in-flight-target-range",
        key("mlplatform:autoscaling", {"signals": {"inFlight": 0}}),
        "mlplatform:autoscaling.signals.inFlight",
        "> 0",
    ),
    (
        "annotation-type",
        key("mlplatform:ingress", {"annotations": {"nginx.ingress.kubernetes.io/x": 5}}),
        'mlplatform:ingress.annotations["nginx.ingress.kubernetes.io/x"]',
        "valid string",
    ),
    (
        "cpu-target",
        key("mlplatform:autoscaling", {"signals": {"cpu": 150}}),
        "mlplatform:autoscaling.signals.cpu",
        "1..100",
    ),
    ("batch-size", model(0, maxBatchSize=0), "mlplatform:models[0].maxBatchSize", "1..100000"),
]


def test_base_config_is_valid():
    config = parse_stack_config(base(), STACK)
    assert [m.name for m in config.models] == ["iris", "vision"]


def test_there_are_at_least_twenty_cases():
    assert len({case[2] for case in CASES}) >= 20


@pytest.mark.parametrize(
    "mutate, path, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_config_is_rejected_with_its_key_path(mutate, path, fragment):
    config = copy.deepcopy(base())
    mutate(config)
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config, STACK)
    error = caught.value
    assert path in error.paths, str(error)
    issue = next(i for i in error.issues if i.path == path)
    message = str(error)
    assert f"stack {STACK!r}" in message
    assert f"invalid config at {path} (value: " in message
    assert fragment in f"{issue.problem} {issue.allowed} {issue.fix}", message
    assert issue.allowed and "allowed:" in message
    assert f"--stack {STACK}" in issue.fix or f"Pulumi.{STACK}.yaml" in issue.fix


def test_value_is_quoted_in_the_message():
    config = base()
    config["mlplatform:models"][0]["framework"] = "pytorch"
    with pytest.raises(ConfigError, match=r'models\[0\]\.framework \(value: "pytorch"\)'):
        parse_stack_config(config, STACK)


def test_fix_command_carries_an_example_value():
    config = base()
    config["mlplatform:models"][0]["resources"] = {"limits": {"cpu": "lots", "memory": "1Gi"}}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config, STACK)
    assert caught.value.issues[0].fix == (
        "pulumi config set --stack qa --path 'mlplatform:models[0].resources.limits.cpu' '500m'"
    )


def test_several_problems_become_one_error_listing_all():
    config = base()
    config["mlplatform:models"][0]["framework"] = "pytorch"
    config["mlplatform:monitoring"] = {"retention": "forever"}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config, STACK)
    assert caught.value.paths == [
        "mlplatform:models[0].framework",
        "mlplatform:monitoring.retention",
    ]
    assert str(caught.value).startswith("2 configuration errors in stack 'qa'")


def test_list_items_are_named_in_the_problem():
    config = base()
    config["mlplatform:models"][1]["inferenceBackend"] = "tensorrt"
    with pytest.raises(ConfigError, match=r'models\[1\] is "vision"'):
        parse_stack_config(config, STACK)


def test_missing_dockerfile_is_reported_with_the_folders_that_exist(tmp_path):
    (tmp_path / "models" / "ml_model_1").mkdir(parents=True)
    (tmp_path / "models" / "ml_model_1" / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(base(), STACK, project_root=tmp_path)
    issue = caught.value.issues[0]
    assert issue.path == "mlplatform:models[0].source"
    assert "models/iris/Dockerfile does not exist" in issue.problem
    assert "derived from the model name" in issue.problem
    assert issue.allowed.endswith("ml_model_1")


def test_other_namespaces_and_secrets_are_not_config_errors():
    config = base()
    config["kubernetes:context"] = "kind"
    config["mlplatform:registryPassword"] = {"secure": "v1:abc"}  # as a stack file holds it
    config["mlplatform:grafanaAdminPassword"] = "decrypted by the engine"
    parsed = parse_stack_config(config, STACK, secret_keys={"mlplatform:grafanaAdminPassword"})
    assert parsed.models[0].name == "iris"


@pytest.mark.parametrize("secret", ["registryPassword", "grafanaAdminPassword"])
def test_a_secret_in_plain_config_is_rejected_with_the_secret_fix(secret):
    config = base()
    config[f"mlplatform:{secret}"] = "hunter2"
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config, STACK)
    (issue,) = caught.value.issues
    assert issue.path == f"mlplatform:{secret}"
    assert issue.fix == f"pulumi config set --stack {STACK} --secret mlplatform:{secret} <value>"
    assert "hunter2" not in str(caught.value)


def test_a_copied_model_folder_that_copies_its_origin_is_rejected(tmp_path):
    """`cp -r models/ml_model_1 models/ml_model_3` with a Dockerfile that names ml_model_1/."""
    for folder, dockerfile in (
        ("ml_model_1", "FROM scratch\nARG MODEL_SOURCE\nCOPY ${MODEL_SOURCE}/ /src/\n"),
        ("ml_model_3", "FROM scratch\nCOPY serving/ /app/\nCOPY ml_model_1/model_code.py /src/\n"),
    ):
        (tmp_path / "models" / folder).mkdir(parents=True)
        (tmp_path / "models" / folder / "Dockerfile").write_text(dockerfile)
    raw = {"mlplatform:models": [{"name": "ml-model-3", "framework": "sklearn"}]}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, STACK, project_root=tmp_path)
    (issue,) = caught.value.issues
    assert issue.path == "mlplatform:models[0].source" and issue.value == "ml_model_3"
    assert "line 3 copies 'ml_model_1/model_code.py', another model's folder" in issue.problem
    assert "${MODEL_SOURCE}" in issue.fix
    raw["mlplatform:models"][0]["name"] = "ml-model-1"  # its own folder, copied via the argument
    assert (
        parse_stack_config(raw, STACK, project_root=tmp_path).models[0].source_dir == "ml_model_1"
    )
