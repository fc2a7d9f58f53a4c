"""Inputs of the MonitoringStack: which models to watch, their SLOs and how to run monitoring.

These models live in plan/ (not next to the component) so the pure planning modules can take them
without importing Pulumi resource code; ``components.monitoring`` re-exports them.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.plan.monitoring_metrics import LATENCY_BUCKETS_SECONDS
from components.plan.quantity import cpu_cores, memory_bytes

# Multi-window burn-rate factors (Google SRE workbook, ch. 5): 14.4x spends 2% of a 30-day budget
# in one hour, 6x spends 5% in six hours. A budget so large that 14.4x of it exceeds 100% could
# never page, so SLO targets are bounded by it.
FAST_BURN = 14.4
SLOW_BURN = 6.0
_MAX_BUDGET_PERCENT = round(100 / FAST_BURN, 2)  # 6.94

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PROM_DURATION = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
_IMAGE_TAG = re.compile(r"^[\w.\-/:]+:[\w][\w.\-]{0,127}$")

_FROZEN = ConfigDict(extra="forbid", frozen=True)
_ALLOWED_LATENCY_MS = ", ".join(f"{round(b * 1000, 3):g}" for b in LATENCY_BUCKETS_SECONDS)


def _dns_label(value: str, what: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid {what}: use 1-63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit (RFC 1123 label), e.g. 'iris-classifier'"
        )
    return value


def _prom_duration(value: str) -> str:
    if not value or not _PROM_DURATION.match(value):
        raise ValueError(
            f"{value!r} is not a Prometheus duration: use units y, w, d, h, m, s, ms in that "
            "order, e.g. '15d', '12h', '1d12h' or '30s'"
        )
    return value


class ModelSLO(BaseModel):
    """The service level one model promises; alerts and dashboard thresholds derive from it."""

    model_config = _FROZEN

    latency_p99_ms: float = Field(
        description="99th-percentile request latency target in milliseconds. Required; must be an "
        f"upper bound of the server's duration histogram ({_ALLOWED_LATENCY_MS}), because the "
        "share of slower requests is read from that bucket. The stack config's default is 250."
    )
    error_rate_percent: float = Field(
        description="Share of requests allowed to fail, in percent. Required; > 0 and <= 6.94 "
        "(fast-burn alerts fire at 14.4x this budget, which must stay below 100%). The stack "
        "config's default is 1.0."
    )
    availability_percent: float = Field(
        description="Share of time each model pod must answer scrapes, in percent. Required; "
        ">= 93.06 and < 100 (same burn-rate bound as error_rate_percent). The stack config's "
        "default is 99.5."
    )

    @field_validator("latency_p99_ms")
    @classmethod
    def _latency_is_bucket(cls, value: float) -> float:
        if round(value, 3) not in [round(b * 1000, 3) for b in LATENCY_BUCKETS_SECONDS]:
            raise ValueError(
                f"{value:g} ms is not an upper bound of the request-duration histogram; allowed: "
                f"{_ALLOWED_LATENCY_MS}. Pick the nearest allowed value, or add the bucket to "
                "the server's histogram (models/serving/metrics.py) and to LATENCY_BUCKETS_SECONDS"
            )
        return value

    @field_validator("error_rate_percent")
    @classmethod
    def _error_budget(cls, value: float) -> float:
        if not 0 < value <= _MAX_BUDGET_PERCENT:
            raise ValueError(
                f"{value:g} is outside the allowed range 0 < errorRatePercent <= "
                f"{_MAX_BUDGET_PERCENT} (a fast-burn alert fires at {FAST_BURN}x the budget, which "
                "cannot exceed 100%); typical values are 0.1 to 5"
            )
        return value

    @field_validator("availability_percent")
    @classmethod
    def _availability_budget(cls, value: float) -> float:
        low = round(100 - _MAX_BUDGET_PERCENT, 2)
        if not low <= value < 100:
            raise ValueError(
                f"{value:g} is outside the allowed range {low} <= availabilityPercent < 100 (100 "
                "leaves no error budget to burn); typical values are 99, 99.5 or 99.9"
            )
        return value

    @property
    def latency_seconds(self) -> float:
        """The latency target in seconds, as it appears in the histogram's `le` label."""
        return self.latency_p99_ms / 1000

    @property
    def error_budget(self) -> float:
        """Allowed failing share of requests as a ratio (1.0 % -> 0.01)."""
        return self.error_rate_percent / 100

    @property
    def availability_budget(self) -> float:
        """Allowed unavailable share of scrape time as a ratio (99.5 % -> 0.005)."""
        return round(1 - self.availability_percent / 100, 10)


