"""The metric names monitoring relies on, and where each one comes from.

Model-server names follow docs/contracts.md (``models/serving/metrics.py`` is the source of truth);
tests compare this catalogue with what a real server process exposes on ``/metrics``, so a rename on
either side fails a test instead of silently emptying a dashboard.

Decision on infrastructure metrics: we do not deploy kube-state-metrics. Replica counts come from
Prometheus' own ``up`` series for the discovered model pods (one target per pod), the HPA bounds are
known at deploy time and enter the rules as constants, restarts come from the server's own
``process_start_time_seconds``, CPU/memory from the kubelet's cAdvisor endpoint and GPU figures from
NVIDIA's dcgm-exporter (present wherever the GPU operator runs).
"""

from __future__ import annotations

from typing import Final

# --- exported by the model server (strictly checked against a live /metrics) -----------------
REQUEST_SUCCESS: Final = "model_infer_request_success_total"
REQUEST_FAILURE: Final = "model_infer_request_failure_total"
REQUEST_DURATION: Final = "model_infer_request_duration_seconds"
REQUEST_DURATION_BUCKET: Final = f"{REQUEST_DURATION}_bucket"
REQUEST_DURATION_COUNT: Final = f"{REQUEST_DURATION}_count"
REQUEST_DURATION_SUM: Final = f"{REQUEST_DURATION}_sum"
IN_FLIGHT: Final = "model_infer_requests_in_flight"
# prometheus_client's process collector; changes when the container restarts in place.
PROCESS_START: Final = "process_start_time_seconds"

MODEL_SERVER_METRICS: Final[frozenset[str]] = frozenset(
    {
        REQUEST_SUCCESS,
        REQUEST_FAILURE,
        REQUEST_DURATION_BUCKET,
        REQUEST_DURATION_COUNT,
        REQUEST_DURATION_SUM,
        IN_FLIGHT,
        PROCESS_START,
    }
)

# Upper bounds (seconds) of the request-duration histogram; the latency SLO threshold must be one of
# them, because "fraction of requests slower than X" is read from the bucket whose le equals X.
# A copy of models/serving/metrics.py LATENCY_BUCKETS (the library must not import the model
# runtime); tests compare both and the `le` labels a live server exposes.
LATENCY_BUCKETS_SECONDS: Final[tuple[float, ...]] = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# --- infrastructure metrics, with the component that exposes them ----------------------------
UP: Final = "up"
ALERTS: Final = "ALERTS"
CPU_USAGE: Final = "container_cpu_usage_seconds_total"
MEMORY_WORKING_SET: Final = "container_memory_working_set_bytes"
GPU_UTIL: Final = "DCGM_FI_DEV_GPU_UTIL"
GPU_FB_USED: Final = "DCGM_FI_DEV_FB_USED"
GPU_FB_FREE: Final = "DCGM_FI_DEV_FB_FREE"
# Per backend Service of a route, labelled `service`; observed when the backend answers, so it
# includes the time a request waited at the pod (see mlplatform.plan.gateway.backend_metric_name).
GATEWAY_REQUEST_DURATION_SUM: Final = "traefik_service_request_duration_seconds_sum"

INFRASTRUCTURE_METRICS: Final[dict[str, str]] = {
    UP: "Prometheus itself: one synthetic series per scrape target (here: per model pod)",
    ALERTS: "Prometheus itself: one series per pending or firing alert",
    CPU_USAGE: "kubelet cAdvisor endpoint /metrics/cadvisor (labels namespace, pod, container)",
    MEMORY_WORKING_SET: "kubelet cAdvisor endpoint /metrics/cadvisor (same labels)",
    GPU_UTIL: "NVIDIA dcgm-exporter with pod mapping (labels namespace, pod, gpu), percent 0-100",
    GPU_FB_USED: "NVIDIA dcgm-exporter with pod mapping, frame buffer used in MiB",
    GPU_FB_FREE: "NVIDIA dcgm-exporter with pod mapping, frame buffer free in MiB",
    GATEWAY_REQUEST_DURATION_SUM: "the platform gateway (Traefik) /metrics on its admin port "
    "(label service: one per route backend), seconds spent in proxied requests",
}

# --- labels -----------------------------------------------------------------------------------
# The job name of model-server targets in both modes (operator mode overrides the PodMonitor's).
MODEL_SERVER_JOB: Final = "model-servers"
# The job name of the platform gateway's pods (ingress.gateway.deploy).
GATEWAY_JOB: Final = "gateway"
# Target labels added by relabelling; they must not collide with the server's own `model` and
# `version` labels, otherwise Prometheus would rename the scraped ones to exported_*.
TARGET_LABELS: Final[dict[str, str]] = {
    "namespace": "__meta_kubernetes_namespace",
    "pod": "__meta_kubernetes_pod_name",
    "node": "__meta_kubernetes_pod_node_name",
    "app_kubernetes_io_name": "__meta_kubernetes_pod_label_app_kubernetes_io_name",
    "app_kubernetes_io_instance": "__meta_kubernetes_pod_label_app_kubernetes_io_instance",
    "track": "__meta_kubernetes_pod_label_mlplatform_io_track",
}
MODEL_SERVER_CONTAINER: Final = "model-server"
MODEL_SERVER_PORT_NAME: Final = "http"
METRICS_PATH: Final = "/metrics"


def le_label(seconds: float) -> str:
    """A bucket bound as the `le` label spells it (Go float formatting: 1 -> "1.0")."""
    return repr(float(seconds))


def model_selector(namespace: str, model: str) -> str:
    """Label matchers for series the server labels itself (`model`) in one namespace."""
    return f'namespace="{namespace}", model="{model}"'


def pod_selector(namespace: str, model: str, *, stable_only: bool = False) -> str:
    """Label matchers for per-pod target series (`up`, process metrics) of one model.

    `stable_only` narrows to the stable Deployment (app.kubernetes.io/instance=<model>), the one the
    HPA bounds belong to; canary pods carry instance `<model>-canary`.
    """
    key = "app_kubernetes_io_instance" if stable_only else "app_kubernetes_io_name"
    return f'job="{MODEL_SERVER_JOB}", namespace="{namespace}", {key}="{model}"'
