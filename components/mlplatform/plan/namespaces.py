"""Labels of the namespaces the platform creates or adopts."""

from __future__ import annotations

from mlplatform.core.names import LABEL_ROLE, ROLE_INGRESS, platform_labels


def pod_security_labels(level: str) -> dict[str, str]:
    """Pod Security Admission labels: enforce, audit and warn at the same level."""
    labels: dict[str, str] = {}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = level
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return labels


def model_namespace_labels(level: str, role: str) -> dict[str, str]:
    return {**platform_labels("namespace"), **pod_security_labels(level), LABEL_ROLE: role}


def ingress_namespace_labels() -> dict[str, str]:
    """The label NetworkPolicies of model namespaces admit traffic from."""
    return {LABEL_ROLE: ROLE_INGRESS}
