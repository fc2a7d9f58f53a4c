"""HPA, VPA and PDB specs of one model, as plain Kubernetes-shaped dicts."""

from __future__ import annotations

from typing import Any

from mlplatform.config import AutoscalingConfig, PdbConfig, VpaConfig
from mlplatform.core.names import CONTAINER_NAME, IN_FLIGHT_METRIC

_VPA_MODES = {"off": "Off", "initial": "Initial", "auto": "Auto"}


def quantity(value: float) -> str:
    """A Kubernetes quantity for an average metric value: 4.0 -> "4", 0.5 -> "500m"."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"


def hpa_resource_metrics(scaling: AutoscalingConfig) -> list[str]:
    """Container resources the HPA scales on (what a VPA must then leave alone)."""
    names = []
    if scaling.target_cpu_utilization is not None:
        names.append("cpu")
    if scaling.target_memory_utilization is not None:
        names.append("memory")
    return names


def plan_hpa(deployment: str, scaling: AutoscalingConfig) -> dict[str, Any]:
    """autoscaling/v2 HorizontalPodAutoscaler spec for the stable Deployment."""
    metrics: list[dict[str, Any]] = []
    for name, target in (
        ("cpu", scaling.target_cpu_utilization),
        ("memory", scaling.target_memory_utilization),
    ):
        if target is not None:
            metrics.append(
                {
                    "type": "Resource",
                    "resource": {
                        "name": name,
                        "target": {"type": "Utilization", "averageUtilization": target},
                    },
                }
            )
    if scaling.in_flight_target is not None:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": IN_FLIGHT_METRIC},
                    "target": {
                        "type": "AverageValue",
                        "averageValue": quantity(scaling.in_flight_target),
                    },
                },
            }
        )
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "metrics": metrics,
        "behavior": {
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
        },
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
