"""The model server as a real process over real HTTP (loopback)."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.app import ModelServer
from serving.backends import load_backend
from serving.batching import MicroBatcher
from serving.manifest import load_manifest
from serving.metrics import METRIC_NAMES, METRICS
from serving.settings import ServerSettings


def sample(model_dir):
    m = load_manifest(model_dir)
    return (
        m,
        np.asarray(m.sample.inputs, dtype=np.float32),
        np.asarray(m.sample.probabilities, dtype=np.float32),
    )


def metric_value(text: str, name: str, **labels: str) -> float:
    """Value of one sample on a Prometheus text page (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# ------------------------------------------------------------------------------ health, metadata


def test_health_and_readiness(server1, client):
    assert client.get(f"{server1.url}/v2/health/live").json() == {"live": True}
    assert client.get(f"{server1.url}/v2/health/ready").json() == {"ready": True}
    r = client.get(f"{server1.url}/v2/models/ml_model_1/ready")
    assert r.status_code == 200 and r.json() == {"name": "ml_model_1", "ready": True}
    assert client.get(f"{server1.url}/v2/models/ml_model_1/versions/1/ready").status_code == 200


def test_model_metadata_describes_the_input_and_outputs(server1, client, model1_dir):
    manifest = load_manifest(model1_dir)
    meta = client.get(f"{server1.url}/v2/models/ml_model_1").json()
    assert meta["name"] == "ml_model_1" and meta["versions"] == ["1"]
    assert meta["platform"] == "onnxruntime_onnx"
    (tensor,) = meta["inputs"]
    assert tensor["shape"] == [-1, 30] and tensor["datatype"] == "FP32"
    assert tensor["parameters"]["feature_names"] == manifest.input.feature_names
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]
    assert meta["parameters"]["classes"] == ["malignant", "benign"]
    assert client.get(f"{server1.url}/v2").json()["name"] == "mlplatform-serving"


def test_unknown_model_and_version_are_404_with_the_served_name(server1, client):
    r = client.get(f"{server1.url}/v2/models/other")
    assert r.status_code == 404 and "serves model 'ml_model_1' version '1'" in r.json()["error"]
    r = client.post(f"{server1.url}/v2/models/ml_model_1/versions/9/infer", json={"inputs": []})
    assert r.status_code == 404 and "version '9' not found" in r.json()["error"]


def test_wrong_method_is_405_with_allow_header(server1, client):
    r = client.get(f"{server1.url}/predict")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert "not allowed" in r.json()["error"]


