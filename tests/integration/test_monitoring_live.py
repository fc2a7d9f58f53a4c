"""Monitoring against real processes: a model server under load, scraped by a real Prometheus.

- The server's /metrics exposes every model-server metric the rules and dashboards read, with the
  histogram bucket the latency SLO points at.
- A Prometheus built from its Go module (make bootstrap) scrapes the server on loopback and
  evaluates the generated rules; the request counter and latency histogram are read back through
  its HTTP API, and every generated recording and dashboard query over model-server series
  returns data.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from factories import monitored_model
from mlplatform.core import metrics as m
from mlplatform.plan.monitoring import rules as rules
from mlplatform.plan.monitoring.promql import all_expressions, metric_names, recorded_names

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIN = Path.home() / ".cache" / "mlplatform" / "bin"
MODEL = monitored_model("iris", version="1.0.0")
GOOD_REQUESTS = 240
BAD_REQUESTS = 12  # rows of the wrong width: answered 4xx, counted as failures
# Series the live Prometheus cannot have: no kubelet, no GPU, no alert firing on loopback.
NOT_ON_LOOPBACK = {
    m.CPU_USAGE,
    m.MEMORY_WORKING_SET,
    m.GPU_UTIL,
    m.GPU_FB_USED,
    m.GPU_FB_FREE,
    m.ALERTS,
    rules.GPU_UTIL,
    rules.GPU_MEMORY,
}
_sys_path = str(REPO / "models")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(what: str, check, timeout: float = 60.0, process: subprocess.Popen | None = None):
    """Poll `check` until it returns a truthy value; fail naming `what` on timeout or exit."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: process exited with {process.returncode}")
        try:
            value = check()
            if value:
                return value
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            last_error = exc
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what} (last error: {last_error})")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny iris classifier exported to ONNX, with the manifest the server reads."""
    import joblib
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    sys.path.insert(0, _sys_path)
    from serving.manifest import ModelManifest, save_manifest

    directory = tmp_path_factory.mktemp("model")
    data = load_iris()
    x, y = data.data.astype(np.float32), data.target
    model = LogisticRegression(max_iter=500).fit(x, y)
    onnx_model = to_onnx(model, x[:1], options={id(model): {"zipmap": False}})
    (directory / "model.onnx").write_bytes(onnx_model.SerializeToString())
    joblib.dump(model, directory / "model.joblib")
    outputs = [o.name for o in onnx_model.graph.output]
    sample = x[:3]
    save_manifest(
        ModelManifest(
            name=MODEL.name,
            version=MODEL.version,
            input={
                "onnx_name": onnx_model.graph.input[0].name,
                "features": 4,
                "feature_names": list(data.feature_names),
            },
            classes=list(data.target_names),
            onnx={"probabilities_output": next(o for o in outputs if "prob" in o)},
            native={"framework": "sklearn", "file": "model.joblib"},
            quality={
                "metric": "accuracy",
                "value": float(model.score(x, y)),
                "threshold": 0.5,
                "test_rows": len(x),
                "parity_max_abs_diff": 0.0,
                "parity_tolerance": 1e-4,
            },
            sample={
                "inputs": sample.tolist(),
                "probabilities": model.predict_proba(sample).tolist(),
            },
        ),
        directory,
    )
    return directory


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory) -> Iterator[str]:
    """A real model-server process on loopback; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "MODEL_NAME": MODEL.name,
        "MODEL_VERSION": MODEL.version,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GRPC_PORT": str(_free_port()),
        "PROBE_PORT": str(_free_port()),
        "PYTHONPATH": _sys_path,
        "DRAIN_SECONDS": "0",
    }
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "serving"],
        cwd=REPO / "models",
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(
            "model server readiness",
            lambda: httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200,
            process=process,
        )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _send_load(url: str) -> dict[str, int]:
    """A short burst of good and bad requests from a few concurrent clients."""
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]

    with httpx.Client(base_url=url, timeout=10) as client, ThreadPoolExecutor(4) as pool:
        good_codes = list(
            pool.map(
                lambda _: client.post("/predict", json={"instances": rows}).status_code,
                range(GOOD_REQUESTS),
            )
        )
        bad_codes = list(
            pool.map(
                lambda _: client.post("/predict", json={"instances": [[1.0, 2.0]]}).status_code,
                range(BAD_REQUESTS),
            )
        )
    assert set(good_codes) == {200}
    assert all(400 <= code < 500 for code in bad_codes), bad_codes
    return {"good": GOOD_REQUESTS, "bad": BAD_REQUESTS}


@pytest.fixture(scope="module")
def loaded_server(server) -> dict[str, int]:
    return _send_load(server)


def _exposed(url: str) -> dict[str, list]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def test_server_exports_every_model_server_metric_we_read(loaded_server, server):
    exposed = _exposed(server)
    missing = m.MODEL_SERVER_METRICS - set(exposed)
    assert not missing, (
        f"rules/dashboards read {sorted(missing)} but the server does not export them"
    )
    for name in (m.REQUEST_SUCCESS, m.REQUEST_DURATION_COUNT, m.IN_FLIGHT):
        labels = exposed[name][0].labels
        assert (labels["model"], labels["version"]) == (MODEL.name, MODEL.version)
    # Every server metric any generated expression reads is really exported.
    server_side = {name for _, expr in all_expressions([MODEL]) for name in metric_names(expr)}
    server_side -= recorded_names([MODEL]) | set(m.INFRASTRUCTURE_METRICS)
    assert server_side and server_side <= set(exposed), sorted(server_side - set(exposed))


def test_latency_slo_bucket_is_exposed(server):
    bounds = {s.labels["le"] for s in _exposed(server)[m.REQUEST_DURATION_BUCKET]}
    assert m.le_label(MODEL.slo.latency_seconds) in bounds
    assert {float(b) for b in bounds if b != "+Inf"} == set(m.LATENCY_BUCKETS_SECONDS)


# --- a real Prometheus ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prometheus(server, tmp_path_factory) -> Iterator[str]:
    binary = BIN / "prometheus"
    if not binary.exists():
        pytest.fail(
            f"{binary} is missing: run `make bootstrap` to build prometheus from "
            "Prometheus's Go module (tools/go/prometheus)"
        )
    work = tmp_path_factory.mktemp("prometheus")
    (work / "rules").mkdir()
    (work / "rules" / rules.rule_file_name(MODEL)).write_text(
        yaml.safe_dump(rules.rule_groups(MODEL), sort_keys=False)
    )
    # The labels our Kubernetes relabelling would attach to this pod, set statically on loopback.
    target = {
        "targets": [server.removeprefix("http://")],
        "labels": {
            "namespace": MODEL.namespace,
            "pod": "iris-0",
            "node": "loopback",
            "app_kubernetes_io_name": MODEL.name,
            "app_kubernetes_io_instance": MODEL.name,
            "track": "stable",
        },
    }
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(work / "rules" / "*.yaml")],
        "scrape_configs": [
            {
                "job_name": m.MODEL_SERVER_JOB,
                "metrics_path": m.METRICS_PATH,
                "static_configs": [target],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = _free_port()
    log = (work / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            str(binary),
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(
            "prometheus readiness",
            lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200,
            process=process,
        )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _query(prometheus: str, expr: str) -> list[dict]:
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", f"{expr}: {body}"
    return body["data"]["result"]


def _value(prometheus: str, expr: str) -> float | None:
    result = _query(prometheus, expr)
    return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def scraped(prometheus, server) -> dict:
    """Prometheus after it watched a burst of load from start to end.

    The burst starts only once the target has been scraped, so rates see the whole increase, and
    the fixture returns when Prometheus holds the server's final counter values.
    """
    up = f'up{{job="{m.MODEL_SERVER_JOB}"}}'
    _wait("the first scrape of the model server", lambda: _value(prometheus, up) == 1)
    before = {name: _counter(server, name) for name in (m.REQUEST_SUCCESS, m.REQUEST_FAILURE)}
    sent = _send_load(server)
    final = {name: _counter(server, name) for name in (*before, m.REQUEST_DURATION_COUNT)}
    assert final[m.REQUEST_SUCCESS] - before[m.REQUEST_SUCCESS] == sent["good"]
    assert final[m.REQUEST_FAILURE] - before[m.REQUEST_FAILURE] == sent["bad"]
    count = f'sum({m.REQUEST_DURATION_COUNT}{{model="{MODEL.name}"}})'
    _wait(
        "Prometheus to scrape the final request count",
        lambda: _value(prometheus, count) == final[m.REQUEST_DURATION_COUNT],
    )
    # Recorded SLIs are only final once the recording group has run after the last scrape (with
    # half an interval of margin: a sample is stamped when its scrape starts, stored when it ends).
    scraped_at = _value(prometheus, f"max(timestamp({m.REQUEST_DURATION_COUNT}))")
    _wait(
        "a recording-rule evaluation after the final scrape",
        lambda: _recording_evaluated_at(prometheus) > scraped_at + 0.5,
    )
    return {"url": prometheus, "sent": sent, "final": final}


def _recording_evaluated_at(prometheus: str) -> float:
    """Start time (Unix seconds) of the recording group's latest evaluation."""
    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    (group,) = [g for g in groups if g["name"].endswith(".recording")]
    return datetime.fromisoformat(group["lastEvaluation"]).timestamp()


