"""Prometheus, PodMonitor, Alertmanager, Grafana and workload plans (no Pulumi, no cluster)."""

from __future__ import annotations

import sys
from pathlib import Path

from factories import monitored_model
from mlplatform.config import IngressConfig, MonitoringConfig
from mlplatform.core import metrics as m
from mlplatform.core.digest import checksum
from mlplatform.plan import gateway as gateway_plan
from mlplatform.plan.monitoring import prometheus as prom
from mlplatform.plan.monitoring import workloads as work
from mlplatform.plan.monitoring.inputs import MonitoredModel


def _inputs(*, gpu=False, **settings) -> tuple[MonitoringConfig, list[MonitoredModel]]:
    """The plans' input: monitoring settings and two models in two namespaces."""
    models = [
        monitored_model("iris"),
        monitored_model("digits", namespace="gpu-models", version="2", gpu=gpu, hpa_max_replicas=2),
    ]
    return MonitoringConfig(**settings), models


def _jobs(config) -> dict[str, dict]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_model_pods_are_discovered_by_component_label_and_http_port():
    job = _jobs(prom.prometheus_config(*_inputs(), alertmanager_address=None))["model-servers"]
    (sd,) = job["kubernetes_sd_configs"]
    assert sd["role"] == "pod"
    assert sd["namespaces"]["names"] == ["gpu-models", "models"]
    assert sd["selectors"] == [{"role": "pod", "label": "app.kubernetes.io/component=model-server"}]
    keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert {
        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
        "regex": "model-server",
        "action": "keep",
    } in keep
    assert {
        "source_labels": ["__meta_kubernetes_pod_container_port_name"],
        "regex": "http",
        "action": "keep",
    } in keep
    assert job["metrics_path"] == "/metrics"
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert targets >= set(m.TARGET_LABELS) | {"job"}
    # The server labels its own series `model`/`version`; target labels must not shadow them.
    assert not targets & {"model", "version"}


def test_gateway_pods_are_scraped_on_their_admin_port_at_their_own_interval_when_deployed():
    assert "gateway" not in _jobs(prom.prometheus_config(*_inputs(), alertmanager_address=None))
    config = prom.prometheus_config(
        *_inputs(gateway_scrape_interval="3s"), alertmanager_address=None, gateway_namespace="gw"
    )
    job = _jobs(config)["gateway"]
    assert job["scrape_interval"] == "3s" and config["global"]["scrape_interval"] == "15s"
    (sd,) = job["kubernetes_sd_configs"]
    assert sd["namespaces"]["names"] == ["gw"]
    # the labels ModelGateway's pods carry, and the port its metrics entry point listens on
    pod_labels = gateway_plan.labels("any-name")
    for selector in sd["selectors"][0]["label"].split(","):
        key, value = selector.split("=")
        assert pod_labels[key] == value
    (keep,) = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert keep["regex"] == gateway_plan.ADMIN_PORT_NAME
    ports = gateway_plan.controller_deployment(IngressConfig(), "gw", "sa", "svc", "gw-dynamic")[
        "template"
    ]["spec"]["containers"][0]["ports"]
    assert {"name": gateway_plan.ADMIN_PORT_NAME, "containerPort": gateway_plan.ADMIN_PORT} in ports
    assert "--metrics.prometheus.entryPoint=admin" in gateway_plan.controller_args(
        IngressConfig(), "svc"
    )


def test_gateway_pod_monitor_matches_the_scrape_job():
    spec = prom.gateway_pod_monitor_spec(MonitoringConfig(gateway_scrape_interval="4s"), "gw")
    assert spec["namespaceSelector"] == {"matchNames": ["gw"]}
    assert spec["selector"]["matchLabels"].items() <= gateway_plan.labels("x").items()
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["interval"]) == ("admin", "4s")
    assert {"targetLabel": "job", "replacement": m.GATEWAY_JOB} in endpoint["relabelings"]


def test_gpu_scraping_only_with_gpu_models():
    assert "dcgm-exporter" not in _jobs(
        prom.prometheus_config(*_inputs(), alertmanager_address=None)
    )
    dcgm = _jobs(prom.prometheus_config(*_inputs(gpu=True), alertmanager_address=None))[
        "dcgm-exporter"
    ]
    assert dcgm["honor_labels"] is True


def test_cadvisor_keeps_only_what_panels_use():
    job = _jobs(prom.prometheus_config(*_inputs(), alertmanager_address=None))["kubelet-cadvisor"]
    name_filter, namespace_filter = job["metric_relabel_configs"]
    assert set(name_filter["regex"].split("|")) == {m.CPU_USAGE, m.MEMORY_WORKING_SET}
    assert namespace_filter["regex"] == "gpu-models|models"
    assert job["authorization"]["credentials_file"].endswith("/serviceaccount/token")


