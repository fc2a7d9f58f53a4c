"""Compliant Kubernetes objects shaped like the component library's output.

Tests start from these and break one thing at a time; a rule that flags one of them unmodified
is itself wrong. Builders return fresh dicts so callers may mutate them.
"""

from __future__ import annotations

from typing import Any

from .k8s import Resource

MODEL_NS = "models"


def model_labels(model: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": model,
        "app.kubernetes.io/instance": model,
        "app.kubernetes.io/version": "1",
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "mlplatform",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def container(model: str, gpus: int = 0) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": "1", "memory": "512Mi"}
    if gpus:
        limits["nvidia.com/gpu"] = gpus
    return {
        "name": "model-server",
        "image": f"registry.local/mlplatform/{model}:3f2a9c1d7b4e",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [
            {"name": "MODEL_NAME", "value": model},
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
        ],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": limits},
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": "http"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def pod_spec(model: str, gpus: int = 0, pool: str = "a100") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container(model, gpus)],
    }
    if gpus:
        spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Equal", "value": pool, "effect": "NoSchedule"}
        ]
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "mlplatform.io/gpu-pool",
                                    "operator": "In",
                                    "values": [pool],
                                }
                            ]
                        }
                    ]
                }
            }
        }
    return spec


def deployment(model: str, replicas: int = 2, gpus: int = 0, pool: str = "a100") -> dict[str, Any]:
    labels = model_labels(model)
    selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": model, "namespace": MODEL_NS, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec(model, gpus, pool)},
        },
    }


def hpa(model: str, min_replicas: int = 2, max_replicas: int = 4) -> dict[str, Any]:
    return {
        "metadata": {"name": model, "namespace": MODEL_NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": model},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "model_infer_requests_in_flight"},
                        "target": {"type": "AverageValue", "averageValue": "4"},
                    },
                }
            ],
        },
    }


def scaled_object(model: str, min_replicas: int = 2, max_replicas: int = 4) -> dict[str, Any]:
    """A KEDA ScaledObject like the component's: CPU utilization plus requests in flight from
    Prometheus, adopting the model's HPA name."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": model,
            "namespace": MODEL_NS,
            "annotations": {"scaledobject.keda.sh/transfer-hpa-ownership": "true"},
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": model},
            "pollingInterval": 15,
            "minReplicaCount": min_replicas,
            "maxReplicaCount": max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"name": model}},
            "triggers": [
                {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "65"}},
                {
                    "type": "prometheus",
                    "name": "in-flight",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": "http://prometheus.monitoring.svc:9090",
                        "query": f'sum(model_infer_requests_in_flight{{model="{model}"}})',
                        "threshold": "8",
                        "ignoreNullValues": "false",
                    },
                },
            ],
        },
    }


def vpa(
    model: str, mode: str = "Auto", controlled: tuple[str, ...] = ("cpu", "memory")
) -> dict[str, Any]:
    """A VerticalPodAutoscaler like the component's; `controlled` defaults to the VPA's own."""
    return {
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": model, "namespace": MODEL_NS},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": model},
            "updatePolicy": {"updateMode": mode},
            "resourcePolicy": {
                "containerPolicies": [
                    {"containerName": "model-server", "controlledResources": list(controlled)}
                ]
            },
        },
    }


def pdb(model: str, min_available: Any = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": model, "namespace": MODEL_NS},
        "spec": {
            "minAvailable": min_available,
            "selector": {"matchLabels": {"app.kubernetes.io/instance": model}},
        },
    }


def network_policy(name: str = "model-servers") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": MODEL_NS},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/component": "model-server"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"mlplatform.io/role": "ingress"}}}
                    ]
                }
            ],
        },
    }


def gpu_node(name: str, pool: str = "a100", gpus: int = 4) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"mlplatform.io/gpu-pool": pool}},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": pool, "effect": "NoSchedule"}]},
        "status": {"capacity": {"nvidia.com/gpu": str(gpus), "cpu": "32", "memory": "256Gi"}},
    }


def res(kind: str, props: dict[str, Any]) -> Resource:
    """Wraps props as a stack resource with a URN built from its kind and name."""
    types = {
        "Deployment": "kubernetes:apps/v1:Deployment",
        "Job": "kubernetes:batch/v1:Job",
        "HPA": "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "ScaledObject": "kubernetes:keda.sh/v1alpha1:ScaledObject",
        "VPA": "kubernetes:autoscaling.k8s.io/v1:VerticalPodAutoscaler",
        "PDB": "kubernetes:policy/v1:PodDisruptionBudget",
        "NetworkPolicy": "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "Node": "kubernetes:core/v1:Node",
    }
    name = props["metadata"]["name"]
    urn = f"urn:pulumi:dev::mlplatform::{types[kind]}::{name}-{kind.lower()}"
    return Resource(types[kind], props, urn, f"{name}-{kind.lower()}")


def compliant_stack() -> list[Resource]:
    """A CPU model on an HPA, a CPU model on a KEDA ScaledObject with a memory-only VPA, and a
    GPU model, with everything the rules ask for, on a 2-node GPU pool."""
    return [
        res("Deployment", deployment("iris")),
        res("HPA", hpa("iris", 2, 6)),
        res("PDB", pdb("iris", 1)),
        res("Deployment", deployment("wine")),
        res("ScaledObject", scaled_object("wine", 2, 6)),
        res("VPA", vpa("wine", "Auto", ("memory",))),
        res("PDB", pdb("wine", 1)),
        res("Deployment", deployment("digits", gpus=1)),
        res("HPA", hpa("digits", 2, 8)),
        res("PDB", pdb("digits", 1)),
        res("NetworkPolicy", network_policy()),
        res("Node", gpu_node("gpu-a100-0")),
        res("Node", gpu_node("gpu-a100-1")),
    ]
