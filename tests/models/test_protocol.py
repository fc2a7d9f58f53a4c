"""Request parsing and response encoding (pure functions of models/serving/protocol/rest.py)."""

from __future__ import annotations

import math
import re

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.errors import InvalidInput
from serving.protocol import rest
from serving.protocol.rest import (
    F32_MAX,
    encode_infer,
    encode_predict,
    non_finite_rows,
    parse_infer,
    parse_predict,
    to_matrix,
)

F = 3


@pytest.fixture(scope="module", autouse=True, params=["whole-body", "split"])
def json_parse_path(request):
    """Every test here runs with OIP bodies parsed whole (orjson) and split (the data array
    through simdjson, the rest through orjson; normally only bodies from 4 KB up): both must
    decide, and word their errors, alike."""
    saved = rest.SPLIT_MIN_BYTES
    rest.SPLIT_MIN_BYTES = 0 if request.param == "split" else saved
    yield request.param
    rest.SPLIT_MIN_BYTES = saved


def body(doc) -> bytes:
    return orjson.dumps(doc)


def infer_body(data, shape=None, datatype="FP32", **extra) -> bytes:
    tensor = {
        "name": "input-0",
        "shape": shape or [len(data) // F, F],
        "datatype": datatype,
        "data": data,
    }
    return body({"inputs": [tensor], **extra})


# ------------------------------------------------------------------------------------- /predict


def test_predict_parses_rows_to_float32():
    x = parse_predict(b'{"instances": [[1, 2.5, -3], [0, 1e-3, 7]]}', F)
    assert x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_array_equal(x, np.array([[1, 2.5, -3], [0, 1e-3, 7]], dtype=np.float32))


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        (b"", ["empty", '"instances"']),
        (b"{not json", ["not valid JSON", '{"instances": [[<3 numbers>], ...]}']),
        (b"[1, 2, 3]", ["must be a JSON object", "got a list"]),
        (b'{"rows": [[1, 2, 3]]}', ["missing field 'instances'"]),
        (b'{"instances": [[1, 2, 3]], "x": 1}', ["unknown field(s) ['x']"]),
        (b'{"instances": {"a": 1}}', ["'instances' must be a list of rows", "got an object"]),
        (b'{"instances": []}', ["'instances' is empty", "3 numbers"]),
        (b'{"instances": [[1, 2]]}', ["'instances[0]' has 2 values; expected 3"]),
        (
            b'{"instances": [[1, 2, 3], 4]}',
            ["'instances[1]' must be a list of 3 numbers", "got an integer"],
        ),
        (b'{"instances": [[1, "2", 3]]}', ["'instances[0][1]' is a string", "expected a number"]),
        (b'{"instances": [[1, true, 3]]}', ["'instances[0][1]' is a boolean", "expected a number"]),
        (b'{"instances": [[1, null, 3]]}', ["'instances[0][1]' is null", "expected a number"]),
        (b'{"instances": [[1, [2], 3]]}', ["'instances[0][1]' is a list", "expected a number"]),
        (
            b'{"instances": [[1, 2, 1e39]]}',
            ["'instances[0][2]' is 1e+39", "outside the range of FP32"],
        ),
        (b'{"instances": [[1, 2, 3]], "instances": 5}', ["must be a list of rows"]),
    ],
)
def test_predict_rejects_bad_input_with_a_message_naming_the_problem(raw, fragments):
    with pytest.raises(InvalidInput) as err:
        parse_predict(raw, F)
    assert err.value.status == 400
    for fragment in fragments:
        assert fragment in err.value.message


def test_predict_accepts_extreme_but_representable_values():
    x = parse_predict(body({"instances": [[F32_MAX, -F32_MAX, 0]]}), F)
    assert np.isfinite(x).all()


@pytest.mark.parametrize("value", ["3.402823466385289e+38", "-3.4028235e38"])
def test_values_just_beyond_float32_are_refused_though_they_round_to_its_max(value):
    """Both decimals round to +-F32_MAX in float32; the exact rules refuse them, so must the fast
    path (schemathesis found this)."""
    raw = b'{"instances": [[1, 2, ' + value.encode() + b"]]}"
    with pytest.raises(InvalidInput, match="outside the range of FP32"):
        parse_predict(raw, F)
    doc = b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, '
    with pytest.raises(InvalidInput, match="outside the range of FP64"):
        parse_infer(doc + value.encode() + b"]}]}", F, "input-0")
    half = b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP16", "data": [1, 2, '
    with pytest.raises(InvalidInput, match="outside the range of FP16"):
        parse_infer(half + b"65504.001]}]}", F, "input-0")


