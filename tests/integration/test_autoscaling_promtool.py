"""The PromQL of every autoscaling signal, evaluated by the real Prometheus engine (promtool) on
synthetic series: each reads the model's stable pods only, and idle pods read as 0.

GPU utilization cannot be measured here (no GPU, no dcgm-exporter); this is where its query is
proven, on series shaped like dcgm-exporter's with pod mapping.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mlplatform.config import AutoscalingConfig, SignalsConfig
from mlplatform.plan.autoscaling import signal_queries

pytestmark = pytest.mark.integration

BIN = Path.home() / ".cache" / "mlplatform" / "bin"
NS, MODEL = "models", "iris"
EVERY = AutoscalingConfig(
    signals=SignalsConfig(in_flight=0.5, rps=10, latency_p99_ms=100, gpu_utilization=80)
)
QUERIES = {q.name: q.query for q in signal_queries(NS, MODEL, EVERY, "60s", "20s")}


def pod(name: str, instance: str = MODEL, **extra: str) -> str:
    labels = {
        "job": "model-servers",
        "namespace": NS,
        "app_kubernetes_io_name": MODEL,
        "app_kubernetes_io_instance": instance,
        "pod": name,
        **extra,
    }
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


STABLE = ("iris-a", "iris-b")
CANARY = "iris-canary-x"


def up_series(down: tuple[str, ...] = ()) -> list[dict]:
    series = [{"series": f"up{pod(p)}", "values": f"{0 if p in down else 1}x20"} for p in STABLE]
    series.append({"series": f"up{pod(CANARY, f'{MODEL}-canary')}", "values": "1x20"})
    return series


def evaluate(promtool: Path, tmp_path: Path, cases: list[dict], interval: str = "15s") -> None:
    """Run promtool on `cases`, series `interval` apart (promtool evaluates on that grid)."""
    (tmp_path / "empty.yaml").write_text("groups: []\n")
    for each in cases:
        each["interval"] = interval
    spec = {"rule_files": ["empty.yaml"], "evaluation_interval": interval, "tests": cases}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = subprocess.run(
        [str(promtool), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def case(series: list[dict], query: str, value: float | None, at: str = "4m") -> dict:
    """Evaluate `query` at `at`; promtool compares exactly, so to a thousandth (rates over
    extrapolated windows come out as 3.9999999999999996)."""
    expected = [] if value is None else [{"labels": "{}", "value": value}]
    return {
        "input_series": series,
        "promql_expr_test": [
            {"expr": f"round({query}, 0.001)", "eval_time": at, "exp_samples": expected}
        ],
    }


@pytest.fixture(scope="module")
def promtool() -> Path:
    path = BIN / "promtool"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make bootstrap` (step prometheus)")
    return path


def test_in_flight_is_the_mean_concurrency_of_the_stable_pods(promtool, tmp_path):
    total = "model_infer_request_duration_seconds_sum"
    busy = [
        # per 15 s scrape: pod a spends 7.5 s in requests (0.5 in flight on average), pod b 15 s
        {"series": f"{total}{pod('iris-a')}", "values": "0+7.5x20"},
        {"series": f"{total}{pod('iris-b')}", "values": "0+15x20"},
        # the canary's load must not grow the stable Deployment
        {"series": f"{total}{pod(CANARY, f'{MODEL}-canary')}", "values": "0+60x20"},
    ]
    idle = [{"series": f"{total}{pod(p)}", "values": "42x20"} for p in STABLE]
    evaluate(
        promtool,
        tmp_path,
        [case(busy, QUERIES["in-flight"], 1.5), case(idle, QUERIES["in-flight"], 0)],
    )


def test_in_flight_at_the_gateway_counts_the_stable_backend_only_on_its_short_window(
    promtool, tmp_path
):
    total = "traefik_service_request_duration_seconds_sum"

    def backend(service: str, code: str = "200", pod: str = "traefik-a") -> str:
        return (
            f'{total}{{job="gateway", namespace="gw", pod="{pod}", service="{service}", '
            f'code="{code}", method="POST", protocol="http"}}'
        )

    stable = f"{NS}-{MODEL}-http-8080@kubernetesgateway"
    stable_grpc = f"{NS}-{MODEL}-8081-grpc@kubernetesgateway"
    canary = f"{NS}-{MODEL}-canary-http-8080@kubernetesgateway"
    # Gateway scrapes every 5 s. Idle until 2 m, then a queue: each scrape adds 40 s of request
    # time (8 in flight on average), split over two gateway replicas (and status codes) and
    # the REST and gRPC routes.
    step = "0x24 0+10x24"
    series = [
        {"series": backend(stable, "200", "traefik-a"), "values": step},
        {"series": backend(stable, "503", "traefik-b"), "values": step},
        {"series": backend(stable_grpc, "200", "traefik-a"), "values": step},
        {"series": backend(stable_grpc, "200", "traefik-b"), "values": step},
        # the canary backends and another model's routes are not the stable Deployment's
        {"series": backend(canary), "values": "0+100x48"},
        {
            "series": backend(f"{NS}-{MODEL}-canary-8081-grpc@kubernetesgateway"),
            "values": "0+100x48",
        },
        {"series": backend(f"{NS}-other-http-8080@kubernetesgateway"), "values": "0+100x48"},
        {"series": backend(f"{NS}-other-8081-grpc@kubernetesgateway"), "values": "0+100x48"},
    ]
    query = QUERIES["in-flight-gateway"]

    evaluate(
        promtool,
        tmp_path,
        # idle before the step; once the 20 s window lies inside the queue, all of it counts
        [case(series, query, 0, at="1m50s"), case(series, query, 8, at="2m40s")],
        interval="5s",
    )


def test_rps_is_the_stable_pods_request_rate_and_zero_when_idle(promtool, tmp_path):
    count = "model_infer_request_duration_seconds_count"
    busy = [
        # 30 requests per 15 s scrape on each pod: 2 req/s each
        {"series": f"{count}{pod(p)}", "values": "0+30x20"}
        for p in STABLE
    ]
    idle = [{"series": f"{count}{pod(p)}", "values": "100x20"} for p in STABLE]
    evaluate(
        promtool,
        tmp_path,
        [case(busy, QUERIES["rps"], 4), case(idle, QUERIES["rps"], 0)],
    )


def test_latency_is_the_p99_in_milliseconds_and_zero_when_idle(promtool, tmp_path):
    bucket = "model_infer_request_duration_seconds_bucket"
    # Per scrape: 100 requests, all under 50 ms and none under 25 ms -> p99 interpolates to
    # 25 + 0.99 * 25 = 49.75 ms.
    busy = [
        {"series": f"{bucket}{pod(p, le=le)}", "values": values}
        for p in STABLE
        for le, values in (("0.025", "0x20"), ("0.05", "0+100x20"), ("+Inf", "0+100x20"))
    ]
    idle = [
        {"series": f"{bucket}{pod(p, le=le)}", "values": "7x20"}
        for p in STABLE
        for le in ("0.025", "0.05", "+Inf")
    ]
    evaluate(
        promtool,
        tmp_path,
        [case(busy, QUERIES["latency-p99"], 49.75), case(idle, QUERIES["latency-p99"], 0)],
    )


def test_gpu_utilization_averages_the_gpus_of_live_stable_pods(promtool, tmp_path):
    util = "DCGM_FI_DEV_GPU_UTIL"
    gpus = [
        # dcgm-exporter with pod mapping: one series per GPU, labelled with the pod using it
        {"series": f'{util}{{namespace="{NS}", pod="iris-a", gpu="0"}}', "values": "60x20"},
        {"series": f'{util}{{namespace="{NS}", pod="iris-b", gpu="1"}}', "values": "100x20"},
        # the canary's GPU and another workload's GPU are not the stable Deployment's
        {"series": f'{util}{{namespace="{NS}", pod="{CANARY}", gpu="2"}}', "values": "0x20"},
        {"series": f'{util}{{namespace="{NS}", pod="trainer-0", gpu="3"}}', "values": "0x20"},
    ]
    query = QUERIES["gpu-utilization"]
    evaluate(
        promtool,
        tmp_path,
        [
            case(up_series() + gpus, query, 80),
            # a pod that stopped answering scrapes leaves the average
            case(up_series(down=("iris-b",)) + gpus, query, 60),
            # no dcgm-exporter: no value (KEDA reports the error; the HPA holds its size)
            case(up_series(), query, None),
        ],
    )