def _counter(url: str, name: str) -> float:
    (sample,) = _exposed(url)[name]
    return sample.value


def test_counters_read_back_through_the_http_api(scraped):
    url, final = scraped["url"], scraped["final"]
    sel = f'job="{m.MODEL_SERVER_JOB}", model="{MODEL.name}", version="{MODEL.version}"'
    assert _value(url, f"sum({m.REQUEST_SUCCESS}{{{sel}}})") == final[m.REQUEST_SUCCESS]
    assert _value(url, f"sum({m.REQUEST_FAILURE}{{{sel}}})") == final[m.REQUEST_FAILURE]
    series = _query(url, f"{m.REQUEST_SUCCESS}{{{sel}}}")
    assert series[0]["metric"]["namespace"] == MODEL.namespace
    assert series[0]["metric"]["app_kubernetes_io_name"] == MODEL.name


def test_latency_histogram_read_back_through_the_http_api(scraped):
    url, total = scraped["url"], scraped["final"][m.REQUEST_DURATION_COUNT]
    inf = _value(url, f'sum({m.REQUEST_DURATION_BUCKET}{{model="{MODEL.name}", le="+Inf"}})')
    assert inf == total
    p99 = _value(
        url,
        f"histogram_quantile(0.99, sum by (le) "
        f'(rate({m.REQUEST_DURATION_BUCKET}{{model="{MODEL.name}"}}[5m])))',
    )
    assert p99 is not None and 0 < p99 <= max(m.LATENCY_BUCKETS_SECONDS)
    fast = _value(
        url,
        f'sum({m.REQUEST_DURATION_BUCKET}{{model="{MODEL.name}", '
        f'le="{m.le_label(MODEL.slo.latency_seconds)}"}})',
    )
    assert fast is not None and 0 < fast <= total
    # Prometheus 3 normalises `le` on ingestion; every bound a latency SLO may name must be stored
    # exactly as the rules spell it, or the slow-request ratio would silently be empty.
    stored = {
        s["metric"]["le"] for s in _query(url, f"count by (le) ({m.REQUEST_DURATION_BUCKET})")
    }
    assert stored == {m.le_label(b) for b in m.LATENCY_BUCKETS_SECONDS} | {"+Inf"}


