"""Every generated PromQL expression reads only metrics that exist (contract level).

The live check against a real server's /metrics is tests/integration/test_monitoring_metrics.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from factories import slo
from mlplatform.core import metrics as m
from mlplatform.plan.monitoring.inputs import MonitoredModel
from mlplatform.plan.monitoring.promql import all_expressions, metric_names, recorded_names

# The runtime imports itself as `serving` (models/ is its root, as in the image).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models"))
from serving import metrics as serving  # noqa: E402

MODELS = [
    MonitoredModel(
        name="iris",
        namespace="models",
        version="1",
        hpa_min_replicas=1,
        hpa_max_replicas=3,
        cpu_request="1",
        memory_request="1Gi",
        slo=slo(latency_p99_ms=250, error_rate_percent=1, availability_percent=99.5),
    ),
    MonitoredModel(
        name="digits",
        namespace="gpu",
        version="1",
        gpu=True,
        hpa_min_replicas=1,
        hpa_max_replicas=2,
        slo=slo(latency_p99_ms=100, error_rate_percent=0.5, availability_percent=99.9),
    ),
]

# From docs/contracts.md, "Exported metric names"; histograms appear as _bucket/_sum/_count.
CONTRACT_SERVER_METRICS = {
    "model_infer_request_success_total",
    "model_infer_request_failure_total",
    "model_infer_request_duration_seconds_bucket",
    "model_infer_request_duration_seconds_count",
    "model_infer_request_duration_seconds_sum",
    "model_infer_requests_in_flight",
    "request_predict_seconds_bucket",
    "request_predict_seconds_count",
    "request_predict_seconds_sum",
}
# prometheus_client's process collector, on by default on Linux.
PROCESS_METRICS = {"process_start_time_seconds"}


@pytest.mark.parametrize(
    "expr, expected",
    [
        ('sum by (namespace, model) (rate(a_total{model="x", le="0.25"}[5m]))', {"a_total"}),
        ('x:y:z{a="b"} > 0.144\nand\nx:y:w{a="b"} > 0.144', {"x:y:z", "x:y:w"}),
        (
            'histogram_quantile(0.99, sum by (le) (rate(h_bucket{a="b"}[$__rate_interval])))',
            {"h_bucket"},
        ),
        (
            "avg by (namespace) (G * on (namespace, pod) group_left () "
            "group by (namespace, pod) (up == 1))",
            {"G", "up"},
        ),
        ('(r{a="1"} or on () vector(0)) < 2', {"r"}),
        ('absent(up{job="x"})', {"up"}),
        ('count({__name__="ignored"}) or vector(1e3)', set()),
    ],
)
def test_metric_name_extraction(expr, expected):
    assert metric_names(expr) == expected


def test_every_expression_reads_known_metrics():
    known = m.MODEL_SERVER_METRICS | set(m.INFRASTRUCTURE_METRICS) | recorded_names(MODELS)
    exprs = all_expressions(MODELS)
    assert len(exprs) > 60
    for where, expr in exprs:
        unknown = metric_names(expr) - known
        assert not unknown, f"{where} reads {sorted(unknown)} which nothing exports: {expr}"


def test_model_server_metrics_are_in_the_contract():
    assert m.MODEL_SERVER_METRICS <= CONTRACT_SERVER_METRICS | PROCESS_METRICS


def test_every_recording_is_used_or_is_a_dashboard_series():
    used = set().union(*(metric_names(expr) for _, expr in all_expressions(MODELS)))
    for record in recorded_names(MODELS):
        assert record in used, f"{record} is recorded but no alert or panel reads it"


def test_infrastructure_metrics_state_their_source():
    for name, source in m.INFRASTRUCTURE_METRICS.items():
        assert any(
            word in source for word in ("Prometheus", "cAdvisor", "dcgm-exporter", "Traefik")
        ), name


def test_serving_module_lists_every_server_metric_we_read():
    exported = set(serving.METRIC_NAMES)
    for name in m.MODEL_SERVER_METRICS - PROCESS_METRICS:
        family = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
        assert name in exported or family in exported, f"{name} is not in models/serving/metrics.py"


def test_latency_buckets_match_the_server_histogram():
    assert m.LATENCY_BUCKETS_SECONDS == tuple(serving.LATENCY_BUCKETS)