def test_predict_response_has_labels_and_probabilities():
    probabilities = np.array([[0.1, 0.9], [0.8, 0.2]], dtype=np.float32)
    doc = orjson.loads(encode_predict(probabilities))
    assert doc["predictions"] == [1, 0]
    np.testing.assert_allclose(doc["probabilities"], probabilities)


# A JSON value generator for rows: mostly numbers, sometimes anything JSON can carry.
json_scalar = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.booleans(),
    st.none(),
    st.text(max_size=4),
    st.sampled_from(["1.5", "nan", "1e400", "true"]),
)
json_value = st.recursive(json_scalar, lambda inner: st.lists(inner, max_size=4), max_leaves=12)
row = st.one_of(st.lists(json_scalar, min_size=F, max_size=F), json_value)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, max_size=5))
def test_fast_path_decides_exactly_like_the_exact_path(rows):
    """Whatever the body holds, parse_predict (fast path when allowed) equals the exact rules."""
    raw = body({"instances": rows})
    try:
        expected = to_matrix(rows, F, "instances", fast=False)
    except InvalidInput:
        expected = None
    try:
        got = parse_predict(raw, F)
    except InvalidInput:
        got = None
    if expected is None:
        assert got is None, f"fast path accepted what the exact rules refuse: {rows!r}"
    else:
        assert got is not None
        np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------------- OIP /infer


def test_infer_parses_flat_and_nested_data_identically():
    flat = parse_infer(infer_body([1, 2, 3, 4, 5, 6], [2, F]), F, "input-0")
    nested = parse_infer(infer_body([[1, 2, 3], [4, 5, 6]], [2, F]), F, "input-0")
    np.testing.assert_array_equal(flat.x, nested.x)
    assert flat.x.shape == (2, F) and flat.x.dtype == np.float32
    assert flat.outputs == ("label", "probabilities") and flat.id is None


def test_infer_keeps_id_and_requested_outputs():
    req = parse_infer(
        infer_body([1, 2, 3], [1, F], id="req-7", outputs=[{"name": "probabilities"}]), F, "input-0"
    )
    assert req.id == "req-7" and req.outputs == ("probabilities",)


@pytest.mark.parametrize(
    ("doc", "fragments"),
    [
        ({"inputs": []}, ["exactly one tensor", "got 0 tensors"]),
        ({}, ["missing field 'inputs'"]),
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32"}]},
            ["missing field 'inputs[0].data'"],
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "BYTES", "data": [1, 2, 3]}]},
            ["'inputs[0].datatype' is \"BYTES\"", "FP32"],
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
            ["'inputs[0].shape' is [1,4]", "expected [<rows>, 3]"],
        ),
        (
            {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3]}]},
            ["has 3 values but shape [2, 3] needs 6"],
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "INT32", "data": [1, 2.5, 3]}]},
            ["'inputs[0].data[1]' is 2.5", "INT32 needs whole numbers"],
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "UINT8", "data": [1, 256, 3]}]},
            ["'inputs[0].data[1]' is 256", "outside the range of UINT8"],
        ),
        (
            {
                "inputs": [
                    {"name": "x", "shape": [1, 3], "datatype": "FP16", "data": [1, 70000.0, 3]}
                ]
            },
            ["outside the range of FP16"],
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, "2", 3]}]},
            ["'inputs[0].data[1]' is a string"],
        ),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [2, 3],
                        "datatype": "FP32",
                        "data": [[1, 2], [3, 4, 5, 6]],
                    }
                ]
            },
            ["'inputs[0].data[0]' has 2 values"],
        ),
        ({"id": 5, "inputs": []}, ["'id' must be a string"]),
        (
            {
                "inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}],
                "outputs": [{"name": "logits"}],
            },
            ["'outputs[0].name' is \"logits\"", "label, probabilities"],
        ),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 3],
                        "datatype": "FP32",
                        "data": [1, 2, 3],
                        "extra": 1,
                    }
                ]
            },
            ["unknown field(s) ['extra'] in 'inputs[0]'"],
        ),
    ],
)
def test_infer_rejects_bad_input_with_a_message_naming_the_field(doc, fragments):
    with pytest.raises(InvalidInput) as err:
        parse_infer(body(doc), F, "input-0")
    for fragment in fragments:
        assert fragment in err.value.message, err.value.message