def test_openapi_document_is_served(server1, client):
    doc = client.get(f"{server1.url}/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/v2/models/{model_name}/infer" in doc["paths"] and "/predict" in doc["paths"]
    row = doc["components"]["schemas"]["PredictRequest"]["properties"]["instances"]["items"]
    assert row["minItems"] == row["maxItems"] == 30


# ------------------------------------------------------------------------------------ inference


def test_predict_matches_the_native_model(server1, client, model1_dir):
    manifest, x, expected = sample(model1_dir)
    r = client.post(f"{server1.url}/predict", json={"instances": x.tolist()})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    np.testing.assert_allclose(
        doc["probabilities"], expected, atol=manifest.quality.parity_tolerance
    )
    assert doc["predictions"] == expected.argmax(axis=1).tolist()


def test_oip_infer_flat_data_with_id_and_output_selection(server1, client, model1_dir):
    manifest, x, expected = sample(model1_dir)
    req = {
        "id": "abc",
        "inputs": [
            {
                "name": "input-0",
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": x.ravel().tolist(),
            }
        ],
    }
    doc = client.post(f"{server1.url}/v2/models/ml_model_1/infer", json=req).json()
    assert doc["id"] == "abc" and doc["model_name"] == "ml_model_1" and doc["model_version"] == "1"
    label, probs = doc["outputs"]
    assert label["data"] == expected.argmax(axis=1).tolist() and label["shape"] == [len(x)]
    assert probs["shape"] == [len(x), 2]
    np.testing.assert_allclose(np.reshape(probs["data"], probs["shape"]), expected, atol=1e-5)
    req["outputs"] = [{"name": "label"}]
    doc = client.post(f"{server1.url}/v2/models/ml_model_1/versions/1/infer", json=req).json()
    assert [o["name"] for o in doc["outputs"]] == ["label"]


def test_keras_model_is_served_through_onnx_without_tensorflow(server2, client, model2_dir):
    manifest, x, expected = sample(model2_dir)
    doc = client.post(f"{server2.url}/predict", json={"instances": x.tolist()}).json()
    np.testing.assert_allclose(doc["probabilities"], expected, atol=1e-5)
    meta = client.get(f"{server2.url}/v2/models/ml_model_2").json()
    assert meta["platform"] == "onnxruntime_onnx" and meta["inputs"][0]["shape"] == [-1, 64]


# -------------------------------------------------------------------------------- bad input: 4xx


@pytest.mark.parametrize(
    ("path", "payload", "status", "fragment"),
    [
        ("/predict", b"{oops", 400, "not valid JSON"),
        ("/predict", b'{"instances": [[1, 2]]}', 400, "has 2 values; expected 30"),
        ("/predict", b'{"instances": [["a"]]}', 400, "'instances[0]' has 1 values"),
        ("/predict", b'{"rows": []}', 400, "missing field 'instances'"),
        ("/predict", b"", 400, "request body is empty"),
        (
            "/v2/models/ml_model_1/infer",
            b'{"inputs": [{"name": "input-0", "shape": [1, 30], "datatype": "BYTES", "data": []}]}',
            400,
            "'inputs[0].datatype' is \"BYTES\"",
        ),
        (
            "/v2/models/ml_model_1/infer",
            b'{"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP32", '
            b'"data": [1, 2]}]}',
            400,
            "expected [<rows>, 30]",
        ),
    ],
)
def test_bad_input_is_a_4xx_saying_what_was_expected(
    server1, client, path, payload, status, fragment
):
    r = client.post(server1.url + path, content=payload)
    assert r.status_code == status
    assert fragment in r.json()["error"]


def test_oversized_body_is_413_by_content_length(server1, client):
    big = b'{"instances": [' + b",".join([b"[" + b",".join([b"1.0"] * 30) + b"]"] * 1000) + b"]}"
    assert len(big) > 65536
    r = client.post(f"{server1.url}/predict", content=big)
    assert r.status_code == 413
    assert "limit is 65536 bytes (MAX_BODY_BYTES)" in r.json()["error"]


def test_oversized_chunked_body_is_413(server1, client):
    def chunks():
        yield b'{"instances": ['
        for _ in range(2000):
            yield b"[" + b",".join([b"1.0"] * 30) + b"],"
        yield b"[1]]}"

    r = client.post(f"{server1.url}/predict", content=chunks())
    assert r.status_code == 413 and "MAX_BODY_BYTES" in r.json()["error"]


@pytest.fixture(scope="module")
def sqrt_model_dir(tmp_path_factory):
    """A real ONNX graph whose 'probabilities' are sqrt(x): NaN for negative inputs.

    The shipped models saturate instead of producing NaN, so this one exercises the 422 path.
    """
    import onnx
    from onnx import TensorProto, helper

    from serving.manifest import ModelManifest, save_manifest

    out = tmp_path_factory.mktemp("sqrt-model")
    graph = helper.make_graph(
        [helper.make_node("Sqrt", ["x"], ["probabilities"])],
        "sqrt",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, out / "model.onnx")
    save_manifest(
        ModelManifest(
            name="sqrt",
            version="1",
            input={"onnx_name": "x", "features": 2, "feature_names": ["a", "b"]},
            classes=["a", "b"],
            onnx={"probabilities_output": "probabilities"},
            native={"framework": "sklearn", "file": "absent.joblib"},
            quality={
                "metric": "accuracy",
                "value": 1.0,
                "threshold": 0.5,
                "test_rows": 1,
                "parity_max_abs_diff": 0.0,
                "parity_tolerance": 1e-5,
            },
            sample={"inputs": [[4.0, 9.0]], "probabilities": [[2.0, 3.0]]},
        ),
        out,
    )
    return out


def test_non_finite_model_output_is_422_not_500(server_factory, sqrt_model_dir, client):
    server = server_factory(sqrt_model_dir)
    ok = client.post(f"{server.url}/predict", json={"instances": [[4, 9]]})
    assert ok.status_code == 200 and ok.json()["probabilities"] == [[2.0, 3.0]]
    r = client.post(f"{server.url}/predict", json={"instances": [[4, 9], [-1, 1]]})
    assert r.status_code == 422
    assert "non-finite outputs for row(s) 1" in r.json()["error"]
    text = client.get(f"{server.url}/metrics").text
    assert metric_value(text, "model_infer_request_failure_total", model="sqrt", version="1") == 1


def test_garbage_on_the_socket_does_not_kill_the_server(server1, client):
    host, port = urlparse(server1.url).hostname, urlparse(server1.url).port
    with socket.create_connection((host, port)) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
        reply = s.recv(200)
    assert reply.startswith(b"HTTP/1.1 400")
    assert client.get(f"{server1.url}/v2/health/live").status_code == 200


# ------------------------------------------------------------------------------------- metrics


def test_metrics_expose_the_contract_names_and_count_requests(server_factory, model1_dir, client):
    server = server_factory(model1_dir, MODEL_NAME="iris-like", MODEL_VERSION="7")
    _, x, _ = sample(model1_dir)
    for _ in range(3):
        assert (
            client.post(f"{server.url}/predict", json={"instances": x[:2].tolist()}).status_code
            == 200
        )
    assert client.post(f"{server.url}/predict", content=b"nope").status_code == 400
    text = client.get(f"{server.url}/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for spec in METRICS:
        family = families[spec.name.removesuffix("_total")]
        assert family.type == spec.type, spec.name
        sample_names = {sample.name for sample in family.samples}
        assert (spec.name + "_count" if spec.type == "histogram" else spec.name) in sample_names
        assert all(set(spec.labels) <= sample.labels.keys() for sample in family.samples)
    assert set(METRIC_NAMES) >= {"request_predict_seconds", "model_infer_requests_in_flight"}
    labels = {"model": "iris-like", "version": "7"}
    assert metric_value(text, "model_infer_request_success_total", **labels) == 3
    assert metric_value(text, "model_infer_request_failure_total", **labels) == 1
    assert metric_value(text, "model_infer_request_duration_seconds_count", **labels) == 4
    assert metric_value(text, "request_predict_seconds_count", model_name="iris-like") == 3
    assert metric_value(text, "model_infer_requests_in_flight", **labels) == 0
    assert "process_start_time_seconds" in text
    assert "_created" not in text


# ---------------------------------------------------------------------- native backend, batching


def _concurrent_predictions_agree(server, model_dir, client, atol: float) -> None:
    _, x, expected = sample(model_dir)

    def one(i):
        r = client.post(f"{server.url}/predict", json={"instances": [x[i % len(x)].tolist()]})
        return i, r.status_code, r.json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(40)))
    for i, status, doc in results:
        assert status == 200
        np.testing.assert_allclose(doc["probabilities"][0], expected[i % len(x)], atol=atol)


