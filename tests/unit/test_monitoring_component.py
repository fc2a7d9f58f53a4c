"""MonitoringStack wiring under Pulumi mocks, in both modes."""

from __future__ import annotations

import json

import pulumi
import pytest
import yaml
from pulumi.runtime import rpc

from factories import monitored_model, monitoring_args
from mlplatform.monitoring import MonitoringStack, MonitoringStackArgs
from mlplatform.plan.monitoring.inputs import MonitoredModel
from pulumi_harness import Graph, capture, run_program

COMPONENT = "mlplatform:monitoring:MonitoringStack"


def _model(name: str, *, gpu: bool = False, namespace: str = "models") -> MonitoredModel:
    return monitored_model(name, namespace=namespace, version="1.0.0", gpu=gpu, hpa_max_replicas=4)


OUTPUTS = ("namespace", "prometheus_url", "grafana_url", "alertmanager_url", "dashboard_uids")


def _deploy(args: MonitoringStackArgs) -> tuple[Graph, dict[str, object]]:
    """Run the component under the shared mocks; return its graph and resolved outputs."""
    outputs: dict[str, object] = {}

    def program():
        stack = MonitoringStack("mon", args)
        return capture({name: getattr(stack, name) for name in (*OUTPUTS, "alert_names")}, outputs)

    return run_program(program), outputs


def _by_type(graph: Graph, token: str) -> dict[str, dict]:
    """Inputs of the registered resources whose type ends with `token`, by name."""
    return {r.name: r.inputs for r in graph.resources if r.type.endswith(token)}


@pytest.fixture(scope="module")
def deployed():
    args = monitoring_args(
        [_model("iris"), _model("digits", gpu=True)],
        alertmanager=True,
        storage_size="20Gi",
        grafana_admin_password=pulumi.Output.secret("s3cret"),
    )
    return _deploy(args)


@pytest.fixture(scope="module")
def operated():
    args = monitoring_args(
        [_model("iris"), _model("digits", gpu=True, namespace="gpu-models")],
        mode="operator",
        namespace="observability",
        operator_labels={"release": "kps"},
    )
    return _deploy(args)


def test_every_child_is_parented_to_the_component(deployed):
    graph, _ = deployed
    (component,) = graph.of_type(COMPONENT)
    children = [r for r in graph.resources if r is not component]
    assert len(children) > 10
    for child in children:
        assert child.parent == component.key and child.name.startswith("mon-"), child.key


def test_deploy_mode_runs_prometheus_grafana_and_alertmanager(deployed):
    resources, outputs = deployed
    deployments = _by_type(resources, "kubernetes:apps/v1:Deployment")
    assert set(deployments) == {"mon-prometheus", "mon-grafana", "mon-alertmanager"}
    images = {
        name: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for name, d in deployments.items()
    }
    for image in images.values():
        assert ":" in image and not image.endswith(":latest")
    assert outputs["prometheus_url"] == "http://mon-prometheus.monitoring.svc:9090"
    assert outputs["grafana_url"] == "http://mon-grafana.monitoring.svc:3000"
    assert outputs["alertmanager_url"] == "http://mon-alertmanager.monitoring.svc:9093"
    assert not _by_type(resources, "kubernetes:monitoring.coreos.com/v1:PodMonitor")


def test_namespace_is_labelled_for_network_policies(deployed):
    resources, _ = deployed
    namespace = _by_type(resources, "kubernetes:core/v1:Namespace")["mon-namespace"]
    assert namespace["metadata"]["labels"]["mlplatform.io/role"] == "monitoring"


