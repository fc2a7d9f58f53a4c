"""Fuzzing the live server: schemathesis against our own OpenAPI document (valid and invalid
requests generated from it), and hypothesis throwing arbitrary bytes and JSON at the inference
endpoints, binary-extension bodies at /infer and ModelInferRequests (and undecodable bytes) at
the gRPC endpoint. The server must answer every request with a documented status, never a 5xx
(over gRPC: OK, INVALID_ARGUMENT or NOT_FOUND), and stay healthy."""

from __future__ import annotations

import grpc
import httpx
import numpy as np
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from serving.protocol.grpc import grpc_predict_v2_pb2 as pb
from serving.protocol.tensors import DTYPES

EXAMPLES = int(__import__("os").environ.get("FUZZ_EXAMPLES", "40"))


@pytest.fixture(scope="session")
def api_schema(server1):
    return schemathesis.openapi.from_url(f"{server1.url}/openapi.json")


# schemathesis' own pytest integration (from_fixture) breaks on pytest 9, so each operation's
# strategy is run through hypothesis here.
@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"]
)
def test_api_conforms_to_its_openapi_document(api_schema, server1, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /predict", "POST /v2/models/{model_name}/infer", "GET /v2/health/ready"} <= labels
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (
            len(operation.body) or len(operation.path_parameters)
        ):
            continue  # nothing in the request can be made invalid
        try:
            _fuzz(operation, mode, server1.url)
        except Exception as exc:
            raise AssertionError(
                f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"
            ) from exc


def _fuzz(operation, mode: GenerationMode, url: str) -> None:
    checks_off = []
    if operation.path.endswith("/infer"):
        # OpenAPI cannot tie shape[1] to the model width or len(data) to rows x width, so
        # schema-valid requests may still be (rightly) refused with 400.
        checks_off.append(positive_data_acceptance)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        case.call_and_validate(base_url=url, excluded_checks=checks_off)

    run()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


def _near_valid_infer():
    tensor = st.fixed_dictionaries(
        {
            "name": st.text(max_size=8),
            "shape": st.lists(st.integers(-2, 40), max_size=3),
            "datatype": st.sampled_from(
                ["FP32", "FP64", "INT64", "UINT8", "FP16", "BOOL", "BYTES", "fp32"]
            ),
            "data": st.lists(
                st.floats(allow_nan=False) | st.integers(-(2**63), 2**64 - 1) | json_values,
                max_size=70,
            ),
        }
    )
    return st.fixed_dictionaries(
        {"inputs": st.lists(tensor, max_size=2)},
        optional={"outputs": json_values, "id": json_values},
    )


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(["/predict", "/v2/models/ml_model_1/infer"]),
    payload=st.one_of(
        st.binary(max_size=300),
        json_values.map(orjson.dumps),
        st.fixed_dictionaries({"instances": json_values}).map(orjson.dumps),
        _near_valid_infer().map(lambda d: orjson.dumps(d, option=orjson.OPT_PASSTHROUGH_SUBCLASS)),
    ),
)
def test_inference_endpoints_never_fail_with_5xx(server1, path, payload):
    r = httpx.post(server1.url + path, content=payload, timeout=30)
    assert r.status_code in (200, 400, 413, 422), (r.status_code, r.text)
    doc = r.json()
    if r.status_code != 200:
        assert doc["error"], doc


# ------------------------------------------------------------ REST binary tensor extension

DATATYPES = [*DTYPES, "fp32", "FP8", ""]


