"""MonitoringStack through the real Pulumi engine on the local cluster, in both modes.

A small program holding only the component is brought up, checked with kubectl, previewed again
(no changes: the generated objects are deterministic) and destroyed. Operator mode runs after the
Prometheus Operator CRDs (from the prometheus-operator Go module, `make bootstrap`) are installed,
so the API server validates our PodMonitor and PrometheusRule against the real schemas.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from factories import monitored_model, monitoring_args
from harness import REPO, Pulumi, cluster_layout
from mlplatform.monitoring import MonitoringStackArgs

pytestmark = pytest.mark.integration

OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
CRDS = ("monitoring.coreos.com_podmonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml")
MODELS = [
    monitored_model("iris", namespace="mon-it-models"),
    monitored_model(
        "digits",
        namespace="mon-it-models",
        gpu=True,
        hpa_max_replicas=2,
        slo={"latency_p99_ms": 100, "error_rate_percent": 0.5, "availability_percent": 99.9},
    ),
]
PROGRAM = """
import pulumi
from mlplatform.monitoring import MonitoringStack, MonitoringStackArgs

config = pulumi.Config()
args = MonitoringStackArgs.model_validate_json(config.require("args"))
if config.get_secret("grafanaPassword") is not None:
    args = args.model_copy(update={"grafana_admin_password": config.get_secret("grafanaPassword")})
stack = MonitoringStack("mon", args)
pulumi.export("grafanaUrl", stack.grafana_url)
pulumi.export("dashboards", stack.dashboard_uids)
"""


def _project(pulumi_project, tmp_path: Path, args: MonitoringStackArgs) -> Pulumi:
    runner = pulumi_project(
        files={
            "Pulumi.yaml": "name: monitoring-it\nruntime:\n  name: python\n"
            "  options:\n    virtualenv: .venv\n",
            "__main__.py": PROGRAM,
        }
    )
    # The program imports the component library from this checkout.
    runner.env = {**runner.env, "PYTHONPATH": str(REPO / "components")}
    runner("stack", "init", "it")
    runner("config", "set", "args", args.model_dump_json(exclude={"grafana_admin_password"}))
    return runner


def _crd_files() -> list[Path]:
    modcache = subprocess.run(
        ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
    ).stdout.strip()
    files = [
        Path(modcache) / OPERATOR_MODULE / "example" / "prometheus-operator-crd" / name
        for name in CRDS
    ]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        pytest.fail(
            f"{missing} missing: run `make bootstrap` (or `go mod download {OPERATOR_MODULE}`)",
            pytrace=False,
        )
    return files


def test_deploy_mode_comes_up_and_is_stable(pulumi_project, tmp_path, kubectl, tool_env):
    # Prometheus runs for real on the cluster's nodes: the image cluster-up makes from the
    # Prometheus bootstrap builds. No Grafana or Alertmanager image can be had on this machine, so
    # their objects are checked by the API server in a preview (server-side dry run) below.
    registry = cluster_layout(tool_env)["REGISTRY"]
    args = monitoring_args(
        MODELS,
        namespace="mon-it",
        alertmanager=False,
        grafana=False,
        scrape_interval="30s",
        prometheus_image=f"{registry}/mlplatform/prometheus:v3.5.0",
    )
    pulumi = _project(pulumi_project, tmp_path, args)
    try:
        pulumi("up", "--yes", "--skip-preview")
        deployments = kubectl("get", "deployments", "-n", "mon-it", as_json=True)["items"]
        ready = {
            d["metadata"]["name"]: d["status"].get("availableReplicas", 0) for d in deployments
        }
        assert ready == {"mon-prometheus": 1}
        namespace = kubectl("get", "namespace", "mon-it", as_json=True)
        assert namespace["metadata"]["labels"]["mlplatform.io/role"] == "monitoring"
        rules = kubectl("get", "configmap", "mon-prometheus-rules", "-n", "mon-it", as_json=True)
        assert set(rules["data"]) == {
            "mon-it-models.iris.rules.yaml",
            "mon-it-models.digits.rules.yaml",
        }
        outputs = json.loads(pulumi("stack", "output", "--json").stdout)
        assert outputs.get("grafanaUrl") is None, outputs
        # Everything generated is deterministic: a second run has nothing to change.
        pulumi("preview", "--expect-no-changes")

        settings = args.settings.model_copy(update={"grafana": True, "alertmanager": True})
        full = args.model_copy(update={"settings": settings})
        pulumi("config", "set", "args", full.model_dump_json(exclude={"grafana_admin_password"}))
        pulumi("config", "set", "--secret", "grafanaPassword", "it-" + tmp_path.name)
        preview = pulumi("preview", "--diff").stdout
        for name in ("mon-grafana", "mon-grafana-admin", "mon-alertmanager"):
            assert name in preview, preview[-3000:]
    finally:
        pulumi("destroy", "--yes", check=False)
    gone = kubectl("get", "clusterrole", "mon-it-mon-prometheus", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_operator_mode_objects_pass_the_api_server(pulumi_project, tmp_path, kubectl):
    files = _crd_files()
    created = kubectl("get", "crd", "podmonitors.monitoring.coreos.com", check=False).returncode
    kubectl("apply", "--server-side", *(arg for f in files for arg in ("-f", str(f))))
    kubectl("create", "namespace", "mon-it-op")
    args = monitoring_args(
        MODELS,
        namespace="mon-it-op",
        mode="operator",
        operator_labels={"release": "kube-prometheus-stack"},
    )
    pulumi = _project(pulumi_project, tmp_path, args)
    try:
        pulumi("up", "--yes", "--skip-preview")
        monitors = kubectl(
            "get", "podmonitors.monitoring.coreos.com", "-n", "mon-it-op", as_json=True
        )["items"]
        assert [m["spec"]["namespaceSelector"]["matchNames"] for m in monitors] == [
            ["mon-it-models"]
        ]
        rules = kubectl(
            "get", "prometheusrules.monitoring.coreos.com", "-n", "mon-it-op", as_json=True
        )["items"]
        assert sorted(r["metadata"]["name"] for r in rules) == [
            "mon-mon-it-models-digits",
            "mon-mon-it-models-iris",
        ]
        assert all(r["metadata"]["labels"]["release"] == "kube-prometheus-stack" for r in rules)
        dashboards = kubectl(
            "get", "configmaps", "-n", "mon-it-op", "-l", "grafana_dashboard=1", as_json=True
        )["items"]
        assert len(dashboards) == 3
        pulumi("preview", "--expect-no-changes")
    finally:
        pulumi("destroy", "--yes", check=False)
        kubectl("delete", "namespace", "mon-it-op", "--wait=false", check=False)
        if created != 0:  # leave CRDs alone that the cluster had before
            for f in files:
                kubectl("delete", "-f", str(f), check=False)
