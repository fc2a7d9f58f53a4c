"""The REST binary tensor extension and the raw tensor encoding it shares with gRPC: pure functions
(serving/protocol/{tensors,binary}.py), then the live server."""

from __future__ import annotations

import struct

import httpx
import numpy as np
import orjson
import pytest

from serving.errors import InvalidInput
from serving.manifest import load_manifest
from serving.protocol.binary import encode_infer_binary
from serving.protocol.rest import parse_infer
from serving.protocol.tensors import DTYPES, decode_raw, encode_raw, to_features

F = 3
X = np.array([[1.5, -2.0, 3.25], [0.0, 7.0, -0.5]], dtype=np.float32)


def binary_request(
    raw: bytes,
    datatype: str = "FP32",
    shape=(2, F),
    size: int | None = None,
    **extra,
) -> tuple[bytes, bytes]:
    """(body, header value) of a one-input binary request."""
    tensor = {
        "name": "input-0",
        "shape": list(shape),
        "datatype": datatype,
        "parameters": {"binary_data_size": len(raw) if size is None else size},
    }
    header = orjson.dumps({"inputs": [tensor], **extra})
    return header + raw, str(len(header)).encode()


# ------------------------------------------------------------------------ raw tensor encoding


@pytest.mark.parametrize("datatype", [d for d in DTYPES if d != "BYTES"])
def test_raw_encoding_round_trips_every_fixed_size_datatype(datatype):
    dtype = DTYPES[datatype]
    values = np.array([[0, 1, 1], [1, 0, 1]]) if datatype == "BOOL" else np.arange(6) - 2
    if dtype.kind == "u":
        values = np.arange(6)
    array = values.astype(dtype).reshape(2, 3)
    raw = encode_raw(array, datatype)
    assert len(raw) == 6 * dtype.itemsize
    decoded = decode_raw(raw, datatype, [2, 3], "t")
    assert decoded.dtype == dtype and decoded.shape == (2, 3)
    np.testing.assert_array_equal(decoded, array)


def test_raw_encoding_is_little_endian_row_major_with_length_prefixed_bytes():
    assert encode_raw(np.array([1.0], np.float32), "FP32") == struct.pack("<f", 1.0)
    assert encode_raw(np.array([-2]), "INT64") == struct.pack("<q", -2)
    assert encode_raw(np.array([[1, 2], [3, 4]]), "INT32") == struct.pack("<4i", 1, 2, 3, 4)
    assert encode_raw(np.array([True, False]), "BOOL") == b"\x01\x00"
    strings = np.array([b"ab", b"", b"xyz"], dtype=object)
    raw = encode_raw(strings, "BYTES")
    assert raw == b"\x02\x00\x00\x00ab" + b"\x00\x00\x00\x00" + b"\x03\x00\x00\x00xyz"
    assert decode_raw(raw, "BYTES", [3], "t").tolist() == [b"ab", b"", b"xyz"]
    assert decode_raw(raw, "BYTES", [3, 1], "t").shape == (3, 1)


@pytest.mark.parametrize(
    ("raw", "datatype", "shape", "fragments"),
    [
        (
            b"\x00" * 20,
            "FP32",
            [2, 3],
            ["has 20 bytes", "[2, 3] of FP32 needs 24", "6 elements x 4"],
        ),
        (b"\x00" * 24, "FP64", [2, 3], ["needs 48"]),
        (b"\x01\x02", "BOOL", [2], ["element 1 is byte 2", "0 or 1"]),
        (b"\x05\x00\x00\x00abc", "BYTES", [1], ["declares 5 bytes but only 3 remain"]),
        (b"\x01\x00\x00\x00a\x01\x00", "BYTES", [2], ["element 1", "too few for its 4-byte"]),
        (b"\x01\x00\x00\x00a", "BYTES", [2], ["holds 1 BYTES elements", "needs 2"]),
        (b"", "FP32", [2**62, 2**62, 0], ["cannot take shape"]),
    ],
)
def test_raw_decoding_refuses_bytes_that_disagree_with_the_shape(raw, datatype, shape, fragments):
    with pytest.raises(InvalidInput) as err:
        decode_raw(raw, datatype, shape, "'inputs[0]' ('x')")
    for fragment in fragments:
        assert fragment in err.value.message, err.value.message


