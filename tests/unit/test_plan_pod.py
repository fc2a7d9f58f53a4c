"""Pod and Deployment planning: contracts (labels, ports, env, probes), Pod Security, placement."""

from __future__ import annotations

from typing import Any

import pytest

from mlplatform.config import BatchJobConfig, GpuPoolConfig, ModelConfig
from mlplatform.plan.batch import plan_batch_job
from mlplatform.plan.gpu import plan_placement
from mlplatform.plan.pod import container_resources, plan_deployment, plan_pod_template, server_env

# Volume types Pod Security "restricted" permits.
_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """The Pod Security "restricted" (latest) checks, over a pod spec."""
    problems = []
    pod_ctx = pod.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            problems.append(key)
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {kinds}")
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        ctx = container.get("securityContext", {})
        name = container["name"]
        if ctx.get("privileged"):
            problems.append(f"{name}: privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        caps = ctx.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            problems.append(f"{name}: must drop ALL capabilities")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities")
        if not (ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))):
            problems.append(f"{name}: runAsNonRoot")
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile")
        if any("hostPort" in port for port in container.get("ports", [])):
            problems.append(f"{name}: hostPort")
    return problems


def test_restricted_checker_catches_a_root_privileged_pod():
    pod = {
        "hostNetwork": True,
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "containers": [{"name": "c", "securityContext": {"privileged": True, "runAsUser": 0}}],
    }
    assert len(restricted_violations(pod)) >= 6


def model(**changes: Any) -> ModelConfig:
    return ModelConfig.model_validate({"name": "iris", "framework": "sklearn", **changes})


def test_model_pod_passes_pod_security_restricted():
    pod = plan_pod_template(
        model(), track="stable", version="v1", image="img:1", service_account="iris", placement=None
    )
    assert restricted_violations(pod["spec"]) == []
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_batch_pod_passes_pod_security_restricted():
    job = BatchJobConfig.model_validate(
        {
            "name": "iris-nightly",
            "model": "iris",
            "input": "/data/a",
            "output": "/data/b",
            "data": {"claimName": "d"},
        }
    )
    spec = plan_batch_job(
        job, model(), image="img:1", service_account="iris-nightly", placement=None
    )
    assert restricted_violations(spec["template"]["spec"]) == []
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_pod_labels_follow_the_contract():
    labels = plan_pod_template(
        model(), track="canary", version="v2", image="i", service_account="s", placement=None
    )["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/name": "iris",
        "app.kubernetes.io/instance": "iris-canary",
        "app.kubernetes.io/version": "v2",
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "mlplatform",
        "app.kubernetes.io/managed-by": "pulumi",
        "mlplatform.io/model": "iris",
        "mlplatform.io/track": "canary",
    }


def test_container_port_probes_and_name_follow_the_contract():
    container = plan_pod_template(
        model(framework="tensorflow"),
        track="stable",
        version="v1",
        image="i",
        service_account="s",
        placement=None,
    )["spec"]["containers"][0]
    assert container["name"] == "model-server"
    assert container["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8081, "protocol": "TCP"},
        {"name": "probes", "containerPort": 8082, "protocol": "TCP"},
    ]
    # the server built from models/ answers probes on a port of its own (serving/probes.py)
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "probes"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "probes"}
    assert container["startupProbe"]["httpGet"]["port"] == "probes"
    assert {"name": "PROBE_PORT", "value": "8082"} in container["env"]
    startup = container["startupProbe"]
    # TensorFlow needs a longer start budget than the forest: period x threshold >= 3 minutes.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 180
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_server_env_sets_only_what_is_configured():
    env = {e["name"]: e["value"] for e in server_env(model(), "v3")}
    assert env == {
        "MODEL_NAME": "iris",
        "MODEL_VERSION": "v3",
        "MODEL_DIR": "/model",
        "INFERENCE_BACKEND": "onnx",
        "PORT": "8080",
        "GRPC_PORT": "8081",
        "PROBE_PORT": "8082",
    }
    env = {
        e["name"]: e["value"] for e in server_env(model(maxBatchSize=64, maxBodyBytes=4096), "v3")
    }
    assert env["MAX_BATCH_SIZE"] == "64" and env["MAX_BODY_BYTES"] == "4096"