def test_native_backend_with_micro_batching_agrees_with_onnx(server_factory, model1_dir, client):
    server = server_factory(model1_dir, INFERENCE_BACKEND="native", MAX_BATCH_SIZE="32")
    meta = client.get(f"{server.url}/v2/models/ml_model_1").json()
    assert meta["platform"] == "scikit-learn" and meta["parameters"]["backend"] == "native"
    _concurrent_predictions_agree(server, model1_dir, client, atol=1e-6)


def test_onnx_backend_with_micro_batching_agrees(server_factory, model1_dir, client):
    server = server_factory(model1_dir, MAX_BATCH_SIZE="32")
    _concurrent_predictions_agree(server, model1_dir, client, atol=1e-5)


@pytest.mark.parametrize(("kind", "in_thread"), [("onnx", False), ("native", True)])
def test_micro_batches_run_in_a_thread_only_for_the_native_backend(model1_dir, kind, in_thread):
    manifest = load_manifest(model1_dir)
    settings = ServerSettings.from_env({"MODEL_DIR": str(model1_dir), "MAX_BATCH_SIZE": "32"})
    server = ModelServer(settings, manifest, load_backend(manifest, model1_dir, kind))
    assert isinstance(server.runner, MicroBatcher) and server.runner.in_thread is in_thread


def test_logs_are_json_lines(server1):
    lines = server1.log_lines()
    assert lines
    docs = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= d.keys() for d in docs)
    assert any(d["message"] == "model ready" and d["model"] == "ml_model_1" for d in docs)
