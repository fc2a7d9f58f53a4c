"""Cluster-level config: GPU pools, ingress, namespaces, monitoring, registry, images, batch."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from mlplatform.config.fields import (
    ConfigModel,
    CpuQuantity,
    CronSchedule,
    DnsLabel,
    DnsName,
    ImageRef,
    LabelKey,
    LabelValue,
    MemoryQuantity,
    ModelName,
    PinnedImageRef,
    Platform,
    PromDuration,
    RegistryHost,
    RepositoryPath,
    UrlPath,
    duration_seconds,
    setting,
)
from mlplatform.config.model import ResourcesConfig
from mlplatform.core.quantity import memory_bytes


class LocalPoolBackend(ConfigModel):
    """Backend `local`: KWOK-simulated GPU nodes created as Node objects in the local cluster."""

    cpu: CpuQuantity = setting(
        "16",
        doc="CPU capacity of each simulated node.",
        allowed="a CPU quantity such as '16'",
        example="16",
    )
    memory: MemoryQuantity = setting(
        "64Gi",
        doc="Memory capacity of each simulated node.",
        allowed="a memory quantity such as '64Gi'",
        example="64Gi",
    )
    pods: int = setting(
        110,
        doc="Pod capacity of each simulated node.",
        allowed="integer 1..1000",
        example=110,
        ge=1,
        le=1000,
    )


class DevicePluginConfig(ConfigModel):
    """The NVIDIA device plugin DaemonSet that advertises nvidia.com/gpu on real nodes."""

    enabled: bool = setting(True, doc="Deploy the device plugin.", allowed="true or false")
    image: ImageRef = setting(
        "nvcr.io/nvidia/k8s-device-plugin:v0.17.1",
        doc="Device plugin image (pinned tag).",
        allowed="an image reference with an explicit tag",
    )
    namespace: DnsLabel = setting(
        "kube-system",
        doc="Namespace of the DaemonSet.",
        allowed="an existing namespace name",
        example="kube-system",
    )


class ExistingPoolBackend(ConfigModel):
    """Backend `existing`: label and taint nodes of a real cluster, deploy the device plugin."""

    node_names: list[DnsName] = setting(
        default_factory=list,
        doc="Nodes to turn into the pool, by name.",
        allowed="a list of node names (exclusive with nodeSelector)",
        example='["gpu-1"]',
    )
    node_selector: dict[LabelKey, LabelValue] = setting(
        default_factory=dict,
        doc="Label selector choosing the nodes; resolved when the program runs.",
        allowed="a map of label key to value (exclusive with nodeNames)",
        example='{"node.kubernetes.io/instance-type": "p4d.24xlarge"}',
    )
    device_plugin: DevicePluginConfig = setting(
        default_factory=DevicePluginConfig,
        doc="NVIDIA device plugin.",
        allowed="{enabled, image, namespace}",
    )


class GpuPoolConfig(ConfigModel):
    """A set of tainted, labelled GPU nodes that GPU models schedule onto."""

    name: DnsLabel = setting(
        doc="Pool name: node label mlplatform.io/gpu-pool and taint value.",
        allowed="RFC 1123 label (lowercase letters, digits, '-'; <= 63)",
        example="a100",
    )
    backend: Literal["local", "existing"] = setting(
        doc="How nodes come to exist: 'local' simulates them with KWOK, 'existing' adopts nodes "
        "of a real cluster.",
        allowed="'local' or 'existing'",
        example="local",
    )
    gpus_per_node: int = setting(
        1,
        doc="nvidia.com/gpu capacity of each node.",
        allowed="integer 1..16",
        example=8,
        ge=1,
        le=16,
    )
    node_count: int | None = setting(
        None,
        doc="Number of nodes; for 'existing' with nodeNames it defaults to their count.",
        allowed="integer 1..1000 (required for 'local' and for 'existing' with nodeSelector)",
        example=2,
        ge=1,
        le=1000,
    )
    gpu_product: LabelValue | None = setting(
        None,
        doc="Value of the nvidia.com/gpu.product node label.",
        allowed="a label value such as 'NVIDIA-A100-SXM4-80GB'",
        example="NVIDIA-A100-SXM4-80GB",
    )
    local: LocalPoolBackend | None = setting(
        None,
        doc="Settings of backend 'local'; null uses their defaults.",
        allowed="{cpu, memory, pods}; only with backend 'local'",
    )
    existing: ExistingPoolBackend | None = setting(
        None,
        doc="Settings of backend 'existing'.",
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
        None,
        doc="TLS Secret name; null means '<model>-tls' per route.",
        allowed="a Secret name (RFC 1123)",
        example="ml-tls",
    )
    cluster_issuer: DnsName | None = setting(
        None,
        doc="cert-manager ClusterIssuer that fills the Secret; null means you provide it.",
        allowed="a ClusterIssuer name",
        example="letsencrypt-prod",
    )


class GatewayConfig(ConfigModel):
    """The Gateway API entry point that every model's HTTPRoute attaches to."""

    deploy: bool = setting(
        True,
        doc="Run the platform's own gateway: a Traefik controller, its GatewayClass and a "
        "Gateway in ingress.controllerNamespace. false attaches the routes to an existing "
        "Gateway (gateway.name in that namespace) run by the cluster's own controller.",
        allowed="true or false",
    )
    name: DnsLabel = setting(
        "mlplatform",
        doc="Name of the Gateway the routes attach to (their parentRef).",
        allowed="RFC 1123 label",
        example="public",
    )
    class_name: DnsName = setting(
        "mlplatform",
        doc="GatewayClass of the deployed Gateway (deploy: true).",
        allowed="a GatewayClass name",
        example="mlplatform",
    )
    listener: DnsLabel | None = setting(
        None,
        doc="Listener (sectionName) of the Gateway the routes attach to; null attaches to "
        "every listener that admits them.",
        allowed="a listener name of the Gateway, or null",
        example="https",
    )
    image: PinnedImageRef = setting(
        "traefik:v3.5.3",
        doc="Gateway controller image (deploy: true).",
        allowed="an image reference pinned by a tag other than 'latest' or by digest",
        example="traefik:v3.5.3",
    )
    replicas: int = setting(
        2,
        doc="Gateway controller replicas (deploy: true); 2 or more keep routes up through "
        "a node drain (a PodDisruptionBudget keeps one).",
        allowed="an integer from 1 to 10",
        ge=1,
        le=10,
    )
    retry_attempts: int = setting(
        3,
        doc="Tries per request, the first included, when a backend pod cannot be reached "
        "(deploy: true): a refused or reset connection before the request was sent, as "
        "happens between a pod's death and its endpoint leaving the route, is sent again to "
        "another pod. A request a pod received is never sent twice. 1 turns retries off.",
        allowed="an integer from 1 to 5",
        example=3,
        ge=1,
        le=5,
    )
    node_port: int | None = setting(
        None,
        doc="Fixed NodePort of the gateway's HTTP listener (deploy: true); null lets "
        "Kubernetes pick. The local cluster forwards 127.0.0.1 to it.",
        allowed="an integer from 30000 to 32767, or null",
        example=30080,
        ge=30000,
        le=32767,
    )
    install_crds: bool = setting(
        True,
        doc="Apply the Gateway API CRDs (standard channel) with the gateway (deploy: true); "
        "false where the cluster already has them.",
        allowed="true or false",
    )
    crds_path: str | None = setting(
        None,
        doc="The Gateway API CRDs to apply: a YAML file or a folder of them; null uses "
        "$MLP_GATEWAY_API_CRDS (scripts/env.sh points it at the CRDs bootstrap copies from "
        "the pinned sigs.k8s.io/gateway-api module).",
        allowed="a file or folder path, or null",
        example="~/.cache/mlplatform/gateway-api/1.3.0/standard",
    )


