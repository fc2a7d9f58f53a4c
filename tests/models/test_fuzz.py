"""Fuzzing the live server: schemathesis against our own OpenAPI document (valid and invalid
requests generated from it), and hypothesis throwing arbitrary bytes and JSON at the inference
endpoints. The server must answer every request with a documented status, never a 5xx."""

from __future__ import annotations

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

EXAMPLES = 40


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


def test_server_is_still_healthy_after_fuzzing(server1):
    assert httpx.get(f"{server1.url}/v2/health/ready", timeout=5).status_code == 200
    assert "Traceback" not in server1.log_path.read_text()
