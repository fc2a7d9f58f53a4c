"""The typed stack configuration, the floor above `mlplatform.core`: pure models, no Pulumi.

`StackConfig` holds every `mlplatform:*` key; `mlplatform.loader` reads Pulumi config into it.
Submodules: `fields` (documented fields, checked strings), `model` (per model), `cluster`
(platform-wide keys), `stack` (StackConfig), `errors` (ConfigError), `issues` (turning
validation errors into ConfigIssues).
"""

from mlplatform.config.cluster import (
    AutoscalersConfig,
    BatchDataConfig,
    BatchJobConfig,
    DevicePluginConfig,
    ExistingPoolBackend,
    GatewayConfig,
    GpuPoolConfig,
    ImagesConfig,
    IngressConfig,
    KedaConfig,
    LocalPoolBackend,
    MonitoringConfig,
    NamespacesConfig,
    RegistryConfig,
    TlsConfig,
    VpaAddonConfig,
)
from mlplatform.config.errors import ConfigError, ConfigIssue
from mlplatform.config.model import (
    AutoscalingConfig,
    AutoscalingOverrides,
    CanaryConfig,
    ModelConfig,
    ModelRouteConfig,
    PdbConfig,
    ResourceAmounts,
    ResourcesConfig,
    SignalsConfig,
    SloConfig,
    VpaConfig,
)
from mlplatform.config.stack import SECRET_KEYS, StackConfig, top_level_keys

__all__ = [
    "AutoscalersConfig",
    "KedaConfig",
    "VpaAddonConfig",
    "SECRET_KEYS",
    "AutoscalingConfig",
    "SignalsConfig",
    "AutoscalingOverrides",
    "BatchDataConfig",
    "BatchJobConfig",
    "CanaryConfig",
    "ConfigError",
    "ConfigIssue",
    "DevicePluginConfig",
    "ExistingPoolBackend",
    "GatewayConfig",
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
    "SloConfig",
    "StackConfig",
    "TlsConfig",
    "VpaConfig",
    "top_level_keys",
]
