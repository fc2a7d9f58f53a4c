"""Kubernetes object specs for the deploy mode: Prometheus, Grafana, Alertmanager and RBAC.

Plain dicts in the shapes pulumi_kubernetes accepts, so the component only instantiates them and
tests read them without mocks.
"""

from __future__ import annotations

from typing import Any

from mlplatform.config import MonitoringConfig
from mlplatform.core.names import PROMETHEUS_PORT
from mlplatform.plan.monitoring import prometheus as p

NOBODY = 65534  # the uid the prometheus and alertmanager images run as
GRAFANA_UID = 472  # the grafana image's own user
PROVISIONING_DIR = "/etc/grafana/provisioning"


def labels(stack: str, app: str) -> dict[str, str]:
    """Recommended labels for one monitoring workload of the stack named `stack`."""
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": f"{stack}-{app}",
        "app.kubernetes.io/component": "monitoring",
        "app.kubernetes.io/part-of": "mlplatform",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def prometheus_cluster_rules() -> list[dict[str, Any]]:
    """ClusterRole rules: discover pods and nodes, read kubelet metrics through the API proxy."""
    return [
        {
            "apiGroups": [""],
            "resources": ["pods", "endpoints", "services", "nodes"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": [""], "resources": ["nodes/proxy", "nodes/metrics"], "verbs": ["get"]},
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
    ]


def _security(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _probe(path: str, port: int, delay: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "initialDelaySeconds": delay,
        "periodSeconds": 10,
        "timeoutSeconds": 5,
        "failureThreshold": 6,
    }


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


def prometheus_deployment(
    settings: MonitoringConfig,
    stack: str,
    *,
    config_map: str,
    rules_map: str,
    service_account: str,
    claim: str | None,
    config_hash: str,
) -> dict[str, Any]:
    """Deployment spec for Prometheus; Recreate, because two pods must never share one TSDB."""
    match = labels(stack, "prometheus")
    data = {"persistentVolumeClaim": {"claimName": claim}} if claim else {"emptyDir": {}}
    # The volume's name follows its type: server-side apply merges list items by name, so
    # switching one name from emptyDir to a claim would leave both sources on it (rejected).
    data_volume = "data-pvc" if claim else "data"
    return {
        "replicas": 1,
        "strategy": {"type": "Recreate"},
        "selector": {"matchLabels": match},
        "template": {
            "metadata": {
                "labels": match,
                "annotations": {"mlplatform.io/config-hash": config_hash},
            },
            "spec": {
                "serviceAccountName": service_account,
                "securityContext": _security(NOBODY),
                "containers": [
                    {
                        "name": "prometheus",
                        "image": settings.prometheus_image,
                        "args": [
                            f"--config.file={p.CONFIG_DIR}/prometheus.yml",
                            "--storage.tsdb.path=/prometheus",
                            f"--storage.tsdb.retention.time={settings.retention}",
                            f"--web.listen-address=:{PROMETHEUS_PORT}",
                        ],
                        "ports": [{"name": "http", "containerPort": PROMETHEUS_PORT}],
                        "readinessProbe": _probe("/-/ready", PROMETHEUS_PORT, 5),
                        "livenessProbe": _probe("/-/healthy", PROMETHEUS_PORT, 30),
                        "resources": _resources("250m", "512Mi", "1", "2Gi"),
                        "securityContext": _container_security(),
                        "volumeMounts": [
                            {"name": "config", "mountPath": p.CONFIG_DIR, "readOnly": True},
                            {"name": "rules", "mountPath": p.RULES_DIR, "readOnly": True},
                            {"name": data_volume, "mountPath": "/prometheus"},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "config", "configMap": {"name": config_map}},
                    {"name": "rules", "configMap": {"name": rules_map}},
                    {"name": data_volume, **data},
                ],
            },
        },
    }


def grafana_env(secret: str | None) -> list[dict[str, Any]]:
    """Grafana settings; without an admin password it becomes a read-only, anonymous viewer."""
    env: list[dict[str, Any]] = [
        {"name": "GF_ANALYTICS_REPORTING_ENABLED", "value": "false"},
        {"name": "GF_ANALYTICS_CHECK_FOR_UPDATES", "value": "false"},
        {"name": "GF_USERS_ALLOW_SIGN_UP", "value": "false"},
        {
            "name": "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH",
            "value": f"{p.GRAFANA_DASHBOARDS_DIR}/mlp-overview.json",
        },
    ]
    if secret is not None:
        env += [
            {"name": "GF_SECURITY_ADMIN_USER", "value": "admin"},
            {
                "name": "GF_SECURITY_ADMIN_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": secret, "key": "admin-password"}},
            },
        ]
    else:
        # The image's built-in admin/admin must not be reachable: no login form, no basic auth.
        env += [
            {"name": "GF_AUTH_ANONYMOUS_ENABLED", "value": "true"},
            {"name": "GF_AUTH_ANONYMOUS_ORG_ROLE", "value": "Viewer"},
            {"name": "GF_AUTH_DISABLE_LOGIN_FORM", "value": "true"},
            {"name": "GF_AUTH_BASIC_ENABLED", "value": "false"},
        ]
    return env


def grafana_deployment(
    settings: MonitoringConfig,
    stack: str,
    *,
    provisioning_map: str,
    dashboard_maps: list[str],
    admin_secret: str | None,
    config_hash: str,
) -> dict[str, Any]:
    """Deployment spec for Grafana with provisioned data source and dashboards."""
    match = labels(stack, "grafana")
    return {
        "replicas": 1,
        "selector": {"matchLabels": match},
        "template": {
            "metadata": {
                "labels": match,
                "annotations": {"mlplatform.io/config-hash": config_hash},
            },
            "spec": {
                "securityContext": _security(GRAFANA_UID),
                "containers": [
                    {
                        "name": "grafana",
                        "image": settings.grafana_image,
                        "env": grafana_env(admin_secret),
                        "ports": [{"name": "http", "containerPort": p.GRAFANA_PORT}],
                        "readinessProbe": _probe("/api/health", p.GRAFANA_PORT, 5),
                        "livenessProbe": _probe("/api/health", p.GRAFANA_PORT, 30),
                        "resources": _resources("100m", "256Mi", "500m", "512Mi"),
                        "securityContext": _container_security(),
                        "volumeMounts": [
                            {
                                "name": "provisioning",
                                "mountPath": f"{PROVISIONING_DIR}/datasources",
                                "subPath": "datasources",
                                "readOnly": True,
                            },
                            {
                                "name": "provisioning",
                                "mountPath": f"{PROVISIONING_DIR}/dashboards",
                                "subPath": "dashboards",
                                "readOnly": True,
                            },
                            {
                                "name": "dashboards",
                                "mountPath": p.GRAFANA_DASHBOARDS_DIR,
                                "readOnly": True,
                            },
                            # Grafana writes its SQLite database and plugins here.
                            {"name": "storage", "mountPath": "/var/lib/grafana"},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }
                ],
                "volumes": [
                    {
                        "name": "provisioning",
                        "configMap": {
                            "name": provisioning_map,
                            "items": [
                                {"key": "datasources.yaml", "path": "datasources/datasources.yaml"},
                                {"key": "dashboards.yaml", "path": "dashboards/dashboards.yaml"},
                            ],
                        },
                    },
                    # One ConfigMap per dashboard keeps each under the 1 MiB object limit; a
                    # projected volume merges them into one directory.
                    {
                        "name": "dashboards",
                        "projected": {
                            "sources": [{"configMap": {"name": name}} for name in dashboard_maps]
                        },
                    },
                    {"name": "storage", "emptyDir": {}},
                    {"name": "tmp", "emptyDir": {}},
                ],
            },
        },
    }


def alertmanager_deployment(
    settings: MonitoringConfig, stack: str, *, config_map: str, config_hash: str
) -> dict[str, Any]:
    """Deployment spec for a single Alertmanager (no clustering: one replica)."""
    match = labels(stack, "alertmanager")
    return {
        "replicas": 1,
        "selector": {"matchLabels": match},
        "template": {
            "metadata": {
                "labels": match,
                "annotations": {"mlplatform.io/config-hash": config_hash},
            },
            "spec": {
                "securityContext": _security(NOBODY),
                "containers": [
                    {
                        "name": "alertmanager",
                        "image": settings.alertmanager_image,
                        "args": [
                            "--config.file=/etc/alertmanager/alertmanager.yml",
                            "--storage.path=/alertmanager",
                            # A single replica must not wait for peers that never come.
                            "--cluster.listen-address=",
                        ],
                        "ports": [{"name": "http", "containerPort": p.ALERTMANAGER_PORT}],
                        "readinessProbe": _probe("/-/ready", p.ALERTMANAGER_PORT, 5),
                        "livenessProbe": _probe("/-/healthy", p.ALERTMANAGER_PORT, 30),
                        "resources": _resources("50m", "64Mi", "200m", "256Mi"),
                        "securityContext": _container_security(),
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/etc/alertmanager", "readOnly": True},
                            {"name": "data", "mountPath": "/alertmanager"},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "config", "configMap": {"name": config_map}},
                    {"name": "data", "emptyDir": {}},
                ],
            },
        },
    }


def service_spec(stack: str, app: str, port: int) -> dict[str, Any]:
    """ClusterIP Service in front of one monitoring workload, port named http."""
    return {
        "selector": labels(stack, app),
        "ports": [{"name": "http", "port": port, "targetPort": "http"}],
    }
