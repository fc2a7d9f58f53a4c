"""Autoscaling signals: which autoscaler each set of signals compiles to, and its PromQL."""

from __future__ import annotations

import pytest

from mlplatform.config import AutoscalingConfig, SignalsConfig, StackConfig
from mlplatform.core import metrics as m
from mlplatform.plan.autoscaling import (
    KEDA_TRANSFER_HPA,
    SIGNAL_METRICS,
    autoscaler_kind,
    gateway_rate_window,
    plan_hpa,
    plan_scaled_object,
    prometheus_address,
    rate_window,
    signal_queries,
)
from mlplatform.plan.monitoring.promql import metric_names

ADDRESS = "http://monitoring-prometheus.monitoring.svc:9090"


def scaling(**signals) -> AutoscalingConfig:
    return AutoscalingConfig(min_replicas=2, max_replicas=7, signals=SignalsConfig(**signals))


def stack(**raw) -> StackConfig:
    return StackConfig.model_validate({"models": [{"name": "iris", "framework": "sklearn"}], **raw})


@pytest.mark.parametrize(
    "signals, kind",
    [
        ({"cpu": 70}, "hpa"),
        ({"cpu": 70, "memory": 80}, "hpa"),
        ({"in_flight": 4}, "keda"),
        ({"cpu": 70, "latency_p99_ms": 100}, "keda"),
        ({"rps": 50}, "keda"),
        ({"gpu_utilization": 80}, "keda"),
    ],
)
def test_resource_signals_make_an_hpa_and_any_prometheus_signal_a_scaled_object(signals, kind):
    assert autoscaler_kind(scaling(**signals)) == kind


def test_hpa_has_one_resource_metric_per_resource_signal():
    spec = plan_hpa("iris", scaling(cpu=65, memory=80))
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 7)
    assert [(x["resource"]["name"], x["resource"]["target"]) for x in spec["metrics"]] == [
        ("cpu", {"type": "Utilization", "averageUtilization": 65}),
        ("memory", {"type": "Utilization", "averageUtilization": 80}),
    ]


def test_in_flight_is_the_stable_pods_time_in_requests_per_second_averaged_per_pod():
    (query,) = signal_queries("ml", "iris", scaling(in_flight=2.5), "60s")
    assert (query.name, query.metric_type, query.threshold) == ("in-flight", "AverageValue", 2.5)
    assert query.query == (
        'sum(rate(model_infer_request_duration_seconds_sum{job="model-servers", namespace="ml", '
        'app_kubernetes_io_instance="iris"}[60s])) or vector(0)'
    )


def test_rps_and_latency_read_zero_when_idle_instead_of_no_data():
    rps, latency = signal_queries("ml", "iris", scaling(rps=50, latency_p99_ms=120), "90s")
    assert rps.query.endswith(" or vector(0)") and "[90s]" in rps.query
    assert rps.metric_type == "AverageValue"
    assert latency.metric_type == "Value" and latency.threshold == 120
    # milliseconds, NaN (no requests in the window) dropped, then 0
    assert latency.query.startswith("(1000 * histogram_quantile(0.99, sum by (le) (rate(")
    assert latency.query.endswith(">= 0) or vector(0)")


def test_gpu_utilization_joins_dcgm_series_to_the_models_live_stable_pods():
    (gpu,) = signal_queries("ml", "vision", scaling(gpu_utilization=80), "60s")
    assert gpu.query.startswith(f"avg({m.GPU_UTIL} * on (namespace, pod) group_left () group by")
    assert 'app_kubernetes_io_instance="vision"} == 1' in gpu.query
    assert gpu.metric_type == "Value"


def test_in_flight_at_the_gateway_reads_the_routes_stable_backends_on_the_gateway_window():
    pods, gateway = signal_queries("ml", "iris", scaling(in_flight=0.5), "60s", "20s")
    assert pods.name == "in-flight" and "[60s]" in pods.query
    assert gateway.name == "in-flight-gateway"
    # the HTTPRoute's backend and the GRPCRoute's: REST and gRPC calls both count
    assert gateway.query == (
        'sum(rate(traefik_service_request_duration_seconds_sum{job="gateway", '
        'service=~"ml-iris-http-8080@kubernetesgateway|ml-iris-8081-grpc@kubernetesgateway"}'
        "[20s])) or vector(0)"
    )
    # the same per-pod target: the HPA follows whichever trigger asks for more
    assert (gateway.metric_type, gateway.threshold) == ("AverageValue", 0.5)
    # only in-flight is read at the gateway
    assert [q.name for q in signal_queries("ml", "iris", scaling(rps=5), "60s", "20s")] == ["rps"]