def test_config_paths_are_parameters_and_alerting_is_optional():
    config = prom.prometheus_config(
        *_inputs(scrape_interval="30s"),
        alertmanager_address="am:9093",
        rules_dir="/tmp/r",
        service_account_dir="/tmp/sa",
    )
    assert config["rule_files"] == ["/tmp/r/*.yaml"]
    assert config["global"] == {"scrape_interval": "30s", "evaluation_interval": "30s"}
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["am:9093"]
    assert _jobs(config)["kubelet-cadvisor"]["tls_config"]["ca_file"] == "/tmp/sa/ca.crt"
    assert "alerting" not in prom.prometheus_config(*_inputs(), alertmanager_address=None)


def test_no_models_means_no_model_jobs():
    config = prom.prometheus_config(MonitoringConfig(), [], alertmanager_address=None)
    assert set(_jobs(config)) == {"prometheus"}


def test_pod_monitor_matches_the_scrape_job():
    spec = prom.pod_monitor_spec(*_inputs(scrape_interval="20s"))
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/component": "model-server"}}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert endpoint["interval"] == "20s"
    relabel = {r["targetLabel"]: r for r in endpoint["relabelings"]}
    assert relabel["job"]["replacement"] == m.MODEL_SERVER_JOB
    for label, meta in m.TARGET_LABELS.items():
        assert relabel[label]["sourceLabels"] == [meta]


def test_alertmanager_groups_by_model_and_inhibits_slow_burns():
    config = prom.alertmanager_config()
    assert {"namespace", "model"} <= set(config["route"]["group_by"])
    (inhibit,) = config["inhibit_rules"]
    assert inhibit["equal"] == ["namespace", "model", "slo"]
    assert config["route"]["receiver"] in {r["name"] for r in config["receivers"]}


def test_grafana_provisioning():
    (source,) = prom.grafana_datasources("http://p:9090", "15s")["datasources"]
    assert (source["uid"], source["url"], source["jsonData"]["timeInterval"]) == (
        prom.DATASOURCE_UID,
        "http://p:9090",
        "15s",
    )
    (provider,) = prom.grafana_dashboard_provider()["providers"]
    assert provider["options"]["path"] == prom.GRAFANA_DASHBOARDS_DIR


def test_prometheus_deployment_uses_retention_storage_and_recreate():
    settings = MonitoringConfig(retention="30d")
    with_claim = work.prometheus_deployment(
        settings,
        "mon",
        config_map="c",
        rules_map="r",
        service_account="sa",
        claim="pvc",
        config_hash="h1",
    )
    assert with_claim["strategy"] == {"type": "Recreate"}
    pod = with_claim["template"]["spec"]
    assert "--storage.tsdb.retention.time=30d" in pod["containers"][0]["args"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data-pvc"] == {
        "name": "data-pvc",
        "persistentVolumeClaim": {"claimName": "pvc"},
    }
    assert "data" not in volumes, "a claim-backed volume must not reuse the emptyDir volume's name"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert with_claim["template"]["metadata"]["annotations"]["mlplatform.io/config-hash"] == "h1"


def test_checksum_changes_with_content():
    assert checksum({"a": 1}) == checksum({"a": 1})
    assert checksum({"a": 1}) != checksum({"a": 2})


def test_grafana_without_secret_is_anonymous_viewer_only():
    env = {e["name"]: e.get("value") for e in work.grafana_env(None)}
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    with_secret = {e["name"]: e for e in work.grafana_env("pw")}
    assert with_secret["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "pw"
    assert "GF_AUTH_ANONYMOUS_ENABLED" not in with_secret


def test_cluster_role_covers_discovery_and_kubelet_proxy():
    rules = work.prometheus_cluster_rules()
    resources = {res for rule in rules for res in rule.get("resources", [])}
    assert {"pods", "endpoints", "services", "nodes", "nodes/proxy", "nodes/metrics"} <= resources
    assert all(set(rule["verbs"]) <= {"get", "list", "watch"} for rule in rules)


def test_monitoring_workloads_pass_the_platform_policy_pack():
    """Our own Deployments meet the workload rules every model pod must meet."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "policy"))
    from mlpolicy import rules_workload

    settings = MonitoringConfig(alertmanager=True)
    specs = {
        "prometheus": work.prometheus_deployment(
            settings,
            "mon",
            config_map="c",
            rules_map="r",
            service_account="sa",
            claim=None,
            config_hash="h",
        ),
        "grafana": work.grafana_deployment(
            settings,
            "mon",
            provisioning_map="p",
            dashboard_maps=["d"],
            admin_secret="s",
            config_hash="h",
        ),
        "alertmanager": work.alertmanager_deployment(
            settings, "mon", config_map="c", config_hash="h"
        ),
    }
    checks = [getattr(rules_workload, n) for n in dir(rules_workload) if n.startswith("check_")]
    assert len(checks) >= 6
    for app, spec in specs.items():
        props = {"metadata": {"name": f"mon-{app}", "namespace": "monitoring"}, "spec": spec}
        for check in checks:
            assert check("kubernetes:apps/v1:Deployment", props) == [], (app, check.__name__)