@pytest.mark.parametrize(
    ("array", "datatype", "fragment"),
    [
        (np.ones((1, F), bool), "BOOL", "datatype BOOL; input 'input-0' takes numbers"),
        (np.array([[b"a"] * F], dtype=object), "BYTES", "datatype BYTES"),
        (np.ones((1, 4), np.float32), "FP32", "shape [1, 4]; input 'input-0' expects [<rows>, 3]"),
        (np.ones((0, F), np.float32), "FP32", "rows >= 1"),
        (np.ones(F, np.float32), "FP32", "shape [3]"),
        (np.array([[1, np.nan, 2]], np.float32), "FP32", "element [0][1] is"),
        (np.array([[1, 2, np.inf]], np.float16), "FP16", "element [0][2] is"),
        (np.array([[1, 2, 1e39]], np.float64), "FP64", "element [0][2] is 1e+39"),
    ],
)
def test_model_input_conversion_names_what_the_model_cannot_take(array, datatype, fragment):
    with pytest.raises(InvalidInput) as err:
        to_features(array, datatype, F, "input-0", "'inputs[0]' ('input-0')")
    assert fragment in err.value.message, err.value.message


# ---------------------------------------------------------------------- parsing binary requests


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "FP16", "INT64", "INT32", "INT8", "UINT16"])
def test_binary_input_of_every_numeric_datatype_reaches_the_model_as_float32(datatype):
    values = X if DTYPES[datatype].kind == "f" else np.array([[1, 2, 3], [4, 5, 6]])
    body, header = binary_request(encode_raw(values, datatype), datatype)
    req = parse_infer(body, F, "input-0", header)
    assert req.x.dtype == np.float32 and req.x.flags.c_contiguous
    np.testing.assert_array_equal(req.x, values.astype(DTYPES[datatype]).astype(np.float32))
    assert req.outputs == ("label", "probabilities") and req.binary_outputs == frozenset()


def test_a_request_with_the_header_may_still_carry_json_data():
    header = orjson.dumps(
        {"inputs": [{"name": "x", "shape": [1, F], "datatype": "FP32", "data": [1, 2, 3]}]}
    )
    req = parse_infer(header, F, "input-0", str(len(header)).encode())
    np.testing.assert_array_equal(req.x, [[1, 2, 3]])


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        # (body, header) -> (body, header)
        (lambda b, h: (b, b"abc"), ["Inference-Header-Content-Length is 'abc'", "whole number"]),
        (lambda b, h: (b, b"-5"), ["is '-5'"]),
        (lambda b, h: (b, b"+5"), ["is '+5'"]),
        (lambda b, h: (b, b" 5"), ["is ' 5'"]),
        (lambda b, h: (b, b""), ["is ''"]),
        (lambda b, h: (b, b"0"), ["is 0 but the body has"]),
        (lambda b, h: (b, b"99999"), ["is 99999 but the body has"]),
        (lambda b, h: (b, str(int(h) - 5).encode()), ["not valid JSON"]),
        (lambda b, h: (b[:-4], h), ["binary_data_size 24 but only 20 bytes"]),
        (lambda b, h: (b + b"\x00", h), ["1 bytes beyond the JSON header", "add up to"]),
    ],
)
def test_malformed_binary_framing_is_refused_with_a_clear_message(mutate, fragments):
    body, header = mutate(*binary_request(encode_raw(X, "FP32")))
    with pytest.raises(InvalidInput) as err:
        parse_infer(body, F, "input-0", header)
    for fragment in fragments:
        assert fragment in err.value.message, err.value.message


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"size": -1}, ["binary_data_size' is -1", "whole number >= 0"]),
        ({"size": True}, ["binary_data_size' is true"]),
        ({"size": 2.5}, ["binary_data_size' is 2.5"]),
        ({"size": 16}, ["has 16 bytes of raw data", "[2, 3] of FP32 needs 24"]),
        ({"datatype": "FP8"}, ["'inputs[0].datatype' is 'FP8'", "BYTES"]),
        ({"datatype": "BOOL"}, ["needs 6"]),
        ({"shape": (2, 4)}, ["needs 32"]),
        ({"shape": (2, -3)}, ["'inputs[0].shape' is [2, -3]"]),
        ({"shape": (6,)}, ["shape [6]; input 'input-0' expects [<rows>, 3]"]),
    ],
)
def test_binary_inputs_disagreeing_with_their_header_are_refused(kwargs, fragments):
    body, header = binary_request(encode_raw(X, "FP32"), **kwargs)
    with pytest.raises(InvalidInput) as err:
        parse_infer(body, F, "input-0", header)
    for fragment in fragments:
        assert fragment in err.value.message, err.value.message