class IngressConfig(ConfigModel):
    """Per-model HTTP routes into the cluster: Gateway API routes, or Ingress objects."""

    enabled: bool = setting(True, doc="Create a route per model.", allowed="true or false")
    api: Literal["gateway", "ingress"] = setting(
        "gateway",
        doc="'gateway': an HTTPRoute and a GRPCRoute per model on a Gateway (see gateway.*), "
        "canary as a weighted backend. 'ingress': a networking.k8s.io Ingress per model for "
        "clusters without the Gateway API (REST only; weighted canary only with controller "
        "'nginx').",
        allowed="'gateway' or 'ingress'",
        example="gateway",
    )
    gateway: GatewayConfig = setting(
        default_factory=GatewayConfig,
        doc="The Gateway (api: gateway).",
        allowed="see ingress.gateway.* keys",
    )
    class_name: str | None = setting(
        None,
        doc="ingressClassName of the Ingress objects (api: ingress); null uses the cluster's "
        "default IngressClass.",
        allowed="an IngressClass name, or null",
        example="traefik",
    )
    controller: Literal["nginx", "generic"] = setting(
        "generic",
        doc="Annotation dialect of Ingress objects (api: ingress): 'nginx' (ingress-nginx) "
        "rewrites path routes to the server's root and splits canary traffic by weight; "
        "'generic' sets neither.",
        allowed="'nginx' or 'generic'",
        example="generic",
    )
    routing: Literal["path", "host"] = setting(
        "path",
        doc="'path' routes <pathPrefix>/<model>; 'host' routes <model>.<domain>.",
        allowed="'path' or 'host'",
        example="host",
    )
    host: DnsName | None = setting(
        None,
        doc="Single host for path routing; null matches any host.",
        allowed="a DNS name without scheme or port",
        example="ml.example.com",
    )
    domain: DnsName | None = setting(
        None,
        doc="Base domain for host routing.",
        allowed="a DNS name without scheme or port (required for host routing)",
        example="ml.example.com",
    )
    path_prefix: UrlPath = setting(
        "/models", doc="Prefix of path routes.", allowed="an absolute URL path", example="/models"
    )
    tls: TlsConfig = setting(
        default_factory=TlsConfig, doc="TLS.", allowed="{enabled, secretName, clusterIssuer}"
    )
    controller_namespace: DnsLabel = setting(
        "mlplatform-gateway",
        doc="Namespace of the gateway (its controller and Gateway object) or of the ingress "
        "controller; NetworkPolicies admit traffic from it via the label "
        "mlplatform.io/role=ingress.",
        allowed="RFC 1123 label",
        example="ingress-nginx",
    )
    controller_namespace_mode: Literal["create", "label", "none"] = setting(
        "create",
        doc="'create' makes the namespace, 'label' adds the role label to an existing "
        "one, 'none' leaves it alone.",
        allowed="'create', 'label' or 'none'",
        example="label",
    )
    annotations: dict[str, str] = setting(
        default_factory=dict,
        doc="Extra annotations on every route object.",
        allowed="a map of annotation key to string",
    )
    await_address: bool = setting(
        True,
        doc="Make `pulumi up` wait until the ingress controller publishes an address for "
        "each Ingress (api: ingress). Set false where no controller runs or where "
        "addresses are published late; the routes are created either way.",
        allowed="true or false",
    )

    @property
    def deploys_gateway(self) -> bool:
        """The stack runs its own gateway (Traefik) for the models' routes."""
        return self.enabled and self.api == "gateway" and self.gateway.deploy


