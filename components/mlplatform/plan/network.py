"""NetworkPolicies: deny all ingress in model namespaces, then admit the ingress controller and
Prometheus (namespaces labelled mlplatform.io/role, contracts.md) to the model-server port."""

from __future__ import annotations

from typing import Any

from mlplatform.core.names import (
    COMPONENT,
    GRPC_PORT,
    LABEL_ROLE,
    PORT,
    ROLE_INGRESS,
    ROLE_MONITORING,
)


def plan_default_deny() -> dict[str, Any]:
    """Selects every pod of the namespace and allows nothing in."""
    return {"podSelector": {}, "policyTypes": ["Ingress"]}


def plan_model_allow(model: str) -> dict[str, Any]:
    """Admit traffic to one model's servers (stable and canary): REST and gRPC from the ingress,
    REST (where /metrics is) from monitoring."""
    ports = {ROLE_INGRESS: [PORT, GRPC_PORT], ROLE_MONITORING: [PORT]}
    return {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": model,
                "app.kubernetes.io/component": COMPONENT,
            }
        },
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"namespaceSelector": {"matchLabels": {LABEL_ROLE: role}}}],
                "ports": [{"protocol": "TCP", "port": port} for port in ports[role]],
            }
            for role in (ROLE_INGRESS, ROLE_MONITORING)
        ],
    }
