"""Per-model config: resources, autoscaling, VPA, PDB, canary, route and SLO of one served model."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import field_validator

from mlplatform.config.fields import (
    ConfigModel,
    CpuQuantity,
    DnsLabel,
    DnsName,
    HttpUrl,
    ImageRef,
    LabelValue,
    MemoryQuantity,
    ModelName,
    SourceDir,
    UrlPath,
    setting,
)
from mlplatform.core.metrics import (
    GPU_UTIL,
    LATENCY_BUCKETS_SECONDS,
    REQUEST_DURATION_BUCKET,
    REQUEST_DURATION_COUNT,
    REQUEST_DURATION_SUM,
)
from mlplatform.core.slo import FAST_BURN, MAX_BUDGET_PERCENT, MIN_AVAILABILITY_PERCENT


class ResourceAmounts(ConfigModel):
    """CPU and memory of one container (requests or limits)."""

    cpu: CpuQuantity = setting(
        doc="CPU.", allowed="a CPU quantity such as '250m' or '2'", example="500m"
    )
    memory: MemoryQuantity = setting(
        doc="Memory.", allowed="a memory quantity such as '512Mi' or '2Gi'", example="1Gi"
    )


class ResourcesConfig(ConfigModel):
    """Requests, limits and GPUs of the model-server container."""

    requests: ResourceAmounts = setting(
        default_factory=lambda: ResourceAmounts(cpu="250m", memory="256Mi"),
        doc="What the scheduler reserves per pod; HPA utilization targets are relative to these.",
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


class SignalsConfig(ConfigModel):
    """What the autoscaler scales on: each signal set here is a target, at most one per kind.

    `cpu` and `memory` are resource metrics the HPA reads from metrics-server. The others are read
    from Prometheus (the monitoring stack's, from the names the model server exports) by a KEDA
    ScaledObject, which then owns the Deployment's scale and its HPA. The desired replica count is
    the largest any signal asks for.
    """

    cpu: int | None = setting(
        None,
        doc="Average CPU utilization per pod, in percent of the CPU request (metrics-server).",
        allowed="integer 1..100",
        example=70,
        ge=1,
        le=100,
    )
    memory: int | None = setting(
        None,
        doc="Average memory utilization per pod, in percent of the memory request "
        "(metrics-server). Model servers rarely shed memory when load drops; prefer VPA on memory.",
        allowed="integer 1..100",
        example=80,
        ge=1,
        le=100,
    )
    in_flight: float | None = setting(
        None,
        doc="Requests in flight per pod, averaged over the rate window: the seconds the stable "
        f"pods spend in requests per second (rate of `{REQUEST_DURATION_SUM}`, Little's law; "
        "Prometheus). It counts a request from its body to its answer, so a server running "
        "its model inline (MAX_BATCH_SIZE 1) reads less than its busy share and stays below "
        "1.0 (an ONNX forest on a full core: ~0.58 at 1 row per request, ~0.85 at 100 rows); "
        "with micro-batching, requests that arrive together wait inside the server and the "
        "reading passes 1 as the pod fills. docs/autoscaling.md has the measured curves.",
        allowed="number > 0 and <= 10000",
        example=0.6,
        gt=0,
        le=10000,
    )
    rps: float | None = setting(
        None,
        doc=f"Inference requests per second per pod (rate of `{REQUEST_DURATION_COUNT}` over the "
        "stable pods; Prometheus).",
        allowed="number > 0 and <= 1000000",
        example=100,
        gt=0,
        le=1_000_000,
    )
    latency_p99_ms: float | None = setting(
        None,
        doc=f"99th-percentile request latency of the stable pods in milliseconds (from "
        f"`{REQUEST_DURATION_BUCKET}`; Prometheus). Replicas grow in proportion to how far the "
        "latency is above the target.",
        allowed="number >= 1 and <= 600000",
        example=100,
        ge=1,
        le=600_000,
    )
    gpu_utilization: int | None = setting(
        None,
        doc=f"Average GPU utilization of the stable pods in percent (`{GPU_UTIL}` from NVIDIA's "
        "dcgm-exporter; Prometheus). Needs resources.gpus > 0.",
        allowed="integer 1..100",
        example=80,
        ge=1,
        le=100,
    )

    def targets(self) -> dict[str, float]:
        """The signals that are set, by attribute name, in declaration order."""
        return {
            name: getattr(self, name)
            for name in type(self).model_fields
            if getattr(self, name) is not None
        }

    def resource_signals(self) -> list[str]:
        """Container resources scaled on (what a VPA must then leave alone)."""
        return [name for name in RESOURCE_SIGNALS if getattr(self, name) is not None]

    def prometheus_signals(self) -> list[str]:
        """Signals read from Prometheus, which need monitoring and KEDA."""
        return [name for name in PROMETHEUS_SIGNALS if getattr(self, name) is not None]


RESOURCE_SIGNALS = ("cpu", "memory")
PROMETHEUS_SIGNALS = ("in_flight", "rps", "latency_p99_ms", "gpu_utilization")

# Keys of the autoscaling API before signals, and where each went (named in the unknown-key error).
MOVED_AUTOSCALING_KEYS = {
    "targetCpuUtilization": "signals.cpu",
    "targetMemoryUtilization": "signals.memory",
    "inFlightTarget": "signals.inFlight",
}


class AutoscalingConfig(ConfigModel):
    """Autoscaling. As `mlplatform:autoscaling` these are the defaults for every model."""

    moved_keys: ClassVar[dict[str, str]] = MOVED_AUTOSCALING_KEYS

    min_replicas: int = setting(
        1,
        doc="Fewest replicas (also the initial Deployment size).",
        allowed="integer 1..1000",
        example=2,
        ge=1,
        le=1000,
    )
    max_replicas: int = setting(
        3,
        doc="Most replicas.",
        allowed="integer 1..1000, >= minReplicas",
        example=5,
        ge=1,
        le=1000,
    )
    signals: SignalsConfig = setting(
        default_factory=lambda: SignalsConfig(cpu=70),
        doc="What to scale on, each with its target; see autoscaling.signals.* keys. Only cpu and "
        "memory: an autoscaling/v2 HPA. Any other signal: a KEDA ScaledObject (cpu/memory become "
        "its resource triggers).",
        allowed="{cpu, memory, inFlight, rps, latencyP99Ms, gpuUtilization}, at least one set",
        example="{inFlight: 0.5}",
    )
    scale_up_stabilization_seconds: int = setting(
        0,
        doc="Scale-up stabilization window.",
        allowed="integer 0..3600",
        example=0,
        ge=0,
        le=3600,
    )
    scale_down_stabilization_seconds: int = setting(
        300,
        doc="Scale-down stabilization window; long enough to ride out request bursts.",
        allowed="integer 0..3600",
        example=300,
        ge=0,
        le=3600,
    )
    polling_interval_seconds: int = setting(
        15,
        doc="How often KEDA evaluates a ScaledObject's triggers (KEDA's own default is 30 s; 15 "
        "matches the HPA's sync period, which reads the same metrics).",
        allowed="integer 1..300",
        example=15,
        ge=1,
        le=300,
    )
    prometheus_address: HttpUrl | None = setting(
        None,
        doc="Prometheus that KEDA queries for Prometheus signals; null means the monitoring "
        "stack's own Prometheus (monitoring.mode deploy). Required with monitoring.mode operator.",
        allowed="an http(s) URL such as 'http://prometheus-operated.monitoring.svc:9090'",
        example="http://prometheus-operated.monitoring.svc:9090",
    )

    def merged(self, overrides: AutoscalingOverrides) -> AutoscalingConfig:
        """These defaults with a model's overrides applied: every key the model sets replaces the
        stack's (a model's `signals` replaces the whole set, so it scales on exactly those)."""
        values = self.model_dump()
        for name in overrides.model_fields_set:
            value = getattr(overrides, name)
            if value is not None:
                values[name] = value.model_dump() if isinstance(value, ConfigModel) else value
        return AutoscalingConfig.model_validate(values)


class AutoscalingOverrides(ConfigModel):
    """Per-model autoscaling; each key omitted here inherits `mlplatform:autoscaling`."""

    moved_keys: ClassVar[dict[str, str]] = MOVED_AUTOSCALING_KEYS

    min_replicas: int | None = setting(
        None,
        doc="Overrides autoscaling.minReplicas.",
        allowed="integer 1..1000",
        example=2,
        ge=1,
        le=1000,
    )
    max_replicas: int | None = setting(
        None,
        doc="Overrides autoscaling.maxReplicas.",
        allowed="integer 1..1000, >= minReplicas",
        example=5,
        ge=1,
        le=1000,
    )
    signals: SignalsConfig | None = setting(
        None,
        doc="Replaces autoscaling.signals for this model (the whole set, not key by key).",
        allowed="{cpu, memory, inFlight, rps, latencyP99Ms, gpuUtilization}, at least one set",
        example="{inFlight: 0.5}",
    )
    scale_up_stabilization_seconds: int | None = setting(
        None,
        doc="Overrides the scale-up window.",
        allowed="integer 0..3600",
        example=0,
        ge=0,
        le=3600,
    )
    scale_down_stabilization_seconds: int | None = setting(
        None,
        doc="Overrides the scale-down window.",
        allowed="integer 0..3600",
        example=300,
        ge=0,
        le=3600,
    )
    polling_interval_seconds: int | None = setting(
        None,
        doc="Overrides the KEDA polling interval.",
        allowed="integer 1..300",
        example=15,
        ge=1,
        le=300,
    )


class VpaConfig(ConfigModel):
    """A VerticalPodAutoscaler (autoscaling.k8s.io/v1) for the model; needs the VPA CRDs."""

    mode: Literal["off", "initial", "auto"] = setting(
        "off",
        doc="'off' only recommends; 'initial' sets resources at pod creation; 'auto' also "
        "evicts pods to resize them.",
        allowed="'off', 'initial' or 'auto'",
        example="off",
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
        None,
        doc="Lower bound of VPA recommendations.",
        allowed="{cpu, memory} or null",
    )
    max_allowed: ResourceAmounts | None = setting(
        None,
        doc="Upper bound of VPA recommendations.",
        allowed="{cpu, memory} or null",
    )


class PdbConfig(ConfigModel):
    """PodDisruptionBudget; created whenever the effective minReplicas is 2 or more."""

    min_available: int | None = setting(
        None,
        doc="Pods that must stay up during voluntary disruptions; null means minReplicas-1.",
        allowed="integer >= 1 and < minReplicas, or null",
        example=1,
        ge=1,
    )


class CanaryConfig(ConfigModel):
    """A candidate version served beside the stable one, receiving a share of ingress traffic."""

    version: LabelValue = setting(
        doc="Version label and MODEL_VERSION of the candidate.",
        allowed="a label value (letters, digits, '-', '_', '.'; <= 63) different from the stable "
        "version",
        example="v2",
    )
    weight: int = setting(
        10,
        doc="Percent of ingress traffic sent to the candidate.",
        allowed="integer 0..100",
        example=10,
        ge=0,
        le=100,
    )
    replicas: int = setting(
        1,
        doc="Fixed replica count of the candidate (not autoscaled).",
        allowed="integer 1..20",
        example=1,
        ge=1,
        le=20,
    )
    source: SourceDir | None = setting(
        None,
        doc="Folder under models/ holding the candidate; null means the stable source.",
        allowed="a folder name under models/ with a Dockerfile",
        example="ml_model_1",
    )
    image: ImageRef | None = setting(
        None,
        doc="Prebuilt candidate image; set it to skip the build.",
        allowed="an image reference such as 'registry.example.com/iris:2.0'",
    )


class ModelRouteConfig(ConfigModel):
    """How the ingress reaches one model."""

    enabled: bool = setting(
        True, doc="Expose the model through the ingress.", allowed="true or false"
    )
    path: UrlPath | None = setting(
        None,
        doc="Path routing prefix; null means `<ingress.pathPrefix>/<model name>`.",
        allowed="an absolute URL path such as '/models/iris'",
        example="/models/iris",
    )
    host: DnsName | None = setting(
        None,
        doc="Host routing name; null means `<model name>.<ingress.domain>`.",
        allowed="a DNS name such as 'iris.ml.example.com'",
        example="iris.ml.example.com",
    )


class SloConfig(ConfigModel):
    """Service level objective; MonitoringStack turns it into alerts and dashboard thresholds."""

    latency_p99_ms: float = setting(
        250.0,
        doc="99th-percentile latency target in milliseconds.",
        allowed="one of the server's histogram bounds: "
        + ", ".join(f"{b * 1000:g}" for b in LATENCY_BUCKETS_SECONDS),
        example=250,
    )
    error_rate_percent: float = setting(
        1.0,
        doc="Share of requests allowed to fail.",
        allowed=f"number > 0 and <= {MAX_BUDGET_PERCENT} (a fast-burn alert fires at {FAST_BURN}x "
        "the budget, which cannot exceed 100%)",
        example=1.0,
        gt=0,
        le=MAX_BUDGET_PERCENT,
    )
    availability_percent: float = setting(
        99.5,
        doc="Share of time the model must be up.",
        allowed=f"number >= {MIN_AVAILABILITY_PERCENT} and < 100 (100 leaves no budget)",
        example=99.5,
        ge=MIN_AVAILABILITY_PERCENT,
        lt=100,
    )

    @field_validator("latency_p99_ms")
    @classmethod
    def _bucket(cls, value: float) -> float:
        if round(value, 3) not in {round(b * 1000, 3) for b in LATENCY_BUCKETS_SECONDS}:
            raise ValueError(
                f"{value:g} ms is not an upper bound of the latency histogram (the share of "
                "slower requests is read from that bucket); pick the nearest allowed value, or "
                "add the bucket to models/serving/metrics.py and LATENCY_BUCKETS_SECONDS"
            )
        return value

    @property
    def latency_seconds(self) -> float:
        """The latency target in seconds, as it appears in the histogram's `le` label."""
        return self.latency_p99_ms / 1000

    @property
    def error_budget(self) -> float:
        """Allowed failing share of requests as a ratio (1.0 % -> 0.01)."""
        return self.error_rate_percent / 100

    @property
    def availability_budget(self) -> float:
        """Allowed unavailable share of scrape time as a ratio (99.5 % -> 0.005)."""
        return round(1 - self.availability_percent / 100, 10)