class NamespacesConfig(ConfigModel):
    """Namespaces the platform creates for model workloads."""

    models: DnsLabel = setting(
        "ml-models",
        doc="Namespace of model servers.",
        allowed="RFC 1123 label",
        example="ml-models",
    )
    batch: DnsLabel | None = setting(
        None,
        doc="Namespace of batch jobs; null means `models`.",
        allowed="RFC 1123 label",
        example="ml-batch",
    )
    pod_security: Literal["restricted", "baseline"] = setting(
        "restricted",
        doc="Pod Security Admission level enforced, audited and warned.",
        allowed="'restricted' or 'baseline'",
        example="restricted",
    )

    @property
    def batch_namespace(self) -> str:
        return self.batch or self.models


class MonitoringConfig(ConfigModel):
    """How models are monitored: the one definition of MonitoringStack's settings and defaults."""

    enabled: bool = setting(True, doc="Deploy monitoring.", allowed="true or false")
    mode: Literal["deploy", "operator"] = setting(
        "deploy",
        doc="'deploy' runs Prometheus and Grafana; 'operator' emits PodMonitor and "
        "PrometheusRule objects and dashboard ConfigMaps for an existing Prometheus Operator.",
        allowed="'deploy' or 'operator'",
        example="deploy",
    )
    namespace: DnsLabel = setting(
        "monitoring",
        doc="Namespace of the monitoring stack (created in deploy mode).",
        allowed="RFC 1123 label",
        example="monitoring",
    )
    retention: PromDuration = setting(
        "7d",
        doc="Prometheus TSDB retention (deploy mode).",
        allowed="a Prometheus duration such as '7d' or '12h'",
        example="7d",
    )
    storage_size: MemoryQuantity | None = setting(
        None,
        doc="PVC size for Prometheus data (deploy mode); null uses an emptyDir, lost when the "
        "pod moves.",
        allowed="a positive memory-style quantity such as '20Gi', or null",
        example="20Gi",
    )
    scrape_interval: PromDuration = setting(
        "15s",
        doc="How often Prometheus scrapes and evaluates rules (also the PodMonitor interval).",
        allowed="a Prometheus duration from 1s to 1m, so 5m rate windows hold enough samples",
        example="15s",
    )
    gateway_scrape_interval: PromDuration = setting(
        "5s",
        doc="How often Prometheus scrapes the platform's gateway (ingress.gateway.deploy): "
        "the in-flight autoscaling signal is read from it, so a shorter interval scales "
        "sooner. One or two targets, a few hundred series.",
        allowed="a Prometheus duration from 1s to 1m",
        example="5s",
    )
    alertmanager: bool = setting(
        False, doc="Deploy Alertmanager (deploy mode).", allowed="true or false"
    )
    grafana: bool = setting(
        True,
        doc="Deploy Grafana with the generated dashboards (deploy mode). Off where no "
        "Grafana image can be pulled (the local cluster).",
        allowed="true or false",
    )
    prometheus_image: PinnedImageRef = setting(
        "prom/prometheus:v3.5.0",
        doc="Prometheus image (deploy mode).",
        allowed="an image reference pinned by a tag other than 'latest' or by digest",
        example="prom/prometheus:v3.5.0",
    )
    grafana_image: PinnedImageRef = setting(
        "grafana/grafana:12.1.1",
        doc="Grafana image (deploy mode).",
        allowed="an image reference pinned by a tag other than 'latest' or by digest",
        example="grafana/grafana:12.1.1",
    )
    alertmanager_image: PinnedImageRef = setting(
        "prom/alertmanager:v0.28.1",
        doc="Alertmanager image (deploy mode).",
        allowed="an image reference pinned by a tag other than 'latest' or by digest",
        example="prom/alertmanager:v0.28.1",
    )
    operator_labels: dict[LabelKey, LabelValue] = setting(
        default_factory=dict,
        doc="Labels on PodMonitor and PrometheusRule objects so the operator's selectors pick "
        "them up (operator mode).",
        allowed="a map of label keys to label values",
        example={"release": "kube-prometheus-stack"},
    )

    @field_validator("storage_size")
    @classmethod
    def _positive_storage(cls, value: str | None) -> str | None:
        if value is not None and memory_bytes(value) <= 0:
            raise ValueError(f"{value!r} is not a positive size; use e.g. '20Gi', or null")
        return value

    @field_validator("scrape_interval", "gateway_scrape_interval")
    @classmethod
    def _scrape_range(cls, value: str) -> str:
        if not 1 <= duration_seconds(value) <= 60:
            raise ValueError(f"{value!r} is outside 1s..1m; use e.g. '15s' or '30s'")
        return value