@pytest.mark.parametrize(
    "raw, window",
    [
        ({}, "20s"),  # the default: own gateway, monitoring on, 5 s gateway scrapes
        ({"monitoring": {"gatewayScrapeInterval": "2s"}}, "8s"),
        ({"monitoring": {"enabled": False}}, None),
        ({"ingress": {"api": "ingress"}}, None),
        ({"ingress": {"gateway": {"deploy": False}}}, None),
        ({"ingress": {"enabled": False}}, None),
    ],
)
def test_gateway_window_only_where_this_stack_scrapes_a_gateway_the_model_is_routed_through(
    raw, window
):
    config = stack(**raw)
    assert gateway_rate_window(config, config.models[0]) == window


def test_a_model_without_a_route_reads_in_flight_at_its_pods_only():
    config = StackConfig.model_validate(
        {"models": [{"name": "iris", "framework": "sklearn", "ingress": {"enabled": False}}]}
    )
    assert gateway_rate_window(config, config.models[0]) is None


def test_every_signal_reads_only_the_metrics_its_table_names():
    every = scaling(in_flight=1, rps=1, latency_p99_ms=1, gpu_utilization=1)
    names = {"in-flight": "in_flight", "rps": "rps", "latency-p99": "latency_p99_ms"}
    names["gpu-utilization"] = "gpu_utilization"
    names["in-flight-gateway"] = "in_flight"
    queries = signal_queries("ml", "iris", every, "60s", "20s")
    assert {q.name for q in queries} == set(names)
    for query in queries:
        read = metric_names(query.query)
        assert read <= set(SIGNAL_METRICS[names[query.name]]) | {m.UP}, query.query


def test_signal_metrics_are_exported_by_the_server_or_a_known_exporter():
    exported = m.MODEL_SERVER_METRICS | set(m.INFRASTRUCTURE_METRICS)
    for signal, names in SIGNAL_METRICS.items():
        assert set(names) <= exported, signal
    assert set(SIGNAL_METRICS) == set(SignalsConfig.model_fields) - {"cpu", "memory"}


def test_scaled_object_carries_every_signal_and_names_the_hpa_it_makes():
    config = scaling(cpu=70, in_flight=4)
    queries = signal_queries("ml", "iris", config, "60s")
    spec = plan_scaled_object("iris", "iris", config, queries, ADDRESS)
    assert spec["scaleTargetRef"]["name"] == "iris"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 7)
    assert spec["pollingInterval"] == 15
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "iris"
    assert (
        spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        == (plan_hpa("iris", config)["behavior"])
    )
    cpu, in_flight = spec["triggers"]
    assert cpu == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}
    assert in_flight["type"] == "prometheus" and in_flight["name"] == "in-flight"
    assert in_flight["metadata"]["serverAddress"] == ADDRESS
    assert in_flight["metadata"]["threshold"] == "4"
    assert in_flight["metadata"]["ignoreNullValues"] == "false"
    assert KEDA_TRANSFER_HPA == "scaledobject.keda.sh/transfer-hpa-ownership"


@pytest.mark.parametrize(
    "interval, window", [("15s", "60s"), ("10s", "60s"), ("30s", "120s"), ("1m", "240s")]
)
def test_rate_window_holds_four_scrapes_and_at_least_a_minute(interval, window):
    assert rate_window(interval) == window


def test_prometheus_address_is_the_monitoring_stacks_own_unless_set():
    assert prometheus_address(stack()) == ADDRESS
    assert prometheus_address(stack(monitoring={"namespace": "obs"})) == (
        "http://monitoring-prometheus.obs.svc:9090"
    )
    assert prometheus_address(stack(monitoring={"mode": "operator"})) is None
    explicit = "http://prometheus-operated.monitoring.svc:9090"
    raw = {"mode": "operator"}
    assert (
        prometheus_address(stack(monitoring=raw, autoscaling={"prometheusAddress": explicit}))
        == explicit
    )
    assert prometheus_address(stack(monitoring={"enabled": False})) is None
