"""Operator-mode objects validate against the Prometheus Operator's own CRD schemas.

The CRDs come from the prometheus-operator Go module (example/prometheus-operator-crd) in the Go
module cache, where `make bootstrap` puts it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema_rs
import pytest
import yaml

from factories import monitored_model
from mlplatform.config import MonitoringConfig
from mlplatform.plan.monitoring.prometheus import pod_monitor_spec
from mlplatform.plan.monitoring.rules import rule_groups

pytestmark = pytest.mark.integration

OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
MODELS = [
    monitored_model("iris"),
    monitored_model(
        "digits",
        namespace="gpu",
        gpu=True,
        hpa_min_replicas=2,
        hpa_max_replicas=2,
        slo={"latency_p99_ms": 100, "error_rate_percent": 0.5, "availability_percent": 99.9},
    ),
]


def _spec_schema(kind_file: str) -> jsonschema_rs.Validator:
    try:
        modcache = subprocess.run(
            ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot locate the Go module cache ({exc}); run `make bootstrap`")
    path = Path(modcache) / OPERATOR_MODULE / "example" / "prometheus-operator-crd" / kind_file
    if not path.exists():
        pytest.fail(
            f"{path} is missing: run `make bootstrap` (or `go mod download "
            f"{OPERATOR_MODULE}`) to fetch the Prometheus Operator CRDs"
        )
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return jsonschema_rs.validator_for(version["schema"]["openAPIV3Schema"]["properties"]["spec"])


def _errors(validator: jsonschema_rs.Validator, document: dict) -> list[str]:
    # Through JSON so the document has exactly the types the API server would receive.
    return [str(error) for error in validator.iter_errors(json.loads(json.dumps(document)))]


def test_pod_monitor_matches_the_crd():
    validator = _spec_schema("monitoring.coreos.com_podmonitors.yaml")
    spec = pod_monitor_spec(MonitoringConfig(mode="operator"), MODELS)
    assert _errors(validator, spec) == []
    spec["podMetricsEndpoints"][0]["relabelings"][0]["action"] = "rewrite"
    assert _errors(validator, spec), "the schema must reject an unknown relabel action"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_prometheus_rules_match_the_crd(model):
    validator = _spec_schema("monitoring.coreos.com_prometheusrules.yaml")
    spec = rule_groups(model)
    assert _errors(validator, spec) == []
    spec["groups"][1]["rules"][0]["for"] = "two minutes"
    assert _errors(validator, spec), "the schema must reject a malformed duration"
