"""Rules generated from SLOs: names, thresholds, GPU-only and HPA-dependent alerts."""

from __future__ import annotations

import dataclasses
import re

import pytest

from factories import slo as make_slo
from mlplatform.plan.monitoring import rules as rules
from mlplatform.plan.monitoring.inputs import MonitoredModel


def _model(gpu=False, hpa=(1, 4), **slo) -> MonitoredModel:
    values = {"latency_p99_ms": 250, "error_rate_percent": 1.0, "availability_percent": 99.5, **slo}
    return MonitoredModel(
        name="iris",
        namespace="models",
        version="1",
        gpu=gpu,
        hpa_min_replicas=hpa[0],
        hpa_max_replicas=hpa[1],
        slo=make_slo(**values),
    )


def _alerts(model: MonitoredModel) -> dict[str, dict]:
    return {rule["alert"]: rule for rule in rules.alert_rules(model)}


def test_two_groups_per_model_named_after_it():
    groups = rules.rule_groups(_model())["groups"]
    assert [g["name"] for g in groups] == [
        "mlplatform.models.iris.recording",
        "mlplatform.models.iris.alerts",
    ]
    assert all("record" in r for r in groups[0]["rules"])
    assert all("alert" in r for r in groups[1]["rules"])


def test_recorded_series_follow_level_metric_operation_naming():
    for rule in rules.recording_rules(_model(gpu=True)):
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]


def test_recordings_are_defined_before_use():
    defined: set[str] = set()
    for rule in rules.recording_rules(_model(gpu=True)):
        used = set(re.findall(r"namespace_model:[\w:]+", rule["expr"]))
        assert used <= defined, (rule["record"], used - defined)
        defined.add(rule["record"])


@pytest.mark.parametrize(
    "error_rate, fast, slow", [(1.0, "0.144", "0.06"), (0.1, "0.0144", "0.006")]
)
def test_error_burn_thresholds_scale_with_the_budget(error_rate, fast, slow):
    alerts = _alerts(_model(error_rate_percent=error_rate))
    fast_expr = alerts["ModelErrorsBudgetBurnFast"]["expr"]
    assert fast_expr.count(f"> {fast}") == 2
    assert "ratio_rate1h" in fast_expr and "ratio_rate5m" in fast_expr
    slow_expr = alerts["ModelErrorsBudgetBurnSlow"]["expr"]
    assert slow_expr.count(f"> {slow}") == 2
    assert "ratio_rate6h" in slow_expr and "ratio_rate30m" in slow_expr
    assert alerts["ModelErrorsBudgetBurnFast"]["labels"]["severity"] == "critical"
    assert alerts["ModelErrorsBudgetBurnSlow"]["labels"]["severity"] == "warning"


def test_latency_slo_picks_the_matching_bucket():
    for ms, le in [(250, "0.25"), (1000, "1.0"), (50, "0.05")]:
        slow = [
            r
            for r in rules.recording_rules(_model(latency_p99_ms=ms))
            if r["record"] == rules.SLOW_RATIO.format(w="5m")
        ]
        assert f'le="{le}"' in slow[0]["expr"]


def test_availability_threshold_uses_its_own_budget():
    alerts = _alerts(_model(availability_percent=99.9))
    assert "> 0.0144" in alerts["ModelAvailabilityBudgetBurnFast"]["expr"]


def test_every_alert_has_severity_summary_description_and_dashboard():
    for alert in rules.alert_rules(_model(gpu=True)):
        assert alert["labels"]["severity"] in {"critical", "warning"}
        assert alert["labels"]["model"] == "iris" and alert["labels"]["namespace"] == "models"
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        assert alert["annotations"]["dashboard"] == "/d/mlp-models-iris"
        assert re.fullmatch(r"\d+[smh]", alert["for"])


def test_gpu_alerts_only_for_gpu_models():
    assert {"ModelGPUSaturated", "ModelGPUMemorySaturated"} <= set(_alerts(_model(gpu=True)))
    assert not {"ModelGPUSaturated", "ModelGPUMemorySaturated"} & set(_alerts(_model()))
    assert not any("DCGM" in r["expr"] for r in rules.recording_rules(_model()))


def test_replicas_at_max_uses_hpa_bound_and_is_skipped_when_pinned():
    alert = _alerts(_model(hpa=(2, 7)))["ModelReplicasAtHPAMax"]
    assert alert["expr"].endswith(">= 7")
    assert "ModelReplicasAtHPAMax" not in _alerts(_model(hpa=(3, 3)))
    assert _alerts(_model(hpa=(2, 7)))["ModelReplicasBelowHPAMin"]["expr"].endswith("< 2")


def test_replica_count_only_counts_the_stable_deployment():
    replicas = next(r for r in rules.recording_rules(_model()) if r["record"] == rules.REPLICAS)
    assert 'app_kubernetes_io_instance="iris"' in replicas["expr"]
    assert replicas["labels"] == {"model": "iris"}


def test_restart_alert_reads_process_start_time():
    assert (
        "changes(process_start_time_seconds{" in _alerts(_model())["ModelServerRestarted"]["expr"]
    )


def test_dashboard_uid_is_bounded_and_deterministic():
    long = MonitoredModel(
        name="a" * 60,
        namespace="b" * 60,
        version="1",
        hpa_min_replicas=1,
        hpa_max_replicas=1,
        slo=_model().slo,
    )
    sibling = dataclasses.replace(long, name="a" * 59 + "b")
    assert len(rules.dashboard_uid(long)) <= 40
    assert rules.dashboard_uid(long) != rules.dashboard_uid(sibling)
    assert rules.dashboard_uid(_model()) == "mlp-models-iris"


def test_quantile_record_names():
    assert rules.quantile_record(0.99).endswith(":p99_rate5m")
    assert rules.quantile_record(0.5).endswith(":p50_rate5m")
