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
        "PDB": "kubernetes:policy/v1:PodDisruptionBudget",
        "NetworkPolicy": "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "Node": "kubernetes:core/v1:Node",
    }
    name = props["metadata"]["name"]
    urn = f"urn:pulumi:dev::mlplatform::{types[kind]}::{name}-{kind.lower()}"
    return Resource(types[kind], props, urn, f"{name}-{kind.lower()}")


def compliant_stack() -> list[Resource]:
    """A CPU model and a GPU model with everything the rules ask for, on a 2-node GPU pool."""
    return [
        res("Deployment", deployment("iris")),
        res("HPA", hpa("iris", 2, 6)),
        res("PDB", pdb("iris", 1)),
        res("Deployment", deployment("digits", gpus=1)),
        res("HPA", hpa("digits", 2, 8)),
        res("PDB", pdb("digits", 1)),
        res("NetworkPolicy", network_policy()),
        res("Node", gpu_node("gpu-a100-0")),
        res("Node", gpu_node("gpu-a100-1")),
    ]