class ModelConfig(ConfigModel):
    """One served model: its image source, runtime, resources, scaling and exposure."""

    name: ModelName = setting(
        doc="Model name: Kubernetes object names, labels, MODEL_NAME and URL path.",
        allowed="lowercase RFC 1035 label of 1..40 characters (letters, digits, '-'; starts with "
        "a letter)",
        example="iris",
    )
    framework: Literal["sklearn", "tensorflow"] = setting(
        doc="Training framework of the model.",
        allowed="'sklearn' or 'tensorflow'",
        example="sklearn",
    )
    version: LabelValue = setting(
        "v1",
        doc="Version label and MODEL_VERSION.",
        allowed="a label value (letters, digits, '-', '_', '.'; <= 63)",
        example="v1",
    )
    source: SourceDir | None = setting(
        None,
        doc="Folder under models/ with the Dockerfile; null means the model name with "
        "'-' replaced by '_'.",
        allowed="a folder name under models/ with a Dockerfile",
        example="ml_model_1",
    )
    image: ImageRef | None = setting(
        None,
        doc="Prebuilt image; set it to skip building models/<source>.",
        allowed="an image reference such as 'registry.example.com/iris:1.0'",
    )
    inference_backend: Literal["onnx", "native"] = setting(
        "onnx",
        doc="INFERENCE_BACKEND of the model server.",
        allowed="'onnx' or 'native'",
        example="onnx",
    )
    max_batch_size: int | None = setting(
        None,
        doc="MAX_BATCH_SIZE of the server; null keeps the server's default.",
        allowed="integer 1..100000 or null",
        example=256,
        ge=1,
        le=100000,
    )
    max_body_bytes: int | None = setting(
        None,
        doc="MAX_BODY_BYTES of the server; null keeps the server's default.",
        allowed="integer 1024..1073741824 or null",
        example=1048576,
        ge=1024,
        le=2**30,
    )
    resources: ResourcesConfig = setting(
        default_factory=ResourcesConfig,
        doc="Container resources.",
        allowed="{requests, limits, gpus}",
    )
    gpu_pool: DnsLabel | None = setting(
        None,
        doc="GPU pool the pods run on; required when resources.gpus > 0.",
        allowed="the name of an entry in mlplatform:gpuPools",
        example="a100",
    )
    autoscaling: AutoscalingOverrides = setting(
        default_factory=AutoscalingOverrides,
        doc="Per-model HPA overrides.",
        allowed="keys of mlplatform:autoscaling",
    )
    vpa: VpaConfig | None = setting(
        None,
        doc="VerticalPodAutoscaler; null creates none.",
        allowed="{mode, controlledResources, minAllowed, maxAllowed} or null",
    )
    pdb: PdbConfig = setting(
        default_factory=PdbConfig,
        doc="PodDisruptionBudget sizing.",
        allowed="{minAvailable}",
    )
    canary: CanaryConfig | None = setting(
        None,
        doc="Candidate version beside the stable one; null runs stable only.",
        allowed="{version, weight, replicas, source, image} or null",
    )
    ingress: ModelRouteConfig = setting(
        default_factory=ModelRouteConfig,
        doc="Route of this model.",
        allowed="{enabled, path, host}",
    )
    slo: SloConfig = setting(
        default_factory=SloConfig,
        doc="Service level objective.",
        allowed="{latencyP99Ms, errorRatePercent, availabilityPercent}",
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = setting(
        "ClusterIP",
        doc="Type of the model's Service.",
        allowed="'ClusterIP', 'NodePort' or 'LoadBalancer'",
        example="ClusterIP",
    )
    topology_spread: Literal["ScheduleAnyway", "DoNotSchedule"] = setting(
        "ScheduleAnyway",
        doc="What the scheduler does when pods cannot spread evenly over nodes.",
        allowed="'ScheduleAnyway' or 'DoNotSchedule'",
        example="DoNotSchedule",
    )

    @property
    def source_dir(self) -> str:
        """Folder under models/ that holds this model's Dockerfile."""
        return self.source or self.name.replace("-", "_")