def test_infer_accepts_the_model_name_kserves_client_sends():
    req = parse_infer(infer_body([1, 2, 3], [1, F], model_name="m"), F, "input-0")
    assert req.model_name == "m"
    assert parse_infer(infer_body([1, 2, 3], [1, F]), F, "input-0").model_name is None
    with pytest.raises(InvalidInput, match="'model_name' must be a string"):
        parse_infer(infer_body([1, 2, 3], [1, F], model_name=5), F, "input-0")


def test_infer_accepts_integer_datatypes_and_casts():
    req = parse_infer(infer_body([1, 2, 3], [1, F], datatype="INT64"), F, "input-0")
    np.testing.assert_array_equal(req.x, [[1, 2, 3]])


def test_infer_with_strings_in_parameters_still_takes_numbers_from_data():
    raw = infer_body([1, 2, 3], [1, F], id='a"b', parameters={"note": "true"})
    np.testing.assert_array_equal(parse_infer(raw, F, "input-0").x, [[1, 2, 3]])


_T = b'"name": "x", "shape": [%d, 3], "datatype": "FP32"'


@pytest.mark.parametrize(
    "raw",
    [
        # Booleans, strings and null in the data, where the raw-byte scan must not be fooled:
        # an escaped key with a decoy "data" elsewhere, two "data" keys in either order, nesting.
        b'{"inputs": [{' + _T % 1 + b', "d\\u0061ta": [1, true, 3]}], "parameters": {"data": [1]}}',
        b'{"inputs": [{' + _T % 1 + b', "data": [1, true, 3]}], "parameters": {"data": [1, 2, 3]}}',
        b'{"parameters": {"data": [1, 2, 3]}, "inputs": [{'
        + _T % 1
        + b', "data": [1, false, 3]}]}',
        b'{"inputs": [{' + _T % 2 + b', "data": [[1, 2, 3], [4, true, 6]]}]}',
        b'{"inputs": [{' + _T % 1 + b', "data": [1, "2", 3]}]}',
        b'{"inputs": [{' + _T % 1 + b', "data": [1, null, 3]}]}',
        b'{"id": "true", "inputs": [{' + _T % 1 + b', "data": [1, true, 3]}]}',
        # Numbers only, however spaced or written: the fast path must equal the exact rules.
        b'{"inputs": [{' + _T % 1 + b', "data" :\n [ 1e-5 ,-2E+3,\t3.25 ]}]}',
        b'{"inputs":[{"data":[1,2,3],"name":"x","shape":[1,3],"datatype":"FP32"}]}',
        b'{"id": "a\\"data\\"", "inputs": [{' + _T % 1 + b', "data": [1, 2, 3]}]}',
        b'{"parameters": {"binary_data_output": true}, "inputs": [{'
        + _T % 1
        + b', "data": [1, 2, 3]}]}',
        b'{"inputs": [{' + _T % 2 + b', "data": [[1, 2, 3], [4, 5, 6]]}]}',
    ],
)
def test_infer_raw_body_scan_decides_like_the_exact_path(raw):
    """The fast path's guard reads the raw bytes; whatever they hold, the answer is the exact
    rules' (same numbers, or a refusal)."""
    from serving.protocol.rest import _parse_tensor

    tensor = orjson.loads(raw)["inputs"][0]
    try:
        expected = _parse_tensor(tensor, F, "input-0", fast=False)
    except InvalidInput:
        expected = None
    try:
        got = parse_infer(raw, F, "input-0").x
    except InvalidInput:
        got = None
    if expected is None:
        assert got is None, f"fast path accepted what the exact rules refuse: {raw!r}"
    else:
        np.testing.assert_array_equal(got, expected)


def test_infer_response_shapes_and_datatypes():
    probabilities = np.array([[0.25, 0.75]], dtype=np.float32)
    doc = orjson.loads(encode_infer(probabilities, "m", "1", "id-1"))
    assert doc["model_name"] == "m" and doc["model_version"] == "1" and doc["id"] == "id-1"
    label, probs = doc["outputs"]
    assert label == {"name": "label", "datatype": "INT64", "shape": [1], "data": [1]}
    assert probs["datatype"] == "FP32" and probs["shape"] == [1, 2]
    assert probs["data"] == [0.25, 0.75]


