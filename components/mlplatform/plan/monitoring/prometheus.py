"""Configuration files for Prometheus, Alertmanager and Grafana, and the operator-mode PodMonitor.

Pure functions returning plain dicts; the component serialises them into ConfigMaps or custom
resources. File locations are parameters so tests can point `promtool check config` at real files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlplatform.config import MonitoringConfig
from mlplatform.core import metrics as m
from mlplatform.core.names import PROMETHEUS_PORT
from mlplatform.plan.gateway import ADMIN_PORT_NAME, GATEWAY_POD_LABELS
from mlplatform.plan.monitoring.inputs import MonitoredModel

GRAFANA_PORT = 3000
ALERTMANAGER_PORT = 9093
CONFIG_DIR = "/etc/prometheus"
RULES_DIR = "/etc/prometheus/rules"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
GRAFANA_DASHBOARDS_DIR = "/var/lib/grafana/dashboards"
DATASOURCE_UID = "prometheus"  # also kube-prometheus-stack's default, so operator mode matches
CADVISOR_JOB = "kubelet-cadvisor"
DCGM_JOB = "dcgm-exporter"


def model_namespaces(models: Sequence[MonitoredModel]) -> list[str]:
    """Sorted distinct namespaces holding monitored models."""
    return sorted({model.namespace for model in models})


def _target_relabelling(camel: bool) -> list[dict[str, Any]]:
    source, target = ("sourceLabels", "targetLabel") if camel else ("source_labels", "target_label")
    rules: list[dict[str, Any]] = [{target: "job", "replacement": m.MODEL_SERVER_JOB}]
    rules += [{source: [meta], target: label} for label, meta in m.TARGET_LABELS.items()]
    return rules


def model_server_scrape_config(namespaces: list[str]) -> dict[str, Any]:
    """Scrape job discovering model pods through the Kubernetes API (one target per pod)."""
    return {
        "job_name": m.MODEL_SERVER_JOB,
        "metrics_path": m.METRICS_PATH,
        "kubernetes_sd_configs": [
            {
                "role": "pod",
                "namespaces": {"names": namespaces},
                # Filtering in the API server keeps the watch small on busy clusters.
                "selectors": [{"role": "pod", "label": "app.kubernetes.io/component=model-server"}],
            }
        ],
        "relabel_configs": [
            {
                "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
                "regex": "model-server",
                "action": "keep",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": m.MODEL_SERVER_PORT_NAME,
                "action": "keep",
            },
            # Finished pods keep their IP in the API for a while; scraping them would report down.
            {
                "source_labels": ["__meta_kubernetes_pod_phase"],
                "regex": "Succeeded|Failed",
                "action": "drop",
            },
            *_target_relabelling(camel=False),
        ],
    }


def gateway_scrape_config(namespace: str, interval: str) -> dict[str, Any]:
    """Scrape job for the platform gateway's pods (Traefik's /metrics on its admin port), at
    their own interval: the in-flight signal reads them, and each scrape is small."""
    selector = ",".join(f"{key}={value}" for key, value in GATEWAY_POD_LABELS.items())
    return {
        "job_name": m.GATEWAY_JOB,
        "scrape_interval": interval,
        "metrics_path": m.METRICS_PATH,
        "kubernetes_sd_configs": [
            {
                "role": "pod",
                "namespaces": {"names": [namespace]},
                "selectors": [{"role": "pod", "label": selector}],
            }
        ],
        "relabel_configs": [
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": ADMIN_PORT_NAME,
                "action": "keep",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_phase"],
                "regex": "Succeeded|Failed",
                "action": "drop",
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    }


def gateway_pod_monitor_spec(settings: MonitoringConfig, namespace: str) -> dict[str, Any]:
    """monitoring.coreos.com/v1 PodMonitor spec equivalent to the gateway scrape job."""
    return {
        "namespaceSelector": {"matchNames": [namespace]},
        "selector": {"matchLabels": dict(GATEWAY_POD_LABELS)},
        "podMetricsEndpoints": [
            {
                "port": ADMIN_PORT_NAME,
                "path": m.METRICS_PATH,
                "interval": settings.gateway_scrape_interval,
                "relabelings": [{"targetLabel": "job", "replacement": m.GATEWAY_JOB}],
            }
        ],
    }


def cadvisor_scrape_config(namespaces: list[str], service_account_dir: str) -> dict[str, Any]:
    """Scrape job for the kubelets' cAdvisor endpoints, proxied through the API server.

    Only the container CPU and memory series of model namespaces are kept: cAdvisor exposes
    thousands of series per node that no rule or panel reads.
    """
    return {
        "job_name": CADVISOR_JOB,
        "scheme": "https",
        "kubernetes_sd_configs": [{"role": "node"}],
        "authorization": {"credentials_file": f"{service_account_dir}/token"},
        "tls_config": {"ca_file": f"{service_account_dir}/ca.crt"},
        "relabel_configs": [
            {"target_label": "__address__", "replacement": "kubernetes.default.svc:443"},
            {
                "source_labels": ["__meta_kubernetes_node_name"],
                "regex": "(.+)",
                "target_label": "__metrics_path__",
                "replacement": "/api/v1/nodes/$1/proxy/metrics/cadvisor",
            },
            {"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"},
        ],
        "metric_relabel_configs": [
            {
                "source_labels": ["__name__"],
                "regex": f"{m.CPU_USAGE}|{m.MEMORY_WORKING_SET}",
                "action": "keep",
            },
            {"source_labels": ["namespace"], "regex": "|".join(namespaces), "action": "keep"},
        ],
    }


def dcgm_scrape_config() -> dict[str, Any]:
    """Scrape job for NVIDIA dcgm-exporter pods (GPU operator), wherever they run.

    honor_labels keeps the exporter's `namespace`/`pod` labels, which name the pod using each GPU,
    rather than the exporter's own pod.
    """
    return {
        "job_name": DCGM_JOB,
        "honor_labels": True,
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            {
                "source_labels": ["__meta_kubernetes_pod_label_app"],
                "regex": "nvidia-dcgm-exporter",
                "action": "keep",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": "metrics",
                "action": "keep",
            },
        ],
        "metric_relabel_configs": [
            {
                "source_labels": ["__name__"],
                "regex": f"{m.GPU_UTIL}|{m.GPU_FB_USED}|{m.GPU_FB_FREE}",
                "action": "keep",
            },
        ],
    }


def prometheus_config(
    settings: MonitoringConfig,
    models: Sequence[MonitoredModel],
    *,
    alertmanager_address: str | None,
    gateway_namespace: str | None = None,
    rules_dir: str = RULES_DIR,
    service_account_dir: str = SERVICE_ACCOUNT_DIR,
) -> dict[str, Any]:
    """prometheus.yml for deploy mode; `gateway_namespace` adds the platform gateway's pods."""
    namespaces = model_namespaces(models)
    scrape: list[dict[str, Any]] = [
        {
            "job_name": "prometheus",
            "static_configs": [{"targets": [f"localhost:{PROMETHEUS_PORT}"]}],
        }
    ]
    if namespaces:
        scrape += [
            model_server_scrape_config(namespaces),
            cadvisor_scrape_config(namespaces, service_account_dir),
        ]
    if any(model.gpu for model in models):
        scrape.append(dcgm_scrape_config())
    if gateway_namespace is not None:
        scrape.append(gateway_scrape_config(gateway_namespace, settings.gateway_scrape_interval))
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": settings.scrape_interval,
            "evaluation_interval": settings.scrape_interval,
        },
        "rule_files": [f"{rules_dir}/*.yaml"],
        "scrape_configs": scrape,
    }
    if alertmanager_address is not None:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [alertmanager_address]}]}]
        }
    return config