class MonitoredModel(BaseModel):
    """One deployed model as monitoring needs to know it."""

    model_config = _FROZEN

    name: str = Field(
        description="Model name: the pods' app.kubernetes.io/name label and the server's `model` "
        "metric label (MODEL_NAME). Required; RFC 1123 label."
    )
    namespace: str = Field(
        description="Namespace the model's pods run in. Required; RFC 1123 label."
    )
    version: str = Field(
        min_length=1,
        description="Deployed version (app.kubernetes.io/version); shown on dashboards.",
    )
    gpu: bool = Field(
        default=False,
        description="True for models on GPU nodes: adds GPU panels and "
        "GPU saturation alerts. Default false.",
    )
    hpa_min_replicas: int = Field(
        ge=1, description="HPA minReplicas of the stable Deployment. Required; >= 1."
    )
    hpa_max_replicas: int = Field(
        ge=1, description="HPA maxReplicas. Required; >= hpa_min_replicas."
    )
    cpu_request: str | None = Field(
        default=None,
        description="CPU request of the model-server container as a Kubernetes "
        "quantity ('500m', '2'), drawn on the CPU panel. Default none (no request line).",
    )
    memory_request: str | None = Field(
        default=None,
        description="Memory request as a Kubernetes quantity ('512Mi', '2Gi'), drawn "
        "on the memory panel. Default none (no request line).",
    )
    slo: ModelSLO = Field(description="The model's service level objective. Required.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_label(value, "model name")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return _dns_label(value, "namespace")

    @field_validator("cpu_request")
    @classmethod
    def _cpu(cls, value: str | None) -> str | None:
        if value is not None:
            cpu_cores(value)
        return value

    @field_validator("memory_request")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None:
            memory_bytes(value)
        return value

    @model_validator(mode="after")
    def _hpa_bounds(self) -> MonitoredModel:
        if self.hpa_max_replicas < self.hpa_min_replicas:
            raise ValueError(
                f"hpa_max_replicas={self.hpa_max_replicas} is below hpa_min_replicas="
                f"{self.hpa_min_replicas} for model {self.name!r}; set max >= min"
            )
        return self


class MonitoringStackArgs(BaseModel):
    """Arguments of ``MonitoringStack``."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    models: list[MonitoredModel] = Field(
        description="Models to watch, each with its SLO. Required; may be empty (then only the "
        "overview dashboard and no rules); (namespace, name) pairs must be unique."
    )
    namespace: str = Field(
        default="monitoring",
        description="Namespace for Prometheus, Grafana, Alertmanager (deploy mode) or for the "
        "PodMonitor/PrometheusRule objects (operator mode). Default 'monitoring'; RFC 1123 label. "
        "Created and labelled mlplatform.io/role=monitoring in deploy mode.",
    )
    mode: Literal["deploy", "operator"] = Field(
        default="deploy",
        description="'deploy' (default): run our own Prometheus and Grafana. 'operator': the "
        "cluster already runs the Prometheus Operator; emit PodMonitor and PrometheusRule objects "
        "and dashboard ConfigMaps for its Grafana sidecar instead.",
    )
    retention: str = Field(
        default="15d",
        description="Prometheus TSDB retention (deploy mode), a Prometheus duration such as '15d' "
        "or '12h'. Default '15d'.",
    )
    storage_size: str | None = Field(
        default=None,
        description="Size of a PersistentVolumeClaim for the TSDB, e.g. '20Gi' (deploy mode). "
        "Default none: an emptyDir, so data is lost when the pod moves.",
    )
    scrape_interval: str = Field(
        default="15s",
        description="How often Prometheus scrapes and evaluates rules (deploy mode; also the "
        "PodMonitor interval). Default '15s'; between 1s and 1m so the 5m rate windows hold "
        "enough samples.",
    )
    alertmanager: bool = Field(
        default=False,
        description="Deploy an Alertmanager and point Prometheus at it (deploy mode only). "
        "Default false.",
    )
    grafana: bool = Field(
        default=True,
        description="Deploy Grafana with the dashboards provisioned (deploy mode only). Default "
        "true; the dashboards' ConfigMaps are made either way.",
    )
    grafana_admin_password: Any = Field(
        default=None,
        repr=False,
        description="pulumi.Input[str] with the Grafana admin password, ideally from "
        "config.require_secret. Default none: Grafana then serves dashboards read-only to "
        "anonymous viewers with login and basic auth disabled (no default admin/admin).",
    )
    operator_labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels put on PodMonitor and PrometheusRule objects so the operator's "
        "selectors pick them up, e.g. {'release': 'kube-prometheus-stack'}. Default none.",
    )
    prometheus_image: str = Field(
        default="prom/prometheus:v3.5.0",
        description="Prometheus image, pinned by tag (not latest).",
    )
    grafana_image: str = Field(
        default="grafana/grafana:12.1.1", description="Grafana image, pinned by tag (not latest)."
    )
    alertmanager_image: str = Field(
        default="prom/alertmanager:v0.28.1", description="Alertmanager image, pinned by tag."
    )

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return _dns_label(value, "namespace")

    @field_validator("grafana_admin_password")
    @classmethod
    def _password(cls, value: Any) -> Any:
        if value is None or isinstance(value, pulumi.Output):
            return value
        if not isinstance(value, str) or not value:
            raise ValueError(
                f"expected a non-empty string or pulumi Output, got {type(value).__name__}; pass "
                "pulumi.Config('mlplatform').get_secret('grafanaAdminPassword') or leave it unset"
            )
        return value

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        return _prom_duration(value)

    @field_validator("scrape_interval")
    @classmethod
    def _scrape_interval(cls, value: str) -> str:
        _prom_duration(value)
        if not 1 <= duration_seconds(value) <= 60:
            raise ValueError(f"{value!r} is outside 1s..1m; use e.g. '15s' or '30s'")
        return value

    @field_validator("storage_size")
    @classmethod
    def _storage(cls, value: str | None) -> str | None:
        if value is not None and memory_bytes(value) <= 0:
            raise ValueError(f"{value!r} must be a positive size such as '20Gi'")
        return value

    @field_validator("prometheus_image", "grafana_image", "alertmanager_image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if not _IMAGE_TAG.match(value) or value.endswith(":latest"):
            raise ValueError(
                f"{value!r} is not pinned: give an explicit tag other than 'latest', "
                "e.g. 'prom/prometheus:v3.5.0'"
            )
        return value

    @model_validator(mode="after")
    def _unique_models(self) -> MonitoringStackArgs:
        seen: dict[tuple[str, str], int] = {}
        for index, model in enumerate(self.models):
            key = (model.namespace, model.name)
            if key in seen:
                raise ValueError(
                    f"models[{index}] repeats model {model.name!r} in namespace "
                    f"{model.namespace!r} (already models[{seen[key]}]); each model is listed once"
                )
            seen[key] = index
        if self.mode == "operator" and (self.alertmanager or self.storage_size is not None):
            raise ValueError(
                "alertmanager and storage_size only apply to mode 'deploy' (in mode 'operator' the "
                "existing Prometheus Operator stack owns them); unset them or use mode 'deploy'"
            )
        return self


def duration_seconds(value: str) -> float:
    """Seconds in a Prometheus duration ("1m30s" -> 90)."""
    units = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 1e-3}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|y|w|d|h|m|s)", value))
