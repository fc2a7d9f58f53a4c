"""Prometheus metrics of the model server.

The names stay compatible with the peers dashboards already know: KServe's
``request_predict_seconds`` (label ``model_name``) and MLServer's ``model_infer_request_*``
(labels ``model``, ``version``). ``METRICS`` / ``METRIC_NAMES`` are the source of truth for the
monitoring code (recording rules, alerts, dashboards): names exactly as they appear on /metrics.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString


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


class Counter:
    """A monotonically increasing count."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class Gauge(Counter):
    """A value that goes up and down."""

    __slots__ = ()

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class Histogram:
    """Bucketed observations; buckets are cumulated only when scraped."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # `le` is inclusive: a value equal to a bound belongs to that bound's bucket.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class ServingMetrics:
    """The server's metrics for one model.

    Plain Python numbers updated on the event-loop thread (the only thread that touches them) and
    turned into Prometheus families when scraped. prometheus_client's own metric objects take a
    lock per update: five updates per request cost ~10 us, more than ONNX Runtime's inference.
    """

    def __init__(self, model: str, version: str, registry: CollectorRegistry | None = None) -> None:
        # A registry per server instance: tests build several apps in one process.
        self.registry = registry if registry is not None else CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.model, self.version = model, version
        self.predict_seconds = Histogram(LATENCY_BUCKETS)
        self.success = Counter()
        self.failure = Counter()
        self.duration = Histogram(LATENCY_BUCKETS)
        self.in_flight = Gauge()
        self.registry.register(_Collector(self))


class _Collector:
    """Exposes a ServingMetrics as the families listed in METRICS."""

    def __init__(self, metrics: ServingMetrics) -> None:
        self.m = metrics

    def describe(self):
        return []

    def collect(self):
        m = self.m
        by_name = {spec.name: spec for spec in METRICS}

        def histogram(name: str, h: Histogram, labels: list[str]) -> HistogramMetricFamily:
            spec = by_name[name]
            family = HistogramMetricFamily(name, spec.help, labels=list(spec.labels))
            buckets, total = [], 0
            for bound, count in zip((*h.bounds, float("inf")), h.counts, strict=True):
                total += count
                buckets.append((floatToGoString(bound), total))
            family.add_metric(labels, buckets, h.sum)
            return family

        model_version = [m.model, m.version]
        yield histogram("request_predict_seconds", m.predict_seconds, [m.model])
        for name, counter in (
            ("model_infer_request_success_total", m.success),
            ("model_infer_request_failure_total", m.failure),
        ):
            family = CounterMetricFamily(
                name, by_name[name].help, labels=list(by_name[name].labels)
            )
            family.add_metric(model_version, counter.value)
            yield family
        yield histogram("model_infer_request_duration_seconds", m.duration, model_version)
        spec = by_name["model_infer_requests_in_flight"]
        gauge = GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))
        gauge.add_metric(model_version, m.in_flight.value)
        yield gauge