def test_prometheus_rbac_allows_discovery(deployed):
    resources, _ = deployed
    role = _by_type(resources, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")[
        "mon-prometheus-role"
    ]
    core = next(rule for rule in role["rules"] if "pods" in rule.get("resources", []))
    assert set(core["resources"]) >= {"pods", "endpoints", "services", "nodes"}
    assert set(core["verbs"]) == {"get", "list", "watch"}
    binding = _by_type(resources, "ClusterRoleBinding")["mon-prometheus-binding"]
    assert binding["subjects"][0]["namespace"] == "monitoring"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_prometheus_config_and_rules_are_mounted(deployed):
    resources, _ = deployed
    maps = _by_type(resources, "kubernetes:core/v1:ConfigMap")
    config = yaml.safe_load(maps["mon-prometheus-config"]["data"]["prometheus.yml"])
    assert {job["job_name"] for job in config["scrape_configs"]} >= {
        "model-servers",
        "dcgm-exporter",
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "mon-alertmanager.monitoring.svc:9093"
    ]
    rule_files = maps["mon-prometheus-rules"]["data"]
    assert set(rule_files) == {"models.iris.rules.yaml", "models.digits.rules.yaml"}
    spec = _by_type(resources, "Deployment")["mon-prometheus"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "mon-prometheus-config"
    assert volumes["rules"]["configMap"]["name"] == "mon-prometheus-rules"
    assert volumes["data-pvc"]["persistentVolumeClaim"]["claimName"] == "mon-prometheus-data"
    claim = _by_type(resources, "PersistentVolumeClaim")["mon-prometheus-data"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    # the one default, MonitoringConfig.retention
    assert "--storage.tsdb.retention.time=7d" in spec["containers"][0]["args"]


def test_grafana_gets_datasource_dashboards_and_secret_password(deployed):
    resources, outputs = deployed
    maps = _by_type(resources, "kubernetes:core/v1:ConfigMap")
    dashboards = {name: m for name, m in maps.items() if name.startswith("mon-dashboard-")}
    assert set(outputs["dashboard_uids"]) == {
        "mlp-overview",
        "mlp-models-iris",
        "mlp-models-digits",
    }
    assert len(dashboards) == 3
    for config_map in dashboards.values():
        (content,) = config_map["data"].values()
        assert json.loads(content)["uid"] in outputs["dashboard_uids"]
    datasources = yaml.safe_load(maps["mon-grafana-provisioning"]["data"]["datasources.yaml"])
    assert datasources["datasources"][0]["url"] == outputs["prometheus_url"]
    secret = _by_type(resources, "kubernetes:core/v1:Secret")["mon-grafana-admin"]
    # The password reaches the Secret only as a secret value, so it is encrypted in state.
    assert secret["stringData"][rpc._special_sig_key] == rpc._special_secret_sig
    assert secret["stringData"]["value"] == {"admin-password": "s3cret"}
    grafana = _by_type(resources, "Deployment")["mon-grafana"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in grafana["containers"][0]["env"]}
    assert (
        env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
        == "mon-grafana-admin"
    )
    assert "GF_AUTH_ANONYMOUS_ENABLED" not in env
    projected = next(v for v in grafana["volumes"] if v["name"] == "dashboards")["projected"]
    assert {s["configMap"]["name"] for s in projected["sources"]} == {
        m["metadata"]["name"] for m in dashboards.values()
    }


def test_operator_mode_emits_custom_resources_only(operated):
    resources, outputs = operated
    assert not _by_type(resources, "Deployment")
    assert not _by_type(resources, "Namespace")
    pod_monitors = _by_type(resources, "kubernetes:monitoring.coreos.com/v1:PodMonitor")
    (monitor,) = pod_monitors.values()
    assert monitor["metadata"]["namespace"] == "observability"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == ["gpu-models", "models"]
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    rules = _by_type(resources, "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    assert set(rules) == {"mon-rules-models-iris", "mon-rules-gpu-models-digits"}
    gpu_alerts = {
        r.get("alert")
        for g in rules["mon-rules-gpu-models-digits"]["spec"]["groups"]
        for r in g["rules"]
    }
    assert "ModelGPUSaturated" in gpu_alerts
    for rule in rules.values():
        assert rule["metadata"]["labels"]["release"] == "kps"
    maps = _by_type(resources, "kubernetes:core/v1:ConfigMap")
    assert len(maps) == 3 and all(
        m["metadata"]["labels"]["grafana_dashboard"] == "1" for m in maps.values()
    )
    assert outputs["prometheus_url"] is None and outputs["grafana_url"] is None
    assert outputs["namespace"] == "observability"


def test_without_password_grafana_is_read_only():
    resources, outputs = _deploy(monitoring_args([_model("iris")]))
    assert not _by_type(resources, "kubernetes:core/v1:Secret")
    assert not _by_type(resources, "PersistentVolumeClaim")
    assert outputs["alertmanager_url"] is None
    grafana = _by_type(resources, "Deployment")["mon-grafana"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in grafana["containers"][0]["env"]}
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_AUTH_DISABLE_LOGIN_FORM"] == "true"
    assert env["GF_AUTH_BASIC_ENABLED"] == "false"
    prometheus = _by_type(resources, "Deployment")["mon-prometheus"]["spec"]["template"]["spec"]
    assert {"name": "data", "emptyDir": {}} in prometheus["volumes"]


_DEPLOY_GRAPH = """\
kubernetes:apps/v1:Deployment mon-alertmanager <- {c}
kubernetes:apps/v1:Deployment mon-grafana <- {c}
kubernetes:apps/v1:Deployment mon-prometheus <- {c}
kubernetes:core/v1:ConfigMap mon-alertmanager-config <- {c}
kubernetes:core/v1:ConfigMap mon-dashboard-mlp-models-iris <- {c}
kubernetes:core/v1:ConfigMap mon-dashboard-mlp-overview <- {c}
kubernetes:core/v1:ConfigMap mon-grafana-provisioning <- {c}
kubernetes:core/v1:ConfigMap mon-prometheus-config <- {c}
kubernetes:core/v1:ConfigMap mon-prometheus-rules <- {c}
kubernetes:core/v1:Namespace mon-namespace <- {c}
kubernetes:core/v1:PersistentVolumeClaim mon-prometheus-data <- {c}
kubernetes:core/v1:Secret mon-grafana-admin <- {c}
kubernetes:core/v1:Service mon-alertmanager-service <- {c}
kubernetes:core/v1:Service mon-grafana-service <- {c}
kubernetes:core/v1:Service mon-prometheus-service <- {c}
kubernetes:core/v1:ServiceAccount mon-prometheus-sa <- {c}
kubernetes:rbac.authorization.k8s.io/v1:ClusterRole mon-prometheus-role <- {c}
kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding mon-prometheus-binding <- {c}
mlplatform:monitoring:MonitoringStack mon <- stack
""".format(c=f"{COMPONENT}::mon")

_OPERATOR_GRAPH = """\
kubernetes:core/v1:ConfigMap mon-dashboard-mlp-models-iris <- {c}
kubernetes:core/v1:ConfigMap mon-dashboard-mlp-overview <- {c}
kubernetes:monitoring.coreos.com/v1:PodMonitor mon-podmonitor <- {c}
kubernetes:monitoring.coreos.com/v1:PrometheusRule mon-rules-models-iris <- {c}
mlplatform:monitoring:MonitoringStack mon <- stack
""".format(c=f"{COMPONENT}::mon")


@pytest.mark.parametrize(
    "mode, settings, expected",
    [
        (
            "deploy",
            {"alertmanager": True, "storage_size": "1Gi", "grafana_admin_password": "pw"},
            _DEPLOY_GRAPH,
        ),
        ("operator", {}, _OPERATOR_GRAPH),
    ],
)
def test_resource_graph_snapshot(mode, settings, expected):
    """The shape of the graph (types, names, parents): a change here changes URNs in real stacks."""
    args = monitoring_args([_model("iris")], mode=mode, **settings)
    graph = run_program(lambda: MonitoringStack("mon", args))
    assert graph.snapshot() == expected
