"""mlplatform stack program: read the stack config once, build the platform, export endpoints.

The component library is its own project in components/ (package `mlplatform`, see
docs/components.md). This stack uses it from the checkout; other stacks install its wheel
(examples/team-stack).
"""

import sys
from pathlib import Path

import pulumi

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "components"))

from mlplatform import MLPlatform, MLPlatformArgs, kubernetes_provider  # noqa: E402
from mlplatform.loader import load_stack_config, read_secrets  # noqa: E402

# Raises ConfigError (stack, key path, value, allowed, fix) before any resource is registered.
config = load_stack_config(ROOT)
secrets = read_secrets(config)

provider = kubernetes_provider("kubernetes", config)
platform = MLPlatform(
    "mlplatform",
    MLPlatformArgs(config=config, project_root=ROOT, secrets=secrets),
    opts=pulumi.ResourceOptions(providers={"kubernetes": provider}),
)

pulumi.export("namespace", platform.namespace)
pulumi.export("endpoints", platform.endpoints)
pulumi.export("grpcMetadata", platform.grpc_metadata)
pulumi.export("clusterUrls", platform.cluster_urls)
pulumi.export("images", platform.images)
pulumi.export("gpuNodes", platform.gpu_nodes)
if platform.monitoring is not None:
    pulumi.export("grafanaUrl", platform.monitoring.grafana_url)
    pulumi.export("prometheusUrl", platform.monitoring.prometheus_url)
