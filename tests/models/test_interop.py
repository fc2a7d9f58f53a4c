"""Peers' own clients against real server processes: Triton's `tritonclient.http` (binary tensor
extension by default, and plain JSON) and `tritonclient.grpc`, and the kserve package's
`InferenceRESTClient` (JSON and binary) and `InferenceGRPCClient`. Answers must equal the samples
the model recorded at training time (model.json).

The gRPC clients run in subprocesses (see triton_grpc_probe.py), KServe's in its own venv:
kserve 0.21.0 cannot be installed next to kubernetes 37.0.2 (python-dateutil < 3 against >= 3).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from serving.manifest import load_manifest
from serving_harness import KSERVE_PYTHON, check_kserve_report, run_client_probe

MODELS = {"ml_model_1": "server1", "ml_model_2": "server2"}


@pytest.fixture(params=sorted(MODELS))
def served(request, model1_dir, model2_dir):
    """(model name, server, manifest, sample rows, expected probabilities) for each model."""
    name = request.param
    server = request.getfixturevalue(MODELS[name])
    manifest = load_manifest(model1_dir if name == "ml_model_1" else model2_dir)
    x = np.asarray(manifest.sample.inputs, dtype=np.float32)
    expected = np.asarray(manifest.sample.probabilities, dtype=np.float32)
    return name, server, manifest, x, expected


def _http(server) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(server.url.removeprefix("http://"))


def _check(manifest, expected, label, probabilities) -> None:
    np.testing.assert_allclose(probabilities, expected, atol=manifest.quality.parity_tolerance)
    np.testing.assert_array_equal(label, expected.argmax(axis=1))


# ---------------------------------------------------------------------------- tritonclient.http


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_tritonclient_http_with_its_defaults_binary_in_and_out(served, datatype):
    name, server, manifest, x, expected = served
    client = _http(server)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(name)
    tensor = httpclient.InferInput("input-0", list(x.shape), datatype)
    tensor.set_data_from_numpy(x.astype(np.float32 if datatype == "FP32" else np.float64))
    result = client.infer(name, [tensor], request_id="t-1")
    response = result.get_response()
    assert response["id"] == "t-1" and response["model_name"] == name
    # Both outputs really came back binary (tritonclient asked for binary_data_output).
    assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
    _check(manifest, expected, result.as_numpy("label"), result.as_numpy("probabilities"))


def test_tritonclient_http_json_only(served):
    name, server, manifest, x, expected = served
    tensor = httpclient.InferInput("input-0", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=False)
    outputs = [
        httpclient.InferRequestedOutput("label", binary_data=False),
        httpclient.InferRequestedOutput("probabilities", binary_data=False),
    ]
    result = _http(server).infer(name, [tensor], outputs=outputs)
    assert all("data" in o for o in result.get_response()["outputs"])
    _check(manifest, expected, result.as_numpy("label"), result.as_numpy("probabilities"))


def test_tritonclient_http_mixed_binary_and_json(served):
    name, server, manifest, x, expected = served
    binary_in = httpclient.InferInput("input-0", list(x.shape), "FP32")
    binary_in.set_data_from_numpy(x, binary_data=True)
    json_out = [httpclient.InferRequestedOutput("probabilities", binary_data=False)]
    result = _http(server).infer(name, [binary_in], outputs=json_out)
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), expected, atol=manifest.quality.parity_tolerance
    )
    json_in = httpclient.InferInput("input-0", list(x.shape), "FP32")
    json_in.set_data_from_numpy(x, binary_data=False)
    binary_out = [httpclient.InferRequestedOutput("label", binary_data=True)]
    result = _http(server).infer(name, [json_in], outputs=binary_out)
    assert result.get_response()["outputs"][0]["parameters"]["binary_data_size"] == 8 * len(x)
    np.testing.assert_array_equal(result.as_numpy("label"), expected.argmax(axis=1))


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_tritonclient_http_compressed_requests(served, algorithm):
    name, server, manifest, x, expected = served
    tensor = httpclient.InferInput("input-0", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = _http(server).infer(name, [tensor], request_compression_algorithm=algorithm)
    _check(manifest, expected, result.as_numpy("label"), result.as_numpy("probabilities"))


def test_tritonclient_http_metadata(server1):
    client = _http(server1)
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata("ml_model_1")
    assert meta["inputs"][0]["name"] == "input-0" and meta["inputs"][0]["shape"] == [-1, 30]


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_http_sees_our_errors(server1, binary):
    tensor = httpclient.InferInput("input-0", [1, 29], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 29), np.float32), binary_data=binary)
    with pytest.raises(InferenceServerException) as err:
        _http(server1).infer("ml_model_1", [tensor])
    assert err.value.status() == "400"
    assert "[<rows>, 30]" in err.value.message(), err.value.message()


# ---------------------------------------------------------------------------- tritonclient.grpc


def test_tritonclient_grpc(served):
    name, server, manifest, x, expected = served
    spec = {"target": server.grpc_target, "model": name, "rows": x.tolist()}
    report = run_client_probe(sys.executable, "triton_grpc_probe.py", spec)
    assert report["live"] and report["ready"] and report["model_ready"]
    assert report["server_metadata"]["extensions"] == ["binary_tensor_data"]
    meta = report["model_metadata"]
    assert meta["name"] == name and meta["inputs"][0]["datatype"] == "FP32"
    assert [int(d) for d in meta["inputs"][0]["shape"]] == [-1, x.shape[1]]
    for datatype, result in report["results"].items():
        assert result["id"] == f"triton-{datatype}"
        _check(manifest, expected, result["label"], result["probabilities"])
    assert report["selected_outputs"] == ["probabilities"]
    shape, model = report["errors"]["shape"], report["errors"]["model"]
    assert shape["status"] == "StatusCode.INVALID_ARGUMENT", shape
    assert f"expects [<rows>, {x.shape[1]}]" in shape["message"]
    assert model["status"] == "StatusCode.NOT_FOUND" and "no-such-model" in model["message"]


# ---------------------------------------------------------------------------- kserve's clients


def test_kserve_rest_and_grpc_clients(served):
    name, server, manifest, x, expected = served
    spec = {"url": server.url, "grpc": server.grpc_target, "model": name, "rows": x.tolist()}
    report = run_client_probe(KSERVE_PYTHON, "kserve_client_probe.py", spec)
    check_kserve_report(report, name, x, expected, manifest.quality.parity_tolerance)
