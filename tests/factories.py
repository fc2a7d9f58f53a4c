"""Test data every tier builds the same way: SLOs, monitored models, monitoring arguments.

Each factory returns a valid object with typical values; keyword arguments override single fields,
so a test states only what it is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlplatform.config import MonitoringConfig, SloConfig
from mlplatform.monitoring import MonitoringStackArgs
from mlplatform.plan.monitoring.inputs import MonitoredModel

SLO_DEFAULTS = {"latency_p99_ms": 250, "error_rate_percent": 1.0, "availability_percent": 99.5}


def slo(**overrides: Any) -> SloConfig:
    """An SLO: p99 250 ms, 1 % errors, 99.5 % availability unless overridden."""
    return SloConfig(**{**SLO_DEFAULTS, **overrides})


def monitored_model(name: str = "iris", **overrides: Any) -> MonitoredModel:
    """A CPU model in namespace `models`, HPA 1..3, default SLO; `slo` may be a dict."""
    if isinstance(overrides.get("slo"), dict):
        overrides["slo"] = slo(**overrides["slo"])
    fields: dict[str, Any] = {
        "name": name,
        "namespace": "models",
        "version": "1",
        "hpa_min_replicas": 1,
        "hpa_max_replicas": 3,
        "slo": slo(),
        **overrides,
    }
    return MonitoredModel(**fields)


def monitoring_args(
    models: Sequence[MonitoredModel] = (), grafana_admin_password: Any = None, **settings: Any
) -> MonitoringStackArgs:
    """MonitoringStackArgs with `settings` as `mlplatform:monitoring` keys (snake_case)."""
    return MonitoringStackArgs(
        models=list(models),
        settings=MonitoringConfig(**settings),
        grafana_admin_password=grafana_admin_password,
    )
