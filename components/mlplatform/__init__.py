"""mlplatform components: deploy scikit-learn and TensorFlow models on Kubernetes with Pulumi.

Import the components from any Pulumi Python program::

    from mlplatform import MLModelService, MLModelServiceArgs, ModelConfig

Type tokens are stable (`mlplatform:<area>:<Name>`); renaming one would change every URN.
"""

from mlplatform.autoscalers import ClusterAutoscalers, ClusterAutoscalersArgs
from mlplatform.batch_job import BatchInference, BatchInferenceArgs
from mlplatform.config import (
    AutoscalingConfig,
    BatchJobConfig,
    GatewayConfig,
    GpuPoolConfig,
    IngressConfig,
    ModelConfig,
    SignalsConfig,
    StackConfig,
)
from mlplatform.config.errors import ConfigError, ConfigIssue
from mlplatform.gateway import ModelGateway, ModelGatewayArgs
from mlplatform.gpu_node_pool import GpuNodePool, GpuNodePoolArgs
from mlplatform.ingress import ModelIngress, ModelIngressArgs
from mlplatform.loader import (
    StackSecrets,
    load_stack_config,
    load_stack_file,
    parse_stack_config,
    read_secrets,
)
from mlplatform.model_image import ModelImage, ModelImageArgs
from mlplatform.model_service import MLModelService, MLModelServiceArgs
from mlplatform.monitoring import MonitoredModel, MonitoringStack, MonitoringStackArgs
from mlplatform.namespace import ModelNamespace, ModelNamespaceArgs
from mlplatform.plan.gpu import GpuPlacement
from mlplatform.platform import MLPlatform, MLPlatformArgs
from mlplatform.provider import kubernetes_provider

__all__ = [
    "AutoscalingConfig",
    "SignalsConfig",
    "BatchInference",
    "BatchInferenceArgs",
    "BatchJobConfig",
    "ConfigError",
    "ConfigIssue",
    "GatewayConfig",
    "GpuNodePool",
    "GpuNodePoolArgs",
    "GpuPlacement",
    "GpuPoolConfig",
    "IngressConfig",
    "MLModelService",
    "MLModelServiceArgs",
    "MLPlatform",
    "MLPlatformArgs",
    "MonitoredModel",
    "MonitoringStack",
    "MonitoringStackArgs",
    "ModelConfig",
    "ClusterAutoscalers",
    "ClusterAutoscalersArgs",
    "ModelGateway",
    "ModelGatewayArgs",
    "ModelImage",
    "ModelImageArgs",
    "ModelIngress",
    "ModelIngressArgs",
    "ModelNamespace",
    "ModelNamespaceArgs",
    "StackConfig",
    "StackSecrets",
    "kubernetes_provider",
    "load_stack_config",
    "load_stack_file",
    "parse_stack_config",
    "read_secrets",
]