class KedaConfig(ConfigModel):
    """KEDA (operator, metrics apiserver, admission webhooks): reads Prometheus signals for the
    models' ScaledObjects and serves them to the HPA as external metrics."""

    deploy: bool = setting(
        False,
        doc="Install KEDA with the stack (CRDs, RBAC, its three Deployments). false where the "
        "cluster already runs KEDA 2.18.",
        allowed="true or false",
    )
    namespace: DnsLabel = setting(
        "keda",
        doc="Namespace of KEDA (created).",
        allowed="RFC 1123 label",
        example="keda",
    )
    operator_image: PinnedImageRef = setting(
        "ghcr.io/kedacore/keda:2.18.1",
        doc="KEDA operator image.",
        allowed="an image reference pinned by a tag other than 'latest' or by digest",
        example="ghcr.io/kedacore/keda:2.18.1",
    )
    metrics_server_image: PinnedImageRef = setting(
        "ghcr.io/kedacore/keda-metrics-apiserver:2.18.1",
        doc="KEDA metrics apiserver image (external.metrics.k8s.io).",
        allowed="an image reference pinned by a tag other than 'latest' or by digest",
        example="ghcr.io/kedacore/keda-metrics-apiserver:2.18.1",
    )
    webhooks_image: PinnedImageRef = setting(
        "ghcr.io/kedacore/keda-admission-webhooks:2.18.1",
        doc="KEDA admission webhooks image.",
        allowed="an image reference pinned by a tag other than 'latest' or by digest",
        example="ghcr.io/kedacore/keda-admission-webhooks:2.18.1",
    )
    crds_path: str | None = setting(
        None,
        doc="KEDA's CRDs: a YAML file or a folder of them; null uses $MLP_KEDA_CRDS (bootstrap "
        "copies them from the pinned github.com/kedacore/keda/v2 module).",
        allowed="a file or folder path, or null",
        example="~/.cache/mlplatform/keda/2.18.1/crds",
    )


