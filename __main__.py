"""mlplatform stack program: read the stack config once, build the platform, export endpoints.

Everything else lives in the `components` package (see docs/components.md).
"""

from pathlib import Path

import pulumi

from components.config import load_stack_config, read_secrets
from components.monitoring import MonitoringStack, MonitoringStackArgs
from components.platform import MLPlatform, MLPlatformArgs, monitored_models
from components.provider import kubernetes_provider

ROOT = Path(__file__).resolve().parent

# Raises ConfigError (stack, key path, value, allowed, fix) before any resource is registered.
config = load_stack_config(ROOT)
secrets = read_secrets(config)

provider = kubernetes_provider("kubernetes", config)
k8s_opts = pulumi.ResourceOptions(providers={"kubernetes": provider})

platform = MLPlatform(
    "mlplatform",
    MLPlatformArgs(config=config, project_root=ROOT, registry_password=secrets.registry_password),
    opts=k8s_opts,
)

# --- monitoring: MonitoringStack (components/monitoring.py) ------------------------------------
monitoring = None
if config.monitoring.enabled:
    monitoring = MonitoringStack(
        "monitoring",
        MonitoringStackArgs(
            models=monitored_models(config),
            namespace=config.monitoring.namespace,
            mode=config.monitoring.mode,
            retention=config.monitoring.retention,
            storage_size=config.monitoring.storage_size,
            alertmanager=config.monitoring.alertmanager,
            grafana=config.monitoring.grafana,
            prometheus_image=config.monitoring.prometheus_image,
            grafana_admin_password=secrets.grafana_admin_password,
        ),
        opts=k8s_opts,
    )
# -------------------------------------------------------------------------------------------------

pulumi.export("namespace", platform.namespace)
pulumi.export("endpoints", platform.endpoints)
pulumi.export("clusterUrls", platform.cluster_urls)
pulumi.export("images", platform.images)
pulumi.export("gpuNodes", platform.gpu_nodes)
if monitoring is not None:
    pulumi.export("grafanaUrl", monitoring.grafana_url)
    pulumi.export("prometheusUrl", monitoring.prometheus_url)
