"""Monitoring input: every mistake is a ConfigError from the stack config, before any resource;
MonitoringStackArgs adds only what a standalone caller can get wrong (repeats, the password)."""

from __future__ import annotations

import pulumi
import pytest
from pydantic import ValidationError

from factories import monitored_model, monitoring_args, slo
from mlplatform.config import MonitoringConfig
from mlplatform.config.errors import ConfigError
from mlplatform.loader import parse_stack_config
from mlplatform.monitoring import MonitoringStackArgs
from mlplatform.plan.monitoring.inputs import monitored_models

MODELS = [{"name": "iris", "framework": "sklearn"}]


def _issue(**monitoring) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({"mlplatform:models": MODELS, "mlplatform:monitoring": monitoring}, "qa")
    (issue,) = caught.value.issues
    return issue.render("qa")


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("retention", "15 days", "not a Prometheus duration"),
        ("scrapeInterval", "5m", "outside 1s..1m"),
        ("storageSize", "lots", "not a memory quantity"),
        ("storageSize", "0", "not a positive size"),
        ("prometheusImage", "prom/prometheus:latest", "pinned"),
        ("grafanaImage", "grafana/grafana", "pinned"),
        ("mode", "helm", "'deploy' or 'operator'"),
    ],
)
def test_each_bad_setting_names_its_key_and_value(key, value, expected):
    message = _issue(**{key: value})
    assert f"mlplatform:monitoring.{key}" in message and expected in message
    assert repr(value) in message or value in message


def test_operator_mode_rejects_deploy_only_settings():
    message = _issue(mode="operator", storageSize="1Gi")
    assert "mlplatform:monitoring.storageSize" in message
    assert "only applies to monitoring.mode 'deploy'" in message


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("latencyP99Ms", 300, "300 ms is not an upper bound"),
        ("errorRatePercent", 7.5, "less than or equal to 6.94"),
        ("availabilityPercent", 100, "less than 100"),
    ],
)
def test_slo_bounds_come_from_the_one_config_definition(field, value, expected):
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({"mlplatform:models": [{**MODELS[0], "slo": {field: value}}]}, "qa")
    (issue,) = caught.value.issues
    assert issue.path == f"mlplatform:models[0].slo.{field}" and expected in issue.problem


def test_monitored_models_carry_the_models_effective_scaling_and_slo():
    config = parse_stack_config(
        {
            "mlplatform:models": [
                {**MODELS[0], "slo": {"latencyP99Ms": 500}, "autoscaling": {"maxReplicas": 7}}
            ],
            "mlplatform:namespaces": {"models": "serving"},
        },
        "qa",
    )
    (model,) = monitored_models(config)
    assert (model.name, model.namespace, model.hpa_max_replicas) == ("iris", "serving", 7)
    assert model.slo.latency_seconds == 0.5 and model.gpu is False
    args = MonitoringStackArgs.from_stack_config(config)
    assert args.settings is config.monitoring and args.models == [model]


def test_defaults_are_the_config_defaults():
    assert monitoring_args().settings == MonitoringConfig()
    assert MonitoringConfig().retention == "7d"


def test_duplicate_models_are_rejected_with_both_positions():
    with pytest.raises(ValidationError) as caught:
        monitoring_args([monitored_model(), monitored_model(version="2")])
    assert "models[1] repeats model 'iris'" in str(caught.value) and "models[0]" in str(
        caught.value
    )


def test_same_name_in_two_namespaces_is_fine():
    args = monitoring_args([monitored_model(), monitored_model(namespace="other")])
    assert len(args.models) == 2


@pytest.mark.parametrize("value", ["", 1234])
def test_password_must_be_a_string_or_output(value):
    with pytest.raises(ValidationError) as caught:
        monitoring_args(grafana_admin_password=value)
    message = str(caught.value)
    assert "grafana_admin_password" in message and "get_secret('grafanaAdminPassword')" in message


def test_password_accepts_secret_output_and_hides_it_from_repr():
    args = monitoring_args(grafana_admin_password=pulumi.Output.secret("pw"))
    assert isinstance(args.grafana_admin_password, pulumi.Output)
    assert "pw" not in repr(monitoring_args(grafana_admin_password="pw"))


def test_args_are_frozen():
    with pytest.raises(ValidationError):
        monitoring_args().models = []


def test_budgets():
    target = slo()
    assert target.error_budget == pytest.approx(0.01)
    assert target.availability_budget == pytest.approx(0.005)
    assert target.latency_seconds == pytest.approx(0.25)