@pytest.mark.parametrize(
    "raw, track, dedicated",
    [
        ({}, "stable", True),
        ({"image": "registry.example/iris:1"}, "stable", False),
        ({"canary": {"version": "v2"}}, "canary", True),
        ({"image": "registry.example/iris:1", "canary": {"version": "v2"}}, "canary", False),
        ({"canary": {"version": "v2", "image": "registry.example/iris:2"}}, "canary", False),
        (
            {"image": "registry.example/iris:1", "canary": {"version": "v2", "source": "iris_v2"}},
            "canary",
            True,
        ),
    ],
)
def test_prebuilt_images_are_probed_on_the_contracts_port(raw, track, dedicated):
    """A prebuilt image is only held to the contract's minimum (probes on PORT); an image built
    from models/ by the stack answers them on its probe port."""
    container = plan_pod_template(
        model(**raw), track=track, version="v1", image="i", service_account="s", placement=None
    )["spec"]["containers"][0]
    port = "probes" if dedicated else "http"
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[kind]["httpGet"]["port"] == port
    assert ("probes" in {p["name"] for p in container["ports"]}) is dedicated
    assert ("PROBE_PORT" in {e["name"] for e in container["env"]}) is dedicated


def test_gpu_request_equals_limit():
    resources = container_resources(model(resources={"gpus": 2}).resources)
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "2"
    assert "nvidia.com/gpu" not in container_resources(model().resources)["limits"]


def test_gpu_placement_adds_toleration_and_required_affinity():
    pool = GpuPoolConfig.model_validate({"name": "t4", "backend": "local", "nodeCount": 1})
    spec = plan_pod_template(
        model(gpuPool="t4", resources={"gpus": 1}),
        track="stable",
        version="v1",
        image="i",
        service_account="s",
        placement=plan_placement(pool),
    )["spec"]
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "t4", "effect": "NoSchedule"}
    ]
    term = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "mlplatform.io/gpu-pool", "operator": "In", "values": ["t4"]}
    ]


def test_cpu_pod_has_no_gpu_placement():
    spec = plan_pod_template(
        model(), track="stable", version="v1", image="i", service_account="s", placement=None
    )["spec"]
    assert "tolerations" not in spec and "affinity" not in spec


@pytest.mark.parametrize("spread", ["ScheduleAnyway", "DoNotSchedule"])
def test_pods_spread_over_nodes(spread):
    spec = plan_pod_template(
        model(topologySpread=spread),
        track="stable",
        version="v1",
        image="i",
        service_account="s",
        placement=None,
    )["spec"]
    by_key = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
    assert by_key["kubernetes.io/hostname"]["whenUnsatisfiable"] == spread
    assert (
        by_key["kubernetes.io/hostname"]["labelSelector"]["matchLabels"][
            "app.kubernetes.io/instance"
        ]
        == "iris"
    )
    # Zones are optional in small clusters: never block scheduling on them.
    assert by_key["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "ScheduleAnyway"
    # Tainted nodes the pod cannot use (GPU nodes for a CPU model) must not count as empty domains.
    assert all(c["nodeTaintsPolicy"] == "Honor" for c in by_key.values())


def test_rolling_update_never_reduces_capacity():
    spec = plan_deployment(
        model(),
        track="stable",
        version="v1",
        replicas=3,
        image="i",
        service_account="s",
        placement=None,
    )
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert spec["replicas"] == 3
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "iris",
        "app.kubernetes.io/instance": "iris",
    }
    template_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= template_labels.items()


@pytest.mark.parametrize(
    "raw, expected",
    [
        # a canary of another version or weight runs the stable image
        ({"canary": {"version": "v2"}}, (None, "iris", False)),
        ({"image": "r/iris:1", "canary": {"version": "v2"}}, ("r/iris:1", "iris", False)),
        ({"canary": {"version": "v2", "source": "iris"}}, (None, "iris", False)),
        # its own image: named, or built from another folder
        ({"canary": {"version": "v2", "image": "r/iris:2"}}, ("r/iris:2", "iris", True)),
        ({"image": "r/iris:1", "canary": {"version": "v2", "source": "v2"}}, (None, "v2", True)),
    ],
)
def test_track_image_decides_once_what_a_canary_runs(raw, expected):
    """MLPlatform builds a canary image exactly when the pod plan probes it as its own."""
    from mlplatform.plan.image import track_image

    canary = track_image(model(**raw), "canary")
    assert (canary.prebuilt, canary.source, canary.own) == expected
    stable = track_image(model(**raw), "stable")
    assert (stable.prebuilt, stable.own) == (raw.get("image"), False)
