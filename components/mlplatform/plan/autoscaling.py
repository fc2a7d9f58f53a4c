"""Autoscaler (HPA or KEDA ScaledObject), VPA and PDB specs of one model, as plain dicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlplatform.config import AutoscalingConfig, ModelConfig, PdbConfig, StackConfig, VpaConfig
from mlplatform.config.fields import duration_seconds
from mlplatform.core import metrics as m
from mlplatform.core.names import (
    CONTAINER_NAME,
    MONITORING_COMPONENT,
    instance_name,
    prometheus_url,
)
from mlplatform.plan.gateway import backend_metric_names

_VPA_MODES = {"off": "Off", "initial": "Initial", "auto": "Auto"}

# KEDA names the HPA it makes after this annotation's ScaledObject config; with the annotation it
# adopts an HPA of that name instead of refusing to share the Deployment with it, so a model can
# move from plain HPA to KEDA in one `pulumi up` (the HPA keeps its name, the scale is kept).
KEDA_TRANSFER_HPA = "scaledobject.keda.sh/transfer-hpa-ownership"
KEDA_API_VERSION = "keda.sh/v1alpha1"

Autoscaler = Literal["hpa", "keda"]

# What each Prometheus signal reads: model-server names (the model tier checks them against a live
# server's /metrics) or dcgm-exporter's; a unit test keeps this table inside those catalogues.
SIGNAL_METRICS: dict[str, tuple[str, ...]] = {
    "in_flight": (m.REQUEST_DURATION_SUM, m.GATEWAY_REQUEST_DURATION_SUM),
    "rps": (m.REQUEST_DURATION_COUNT,),
    "latency_p99_ms": (m.REQUEST_DURATION_BUCKET,),
    "gpu_utilization": (m.GPU_UTIL, m.UP),
}


def quantity(value: float) -> str:
    """A Kubernetes quantity for an average metric value: 4.0 -> "4", 0.5 -> "500m"."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"


def autoscaler_kind(scaling: AutoscalingConfig) -> Autoscaler:
    """A plain HPA when every signal is a resource metric, else a KEDA ScaledObject."""
    return "keda" if scaling.signals.prometheus_signals() else "hpa"


def prometheus_address(config: StackConfig) -> str | None:
    """The Prometheus KEDA queries: the configured one, else the monitoring stack's own."""
    if config.autoscaling.prometheus_address:
        return config.autoscaling.prometheus_address
    monitoring = config.monitoring
    if monitoring.enabled and monitoring.mode == "deploy":
        return prometheus_url(MONITORING_COMPONENT, monitoring.namespace)
    return None


def rate_window(scrape_interval: str) -> str:
    """Range of the rates the signals read: 1 minute, or 4 scrapes when scrapes are sparser
    (a rate needs at least two samples in its window, four ride out one missed scrape)."""
    return f"{max(60, round(4 * duration_seconds(scrape_interval)))}s"


def gateway_rate_window(config: StackConfig, model: ModelConfig) -> str | None:
    """Range of the rates read from the platform gateway for `model`: 4 gateway scrapes; None
    when no such series exist (no route through a gateway of this stack, or no monitoring to
    scrape it)."""
    if not (config.monitoring.enabled and config.ingress.deploys_gateway):
        return None
    if not model.ingress.enabled:
        return None
    return f"{round(4 * duration_seconds(config.monitoring.gateway_scrape_interval))}s"


@dataclass(frozen=True)
class SignalQuery:
    """One Prometheus signal as KEDA reads it."""

    name: str
    """Trigger name (KEDA's metric name suffix), e.g. 'in-flight'."""
    query: str
    """PromQL returning one value for the model's stable pods."""
    metric_type: Literal["AverageValue", "Value"]
    """AverageValue: the query sums over pods and the target is per pod. Value: the ratio of the
    value to the target scales the current replica count."""
    threshold: float


def signal_queries(
    namespace: str,
    model: str,
    scaling: AutoscalingConfig,
    window: str,
    gateway_window: str | None = None,
) -> list[SignalQuery]:
    """The PromQL of each Prometheus signal of one model, from the metric names the model server
    exports (`mlplatform.core.metrics`) over its stable pods only: the canary has a fixed size.

    With `gateway_window` (the model has a route on the platform's gateway) requests in flight
    are read at the gateway too, over its stable backend: see `gateway_rate_window`.
    """
    stable = m.pod_selector(namespace, model, stable_only=True)
    pods = f"group by (namespace, pod) ({m.UP}{{{stable}}} == 1)"
    targets = scaling.signals
    queries: list[SignalQuery] = []
    if targets.in_flight is not None:
        # Little's law: the seconds spent in requests per second of wall time is the mean number
        # of requests in flight over the window. The gauge itself is no signal: sampled by a
        # scrape that the same event loop answers, it reads 0 between requests however busy the
        # pod is.
        busy = f"sum(rate({m.REQUEST_DURATION_SUM}{{{stable}}}[{window}]))"
        queries.append(
            SignalQuery("in-flight", f"{busy} or vector(0)", "AverageValue", targets.in_flight)
        )
    if targets.in_flight is not None and gateway_window is not None:
        # The same law at the gateway counts the requests waiting at a pod too: a server that
        # runs one request at a time reads at most 1 in flight itself, however long the queue
        # behind it, whereas here the queue shows at once, and on a shorter window (the gateway
        # is scraped more often). The HPA follows the larger of the two triggers, so traffic
        # that bypasses the gateway (in-cluster callers) still counts through the first.
        # REST and gRPC calls both: one backend each.
        backends = "|".join(backend_metric_names(namespace, instance_name(model, "stable")))
        matchers = f'job="{m.GATEWAY_JOB}", service=~"{backends}"'
        busy = f"sum(rate({m.GATEWAY_REQUEST_DURATION_SUM}{{{matchers}}}[{gateway_window}]))"
        queries.append(
            SignalQuery(
                "in-flight-gateway", f"{busy} or vector(0)", "AverageValue", targets.in_flight
            )
        )
    if targets.rps is not None:
        # No request in the window is a rate of 0, not "no data".
        rate = f"sum(rate({m.REQUEST_DURATION_COUNT}{{{stable}}}[{window}]))"
        queries.append(SignalQuery("rps", f"{rate} or vector(0)", "AverageValue", targets.rps))
    if targets.latency_p99_ms is not None:
        quantile = (
            f"histogram_quantile(0.99, sum by (le) "
            f"(rate({m.REQUEST_DURATION_BUCKET}{{{stable}}}[{window}])))"
        )
        # Idle pods give NaN (0/0); `>= 0` drops it, so no traffic reads as 0 ms.
        queries.append(
            SignalQuery(
                "latency-p99",
                f"(1000 * {quantile} >= 0) or vector(0)",
                "Value",
                targets.latency_p99_ms,
            )
        )
    if targets.gpu_utilization is not None:
        # dcgm-exporter labels each GPU with the pod using it: join on the model's live pods.
        queries.append(
            SignalQuery(
                "gpu-utilization",
                f"avg({m.GPU_UTIL} * on (namespace, pod) group_left () {pods})",
                "Value",
                targets.gpu_utilization,
            )
        )
    return queries