def test_non_finite_rows_are_reported():
    p = np.array([[0.5, 0.5], [math.nan, 1.0], [0.1, math.inf]], dtype=np.float32)
    assert non_finite_rows(p) == [1, 2]
    assert non_finite_rows(p[:1]) == []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.lists(st.one_of(json_scalar, st.lists(json_scalar, max_size=F + 1)), max_size=7),
        st.lists(json_scalar, min_size=2 * F, max_size=2 * F),
        st.lists(
            st.lists(st.integers(-300, 300) | st.floats(-1e5, 1e5), min_size=F, max_size=F),
            min_size=2,
            max_size=2,
        ),
    ),
    datatype=st.sampled_from(["FP32", "FP64", "FP16", "INT32", "UINT8"]),
    extra=st.dictionaries(st.sampled_from(["id", "parameters"]), st.text(max_size=3), max_size=2),
)
def test_infer_fast_path_decides_exactly_like_the_exact_path(data, datatype, extra):
    from serving.protocol.rest import _parse_tensor

    tensor = {"name": "input-0", "shape": [2, F], "datatype": datatype, "data": data}
    doc = {"inputs": [tensor], **extra}
    if "parameters" in doc:
        doc["parameters"] = {"note": doc["parameters"]}
    try:
        expected = _parse_tensor(tensor, F, "input-0", fast=False)
    except InvalidInput:
        expected = None
    try:
        got = parse_infer(body(doc), F, "input-0").x
    except InvalidInput:
        got = None
    if expected is None:
        assert got is None, f"fast path accepted what the exact rules refuse: {doc!r}"
    else:
        assert got is not None
        np.testing.assert_array_equal(got, expected)


def test_a_100_row_body_takes_the_split_parse_and_gets_the_same_numbers(monkeypatch):
    rng = np.random.default_rng(7)
    x = rng.normal(scale=1e3, size=(300, F)).astype(np.float32)
    raw = infer_body(x.ravel().tolist(), id="r-1", outputs=[{"name": "label"}])
    assert len(raw) >= 4096, "at the default threshold too"
    splits = []
    split_data = rest._split_data
    monkeypatch.setattr(rest, "_split_data", lambda b: splits.append(split_data(b)) or splits[-1])
    got = parse_infer(raw, F, "input-0")
    assert len(splits) == 1 and splits[0] is not None, "the plain data array is split off"
    np.testing.assert_array_equal(got.x, x)
    assert got.id == "r-1" and got.outputs == ("label",)


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("null", "'inputs[0].data[57]' is null"),
        ("true", "'inputs[0].data[57]' is a boolean"),
        ('"1.5"', "'inputs[0].data[57]' is a string"),
        ("1e39", "outside the range of FP32"),
        ("1e400", "not valid JSON"),
    ],
)
def test_a_large_body_with_one_bad_value_gets_the_exact_paths_error(bad, fragment):
    with pytest.raises(InvalidInput, match=re.escape(fragment)):
        parse_infer(_large_body_with(57, bad), F, "input-0")


@pytest.mark.parametrize("big", [2**64, -(2**63) - 1, 2**53 + 1])
def test_integers_simdjson_refuses_or_doubles_round_still_parse_exactly(big):
    """simdjson refuses integers beyond 64 bits, and float64 rounds from 2**53 up: the exact path
    decides those, as JSON allows them and FP32 holds them."""
    x = parse_infer(_large_body_with(57, str(big)), F, "input-0").x
    assert x.ravel()[57] == np.float32(big) and x.ravel()[56] == 56.0


def _large_body_with(index: int, value: str) -> bytes:
    values = [str(float(i)) for i in range(100 * F)]
    values[index] = value
    raw = b'{"inputs": [{"name": "input-0", "shape": [100, 3], "datatype": "FP32", "data": ['
    return raw + ",".join(values).encode() + b"]}]}"


def test_integer_datatypes_in_a_large_body_keep_exact_integers():
    # float32 cannot tell 16777217 from 16777216: the exact path casts each integer itself.
    data = [16777217] * (100 * F)
    got = parse_infer(infer_body(data, datatype="INT64"), F, "input-0").x
    assert got.dtype == np.float32 and got.shape == (100, F)
    np.testing.assert_array_equal(got, np.float32(16777217))
