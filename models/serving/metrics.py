"""Prometheus metrics of the model server.

The names stay compatible with the peers dashboards already know: KServe's
``request_predict_seconds`` (label ``model_name``) and MLServer's ``model_infer_request_*``
(labels ``model``, ``version``). ``METRICS`` / ``METRIC_NAMES`` are the source of truth for the
monitoring code (recording rules, alerts, dashboards): names exactly as they appear on /metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import GCCollector, PlatformCollector, ProcessCollector


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric family."""

    name: str
    """Name of the samples on /metrics (counters carry their `_total` suffix here)."""
    type: str
    """'counter', 'gauge' or 'histogram'."""
    labels: tuple[str, ...]
    help: str


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "request_predict_seconds",
        "histogram",
        ("model_name",),
        "Time spent in the model call (KServe-compatible).",
    ),
    MetricSpec(
        "model_infer_request_success_total",
        "counter",
        ("model", "version"),
        "Inference requests answered with 2xx (MLServer-compatible).",
    ),
    MetricSpec(
        "model_infer_request_failure_total",
        "counter",
        ("model", "version"),
        "Inference requests answered with 4xx or 5xx (MLServer-compatible).",
    ),
    MetricSpec(
        "model_infer_request_duration_seconds",
        "histogram",
        ("model", "version"),
        "Inference request time from body received to response built (MLServer-compatible).",
    ),
    MetricSpec(
        "model_infer_requests_in_flight",
        "gauge",
        ("model", "version"),
        "Inference requests being processed now; the autoscaling signal.",
    ),
)
METRIC_NAMES: list[str] = [m.name for m in METRICS]
"""Exported metric names, as they appear on /metrics."""

# From 50 us (one ONNX row) to 10 s (a huge native batch).
LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def _spec(name: str) -> MetricSpec:
    return next(m for m in METRICS if m.name == name)


def _family(name: str) -> str:
    # prometheus_client appends `_total` to counter names itself.
    return name.removesuffix("_total")


class ServingMetrics:
    """The server's metric children, bound once to this model's label values (hot path)."""

    def __init__(self, model: str, version: str, registry: CollectorRegistry | None = None) -> None:
        # A registry per server instance: tests build several apps in one process.
        self.registry = registry if registry is not None else CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

        def make(cls, name: str, **kwargs):
            spec = _spec(name)
            return cls(_family(name), spec.help, spec.labels, registry=self.registry, **kwargs)

        predict = make(Histogram, "request_predict_seconds", buckets=LATENCY_BUCKETS)
        success = make(Counter, "model_infer_request_success_total")
        failure = make(Counter, "model_infer_request_failure_total")
        duration = make(Histogram, "model_infer_request_duration_seconds", buckets=LATENCY_BUCKETS)
        in_flight = make(Gauge, "model_infer_requests_in_flight")

        self.predict_seconds = predict.labels(model_name=model)
        self.success = success.labels(model=model, version=version)
        self.failure = failure.labels(model=model, version=version)
        self.duration = duration.labels(model=model, version=version)
        self.in_flight = in_flight.labels(model=model, version=version)
