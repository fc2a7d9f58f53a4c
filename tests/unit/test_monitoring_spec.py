"""Validation of MonitoringStackArgs: bad input names the field, the value and the fix."""

from __future__ import annotations

import pulumi
import pytest
from pydantic import ValidationError

from components.plan.monitoring_spec import (
    ModelSLO,
    MonitoredModel,
    MonitoringStackArgs,
    duration_seconds,
)

SLO = {"latency_p99_ms": 250, "error_rate_percent": 1.0, "availability_percent": 99.5}


def _model(**overrides) -> dict:
    return {
        "name": "iris",
        "namespace": "models",
        "version": "1",
        "hpa_min_replicas": 1,
        "hpa_max_replicas": 3,
        "slo": dict(SLO),
        **overrides,
    }


def _error(**args) -> str:
    with pytest.raises(ValidationError) as caught:
        MonitoringStackArgs(**args)
    return str(caught.value)


def test_defaults_are_documented_and_applied():
    args = MonitoringStackArgs(models=[_model()])
    assert (args.namespace, args.mode, args.retention, args.storage_size, args.alertmanager) == (
        "monitoring",
        "deploy",
        "15d",
        None,
        False,
    )
    for name, field in MonitoringStackArgs.model_fields.items():
        assert field.description and len(field.description) > 20, name
    for model in (ModelSLO, MonitoredModel):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"


def test_latency_must_be_a_histogram_bucket():
    message = _error(models=[_model(slo={**SLO, "latency_p99_ms": 300})])
    assert "models.0.slo.latency_p99_ms" in message
    assert "300 ms is not an upper bound" in message
    assert "250" in message and "500" in message  # the allowed neighbours are listed


@pytest.mark.parametrize("value", [0, -1, 7.5])
def test_error_budget_range(value):
    message = _error(models=[_model(slo={**SLO, "error_rate_percent": value})])
    assert "models.0.slo.error_rate_percent" in message
    assert "0 < errorRatePercent <= 6.94" in message


@pytest.mark.parametrize("value", [100, 90, 101])
def test_availability_range(value):
    message = _error(models=[_model(slo={**SLO, "availability_percent": value})])
    assert "models.0.slo.availability_percent" in message
    assert "93.06 <= availabilityPercent < 100" in message


def test_hpa_max_below_min():
    message = _error(models=[_model(hpa_min_replicas=4, hpa_max_replicas=2)])
    assert "hpa_max_replicas=2 is below hpa_min_replicas=4" in message


def test_names_must_be_dns_labels():
    message = _error(models=[_model(name="Iris_Model")])
    assert "models.0.name" in message and "'Iris_Model'" in message and "RFC 1123" in message


def test_duplicate_models_are_rejected_with_both_positions():
    message = _error(models=[_model(), _model(version="2")])
    assert "models[1] repeats model 'iris'" in message and "models[0]" in message


def test_same_name_in_two_namespaces_is_fine():
    args = MonitoringStackArgs(models=[_model(), _model(namespace="other")])
    assert len(args.models) == 2


@pytest.mark.parametrize(
    "field,value,expected",
    [
        ("retention", "15 days", "not a Prometheus duration"),
        ("scrape_interval", "5m", "outside 1s..1m"),
        ("storage_size", "lots", "not a memory quantity"),
        ("prometheus_image", "prom/prometheus:latest", "is not pinned"),
        ("grafana_image", "grafana/grafana", "is not pinned"),
        ("mode", "helm", "'deploy' or 'operator'"),
    ],
)
def test_settings_errors_name_field_and_value(field, value, expected):
    message = _error(models=[], **{field: value})
    assert field in message and expected in message and value in message


@pytest.mark.parametrize("value", ["", 1234])
def test_password_must_be_a_string_or_output(value):
    message = _error(models=[], grafana_admin_password=value)
    assert "grafana_admin_password" in message and "get_secret('grafanaAdminPassword')" in message


def test_password_accepts_secret_output_and_hides_it_from_repr():
    args = MonitoringStackArgs(models=[], grafana_admin_password=pulumi.Output.secret("pw"))
    assert isinstance(args.grafana_admin_password, pulumi.Output)
    assert "pw" not in repr(MonitoringStackArgs(models=[], grafana_admin_password="pw"))


def test_operator_mode_rejects_deploy_only_settings():
    message = _error(models=[], mode="operator", alertmanager=True)
    assert "only apply to mode 'deploy'" in message


def test_unknown_fields_are_rejected():
    message = _error(models=[_model(sloo={})])
    assert "models.0.sloo" in message and "Extra inputs are not permitted" in message


def test_args_are_frozen():
    args = MonitoringStackArgs(models=[])
    with pytest.raises(ValidationError):
        args.namespace = "other"


def test_budgets_and_durations():
    slo = ModelSLO(**SLO)
    assert slo.error_budget == pytest.approx(0.01)
    assert slo.availability_budget == pytest.approx(0.005)
    assert slo.latency_seconds == pytest.approx(0.25)
    assert duration_seconds("1m30s") == 90
    assert duration_seconds("1d12h") == 129600
