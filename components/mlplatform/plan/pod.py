"""The model-server pod: container, probes, resources, security context, placement, spreading."""

from __future__ import annotations

from typing import Any

from mlplatform.config import ModelConfig, ResourcesConfig
from mlplatform.core.names import (
    CONTAINER_NAME,
    GPU_RESOURCE,
    GRPC_PORT,
    GRPC_PORT_NAME,
    LIVE_PATH,
    MODEL_DIR,
    PORT,
    PORT_NAME,
    PROBE_PORT,
    PROBE_PORT_NAME,
    READY_PATH,
    Track,
    pod_labels,
    selector_labels,
)
from mlplatform.plan.gpu import GpuPlacement
from mlplatform.plan.image import track_image

# Non-root IDs for images that declare a user by name: Pod Security "restricted" needs
# runAsNonRoot, which the kubelet can only verify for a numeric user.
RUN_AS_USER = 10001
# Seconds the server may take from start to live: TensorFlow imports alone take 3-6 s on a busy
# node, so its budget is larger (probe period 2 s x threshold).
STARTUP_FAILURE_THRESHOLD = {"sklearn": 30, "tensorflow": 90}


def container_resources(resources: ResourcesConfig) -> dict[str, dict[str, str]]:
    requests = {"cpu": resources.requests.cpu, "memory": resources.requests.memory}
    limits = {"cpu": resources.limits.cpu, "memory": resources.limits.memory}
    if resources.gpus:
        # Extended resources cannot be overcommitted: request and limit must be equal.
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(resources.gpus)
    return {"requests": requests, "limits": limits}


def serves_probe_port(model: ModelConfig, track: Track) -> bool:
    """Whether the track runs an image built from models/ by this stack, whose server answers
    probes on PROBE_PORT. A prebuilt image (`image`, `canary.image`) is only held to the
    contract's minimum, probes on PORT."""
    return track_image(model, track).prebuilt is None


def server_env(model: ModelConfig, version: str, probe_port: bool = True) -> list[dict[str, str]]:
    """Model server environment (contracts.md); unset optional values keep the server's defaults."""
    env = {
        "MODEL_NAME": model.name,
        "MODEL_VERSION": version,
        "MODEL_DIR": MODEL_DIR,
        "INFERENCE_BACKEND": model.inference_backend,
        "PORT": str(PORT),
        "GRPC_PORT": str(GRPC_PORT),
    }
    if probe_port:
        env["PROBE_PORT"] = str(PROBE_PORT)
    if model.max_batch_size is not None:
        env["MAX_BATCH_SIZE"] = str(model.max_batch_size)
    if model.max_body_bytes is not None:
        env["MAX_BODY_BYTES"] = str(model.max_body_bytes)
    return [{"name": key, "value": value} for key, value in env.items()]


def probes(framework: str, probe_port: bool = True) -> dict[str, dict[str, Any]]:
    """Startup, readiness and liveness probes; on the server's probe port when it has one (a
    replica busy with queued requests answers them there at once; on PORT they would wait behind
    the queue and time out, taking the busiest replica out of rotation under load)."""
    port = PROBE_PORT_NAME if probe_port else PORT_NAME

    def http(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": port}}

    return {
        "startupProbe": {
            **http(LIVE_PATH),
            "periodSeconds": 2,
            "timeoutSeconds": 2,
            "failureThreshold": STARTUP_FAILURE_THRESHOLD[framework],
        },
        "readinessProbe": {
            **http(READY_PATH),
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            **http(LIVE_PATH),
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
    }


def container_security_context() -> dict[str, Any]:
    """Satisfies Pod Security "restricted" on its own, whatever the pod-level context says."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def placement_fields(placement: GpuPlacement | None) -> dict[str, Any]:
    if placement is None:
        return {}
    return {
        "tolerations": [dict(t) for t in placement.tolerations],
        "affinity": {"nodeAffinity": dict(placement.node_affinity)},
    }


def plan_pod_template(
    model: ModelConfig,
    *,
    track: Track,
    version: str,
    image: Any,
    service_account: str,
    placement: GpuPlacement | None,
) -> dict[str, Any]:
    """Pod template of one track of a model; `image` may be a Pulumi Output."""
    selector = selector_labels(model.name, track)
    probe_port = serves_probe_port(model, track)
    ports = [
        {"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"},
        {"name": GRPC_PORT_NAME, "containerPort": GRPC_PORT, "protocol": "TCP"},
    ]
    if probe_port:
        ports.append({"name": PROBE_PORT_NAME, "containerPort": PROBE_PORT, "protocol": "TCP"})
    container = {
        "name": CONTAINER_NAME,
        "image": image,
        # Tags are content hashes (immutable), so a present image is always the right one; local
        # images that exist only in the node's runtime would fail with Always.
        "imagePullPolicy": "IfNotPresent",
        "ports": ports,
        "env": server_env(model, version, probe_port),
        "resources": container_resources(model.resources),
        **probes(model.framework, probe_port),
        "securityContext": container_security_context(),
        # Let the Service drop the pod from its endpoints before the server stops accepting.
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    # nodeTaintsPolicy Honor: by default the scheduler counts tainted nodes the pod can never use
    # (GPU nodes, for a CPU model) as empty domains, and DoNotSchedule then blocks the third replica
    # on a cluster with two CPU nodes. Seen on the local cluster; Honor counts only usable nodes.
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": dict(selector)},
            "matchLabelKeys": ["pod-template-hash"],
            "nodeTaintsPolicy": "Honor",
        }
        for key, when in (
            ("kubernetes.io/hostname", model.topology_spread),
            ("topology.kubernetes.io/zone", "ScheduleAnyway"),
        )
    ]
    return {
        "metadata": {
            "labels": pod_labels(model.name, version, track),
            "annotations": {"kubectl.kubernetes.io/default-container": CONTAINER_NAME},
        },
        "spec": {
            "serviceAccountName": service_account,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": pod_security_context(),
            "terminationGracePeriodSeconds": 30,
            "containers": [container],
            # readOnlyRootFilesystem: scratch space for Python and the ONNX runtime.
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
            "topologySpreadConstraints": spread,
            **placement_fields(placement),
        },
    }


def plan_deployment(
    model: ModelConfig,
    *,
    track: Track,
    version: str,
    replicas: int,
    image: Any,
    service_account: str,
    placement: GpuPlacement | None,
) -> dict[str, Any]:
    """apps/v1 Deployment spec: zero-downtime rolling updates, at most one pod over."""
    return {
        "replicas": replicas,
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector_labels(model.name, track)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "minReadySeconds": 5,
        "progressDeadlineSeconds": 600,
        "template": plan_pod_template(
            model,
            track=track,
            version=version,
            image=image,
            service_account=service_account,
            placement=placement,
        ),
    }
