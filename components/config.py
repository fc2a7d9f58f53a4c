"""The typed stack configuration: every `mlplatform:*` key, its default and its allowed values.

Config is read once (`load_stack_config`) into a frozen `StackConfig`. YAML keys are camelCase
(Pulumi convention); Python attributes are snake_case through aliases. Single values are checked by
the models here; rules that relate several values (PDB vs HPA, GPU capacity, VPA vs HPA, references
between models, pools and jobs) live in `components.plan.checks`, so each rule reports the exact
key path it is about. Any problem becomes one `ConfigError` before a resource is registered.

Defaults live here and only here; `Pulumi.yaml` declares the keys with empty defaults so that
"not set" means "use the library default".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Mapping

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticUndefined

from components.errors import CONFIG_NAMESPACE, ConfigError, ConfigIssue, not_set
from components.plan.monitoring_metrics import LATENCY_BUCKETS_SECONDS
from components.plan.quantity import cpu_cores, memory_bytes

# A fast-burn alert fires at 14.4x the error budget, which must stay below 100 % (SRE workbook).
_MAX_BUDGET_PERCENT = round(100 / 14.4, 2)

SECRET_KEYS = {
    "registryPassword": "password for `registry.username` (read with config.require_secret)",
    "grafanaAdminPassword": "Grafana admin password for the monitoring stack (optional secret)",
}


def setting(
    default: Any = PydanticUndefined,
    *,
    doc: str,
    allowed: str,
    example: Any = None,
    default_factory: Callable[[], Any] | None = None,
    **constraints: Any,
) -> Any:
    """A config field whose description always states its default and allowed values.

    `allowed` and `example` are kept machine-readable so `ConfigError` can quote them and build the
    fixing `pulumi config set` command.
    """
    if default_factory is not None:
        shown = _shown_factory_default(default_factory)
    elif default is PydanticUndefined:
        shown = "required"
    else:
        shown = json.dumps(default)
    extra: dict[str, Any] = {"allowed": allowed}
    if example is not None:
        extra["example"] = example
    kwargs: dict[str, Any] = dict(
        description=f"{doc} Default: {shown}. Allowed: {allowed}.",
        json_schema_extra=extra,
        **constraints,
    )
    if default_factory is not None:
        return Field(default_factory=default_factory, **kwargs)
    return Field(default, **kwargs)


def _shown_factory_default(factory: Callable[[], Any]) -> str:
    value = factory()
    if isinstance(value, BaseModel):
        try:
            if value == type(value)():
                return "see the sub-keys"
        except ValidationError:
            pass
        return json.dumps(value.model_dump(by_alias=True))
    return json.dumps(value)


class ConfigModel(BaseModel):
    """Base of all config models: frozen, unknown keys rejected, camelCase aliases."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )


def _pattern(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def validate(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(validate)


def _quantity(parse: Callable[[str], Any]) -> AfterValidator:
    def validate(value: str) -> str:
        parse(value)
        return value

    return AfterValidator(validate)


# Kubernetes Service names must be RFC 1035 labels; 40 characters leave room for the
# "-canary", "-hpa", "-pdb" suffixes of derived objects within the 63-character limit.
ModelName = Annotated[str, _pattern(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$",
                                    "an RFC 1035 label of at most 40 characters")]
DnsLabel = Annotated[str, _pattern(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
                                   "an RFC 1123 label (lowercase letters, digits, '-')")]
DnsName = Annotated[str, _pattern(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                                  "a lowercase DNS name")]
LabelValue = Annotated[str, _pattern(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$",
                                     "a Kubernetes label value")]
LabelKey = Annotated[str, _pattern(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$",
    "a Kubernetes label key")]
SourceDir = Annotated[str, _pattern(r"^[a-z0-9][a-z0-9_-]*$", "a folder name under models/")]
ImageRef = Annotated[str, _pattern(
    r"^[a-z0-9][a-z0-9._\-/:]*(:[\w][\w.\-]{0,127})?(@sha256:[0-9a-f]{64})?$", "an image reference")]
UrlPath = Annotated[str, _pattern(r"^/[A-Za-z0-9._~\-/]*$", "an absolute path")]
PromDuration = Annotated[str, _pattern(r"^(?=.)(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$",
                                       "a Prometheus duration")]
_CRON_FIELD = r"(\*|\d+|\d+-\d+)(/\d+)?(,(\*|\d+|\d+-\d+)(/\d+)?)*"
CronSchedule = Annotated[str, _pattern(
    rf"^(@(hourly|daily|weekly|monthly|yearly)|{_CRON_FIELD}( {_CRON_FIELD}){{4}})$", "a cron schedule")]
RegistryHost = Annotated[str, _pattern(r"^[a-z0-9.\-]+(:\d+)?$", "a registry host[:port]")]
RepositoryPath = Annotated[str, _pattern(r"^[a-z0-9]+([._\-/][a-z0-9]+)*$", "a repository path")]
Platform = Annotated[str, _pattern(r"^linux/(amd64|arm64)$", "'linux/amd64' or 'linux/arm64'")]
CpuQuantity = Annotated[str, _quantity(cpu_cores)]
MemoryQuantity = Annotated[str, _quantity(memory_bytes)]


# --------------------------------------------------------------------------------------- models
class ResourceAmounts(ConfigModel):
    """CPU and memory of one container (requests or limits)."""

    cpu: CpuQuantity = setting(doc="CPU.", allowed="a CPU quantity such as '250m' or '2'", example="500m")
    memory: MemoryQuantity = setting(
        doc="Memory.", allowed="a memory quantity such as '512Mi' or '2Gi'", example="1Gi"
    )



class ResourcesConfig(ConfigModel):
    """Requests, limits and GPUs of the model-server container."""

    requests: ResourceAmounts = setting(
        default_factory=lambda: ResourceAmounts(cpu="250m", memory="256Mi"),
        doc="What the scheduler reserves per pod; HPA utilization "
        "targets are relative to these.",
        allowed="{cpu, memory}, each <= the matching limit",
    )
    limits: ResourceAmounts = setting(
        default_factory=lambda: ResourceAmounts(cpu="1", memory="1Gi"),
        doc="Hard per-pod ceiling.",
        allowed="{cpu, memory}, each >= the matching request",
    )
    gpus: int = setting(
        0,
        doc="nvidia.com/gpu per pod; > 0 needs `gpuPool`.",
        allowed="integer 0..16",
        example=1,
        ge=0,
        le=16,
    )


class AutoscalingConfig(ConfigModel):
    """HPA settings. As `mlplatform:autoscaling` these are the defaults for every model."""

    min_replicas: int = setting(
        1, doc="HPA minReplicas (also the initial Deployment size).", allowed="integer 1..1000",
        example=2, ge=1, le=1000,
    )
    max_replicas: int = setting(
        3, doc="HPA maxReplicas.", allowed="integer 1..1000, >= minReplicas", example=5,
        ge=1, le=1000,
    )
    target_cpu_utilization: int | None = setting(
        70, doc="Average CPU utilization target in percent of the request; null disables it.",
        allowed="integer 1..100 or null", example=70, ge=1, le=100,
    )
    target_memory_utilization: int | None = setting(
        80, doc="Average memory utilization target in percent of the request; null disables it.",
        allowed="integer 1..100 or null", example=80, ge=1, le=100,
    )
    in_flight_target: float | None = setting(
        4.0, doc="Average `model_infer_requests_in_flight` per pod (a Pods metric served by a "
        "custom-metrics adapter); null disables it.", allowed="number > 0 and <= 10000, or null",
        example=4, gt=0, le=10000,
    )
    scale_up_stabilization_seconds: int = setting(
        0, doc="HPA scale-up stabilization window.", allowed="integer 0..3600", example=0,
        ge=0, le=3600,
    )
    scale_down_stabilization_seconds: int = setting(
        300, doc="HPA scale-down stabilization window; long enough to ride out request bursts.",
        allowed="integer 0..3600", example=300, ge=0, le=3600,
    )

    def merged(self, overrides: AutoscalingOverrides) -> AutoscalingConfig:
        """These defaults with a model's overrides applied.

        Only keys the model actually sets count: an explicit null on a metric target disables that
        metric for the model, an omitted key inherits the stack default.
        """
        values = self.model_dump()
        for name in overrides.model_fields_set:
            value = getattr(overrides, name)
            if value is None and name not in _NULLABLE_TARGETS:
                continue
            values[name] = value
        return AutoscalingConfig.model_validate(values)


_NULLABLE_TARGETS = {"target_cpu_utilization", "target_memory_utilization", "in_flight_target"}


class AutoscalingOverrides(ConfigModel):
    """Per-model HPA overrides; each key omitted here inherits `mlplatform:autoscaling`."""

    min_replicas: int | None = setting(
        None, doc="Overrides autoscaling.minReplicas.", allowed="integer 1..1000", example=2,
        ge=1, le=1000,
    )
    max_replicas: int | None = setting(
        None, doc="Overrides autoscaling.maxReplicas.", allowed="integer 1..1000, >= minReplicas",
        example=5, ge=1, le=1000,
    )
    target_cpu_utilization: int | None = setting(
        None, doc="Overrides the CPU target; explicit null disables the CPU metric.",
        allowed="integer 1..100 or null", example=70, ge=1, le=100,
    )
    target_memory_utilization: int | None = setting(
        None, doc="Overrides the memory target; explicit null disables the memory metric.",
        allowed="integer 1..100 or null", example=80, ge=1, le=100,
    )
    in_flight_target: float | None = setting(
        None, doc="Overrides the in-flight target; explicit null disables the custom metric.",
        allowed="number > 0 and <= 10000, or null", example=4, gt=0, le=10000,
    )
    scale_up_stabilization_seconds: int | None = setting(
        None, doc="Overrides the scale-up window.", allowed="integer 0..3600", example=0,
        ge=0, le=3600,
    )
    scale_down_stabilization_seconds: int | None = setting(
        None, doc="Overrides the scale-down window.", allowed="integer 0..3600", example=300,
        ge=0, le=3600,
    )


class VpaConfig(ConfigModel):
    """A VerticalPodAutoscaler (autoscaling.k8s.io/v1) for the model; needs the VPA CRDs."""

    mode: Literal["off", "initial", "auto"] = setting(
        "off", doc="'off' only recommends; 'initial' sets resources at pod creation; 'auto' also "
        "evicts pods to resize them.", allowed="'off', 'initial' or 'auto'", example="off",
    )
    controlled_resources: list[Literal["cpu", "memory"]] = setting(
        default_factory=lambda: ["cpu", "memory"],
        doc="Resources the VPA may change (cpu and memory); in modes initial/auto they must not "
        "overlap the HPA's CPU/memory targets.",
        allowed="a non-empty list of 'cpu', 'memory'",
        example='["memory"]',
        min_length=1,
    )
    min_allowed: ResourceAmounts | None = setting(
        None, doc="Lower bound of VPA recommendations.", allowed="{cpu, memory} or null",
    )
    max_allowed: ResourceAmounts | None = setting(
        None, doc="Upper bound of VPA recommendations.", allowed="{cpu, memory} or null",
    )


class PdbConfig(ConfigModel):
    """PodDisruptionBudget; created whenever the effective minReplicas is 2 or more."""

    min_available: int | None = setting(
        None, doc="Pods that must stay up during voluntary disruptions; null means minReplicas-1.",
        allowed="integer >= 1 and < minReplicas, or null", example=1, ge=1,
    )


class CanaryConfig(ConfigModel):
    """A candidate version served beside the stable one, receiving a share of ingress traffic."""

    version: LabelValue = setting(
        doc="Version label and MODEL_VERSION of the candidate.",
        allowed="a label value (letters, digits, '-', '_', '.'; <= 63) different from the stable "
        "version", example="v2",
    )
    weight: int = setting(
        10, doc="Percent of ingress traffic sent to the candidate.", allowed="integer 0..100",
        example=10, ge=0, le=100,
    )
    replicas: int = setting(
        1, doc="Fixed replica count of the candidate (not autoscaled).", allowed="integer 1..20",
        example=1, ge=1, le=20,
    )
    source: SourceDir | None = setting(
        None, doc="Folder under models/ holding the candidate; null means the stable source.",
        allowed="a folder name under models/ with a Dockerfile", example="ml_model_1",
    )
    image: ImageRef | None = setting(
        None, doc="Prebuilt candidate image; set it to skip the build.",
        allowed="an image reference such as 'registry.example.com/iris:2.0'",
    )



class ModelRouteConfig(ConfigModel):
    """How the ingress reaches one model."""

    enabled: bool = setting(True, doc="Expose the model through the ingress.", allowed="true or false")
    path: UrlPath | None = setting(
        None, doc="Path routing prefix; null means `<ingress.pathPrefix>/<model name>`.",
        allowed="an absolute URL path such as '/models/iris'", example="/models/iris",
    )
    host: DnsName | None = setting(
        None, doc="Host routing name; null means `<model name>.<ingress.domain>`.",
        allowed="a DNS name such as 'iris.ml.example.com'", example="iris.ml.example.com",
    )



class SloConfig(ConfigModel):
    """Service level objective; MonitoringStack turns it into alerts and dashboard thresholds."""

    latency_p99_ms: float = setting(
        250.0, doc="99th-percentile latency target in milliseconds.",
        allowed="one of the server's histogram bounds: "
        + ", ".join(f"{b * 1000:g}" for b in LATENCY_BUCKETS_SECONDS),
        example=250,
    )
    error_rate_percent: float = setting(
        1.0, doc="Share of requests allowed to fail.",
        allowed=f"number > 0 and <= {_MAX_BUDGET_PERCENT}", example=1.0,
        gt=0, le=_MAX_BUDGET_PERCENT,
    )
    availability_percent: float = setting(
        99.5, doc="Share of time the model must be up.",
        allowed=f"number >= {round(100 - _MAX_BUDGET_PERCENT, 2)} and < 100", example=99.5,
        ge=round(100 - _MAX_BUDGET_PERCENT, 2), lt=100,
    )

    @field_validator("latency_p99_ms")
    @classmethod
    def _bucket(cls, value: float) -> float:
        if round(value, 3) not in {round(b * 1000, 3) for b in LATENCY_BUCKETS_SECONDS}:
            raise ValueError(f"{value:g} ms is not an upper bound of the latency histogram")
        return value


class ModelConfig(ConfigModel):
    """One served model: its image source, runtime, resources, scaling and exposure."""

    name: ModelName = setting(
        doc="Model name: Kubernetes object names, labels, MODEL_NAME and URL path.",
        allowed="lowercase RFC 1035 label of 1..40 characters (letters, digits, '-'; starts with "
        "a letter)", example="iris",
    )
    framework: Literal["sklearn", "tensorflow"] = setting(
        doc="Training framework of the model.", allowed="'sklearn' or 'tensorflow'",
        example="sklearn",
    )
    version: LabelValue = setting(
        "v1", doc="Version label and MODEL_VERSION.",
        allowed="a label value (letters, digits, '-', '_', '.'; <= 63)", example="v1",
    )
    source: SourceDir | None = setting(
        None, doc="Folder under models/ with the Dockerfile; null means the model name with "
        "'-' replaced by '_'.", allowed="a folder name under models/ with a Dockerfile",
        example="ml_model_1",
    )
    image: ImageRef | None = setting(
        None, doc="Prebuilt image; set it to skip building models/<source>.",
        allowed="an image reference such as 'registry.example.com/iris:1.0'",
    )
    inference_backend: Literal["onnx", "native"] = setting(
        "onnx", doc="INFERENCE_BACKEND of the model server.", allowed="'onnx' or 'native'",
        example="onnx",
    )
    max_batch_size: int | None = setting(
        None, doc="MAX_BATCH_SIZE of the server; null keeps the server's default.",
        allowed="integer 1..100000 or null", example=256, ge=1, le=100000,
    )
    max_body_bytes: int | None = setting(
        None, doc="MAX_BODY_BYTES of the server; null keeps the server's default.",
        allowed="integer 1024..1073741824 or null", example=1048576, ge=1024, le=2**30,
    )
    resources: ResourcesConfig = setting(
        default_factory=ResourcesConfig, doc="Container resources.",
        allowed="{requests, limits, gpus}",
    )
    gpu_pool: DnsLabel | None = setting(
        None, doc="GPU pool the pods run on; required when resources.gpus > 0.",
        allowed="the name of an entry in mlplatform:gpuPools", example="a100",
    )
    autoscaling: AutoscalingOverrides = setting(
        default_factory=AutoscalingOverrides, doc="Per-model HPA overrides.",
        allowed="keys of mlplatform:autoscaling",
    )
    vpa: VpaConfig | None = setting(
        None, doc="VerticalPodAutoscaler; null creates none.", allowed="{mode, controlledResources, "
        "minAllowed, maxAllowed} or null",
    )
    pdb: PdbConfig = setting(
        default_factory=PdbConfig, doc="PodDisruptionBudget sizing.", allowed="{minAvailable}",
    )
    canary: CanaryConfig | None = setting(
        None, doc="Candidate version beside the stable one; null runs stable only.",
        allowed="{version, weight, replicas, source, image} or null",
    )
    ingress: ModelRouteConfig = setting(
        default_factory=ModelRouteConfig, doc="Route of this model.",
        allowed="{enabled, path, host}",
    )
    slo: SloConfig = setting(
        default_factory=SloConfig, doc="Service level objective.",
        allowed="{latencyP99Ms, errorRatePercent, availabilityPercent}",
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = setting(
        "ClusterIP", doc="Type of the model's Service.",
        allowed="'ClusterIP', 'NodePort' or 'LoadBalancer'", example="ClusterIP",
    )
    topology_spread: Literal["ScheduleAnyway", "DoNotSchedule"] = setting(
        "ScheduleAnyway", doc="What the scheduler does when pods cannot spread evenly over nodes.",
        allowed="'ScheduleAnyway' or 'DoNotSchedule'", example="DoNotSchedule",
    )


    @property
    def source_dir(self) -> str:
        """Folder under models/ that holds this model's Dockerfile."""
        return self.source or self.name.replace("-", "_")


class LocalPoolBackend(ConfigModel):
    """Backend `local`: KWOK-simulated GPU nodes created as Node objects in the local cluster."""

    cpu: CpuQuantity = setting("16", doc="CPU capacity of each simulated node.",
                       allowed="a CPU quantity such as '16'", example="16")
    memory: MemoryQuantity = setting("64Gi", doc="Memory capacity of each simulated node.",
                          allowed="a memory quantity such as '64Gi'", example="64Gi")
    pods: int = setting(110, doc="Pod capacity of each simulated node.", allowed="integer 1..1000",
                        example=110, ge=1, le=1000)



class DevicePluginConfig(ConfigModel):
    """The NVIDIA device plugin DaemonSet that advertises nvidia.com/gpu on real nodes."""

    enabled: bool = setting(True, doc="Deploy the device plugin.", allowed="true or false")
    image: ImageRef = setting(
        "nvcr.io/nvidia/k8s-device-plugin:v0.17.1", doc="Device plugin image (pinned tag).",
        allowed="an image reference with an explicit tag",
    )
    namespace: DnsLabel = setting("kube-system", doc="Namespace of the DaemonSet.",
                             allowed="an existing namespace name", example="kube-system")



class ExistingPoolBackend(ConfigModel):
    """Backend `existing`: label and taint nodes of a real cluster, deploy the device plugin."""

    node_names: list[DnsName] = setting(
        default_factory=list, doc="Nodes to turn into the pool, by name.",
        allowed="a list of node names (exclusive with nodeSelector)", example='["gpu-1"]',
    )
    node_selector: dict[LabelKey, LabelValue] = setting(
        default_factory=dict, doc="Label selector choosing the nodes; resolved when the program "
        "runs.", allowed="a map of label key to value (exclusive with nodeNames)",
        example='{"node.kubernetes.io/instance-type": "p4d.24xlarge"}',
    )
    device_plugin: DevicePluginConfig = setting(
        default_factory=DevicePluginConfig, doc="NVIDIA device plugin.",
        allowed="{enabled, image, namespace}",
    )




class GpuPoolConfig(ConfigModel):
    """A set of tainted, labelled GPU nodes that GPU models schedule onto."""

    name: DnsLabel = setting(
        doc="Pool name: node label mlplatform.io/gpu-pool and taint value.",
        allowed="RFC 1123 label (lowercase letters, digits, '-'; <= 63)", example="a100",
    )
    backend: Literal["local", "existing"] = setting(
        doc="How nodes come to exist: 'local' simulates them with KWOK, 'existing' adopts nodes "
        "of a real cluster.", allowed="'local' or 'existing'", example="local",
    )
    gpus_per_node: int = setting(
        1, doc="nvidia.com/gpu capacity of each node.", allowed="integer 1..16", example=8,
        ge=1, le=16,
    )
    node_count: int | None = setting(
        None, doc="Number of nodes; for 'existing' with nodeNames it defaults to their count.",
        allowed="integer 1..1000 (required for 'local' and for 'existing' with nodeSelector)",
        example=2, ge=1, le=1000,
    )
    gpu_product: LabelValue | None = setting(
        None, doc="Value of the nvidia.com/gpu.product node label.",
        allowed="a label value such as 'NVIDIA-A100-SXM4-80GB'", example="NVIDIA-A100-SXM4-80GB",
    )
    local: LocalPoolBackend | None = setting(
        None, doc="Settings of backend 'local'; null uses their defaults.",
        allowed="{cpu, memory, pods}; only with backend 'local'",
    )
    existing: ExistingPoolBackend | None = setting(
        None, doc="Settings of backend 'existing'.",
        allowed="{nodeNames | nodeSelector, devicePlugin}; required with backend 'existing'",
    )


    @property
    def capacity_nodes(self) -> int:
        """Nodes counted for capacity planning."""
        if self.node_count is not None:
            return self.node_count
        return len(self.existing.node_names) if self.existing else 0

    @property
    def gpu_capacity(self) -> int:
        """Total nvidia.com/gpu the pool offers."""
        return self.capacity_nodes * self.gpus_per_node


class TlsConfig(ConfigModel):
    """TLS termination at the ingress."""

    enabled: bool = setting(False, doc="Serve HTTPS.", allowed="true or false")
    secret_name: DnsLabel | None = setting(
        None, doc="TLS Secret name; null means '<model>-tls' per route.",
        allowed="a Secret name (RFC 1123)", example="ml-tls",
    )
    cluster_issuer: DnsName | None = setting(
        None, doc="cert-manager ClusterIssuer that fills the Secret; null means you provide it.",
        allowed="a ClusterIssuer name", example="letsencrypt-prod",
    )



class IngressConfig(ConfigModel):
    """Per-model HTTP routes through an ingress controller."""

    enabled: bool = setting(True, doc="Create Ingress objects.", allowed="true or false")
    class_name: str = setting("nginx", doc="ingressClassName.", allowed="an IngressClass name",
                              example="nginx")
    controller: Literal["nginx", "generic"] = setting(
        "nginx", doc="Annotation dialect: 'nginx' (ingress-nginx) rewrites path routes to the "
        "server's root and splits canary traffic by weight; 'generic' sets neither.",
        allowed="'nginx' or 'generic'", example="nginx",
    )
    routing: Literal["path", "host"] = setting(
        "path", doc="'path' routes <pathPrefix>/<model>; 'host' routes <model>.<domain>.",
        allowed="'path' or 'host'", example="host",
    )
    host: DnsName | None = setting(
        None, doc="Single host for path routing; null matches any host.",
        allowed="a DNS name", example="ml.example.com",
    )
    domain: DnsName | None = setting(
        None, doc="Base domain for host routing.", allowed="a DNS name (required for host routing)",
        example="ml.example.com",
    )
    path_prefix: UrlPath = setting("/models", doc="Prefix of path routes.",
                               allowed="an absolute URL path", example="/models")
    tls: TlsConfig = setting(default_factory=TlsConfig, doc="TLS.",
                             allowed="{enabled, secretName, clusterIssuer}")
    controller_namespace: DnsLabel = setting(
        "ingress-nginx", doc="Namespace of the ingress controller; NetworkPolicies admit traffic "
        "from it via the label mlplatform.io/role=ingress.", allowed="RFC 1123 label",
        example="ingress-nginx",
    )
    controller_namespace_mode: Literal["create", "label", "none"] = setting(
        "create", doc="'create' makes the namespace, 'label' adds the role label to an existing "
        "one, 'none' leaves it alone.", allowed="'create', 'label' or 'none'", example="label",
    )
    annotations: dict[str, str] = setting(
        default_factory=dict, doc="Extra annotations on every Ingress.",
        allowed="a map of annotation key to string",
    )



class NamespacesConfig(ConfigModel):
    """Namespaces the platform creates for model workloads."""

    models: DnsLabel = setting("ml-models", doc="Namespace of model servers.",
                          allowed="RFC 1123 label", example="ml-models")
    batch: DnsLabel | None = setting(None, doc="Namespace of batch jobs; null means `models`.",
                                allowed="RFC 1123 label", example="ml-batch")
    pod_security: Literal["restricted", "baseline"] = setting(
        "restricted", doc="Pod Security Admission level enforced, audited and warned.",
        allowed="'restricted' or 'baseline'", example="restricted",
    )


    @property
    def batch_namespace(self) -> str:
        return self.batch or self.models


class MonitoringConfig(ConfigModel):
    """How models are monitored; consumed by MonitoringStack."""

    enabled: bool = setting(True, doc="Deploy monitoring.", allowed="true or false")
    mode: Literal["deploy", "operator"] = setting(
        "deploy", doc="'deploy' runs Prometheus and Grafana; 'operator' emits Prometheus Operator "
        "objects.", allowed="'deploy' or 'operator'", example="deploy",
    )
    namespace: DnsLabel = setting("monitoring", doc="Namespace of the monitoring stack.",
                             allowed="RFC 1123 label", example="monitoring")
    retention: PromDuration = setting("7d", doc="Prometheus retention.",
                             allowed="a Prometheus duration such as '7d' or '12h'", example="7d")
    storage_size: MemoryQuantity | None = setting(
        None, doc="PVC size for Prometheus data; null uses an emptyDir.",
        allowed="a memory-style quantity such as '20Gi', or null", example="20Gi",
    )
    alertmanager: bool = setting(False, doc="Deploy Alertmanager.", allowed="true or false")




class RegistryConfig(ConfigModel):
    """Where model images go; without `server` images stay in the local Docker daemon."""

    server: RegistryHost | None = setting(
        None, doc="Registry host[:port]; null keeps images local (no push).",
        allowed="a host such as 'registry.example.com' or 'localhost:5000'",
        example="registry.example.com",
    )
    repository: RepositoryPath = setting("mlplatform", doc="Repository prefix of image names.",
                              allowed="lowercase path such as 'mlplatform' or 'team/ml'",
                              example="mlplatform")
    username: str | None = setting(
        None, doc="Registry user; its password comes from the secret mlplatform:registryPassword.",
        allowed="a user name", example="ci-bot",
    )



class ImagesConfig(ConfigModel):
    """How model images are built (pulumi-docker-build, BuildKit)."""

    build_on_preview: bool = setting(
        False, doc="Build images during `pulumi preview` too (slower; catches Dockerfile errors).",
        allowed="true or false",
    )
    network: Literal["host", "default"] = setting(
        "host", doc="Network mode of RUN steps; host lets pip reach the package index.",
        allowed="'host' or 'default'", example="host",
    )
    platform: Platform | None = setting(
        None, doc="Target platform; null builds for the daemon's platform.",
        allowed="e.g. 'linux/amd64' or 'linux/arm64'", example="linux/amd64",
    )



class BatchDataConfig(ConfigModel):
    """The volume holding batch input and output files."""

    claim_name: DnsLabel = setting(doc="PersistentVolumeClaim mounted at `mountPath`.",
                              allowed="a PVC name (RFC 1123)", example="datasets")
    mount_path: UrlPath = setting("/data", doc="Where the claim is mounted.",
                              allowed="an absolute path", example="/data")
    create: bool = setting(False, doc="Create the claim (else it must exist).",
                           allowed="true or false")
    size: MemoryQuantity = setting("1Gi", doc="Size when `create` is true.", allowed="a quantity such as "
                        "'10Gi'", example="10Gi")
    storage_class_name: DnsName | None = setting(
        None, doc="StorageClass when `create` is true; null uses the cluster default.",
        allowed="a StorageClass name", example="standard",
    )



class BatchJobConfig(ConfigModel):
    """Batch inference: a model image run over a dataset file, once (Job) or on a schedule."""

    name: ModelName = setting(doc="Job name.", allowed="RFC 1035 label of 1..40 characters",
                        example="iris-nightly")
    model: ModelName = setting(doc="Model whose stable image and version run the job.",
                         allowed="the name of an entry in mlplatform:models", example="iris")
    input: UrlPath = setting(doc="Input file path inside the container.",
                         allowed="an absolute path under data.mountPath",
                         example="/data/in/iris.csv")
    output: UrlPath = setting(doc="Output file path inside the container.",
                          allowed="an absolute path under data.mountPath",
                          example="/data/out/iris.jsonl")
    data: BatchDataConfig = setting(doc="Volume with the dataset.",
                                    allowed="{claimName, mountPath, create, size, storageClassName}")
    schedule: CronSchedule | None = setting(
        None, doc="Cron schedule; null runs a one-off Job.",
        allowed="5-field cron such as '0 2 * * *' or @daily, or null", example="0 2 * * *",
    )
    backoff_limit: int = setting(2, doc="Retries before the Job fails.", allowed="integer 0..10",
                                 example=2, ge=0, le=10)
    active_deadline_seconds: int = setting(
        3600, doc="Wall-clock limit of one run.", allowed="integer 60..604800", example=3600,
        ge=60, le=604800,
    )
    ttl_seconds_after_finished: int = setting(
        86400, doc="Finished Jobs are deleted after this.", allowed="integer 0..2592000",
        example=86400, ge=0, le=2592000,
    )
    resources: ResourcesConfig | None = setting(
        None, doc="Container resources; null uses the model's.", allowed="{requests, limits, gpus}",
    )



class StackConfig(ConfigModel):
    """All `mlplatform:*` keys of one stack."""

    kubeconfig: str | None = setting(
        None, doc="Kubeconfig path or content for the Kubernetes provider; null (or '') uses "
        "$KUBECONFIG, then ~/.kube/config.", allowed="a file path or kubeconfig YAML",
        example="~/.kwok/clusters/mlplatform/kubeconfig.yaml",
    )
    kube_context: str | None = setting(None, doc="Kubeconfig context; null uses the current one.",
                                       allowed="a context name", example="kwok-mlplatform")
    namespaces: NamespacesConfig = setting(default_factory=NamespacesConfig, doc="Namespaces.",
                                           allowed="{models, batch, podSecurity}")
    models: list[ModelConfig] = setting(
        doc="The models to serve.", allowed="a list of model objects with unique names",
    )
    gpu_pools: list[GpuPoolConfig] = setting(
        default_factory=list, doc="GPU node pools.", allowed="a list of pool objects with unique "
        "names",
    )
    ingress: IngressConfig = setting(default_factory=IngressConfig, doc="Ingress routing.",
                                     allowed="see ingress.* keys")
    monitoring: MonitoringConfig = setting(default_factory=MonitoringConfig, doc="Monitoring.",
                                           allowed="see monitoring.* keys")
    autoscaling: AutoscalingConfig = setting(default_factory=AutoscalingConfig,
                                             doc="HPA defaults for every model.",
                                             allowed="see autoscaling.* keys")
    registry: RegistryConfig = setting(default_factory=RegistryConfig, doc="Image registry.",
                                       allowed="{server, repository, username}")
    images: ImagesConfig = setting(default_factory=ImagesConfig, doc="Image build settings.",
                                   allowed="{buildOnPreview, network, platform}")
    batch_jobs: list[BatchJobConfig] = setting(default_factory=list, doc="Batch inference jobs.",
                                               allowed="a list of job objects with unique names")

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
    """Read the secret keys this config needs (registryPassword is required with registry.username)."""
    import pulumi

    bag = pulumi.Config(CONFIG_NAMESPACE)
    registry_password = None
    if config.registry.username is not None:
        try:
            registry_password = bag.require_secret("registryPassword")
        except pulumi.ConfigMissingError:
            stack = pulumi.get_stack()
            raise ConfigError(stack, [ConfigIssue(
                path="mlplatform:registryPassword", value=not_set(),
                problem=f"registry.username is {config.registry.username!r} but no password is set",
                allowed="a secret string",
                fix=f"pulumi config set --stack {stack} --secret mlplatform:registryPassword",
            )]) from None
    return StackSecrets(
        registry_password=registry_password,
        grafana_admin_password=bag.get_secret("grafanaAdminPassword"),
    )


def load_stack_file(path: Path, stack: str | None = None, project_root: Path | None = None) -> StackConfig:
    """Validate a `Pulumi.<stack>.yaml` file directly (tests, CI lint, other tools)."""
    import yaml

    document = yaml.safe_load(Path(path).read_text()) or {}
    name = stack or Path(path).name.removeprefix("Pulumi.").removesuffix(".yaml")
    return parse_stack_config(document.get("config") or {}, name, project_root)
