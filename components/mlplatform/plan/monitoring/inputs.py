"""What the monitoring plans take: each model as monitoring sees it, built from the stack config.

Plain data, no validation of its own: every value was checked once, by `mlplatform.config`
(names, quantities, SLO bounds) and `mlplatform.plan.checks`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlplatform.config import SloConfig, StackConfig


@dataclass(frozen=True)
class MonitoredModel:
    """One deployed model as monitoring needs to know it."""

    name: str
    """The pods' app.kubernetes.io/name label and the server's `model` metric label."""
    namespace: str
    """Namespace the model's pods run in."""
    version: str
    """Deployed version (app.kubernetes.io/version), shown on dashboards."""
    hpa_min_replicas: int
    hpa_max_replicas: int
    slo: SloConfig
    """The model's service level objective; alerts and dashboard thresholds derive from it."""
    gpu: bool = False
    """On GPU nodes: GPU panels and GPU saturation alerts."""
    cpu_request: str | None = None
    """CPU request of the server container ('500m'), drawn on the CPU panel."""
    memory_request: str | None = None
    """Memory request ('512Mi'), drawn on the memory panel."""


def monitored_models(config: StackConfig) -> list[MonitoredModel]:
    """Every model of the stack, with the autoscaling bounds it runs with."""
    models = []
    for model in config.models:
        scaling = config.effective_autoscaling(model)
        models.append(
            MonitoredModel(
                name=model.name,
                namespace=config.namespaces.models,
                version=model.version,
                gpu=model.resources.gpus > 0,
                hpa_min_replicas=scaling.min_replicas,
                hpa_max_replicas=scaling.max_replicas,
                cpu_request=model.resources.requests.cpu,
                memory_request=model.resources.requests.memory,
                slo=model.slo,
            )
        )
    return models