def _behavior(scaling: AutoscalingConfig) -> dict[str, Any]:
    return {
        # Inference load arrives in bursts: add capacity fast (double or +4 pods per 15 s)...
        "scaleUp": {
            "stabilizationWindowSeconds": scaling.scale_up_stabilization_seconds,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15},
                {"type": "Pods", "value": 4, "periodSeconds": 15},
            ],
        },
        # ...and release it slowly, so a short lull does not cold-start models again.
        "scaleDown": {
            "stabilizationWindowSeconds": scaling.scale_down_stabilization_seconds,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
        },
    }


def _target_ref(deployment: str) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment}


def plan_hpa(deployment: str, scaling: AutoscalingConfig) -> dict[str, Any]:
    """autoscaling/v2 HorizontalPodAutoscaler spec on the resource signals (cpu, memory)."""
    metrics = [
        {
            "type": "Resource",
            "resource": {
                "name": name,
                "target": {
                    "type": "Utilization",
                    "averageUtilization": getattr(scaling.signals, name),
                },
            },
        }
        for name in scaling.signals.resource_signals()
    ]
    return {
        "scaleTargetRef": _target_ref(deployment),
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "metrics": metrics,
        "behavior": _behavior(scaling),
    }


def plan_scaled_object(
    deployment: str,
    hpa_name: str,
    scaling: AutoscalingConfig,
    queries: list[SignalQuery],
    server_address: str,
) -> dict[str, Any]:
    """keda.sh/v1alpha1 ScaledObject spec: every signal a trigger, one HPA named `hpa_name`."""
    triggers: list[dict[str, Any]] = [
        {
            "type": name,
            "metricType": "Utilization",
            "metadata": {"value": str(getattr(scaling.signals, name))},
        }
        for name in scaling.signals.resource_signals()
    ]
    for signal in queries:
        triggers.append(
            {
                "type": "prometheus",
                "name": signal.name,
                "metricType": signal.metric_type,
                "metadata": {
                    "serverAddress": server_address,
                    "query": signal.query,
                    "threshold": f"{signal.threshold:g}",
                    # An empty answer is an error (shown on the ScaledObject, and the HPA then
                    # holds its size) rather than a silent 0; queries that may be empty while
                    # healthy say `or vector(0)` themselves.
                    "ignoreNullValues": "false",
                },
            }
        )
    return {
        "scaleTargetRef": _target_ref(deployment),
        "pollingInterval": scaling.polling_interval_seconds,
        "minReplicaCount": scaling.min_replicas,
        "maxReplicaCount": scaling.max_replicas,
        "advanced": {
            "horizontalPodAutoscalerConfig": {"name": hpa_name, "behavior": _behavior(scaling)},
        },
        "triggers": triggers,
    }


def pdb_min_available(pdb: PdbConfig, scaling: AutoscalingConfig) -> int | None:
    """minAvailable of the model's PDB, or None when there is no PDB (minReplicas < 2)."""
    if scaling.min_replicas < 2:
        return None
    return pdb.min_available if pdb.min_available is not None else scaling.min_replicas - 1


def plan_pdb(selector: dict[str, str], min_available: int) -> dict[str, Any]:
    """policy/v1 PodDisruptionBudget spec."""
    return {
        "minAvailable": min_available,
        "selector": {"matchLabels": dict(selector)},
        # A crash-looping pod must not block node drains; only healthy pods are protected.
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }


def plan_vpa(deployment: str, vpa: VpaConfig) -> dict[str, Any]:
    """autoscaling.k8s.io/v1 VerticalPodAutoscaler spec."""
    policy: dict[str, Any] = {
        "containerName": CONTAINER_NAME,
        "controlledResources": list(vpa.controlled_resources),
    }
    if vpa.min_allowed is not None:
        policy["minAllowed"] = vpa.min_allowed.model_dump()
    if vpa.max_allowed is not None:
        policy["maxAllowed"] = vpa.max_allowed.model_dump()
    return {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "updatePolicy": {"updateMode": _VPA_MODES[vpa.mode]},
        "resourcePolicy": {"containerPolicies": [policy]},
    }
