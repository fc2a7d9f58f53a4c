"""Generated Prometheus config and rules pass the real promtool; alerts fire when they should.

`promtool test rules` replays synthetic series through the generated rule files: each alert gets a
firing case and a not-firing case, with labels and rendered annotations compared exactly.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from factories import monitored_model, monitoring_args
from mlplatform.plan.monitoring import prometheus as prom
from mlplatform.plan.monitoring import rules as rules

pytestmark = pytest.mark.integration

BIN = Path.home() / ".cache" / "mlplatform" / "bin"
MODEL = monitored_model("iris", gpu=True, hpa_max_replicas=4)
SERVER = 'namespace="models", model="iris", version="1", job="model-servers"'


def _pod(name: str, instance: str = "iris") -> dict[str, str]:
    return {
        "job": "model-servers",
        "namespace": "models",
        "app_kubernetes_io_name": "iris",
        "app_kubernetes_io_instance": instance,
        "pod": name,
    }


def _series(metric: str, labels: dict[str, str]) -> str:
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing: run `make bootstrap` to build {name} from Prometheus's Go "
            "module (tools/go/prometheus)"
        )
    return path


def _run(*argv: str | Path, cwd: Path) -> str:
    result = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{output}"
    return output


@pytest.fixture(scope="module")
def promtool() -> Path:
    return _tool("promtool")


@pytest.fixture(scope="module")
def rule_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rules") / rules.rule_file_name(MODEL)
    path.write_text(yaml.safe_dump(rules.rule_groups(MODEL), sort_keys=False))
    return path


def test_check_config_with_rules_and_alertmanager(promtool, tmp_path):
    rules_dir, sa_dir = tmp_path / "rules", tmp_path / "sa"
    rules_dir.mkdir(), sa_dir.mkdir()
    (sa_dir / "token").write_text("token")
    (sa_dir / "ca.crt").write_text("")
    args = monitoring_args(
        [MODEL, dataclasses.replace(MODEL, name="digits", gpu=False)], alertmanager=True
    )
    for model in args.models:
        (rules_dir / rules.rule_file_name(model)).write_text(
            yaml.safe_dump(rules.rule_groups(model), sort_keys=False)
        )
    config = prom.prometheus_config(
        args.settings,
        args.models,
        alertmanager_address="alertmanager:9093",
        rules_dir=str(rules_dir),
        service_account_dir=str(sa_dir),
    )
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    output = _run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert "SUCCESS: prometheus.yml is valid prometheus config file syntax" in output
    # promtool loads the rule files the config points at, so both models' rules were checked too.
    assert "SUCCESS: 2 rule files found" in output
    expected = sorted(
        sum(len(g["rules"]) for g in rules.rule_groups(model)["groups"]) for model in args.models
    )
    assert sorted(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", output)) == expected


def test_check_rules_strict(promtool, rule_file):
    output = _run(
        promtool,
        "check",
        "rules",
        "--lint=all",
        "--lint-fatal",
        rule_file.name,
        cwd=rule_file.parent,
    )
    count = sum(len(g["rules"]) for g in rules.rule_groups(MODEL)["groups"])
    assert f"SUCCESS: {count} rules found" in output


# --- promtool test rules -----------------------------------------------------------------------
def _alert(name: str) -> dict:
    return next(rule for rule in rules.alert_rules(MODEL) if rule["alert"] == name)


def _expected(name: str, value: str, **series_labels: str) -> dict:
    """The alert as Prometheus emits it: rule labels plus series labels, templates rendered."""
    rule = _alert(name)
    labels = {**series_labels, **rule["labels"]}
    annotations = {}
    for key, text in rule["annotations"].items():
        text = text.replace("{{ $value | humanizePercentage }}", value)
        text = text.replace("{{ $value }}", value)
        text = text.replace("{{ $labels.pod }}", series_labels.get("pod", ""))
        assert "{{" not in text, f"unrendered template left in {name}.{key}: {text}"
        annotations[key] = text
    return {"exp_labels": labels, "exp_annotations": annotations}


def _traffic(ok_per_min: int, failed_per_min: int, fast_share: float, minutes: int) -> list[dict]:
    """Counter series of a model serving steady traffic; `fast_share` of requests meet the SLO."""
    total = ok_per_min + failed_per_min
    fast = round(total * fast_share)
    le = f'{SERVER}, le="0.25"'
    return [
        {
            "series": f"model_infer_request_success_total{{{SERVER}}}",
            "values": f"0+{ok_per_min}x{minutes}",
        },
        {
            "series": f"model_infer_request_failure_total{{{SERVER}}}",
            "values": f"0+{failed_per_min}x{minutes}",
        },
        {
            "series": f"model_infer_request_duration_seconds_bucket{{{le}}}",
            "values": f"0+{fast}x{minutes}",
        },
        {
            "series": f"model_infer_request_duration_seconds_count{{{SERVER}}}",
            "values": f"0+{total}x{minutes}",
        },
    ]


def _case(series: list[dict], alerts: list[tuple[str, str, list[dict]]], **extra) -> dict:
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": at, "alertname": name, "exp_alerts": expected}
            for name, at, expected in alerts
        ],
        **extra,
    }


# Alerts a healthy model (traffic within the SLO, pods up, 1 replica of max 4) must not raise.
HEALTHY_QUIET = {
    f"Model{kind}BudgetBurn{speed}"
    for kind in ("Errors", "Latency", "Availability")
    for speed in ("Fast", "Slow")
} | {
    "ModelReplicasAtHPAMax",
    "ModelReplicasBelowHPAMin",
    "ModelServerRestarted",
    "ModelServerTargetDown",
    "ModelServerAbsent",
}


def _rule_tests() -> list[dict]:
    healthy_pods = [{"series": _series("up", _pod(f"iris-{i}")), "values": "1x120"} for i in (1, 2)]
    return [
        # 20% errors: both error burns fire; 30% slow requests: both latency burns fire.
        _case(
            _traffic(80, 20, 0.7, 130) + healthy_pods,
            [
                (
                    "ModelErrorsBudgetBurnFast",
                    "70m",
                    [_expected("ModelErrorsBudgetBurnFast", "20%")],
                ),
                (
                    "ModelLatencyBudgetBurnFast",
                    "70m",
                    [_expected("ModelLatencyBudgetBurnFast", "30%")],
                ),
                ("ModelAvailabilityBudgetBurnFast", "70m", []),
            ],
        ),
        # Within the SLO (0.5% errors, 99.5% fast), pods up and never restarted: all quiet.
        _case(
            _traffic(199, 1, 0.995, 130)
            + healthy_pods
            + [
                {
                    "series": _series("process_start_time_seconds", _pod(f"iris-{i}")),
                    "values": "100x120",
                }
                for i in (1, 2)
            ],
            [(name, "70m", []) for name in sorted(HEALTHY_QUIET)],
        ),
        # For 7 hours: 10% errors, 10% slow requests, 1 of 20 pods unreachable (5%). Each is above
        # its 6x slow threshold (6%, 6%, 3%) and below its 14.4x fast one (14.4%, 14.4%, 7.2%).
        _case(
            _traffic(90, 10, 0.9, 430)
            + [
                {"series": _series("up", _pod(f"iris-{i}")), "values": f"{int(i > 0)}x430"}
                for i in range(20)
            ],
            [
                (
                    "ModelErrorsBudgetBurnSlow",
                    "6h30m",
                    [_expected("ModelErrorsBudgetBurnSlow", "10%")],
                ),
                (
                    "ModelLatencyBudgetBurnSlow",
                    "6h30m",
                    [_expected("ModelLatencyBudgetBurnSlow", "10%")],
                ),
                (
                    "ModelAvailabilityBudgetBurnSlow",
                    "6h30m",
                    [_expected("ModelAvailabilityBudgetBurnSlow", "5%")],
                ),
                ("ModelErrorsBudgetBurnFast", "6h30m", []),
                ("ModelLatencyBudgetBurnFast", "6h30m", []),
                ("ModelAvailabilityBudgetBurnFast", "6h30m", []),
            ],
        ),
        # One of two pods unreachable for an hour: 50% of scrapes fail.
        _case(
            [
                {"series": _series("up", _pod("iris-1")), "values": "1x80"},
                {"series": _series("up", _pod("iris-2")), "values": "0x80"},
            ],
            [
                (
                    "ModelAvailabilityBudgetBurnFast",
                    "70m",
                    [_expected("ModelAvailabilityBudgetBurnFast", "50%")],
                ),
                (
                    "ModelServerTargetDown",
                    "10m",
                    [_expected("ModelServerTargetDown", "0", **_pod("iris-2"))],
                ),
            ],
        ),
        # Four live replicas = HPA max for 20 minutes; three would leave headroom.
        _case(
            [{"series": _series("up", _pod(f"iris-{i}")), "values": "1x30"} for i in range(4)]
            + [{"series": _series("up", _pod("iris-canary-1", "iris-canary")), "values": "1x30"}],
            [
                ("ModelReplicasAtHPAMax", "20m", [_expected("ModelReplicasAtHPAMax", "4")]),
                ("ModelReplicasBelowHPAMin", "20m", []),
            ],
        ),
        _case(
            [{"series": _series("up", _pod(f"iris-{i}")), "values": "1x30"} for i in range(3)],
            [
                ("ModelReplicasAtHPAMax", "20m", []),
            ],
        ),
        # Every pod down: below the HPA minimum and down, but still discovered (not absent).
        _case(
            [{"series": _series("up", _pod("iris-1")), "values": "0x30"}],
            [
                ("ModelReplicasBelowHPAMin", "20m", [_expected("ModelReplicasBelowHPAMin", "0")]),
                ("ModelServerAbsent", "20m", []),
            ],
        ),
        # No pod discovered at all.
        _case(
            [{"series": _series("up", {"job": "other"}), "values": "1x30"}],
            [
                (
                    "ModelServerAbsent",
                    "20m",
                    [
                        _expected(
                            "ModelServerAbsent",
                            "1",
                            job="model-servers",
                            namespace="models",
                            app_kubernetes_io_name="iris",
                        )
                    ],
                ),
            ],
        ),
        # The server process restarted once in place (new start time, same pod) vs. stable.
        _case(
            [
                {
                    "series": _series("process_start_time_seconds", _pod("iris-1")),
                    "values": "100x5 700x5",
                },
                {
                    "series": _series("process_start_time_seconds", _pod("iris-2")),
                    "values": "100x10",
                },
            ],
            [
                (
                    "ModelServerRestarted",
                    "8m",
                    [_expected("ModelServerRestarted", "1", **_pod("iris-1"))],
                ),
            ],
        ),
        # GPU: the model's pod at 95% utilisation; another workload's GPU is ignored.
        _case(
            [
                {"series": _series("up", _pod("iris-1")), "values": "1x30"},
                {
                    "series": 'DCGM_FI_DEV_GPU_UTIL{namespace="models", pod="iris-1", gpu="0"}',
                    "values": "95x30",
                },
                {
                    "series": 'DCGM_FI_DEV_GPU_UTIL{namespace="models", pod="batch-job", gpu="1"}',
                    "values": "10x30",
                },
                {
                    "series": 'DCGM_FI_DEV_FB_USED{namespace="models", pod="iris-1", gpu="0"}',
                    "values": "1000x30",
                },
                {
                    "series": 'DCGM_FI_DEV_FB_FREE{namespace="models", pod="iris-1", gpu="0"}',
                    "values": "15000x30",
                },
            ],
            [
                ("ModelGPUSaturated", "20m", [_expected("ModelGPUSaturated", "95")]),
                ("ModelGPUMemorySaturated", "20m", []),
            ],
        ),
        # GPU at 50% but its memory 97.5% full.
        _case(
            [
                {"series": _series("up", _pod("iris-1")), "values": "1x30"},
                {
                    "series": 'DCGM_FI_DEV_GPU_UTIL{namespace="models", pod="iris-1", gpu="0"}',
                    "values": "50x30",
                },
                {
                    "series": 'DCGM_FI_DEV_FB_USED{namespace="models", pod="iris-1", gpu="0"}',
                    "values": "15600x30",
                },
                {
                    "series": 'DCGM_FI_DEV_FB_FREE{namespace="models", pod="iris-1", gpu="0"}',
                    "values": "400x30",
                },
            ],
            [
                ("ModelGPUSaturated", "20m", []),
                ("ModelGPUMemorySaturated", "20m", [_expected("ModelGPUMemorySaturated", "97.5%")]),
            ],
        ),
        # Recording rules: with no failure series yet the error ratio is 0, not "no data".
        {
            "interval": "1m",
            "input_series": _traffic(100, 0, 1.0, 20)[:1] + _traffic(100, 0, 1.0, 20)[2:],
            "promql_expr_test": [
                {
                    "expr": rules.ERROR_RATIO.format(w="5m"),
                    "eval_time": "10m",
                    "exp_samples": [
                        {
                            "labels": rules.ERROR_RATIO.format(w="5m")
                            + '{model="iris", namespace="models"}',
                            "value": 0,
                        }
                    ],
                },
                {
                    "expr": rules.REQUEST_RATE.format(w="5m"),
                    "eval_time": "10m",
                    "exp_samples": [
                        {
                            "labels": rules.REQUEST_RATE.format(w="5m")
                            + '{model="iris", namespace="models"}',
                            "value": 100 / 60,
                        }
                    ],
                },
            ],
        },
    ]


def test_alert_rules_fire_and_stay_quiet(promtool, rule_file):
    spec = {"rule_files": [rule_file.name], "evaluation_interval": "1m", "tests": _rule_tests()}
    (rule_file.parent / "tests.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    output = _run(promtool, "test", "rules", "tests.yaml", cwd=rule_file.parent)
    assert "SUCCESS" in output


def test_every_alert_is_exercised_firing_and_quiet():
    firing, quiet = set(), set()
    for case in _rule_tests():
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in rules.alert_rules(MODEL)}
    assert names == firing, f"no firing case for {sorted(names - firing)}"
    assert names == quiet, f"no quiet case for {sorted(names - quiet)}"
