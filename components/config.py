"""The typed stack configuration: every `mlplatform:*` key, its default and its allowed values.

Config is read once (`load_stack_config`) into a frozen `StackConfig`. YAML keys are camelCase
(Pulumi convention); Python attributes are snake_case through aliases. Single values are checked by
the models here; rules that relate several values (PDB vs HPA, GPU capacity, VPA vs HPA, references
between models, pools and jobs) live in `components.plan.checks`, so each rule reports the exact
key path it is about. Any problem becomes one `ConfigError` before a resource is registered.

The models live in config_model.py (per model) and config_cluster.py (platform); their defaults
are the only ones. `Pulumi.yaml` declares the keys with empty defaults so that
"not set" means "use the library default".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError, field_validator

from components.config_base import ConfigModel, setting
from components.config_cluster import (
    BatchDataConfig,
    BatchJobConfig,
    DevicePluginConfig,
    ExistingPoolBackend,
    GpuPoolConfig,
    ImagesConfig,
    IngressConfig,
    LocalPoolBackend,
    MonitoringConfig,
    NamespacesConfig,
    RegistryConfig,
    TlsConfig,
)
from components.config_model import (
    AutoscalingConfig,
    AutoscalingOverrides,
    CanaryConfig,
    ModelConfig,
    ModelRouteConfig,
    PdbConfig,
    ResourceAmounts,
    ResourcesConfig,
    SloConfig,
    VpaConfig,
)
from components.errors import CONFIG_NAMESPACE, ConfigError, ConfigIssue, not_set

__all__ = [
    "AutoscalingConfig",
    "AutoscalingOverrides",
    "BatchDataConfig",
    "BatchJobConfig",
    "CanaryConfig",
    "DevicePluginConfig",
    "ExistingPoolBackend",
    "GpuPoolConfig",
    "ImagesConfig",
    "IngressConfig",
    "LocalPoolBackend",
    "ModelConfig",
    "ModelRouteConfig",
    "MonitoringConfig",
    "NamespacesConfig",
    "PdbConfig",
    "RegistryConfig",
    "ResourceAmounts",
    "ResourcesConfig",
    "SECRET_KEYS",
    "SloConfig",
    "StackConfig",
    "StackSecrets",
    "TlsConfig",
    "VpaConfig",
    "load_stack_config",
    "load_stack_file",
    "parse_stack_config",
    "read_secrets",
]

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


# --------------------------------------------------------------------------------------- loading
def top_level_keys() -> dict[str, str]:
    """camelCase config key -> StackConfig attribute, for every declared non-secret key."""
    return {field.alias or name: name for name, field in StackConfig.model_fields.items()}


def parse_stack_config(
    raw: Mapping[str, Any], stack: str, project_root: Path | None = None
) -> StackConfig:
    """Validate raw config values into a StackConfig, or raise one ConfigError listing every issue.

    `raw` maps keys (with or without the `mlplatform:` prefix; other namespaces are ignored) to
    decoded values, as in a `Pulumi.<stack>.yaml` `config:` block. With `project_root`, model
    sources are checked to exist as `models/<source>/Dockerfile` under it.
    """
    # Imported here: checks and error rendering import this module's models.
    from components.config_issues import issues_from_validation_error, unknown_key_issues
    from components.plan.checks import cross_check

    data: dict[str, Any] = {}
    unknown: list[str] = []
    known = top_level_keys()
    for key, value in raw.items():
        namespace, _, short = key.rpartition(":")
        if namespace and namespace != CONFIG_NAMESPACE:
            continue
        if short in SECRET_KEYS:
            continue
        if short not in known:
            unknown.append(short)
            continue
        data[short] = value
    issues: list[ConfigIssue] = unknown_key_issues(stack, unknown, raw)
    try:
        config = StackConfig.model_validate(data)
    except ValidationError as error:
        issues.extend(issues_from_validation_error(stack, error, data))
        raise ConfigError(stack, issues) from None
    issues.extend(cross_check(config, stack, project_root))
    if issues:
        raise ConfigError(stack, issues)
    return config


def decode_config_value(value: Any) -> Any:
    """Pulumi hands object and list config to programs as JSON text; plain strings stay strings."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def runtime_config() -> dict[str, Any]:
    """Every `mlplatform:*` key the Pulumi engine passed to this program, decoded."""
    import pulumi.runtime.config as runtime_config_module

    merged: dict[str, Any] = dict(runtime_config_module.get_config_env())
    merged.update(runtime_config_module.CONFIG.get())
    return {
        key: decode_config_value(value)
        for key, value in merged.items()
        if key.startswith(CONFIG_NAMESPACE + ":")
    }


def load_stack_config(project_root: Path | None = None) -> StackConfig:
    """Read and validate this stack's configuration once; raises ConfigError when it is invalid."""
    import pulumi

    return parse_stack_config(runtime_config(), pulumi.get_stack(), project_root)


@dataclass(frozen=True)
class StackSecrets:
    """Secret config values; Outputs marked secret, so they never reach state in plain text."""

    registry_password: Any = None
    grafana_admin_password: Any = None


def read_secrets(config: StackConfig) -> StackSecrets:
    """Read the secret keys this config needs (registryPassword if registry.username)."""
    import pulumi

    bag = pulumi.Config(CONFIG_NAMESPACE)
    registry_password = None
    if config.registry.username is not None:
        try:
            registry_password = bag.require_secret("registryPassword")
        except pulumi.ConfigMissingError:
            stack = pulumi.get_stack()
            raise ConfigError(
                stack,
                [
                    ConfigIssue(
                        path="mlplatform:registryPassword",
                        value=not_set(),
                        problem=f"registry.username is {config.registry.username!r} "
                        "but no password is set",
                        allowed="a secret string",
                        fix=f"pulumi config set --stack {stack} --secret "
                        "mlplatform:registryPassword",
                    )
                ],
            ) from None
    return StackSecrets(
        registry_password=registry_password,
        grafana_admin_password=bag.get_secret("grafanaAdminPassword"),
    )


def load_stack_file(
    path: Path, stack: str | None = None, project_root: Path | None = None
) -> StackConfig:
    """Validate a `Pulumi.<stack>.yaml` file directly (tests, CI lint, other tools)."""
    import yaml

    document = yaml.safe_load(Path(path).read_text()) or {}
    name = stack or Path(path).name.removeprefix("Pulumi.").removesuffix(".yaml")
    return parse_stack_config(document.get("config") or {}, name, project_root)