@st.composite
def binary_requests(draw):
    """(body, Inference-Header-Content-Length value): mostly well framed, often subtly wrong."""
    rows = draw(st.integers(0, 3))
    datatype = draw(st.sampled_from(DATATYPES))
    shape = draw(st.one_of(st.just([rows, 30]), st.lists(st.integers(-2, 40), max_size=3)))
    itemsize = DTYPES[datatype].itemsize if DTYPES.get(datatype) is not None else 4
    payload = draw(
        st.one_of(
            st.binary(max_size=400),
            st.just(np.full(rows * 30, 0.5).astype(DTYPES.get(datatype) or "<f4").tobytes()),
        )
    )
    size = draw(
        st.one_of(
            st.just(len(payload)),
            st.integers(-3, rows * 30 * itemsize + 3),
            json_values,
        )
    )
    tensor = {"name": "input-0", "shape": shape, "datatype": datatype}
    tensor["parameters"] = draw(st.just({"binary_data_size": size}) | st.just({}) | json_values)
    if draw(st.booleans()):
        tensor["data"] = draw(json_values)
    doc = {"inputs": draw(st.just([tensor]) | st.lists(st.just(tensor), max_size=2))}
    if draw(st.booleans()):
        doc["parameters"] = {"binary_data_output": draw(st.booleans() | json_values)}
    if draw(st.booleans()):
        doc["outputs"] = [
            {"name": draw(st.sampled_from(["label", "probabilities", "x"])), "parameters": p}
            for p in draw(st.lists(st.just({"binary_data": True}) | json_values, max_size=3))
        ]
    header = orjson.dumps(doc, option=orjson.OPT_PASSTHROUGH_SUBCLASS)
    length = draw(
        st.one_of(
            st.just(str(len(header)).encode()),
            st.integers(-5, len(header) + len(payload) + 5).map(lambda n: str(n).encode()),
            # Any bytes a header value may hold (visible ASCII and obs-text).
            st.binary(max_size=6).map(lambda b: bytes(33 + c % 94 if c < 128 else c for c in b)),
            st.sampled_from([b"1e2", b"1 2", b"0x10", b"", b"+3", "\u0663".encode()]),
        )
    )
    return header + payload, length


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=binary_requests())
def test_binary_requests_never_fail_with_5xx(server1, request):
    body, length = request
    r = httpx.post(
        server1.url + "/v2/models/ml_model_1/infer",
        content=body,
        headers={"inference-header-content-length": length},
        timeout=30,
    )
    assert r.status_code in (200, 400, 413, 422), (r.status_code, r.text)
    if r.status_code != 200:
        assert r.json()["error"], (length, r.text)
    elif "inference-header-content-length" in r.headers:
        n = int(r.headers["inference-header-content-length"])
        sizes = [
            o["parameters"]["binary_data_size"]
            for o in orjson.loads(r.content[:n])["outputs"]
            if "parameters" in o
        ]
        assert n + sum(sizes) == len(r.content)
    else:
        assert r.json()["outputs"]


# ----------------------------------------------------------------------------------- gRPC

_FIELD_VALUES = {
    "bool_contents": st.booleans(),
    "int_contents": st.integers(-(2**31), 2**31 - 1),
    "int64_contents": st.integers(-(2**63), 2**63 - 1),
    "uint_contents": st.integers(0, 2**32 - 1),
    "uint64_contents": st.integers(0, 2**64 - 1),
    "fp32_contents": st.floats(width=32),
    "fp64_contents": st.floats(),
    "bytes_contents": st.binary(max_size=8),
}


@st.composite
def infer_messages(draw) -> bytes:
    """Serialized ModelInferRequests, near-valid and not, or arbitrary bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    request = pb.ModelInferRequest(
        model_name=draw(st.sampled_from(["ml_model_1", "ml_model_1", "other", ""])),
        model_version=draw(st.sampled_from(["", "1", "2"])),
        id=draw(st.text(max_size=4)),
    )
    for _ in range(draw(st.integers(0, 2))):
        rows = draw(st.integers(0, 3))
        tensor = request.inputs.add(
            name=draw(st.sampled_from(["input-0", "x"])),
            datatype=draw(st.sampled_from(DATATYPES)),
            shape=draw(st.just([rows, 30]) | st.lists(st.integers(-2, 2**40), max_size=3)),
        )
        for field in draw(st.lists(st.sampled_from(sorted(_FIELD_VALUES)), max_size=2)):
            count = draw(st.sampled_from([rows * 30, rows * 30 + 1, 0]))
            values = draw(st.lists(_FIELD_VALUES[field], min_size=count, max_size=count))
            getattr(tensor.contents, field).extend(values)
    for _ in range(draw(st.integers(0, 2))):
        request.raw_input_contents.append(
            draw(st.binary(max_size=300) | st.just(np.full(60, 0.5, "<f4").tobytes()))
        )
    for name in draw(st.lists(st.sampled_from(["label", "probabilities", "logits"]), max_size=3)):
        request.outputs.add(name=name)
    return request.SerializeToString()


@pytest.fixture(scope="module")
def grpc_infer(server1):
    with grpc.insecure_channel(server1.grpc_target) as channel:
        yield channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(message=infer_messages())
def test_grpc_infer_answers_ok_or_a_client_error(grpc_infer, message):
    try:
        response = pb.ModelInferResponse.FromString(grpc_infer(message, timeout=30))
    except grpc.RpcError as err:
        assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), (
            err.code(),
            err.details(),
        )
        assert err.details()
    else:
        assert len(response.outputs) == len(response.raw_output_contents) >= 1


def test_server_is_still_healthy_after_fuzzing(server1):
    assert httpx.get(f"{server1.url}/v2/health/ready", timeout=5).status_code == 200
    with grpc.insecure_channel(server1.grpc_target) as channel:
        ready = channel.unary_unary(
            "/inference.GRPCInferenceService/ServerReady",
            request_serializer=pb.ServerReadyRequest.SerializeToString,
            response_deserializer=pb.ServerReadyResponse.FromString,
        )
        assert ready(pb.ServerReadyRequest(), timeout=5).ready
    assert "Traceback" not in server1.log_path.read_text()
