"""mlplatform components: deploy scikit-learn and TensorFlow models on Kubernetes with Pulumi.

Import the components from any Pulumi Python program::

    from components import MLModelService, MLModelServiceArgs, ModelConfig

Type tokens are stable (`mlplatform:<area>:<Name>`); renaming one would change every URN.
"""

from components.batch_job import BatchInference, BatchInferenceArgs
from components.config import (
    AutoscalingConfig,
    BatchJobConfig,
    GpuPoolConfig,
    IngressConfig,
    ModelConfig,
    StackConfig,
    load_stack_config,
    load_stack_file,
    parse_stack_config,
    read_secrets,
)
from components.errors import ConfigError, ConfigIssue
from components.gpu_node_pool import GpuNodePool, GpuNodePoolArgs
from components.ingress import ModelIngress, ModelIngressArgs
from components.model_image import ModelImage, ModelImageArgs
from components.model_service import MLModelService, MLModelServiceArgs
from components.namespace import ModelNamespace, ModelNamespaceArgs
from components.plan.gpu import GpuPlacement
from components.platform import MLPlatform, MLPlatformArgs, monitored_models
from components.provider import kubernetes_provider

__all__ = [
    "AutoscalingConfig",
    "BatchInference",
    "BatchInferenceArgs",
    "BatchJobConfig",
    "ConfigError",
    "ConfigIssue",
    "GpuNodePool",
    "GpuNodePoolArgs",
    "GpuPlacement",
    "GpuPoolConfig",
    "IngressConfig",
    "MLModelService",
    "MLModelServiceArgs",
    "MLPlatform",
    "MLPlatformArgs",
    "ModelConfig",
    "ModelImage",
    "ModelImageArgs",
    "ModelIngress",
    "ModelIngressArgs",
    "ModelNamespace",
    "ModelNamespaceArgs",
    "StackConfig",
    "kubernetes_provider",
    "load_stack_config",
    "load_stack_file",
    "monitored_models",
    "parse_stack_config",
    "read_secrets",
]