def pod_monitor_spec(
    settings: MonitoringConfig, models: Sequence[MonitoredModel]
) -> dict[str, Any]:
    """monitoring.coreos.com/v1 PodMonitor spec equivalent to the model-servers scrape job."""
    return {
        "namespaceSelector": {"matchNames": model_namespaces(models)},
        "selector": {"matchLabels": {"app.kubernetes.io/component": "model-server"}},
        "podMetricsEndpoints": [
            {
                "port": m.MODEL_SERVER_PORT_NAME,
                "path": m.METRICS_PATH,
                "interval": settings.scrape_interval,
                "relabelings": _target_relabelling(camel=True),
            }
        ],
    }


def alertmanager_config() -> dict[str, Any]:
    """alertmanager.yml: group per model and SLO; receivers are the operator's to add."""
    return {
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "namespace", "model"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
        },
        # An empty receiver keeps alerts visible in the Alertmanager UI until a real one is added.
        "receivers": [{"name": "default"}],
        "inhibit_rules": [
            {
                # A fast burn already pages; the slow burn of the same SLO adds only noise.
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["namespace", "model", "slo"],
            }
        ],
    }


def grafana_datasources(prometheus_url: str, scrape_interval: str) -> dict[str, Any]:
    """Grafana provisioning file for the Prometheus data source."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": DATASOURCE_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": True,
                "editable": False,
                # Lets Grafana pick $__rate_interval windows holding enough samples.
                "jsonData": {"timeInterval": scrape_interval},
            }
        ],
    }


def grafana_dashboard_provider() -> dict[str, Any]:
    """Grafana provisioning file loading the dashboard JSON files mounted from ConfigMaps."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "mlplatform",
                "folder": "ML models",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "options": {"path": GRAFANA_DASHBOARDS_DIR},
            }
        ],
    }