class VpaAddonConfig(ConfigModel):
    """The Vertical Pod Autoscaler (recommender, updater, admission controller), in kube-system
    where upstream's RBAC puts its service accounts."""

    deploy: bool = setting(
        False,
        doc="Install the VPA with the stack (CRDs, RBAC, its three Deployments, the admission "
        "controller's certificate). false where the cluster already runs VPA 1.4.",
        allowed="true or false",
    )
    recommender_image: PinnedImageRef = setting(
        "registry.k8s.io/autoscaling/vpa-recommender:1.4.2",
        doc="VPA recommender image.",
        allowed="an image reference pinned by a tag other than 'latest' or by digest",
        example="registry.k8s.io/autoscaling/vpa-recommender:1.4.2",
    )
    updater_image: PinnedImageRef = setting(
        "registry.k8s.io/autoscaling/vpa-updater:1.4.2",
        doc="VPA updater image.",
        allowed="an image reference pinned by a tag other than 'latest' or by digest",
        example="registry.k8s.io/autoscaling/vpa-updater:1.4.2",
    )
    admission_controller_image: PinnedImageRef = setting(
        "registry.k8s.io/autoscaling/vpa-admission-controller:1.4.2",
        doc="VPA admission controller image.",
        allowed="an image reference pinned by a tag other than 'latest' or by digest",
        example="registry.k8s.io/autoscaling/vpa-admission-controller:1.4.2",
    )
    crds_path: str | None = setting(
        None,
        doc="VPA's CRDs: a YAML file or a folder of them; null uses $MLP_VPA_CRDS (bootstrap "
        "copies them from the pinned k8s.io/autoscaler/vertical-pod-autoscaler module).",
        allowed="a file or folder path, or null",
        example="~/.cache/mlplatform/vpa/1.4.2/crds",
    )


class AutoscalersConfig(ConfigModel):
    """Cluster add-ons the models' autoscaling needs, installed by the stack when asked."""

    keda: KedaConfig = setting(
        default_factory=KedaConfig, doc="KEDA.", allowed="see autoscalers.keda.* keys"
    )
    vpa: VpaAddonConfig = setting(
        default_factory=VpaAddonConfig,
        doc="Vertical Pod Autoscaler.",
        allowed="see autoscalers.vpa.* keys",
    )


class RegistryConfig(ConfigModel):
    """Where model images go; without `server` images stay in the local Docker daemon."""

    server: RegistryHost | None = setting(
        None,
        doc="Registry host[:port]; null keeps images local (no push).",
        allowed="a host such as 'registry.example.com' or 'localhost:5000'",
        example="registry.example.com",
    )
    repository: RepositoryPath = setting(
        "mlplatform",
        doc="Repository prefix of image names.",
        allowed="lowercase path such as 'mlplatform' or 'team/ml'",
        example="mlplatform",
    )
    username: str | None = setting(
        None,
        doc="Registry user; its password comes from the secret mlplatform:registryPassword.",
        allowed="a user name",
        example="ci-bot",
    )