def test_bool_and_bytes_inputs_decode_but_the_model_refuses_them():
    bools = np.ones((2, F), dtype=bool)
    body, header = binary_request(encode_raw(bools, "BOOL"), "BOOL")
    with pytest.raises(InvalidInput, match="datatype BOOL; input 'input-0' takes numbers"):
        parse_infer(body, F, "input-0", header)
    strings = np.array([b"1.5"] * 2 * F, dtype=object)
    body, header = binary_request(encode_raw(strings, "BYTES"), "BYTES")
    with pytest.raises(InvalidInput, match="datatype BYTES"):
        parse_infer(body, F, "input-0", header)


def test_binary_data_size_needs_the_header_and_excludes_data():
    body, _ = binary_request(encode_raw(X, "FP32"))
    json_part = body[: -X.nbytes]
    with pytest.raises(InvalidInput, match="no Inference-Header-Content-Length header"):
        parse_infer(json_part, F, "input-0")
    doc = orjson.loads(json_part)
    doc["inputs"][0]["data"] = X.ravel().tolist()
    header = orjson.dumps(doc)
    with pytest.raises(InvalidInput, match="both 'data' and parameters.binary_data_size"):
        parse_infer(header + X.tobytes(), F, "input-0", str(len(header)).encode())


def test_shared_memory_inputs_are_refused_as_not_served():
    doc = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [1, F],
                "datatype": "FP32",
                "parameters": {"shared_memory_region": "r", "shared_memory_byte_size": 12},
            }
        ]
    }
    with pytest.raises(InvalidInput, match="shared-memory extension is not served"):
        parse_infer(orjson.dumps(doc), F, "input-0")


# ------------------------------------------------------------------------------ binary outputs


def _json_request(**extra) -> bytes:
    tensor = {"name": "input-0", "shape": [1, F], "datatype": "FP32", "data": [1, 2, 3]}
    return orjson.dumps({"inputs": [tensor], **extra})


def test_binary_outputs_are_chosen_per_output_or_for_the_whole_request():
    req = parse_infer(_json_request(parameters={"binary_data_output": True}), F, "input-0")
    assert req.outputs == ("label", "probabilities")
    assert req.binary_outputs == {"label", "probabilities"}
    req = parse_infer(
        _json_request(
            parameters={"binary_data_output": True},
            outputs=[
                {"name": "probabilities"},
                {"name": "label", "parameters": {"binary_data": False}},
            ],
        ),
        F,
        "input-0",
    )
    assert req.outputs == ("probabilities", "label") and req.binary_outputs == {"probabilities"}
    req = parse_infer(
        _json_request(outputs=[{"name": "label", "parameters": {"binary_data": True}}]),
        F,
        "input-0",
    )
    assert req.outputs == ("label",) and req.binary_outputs == {"label"}
    assert parse_infer(_json_request(), F, "input-0").binary_outputs == frozenset()


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"parameters": {"binary_data_output": 1}}, "'parameters.binary_data_output' is 1"),
        (
            {"outputs": [{"name": "label", "parameters": {"binary_data": "yes"}}]},
            "'outputs[0].parameters.binary_data' is \"yes\"",
        ),
        (
            {"outputs": [{"name": "label", "parameters": {"classification": 2}}]},
            "classification extension, which is not served",
        ),
    ],
)
def test_bad_output_parameters_are_refused(extra, fragment):
    with pytest.raises(InvalidInput) as err:
        parse_infer(_json_request(**extra), F, "input-0")
    assert fragment in err.value.message, err.value.message


def test_binary_response_has_a_json_header_then_the_raw_outputs_in_order():
    probabilities = np.array([[0.25, 0.75], [0.9, 0.1]], dtype=np.float32)
    body, n = encode_infer_binary(
        probabilities, "m", "1", "id-1", ("probabilities", "label"), frozenset({"probabilities"})
    )
    doc = orjson.loads(body[:n])
    assert doc["model_name"] == "m" and doc["id"] == "id-1"
    probs, label = doc["outputs"]
    assert probs == {
        "name": "probabilities",
        "datatype": "FP32",
        "shape": [2, 2],
        "parameters": {"binary_data_size": 16},
    }
    assert label == {"name": "label", "datatype": "INT64", "shape": [2], "data": [1, 0]}
    assert body[n:] == probabilities.astype("<f4").tobytes()
    body, n = encode_infer_binary(probabilities, "m", "1", None, ("label",), frozenset({"label"}))
    assert "id" not in orjson.loads(body[:n])
    np.testing.assert_array_equal(np.frombuffer(body[n:], "<i8"), [1, 0])


