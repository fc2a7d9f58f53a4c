"""Names, labels and ports shared by model server, monitoring and policies (docs/contracts.md)."""

from __future__ import annotations

from typing import Literal

Track = Literal["stable", "canary"]

CONTAINER_NAME = "model-server"
PORT = 8080
PORT_NAME = "http"
# The Open Inference Protocol's gRPC service, in the same server process (models/serving).
GRPC_PORT = 8081
GRPC_PORT_NAME = "grpc"
# Service appProtocol for cleartext HTTP/2 (gRPC without TLS): gateways then speak h2c to pods.
GRPC_APP_PROTOCOL = "kubernetes.io/h2c"
GRPC_SERVICE = "inference.GRPCInferenceService"
# gRPC metadata naming the model a call is for, where the route's host does not: every model
# serves the same gRPC service and the model name inside the message is out of a gateway's sight.
MODEL_HEADER = "mlplatform-model"
# Probes, answered by a thread of the server's own so that a busy replica still answers them.
PROBE_PORT = 8082
PROBE_PORT_NAME = "probes"
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
MODEL_DIR = "/model"
# The per-pod gauge the HPA's Pods metric averages (exported by models/serving).
# MLPlatform's MonitoringStack: its component name prefixes its objects ("monitoring-prometheus").
MONITORING_COMPONENT = "monitoring"
PROMETHEUS_PORT = 9090

PART_OF = "mlplatform"
COMPONENT = "model-server"
BATCH_COMPONENT = "batch-inference"

LABEL_MODEL = "mlplatform.io/model"
LABEL_TRACK = "mlplatform.io/track"
LABEL_GPU_POOL = "mlplatform.io/gpu-pool"
LABEL_ROLE = "mlplatform.io/role"
ROLE_INGRESS = "ingress"
ROLE_MONITORING = "monitoring"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


def instance_name(model: str, track: Track) -> str:
    """Object name and app.kubernetes.io/instance of one track of a model."""
    return model if track == "stable" else f"{model}-canary"


def selector_labels(model: str, track: Track) -> dict[str, str]:
    """Labels a Deployment selects its pods by; immutable once created, so kept minimal."""
    return {
        "app.kubernetes.io/name": model,
        "app.kubernetes.io/instance": instance_name(model, track),
    }


def pod_labels(model: str, version: str, track: Track) -> dict[str, str]:
    """Every label a model pod carries (contracts.md, "Labels and names")."""
    return {
        **selector_labels(model, track),
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        LABEL_MODEL: model,
        LABEL_TRACK: track,
    }


def object_labels(model: str, version: str, track: Track = "stable") -> dict[str, str]:
    """Labels on the objects around the pods (Service, HPA, PDB, ...)."""
    return pod_labels(model, version, track)


def platform_labels(component: str) -> dict[str, str]:
    """Labels on platform-level objects (namespaces, GPU nodes, device plugin)."""
    return {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/component": component,
    }


def prometheus_url(component: str, namespace: str) -> str:
    """In-cluster URL of the Prometheus a MonitoringStack named `component` deploys."""
    return f"http://{component}-prometheus.{namespace}.svc:{PROMETHEUS_PORT}"