class ImagesConfig(ConfigModel):
    """How model images are built (pulumi-docker-build, BuildKit)."""

    build_on_preview: bool = setting(
        False,
        doc="Build images during `pulumi preview` too (slower; catches Dockerfile errors).",
        allowed="true or false",
    )
    network: Literal["host", "default"] = setting(
        "host",
        doc="Network mode of RUN steps; host lets pip reach the package index.",
        allowed="'host' or 'default'",
        example="host",
    )
    platform: Platform | None = setting(
        None,
        doc="Target platform; null builds for the daemon's platform.",
        allowed="e.g. 'linux/amd64' or 'linux/arm64'",
        example="linux/amd64",
    )
    builder: DnsLabel = setting(
        "default",
        doc="buildx builder that runs the build. 'default' is the Docker engine's own "
        "BuildKit, which needs no image from any registry.",
        allowed="the name of an existing buildx builder",
        example="default",
    )
    exec_cli: bool = setting(
        True,
        alias="exec",
        doc="Build through the `docker buildx` CLI (docker-build's exec mode). Required for the "
        "'default' (docker-driver) builder: the provider's in-process mode only drives BuildKit "
        "container builders, which it would first pull from Docker Hub.",
        allowed="true or false",
    )


class BatchDataConfig(ConfigModel):
    """The volume holding batch input and output files."""

    claim_name: DnsLabel = setting(
        doc="PersistentVolumeClaim mounted at `mountPath`.",
        allowed="a PVC name (RFC 1123)",
        example="datasets",
    )
    mount_path: UrlPath = setting(
        "/data", doc="Where the claim is mounted.", allowed="an absolute path", example="/data"
    )
    create: bool = setting(
        False, doc="Create the claim (else it must exist).", allowed="true or false"
    )
    size: MemoryQuantity = setting(
        "1Gi",
        doc="Size when `create` is true.",
        allowed="a quantity such as '10Gi'",
        example="10Gi",
    )
    storage_class_name: DnsName | None = setting(
        None,
        doc="StorageClass when `create` is true; null uses the cluster default.",
        allowed="a StorageClass name",
        example="standard",
    )


class BatchJobConfig(ConfigModel):
    """Batch inference: a model image run over a dataset file, once (Job) or on a schedule."""

    name: ModelName = setting(
        doc="Job name.", allowed="RFC 1035 label of 1..40 characters", example="iris-nightly"
    )
    model: ModelName = setting(
        doc="Model whose stable image and version run the job.",
        allowed="the name of an entry in mlplatform:models",
        example="iris",
    )
    input: UrlPath = setting(
        doc="Input file path inside the container.",
        allowed="an absolute path under data.mountPath",
        example="/data/in/iris.csv",
    )
    output: UrlPath = setting(
        doc="Output file path inside the container.",
        allowed="an absolute path under data.mountPath",
        example="/data/out/iris.jsonl",
    )
    data: BatchDataConfig = setting(
        doc="Volume with the dataset.",
        allowed="{claimName, mountPath, create, size, storageClassName}",
    )
    schedule: CronSchedule | None = setting(
        None,
        doc="Cron schedule; null runs a one-off Job.",
        allowed="5-field cron such as '0 2 * * *' or @daily, or null",
        example="0 2 * * *",
    )
    backoff_limit: int = setting(
        2, doc="Retries before the Job fails.", allowed="integer 0..10", example=2, ge=0, le=10
    )
    active_deadline_seconds: int = setting(
        3600,
        doc="Wall-clock limit of one run.",
        allowed="integer 60..604800",
        example=3600,
        ge=60,
        le=604800,
    )
    ttl_seconds_after_finished: int = setting(
        86400,
        doc="Finished Jobs are deleted after this.",
        allowed="integer 0..2592000",
        example=86400,
        ge=0,
        le=2592000,
    )
    resources: ResourcesConfig | None = setting(
        None,
        doc="Container resources; null uses the model's.",
        allowed="{requests, limits, gpus}",
    )