# ---------------------------------------------------------------------------------- live server

INFER = "/v2/models/ml_model_1/infer"


def _post(server, body: bytes, header: bytes | None = None) -> httpx.Response:
    headers = {"content-type": "application/octet-stream"}
    if header is not None:
        headers["inference-header-content-length"] = header.decode("latin-1")
    return httpx.post(server.url + INFER, content=body, headers=headers, timeout=30)


def _split(r: httpx.Response) -> tuple[dict, bytes]:
    n = int(r.headers["inference-header-content-length"])
    return orjson.loads(r.content[:n]), r.content[n:]


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_server_answers_binary_requests_with_binary_outputs(server1, model1_dir, datatype):
    m = load_manifest(model1_dir)
    x = np.asarray(m.sample.inputs, dtype=np.float32)
    expected = np.asarray(m.sample.probabilities, dtype=np.float32)
    body, header = binary_request(
        encode_raw(x, datatype),
        datatype,
        x.shape,
        id="b-1",
        parameters={"binary_data_output": True},
    )
    r = _post(server1, body, header)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    doc, raw = _split(r)
    assert doc["id"] == "b-1" and [o["name"] for o in doc["outputs"]] == ["label", "probabilities"]
    label_size = doc["outputs"][0]["parameters"]["binary_data_size"]
    assert label_size == 8 * len(x) and len(raw) == label_size + 4 * expected.size
    labels = decode_raw(raw[:label_size], "INT64", doc["outputs"][0]["shape"], "label")
    probs = decode_raw(raw[label_size:], "FP32", doc["outputs"][1]["shape"], "probabilities")
    np.testing.assert_allclose(probs, expected, atol=m.quality.parity_tolerance)
    np.testing.assert_array_equal(labels, expected.argmax(axis=1))


def test_server_binary_input_with_json_outputs_and_json_input_with_binary_output(server1):
    body, header = binary_request(np.zeros((1, 30), np.float32).tobytes(), shape=(1, 30))
    r = _post(server1, body, header)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in r.headers
    assert len(r.json()["outputs"][1]["data"]) == 2
    req = {
        "inputs": [{"name": "input-0", "shape": [1, 30], "datatype": "FP32", "data": [0] * 30}],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
    }
    r = httpx.post(server1.url + INFER, json=req, timeout=30)
    doc, raw = _split(r)
    assert doc["outputs"][0]["parameters"] == {"binary_data_size": 8} and len(raw) == 8


@pytest.mark.parametrize(
    ("body_header", "status", "fragment"),
    [
        (lambda b, h: (b, b"-1"), 400, "Inference-Header-Content-Length is '-1'"),
        (lambda b, h: (b, b"x"), 400, "Inference-Header-Content-Length is 'x'"),
        (lambda b, h: (b, str(len(b) + 1).encode()), 400, "but the body has"),
        (lambda b, h: (b[:-1], h), 400, "binary_data_size 120 but only 119 bytes"),
        (lambda b, h: (b + b"\x00" * 8, h), 400, "8 bytes beyond the JSON header"),
        (lambda b, h: (b + b"\x00" * 70000, h), 413, "request body is too large"),
    ],
)
def test_server_refuses_malformed_binary_requests_with_4xx(server1, body_header, status, fragment):
    body, header = body_header(
        *binary_request(np.zeros((1, 30), np.float32).tobytes(), shape=(1, 30))
    )
    r = _post(server1, body, header)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]
    assert httpx.get(f"{server1.url}/v2/health/ready", timeout=5).status_code == 200


def test_server_checks_the_body_model_name_against_the_url(server1):
    req = {
        "model_name": "ml_model_1",
        "inputs": [{"name": "input-0", "shape": [1, 30], "datatype": "FP32", "data": [0] * 30}],
    }
    assert httpx.post(server1.url + INFER, json=req, timeout=30).status_code == 200
    req["model_name"] = "ml_model_2"
    r = httpx.post(server1.url + INFER, json=req, timeout=30)
    assert r.status_code == 400
    assert "'model_name' in the body is 'ml_model_2' but the URL names" in r.json()["error"]


def test_server_metadata_lists_the_binary_extension(server1):
    doc = httpx.get(f"{server1.url}/v2", timeout=5).json()
    assert doc["extensions"] == ["binary_tensor_data"]
