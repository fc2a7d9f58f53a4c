"""StackConfig: every `mlplatform:*` key of one stack, its default and its allowed values.

YAML keys are camelCase (Pulumi convention); Python attributes are snake_case through aliases.
Single values are checked by the models (model.py per model, cluster.py for the platform); rules
that relate several values live in `mlplatform.plan.checks`; `mlplatform.loader` runs both and
raises the one ConfigError. `Pulumi.yaml` declares the keys with empty defaults, so "not set"
means "use the default defined here".
"""

from __future__ import annotations

from pydantic import field_validator

from mlplatform.config.cluster import (
    AutoscalersConfig,
    BatchJobConfig,
    GpuPoolConfig,
    ImagesConfig,
    IngressConfig,
    MonitoringConfig,
    NamespacesConfig,
    RegistryConfig,
)
from mlplatform.config.fields import ConfigModel, setting
from mlplatform.config.model import AutoscalingConfig, ModelConfig

SECRET_KEYS = {
    "registryPassword": "password for `registry.username` (read with config.require_secret)",
    "grafanaAdminPassword": "Grafana admin password for the monitoring stack (optional secret)",
}


class StackConfig(ConfigModel):
    """All `mlplatform:*` keys of one stack."""

    kubeconfig: str | None = setting(
        None,
        doc="Kubeconfig path or content for the Kubernetes provider; null (or '') uses "
        "$KUBECONFIG, then ~/.kube/config.",
        allowed="a file path or kubeconfig YAML",
        example="~/.kwok/clusters/mlplatform/kubeconfig.yaml",
    )
    kube_context: str | None = setting(
        None,
        doc="Kubeconfig context; null uses the current one.",
        allowed="a context name",
        example="kwok-mlplatform",
    )
    namespaces: NamespacesConfig = setting(
        default_factory=NamespacesConfig, doc="Namespaces.", allowed="{models, batch, podSecurity}"
    )
    models: list[ModelConfig] = setting(
        doc="The models to serve.",
        allowed="a list of model objects with unique names",
    )
    gpu_pools: list[GpuPoolConfig] = setting(
        default_factory=list,
        doc="GPU node pools.",
        allowed="a list of pool objects with unique names",
    )
    ingress: IngressConfig = setting(
        default_factory=IngressConfig, doc="Ingress routing.", allowed="see ingress.* keys"
    )
    monitoring: MonitoringConfig = setting(
        default_factory=MonitoringConfig, doc="Monitoring.", allowed="see monitoring.* keys"
    )
    autoscaling: AutoscalingConfig = setting(
        default_factory=AutoscalingConfig,
        doc="HPA defaults for every model.",
        allowed="see autoscaling.* keys",
    )
    autoscalers: AutoscalersConfig = setting(
        default_factory=AutoscalersConfig,
        doc="Autoscaling add-ons (KEDA, VPA) the stack installs.",
        allowed="{keda, vpa}",
    )
    registry: RegistryConfig = setting(
        default_factory=RegistryConfig,
        doc="Image registry.",
        allowed="{server, repository, username}",
    )
    images: ImagesConfig = setting(
        default_factory=ImagesConfig,
        doc="Image build settings.",
        allowed="{buildOnPreview, network, platform}",
    )
    batch_jobs: list[BatchJobConfig] = setting(
        default_factory=list,
        doc="Batch inference jobs.",
        allowed="a list of job objects with unique names",
    )

    @field_validator("kubeconfig", "kube_context")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        # Pulumi.yaml declares string keys with default "" because a declared key without a
        # default is mandatory; "" therefore means "not set".
        return value or None

    def model_named(self, name: str) -> ModelConfig:
        return next(m for m in self.models if m.name == name)

    def pool_named(self, name: str) -> GpuPoolConfig | None:
        return next((p for p in self.gpu_pools if p.name == name), None)

    def effective_autoscaling(self, model: ModelConfig) -> AutoscalingConfig:
        """The HPA settings one model runs with (stack defaults + the model's overrides)."""
        return self.autoscaling.merged(model.autoscaling)


def top_level_keys() -> dict[str, str]:
    """camelCase config key -> StackConfig attribute, for every declared non-secret key."""
    return {field.alias or name: name for name, field in StackConfig.model_fields.items()}