def test_recording_rules_compute_the_slis(scraped):
    url, sent = scraped["url"], scraped["sent"]
    ratio = _value(url, rules.ERROR_RATIO.format(w="5m"))
    # Both counters share scrape timestamps, so rate() extrapolates them alike and the ratio of
    # rates equals the ratio of requests in the burst.
    assert ratio == pytest.approx(sent["bad"] / (sent["good"] + sent["bad"]), rel=1e-6)
    assert _value(url, rules.REPLICAS) == 1
    assert _value(url, rules.UNAVAILABLE_RATIO.format(w="5m")) == 0
    slow = _value(url, rules.SLOW_RATIO.format(w="5m"))
    assert slow is not None and 0 <= slow < 1
    p99 = _value(url, rules.quantile_record(0.99))
    assert p99 is not None and 0 < p99 <= max(m.LATENCY_BUCKETS_SECONDS)


def test_every_generated_query_over_server_metrics_returns_data(scraped):
    """Each dashboard query and recording that needs only the server (and `up`) has data."""
    url = scraped["url"]
    checked = 0
    for where, expr in all_expressions([MODEL]):
        if not where.startswith("dashboard") or metric_names(expr) & NOT_ON_LOOPBACK:
            continue
        query = expr.replace("$__rate_interval", "1m")
        assert _query(url, query), f"{where} returns no data on a live server: {query}"
        checked += 1
    assert checked >= 15
    for record in recorded_names([MODEL]) - NOT_ON_LOOPBACK:
        assert _query(url, record), f"recording {record} produced no series"
