"""A team's stack using the mlplatform components directly, without the platform's StackConfig.

It serves one model from a prebuilt image in its own namespace: default-deny networking, HPA,
PDB, and a host route with a weighted canary on the platform's shared Gateway (Gateway API
HTTPRoute attached across namespaces), all typed.
"""

import pulumi

from mlplatform import (
    AutoscalingConfig,
    GatewayConfig,
    IngressConfig,
    MLModelService,
    MLModelServiceArgs,
    ModelConfig,
    ModelIngress,
    ModelIngressArgs,
    ModelNamespace,
    ModelNamespaceArgs,
    SignalsConfig,
)

config = pulumi.Config()
image = config.require("image")
domain = config.require("domain")
# The platform stack runs the Gateway; this stack only attaches its route to it.
gateway = GatewayConfig(deploy=False, name=config.get("gateway") or "mlplatform")

namespace = ModelNamespace("fraud", ModelNamespaceArgs(name="team-fraud"))

scorer = ModelConfig(
    name="fraud-scorer",
    framework="sklearn",
    version="1.4.2",
    image=image,
    resources={
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    },
    canary={"version": "1.5.0-rc1", "weight": 5},
)

service = MLModelService(
    "fraud-scorer",
    MLModelServiceArgs(
        model=scorer,
        namespace=namespace.name,
        image=image,
        canary_image=image.rsplit(":", 1)[0] + ":1.5.0-rc1",
        autoscaling=AutoscalingConfig(
            min_replicas=2, max_replicas=6, signals=SignalsConfig(cpu=60)
        ),
    ),
)

route = ModelIngress(
    "fraud-scorer-route",
    ModelIngressArgs(
        model=scorer,
        ingress=IngressConfig(
            routing="host",
            domain=domain,
            gateway=gateway,
            controller_namespace=config.get("gatewayNamespace") or "mlplatform-gateway",
        ),
        namespace=namespace.name,
        service_name=service.service_name,
        canary_service_name=service.canary_service_name,
    ),
)

pulumi.export("url", route.url)
pulumi.export("clusterUrl", service.cluster_url)
