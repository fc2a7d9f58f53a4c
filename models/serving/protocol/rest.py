"""Request parsing and response encoding for `/predict` and the Open Inference Protocol v2 JSON.

Pure functions over bytes and arrays, so they are tested directly and reused by batch mode. OIP
requests using the binary tensor extension (``serving.protocol.binary``) are parsed here too:
their JSON header is validated by the same rules.

Parsing has a fast path and an exact path. The fast path lets numpy convert the data straight to
float32, which is lenient: it takes `true` as 1, the string "1.5" as 1.5 and null as NaN. So it
runs only when a cheap scan of the raw body proves none of those can be in the data (for an OIP
body whose one flat `"data"` array can be located in the raw bytes, no `t`, `f` or `"` byte inside
that array; otherwise no `true` / `false` tokens and no quotes beyond those of the keys and
strings outside the data) and its result is kept only if it has the right shape and is finite.
Anything else goes to the exact path, which walks the values, decides, and names the first
offending one. The exact path is the authority;
the fast path only ever accepts what the exact path would accept, with the same numbers.

Large OIP bodies (``SPLIT_MIN_BYTES``) whose flat data array can be located go one step further:
the numbers never become Python objects. simdjson parses the array's bytes straight into float64
(it refuses anything but JSON numbers: null, booleans, strings, malformed or overflowing numbers)
and orjson parses the rest of the document with an empty array in its place. Any refusal or doubt
on that path sends the whole body through the paths above, which decide and word the error.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import simdjson

from serving.errors import InvalidInput
from serving.protocol.binary import BinaryReader, split_body
from serving.protocol.tensors import (
    F32_MAX,
    OUTPUT_NAMES,
    InferRequest,
    check_datatype,
    check_shape,
    decode_raw,
    to_features,
)

# Accepted OIP datatypes and the value range each one can hold. Every input is cast to float32 for
# the model, so float64 values must also fit float32.
DATATYPE_RANGES: dict[str, tuple[float, float, bool]] = {
    # name: (min, max, integral)
    "FP16": (-65504.0, 65504.0, False),
    "FP32": (-F32_MAX, F32_MAX, False),
    "FP64": (-F32_MAX, F32_MAX, False),
    "INT8": (-(2**7), 2**7 - 1, True),
    "INT16": (-(2**15), 2**15 - 1, True),
    "INT32": (-(2**31), 2**31 - 1, True),
    "INT64": (-(2**63), 2**63 - 1, True),
    "UINT8": (0, 2**8 - 1, True),
    "UINT16": (0, 2**16 - 1, True),
    "UINT32": (0, 2**32 - 1, True),
    "UINT64": (0, 2**64 - 1, True),
}
_JSON = orjson.OPT_SERIALIZE_NUMPY
# model_name is not in the protocol's request schema, but KServe's own client sends it.
_INFER_KEYS = frozenset({"id", "parameters", "inputs", "outputs", "model_name"})
_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "parameters", "data"})


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_PASSTHROUGH_SUBCLASS, default=str).decode()
    return text if len(text) <= 40 else text[:37] + "..."


def _loads(body: bytes, expected: str) -> Any:
    if not body:
        raise InvalidInput(f"request body is empty; expected JSON {expected}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON ({exc}); expected {expected}") from None


def _has_bool(body: bytes) -> bool:
    return b"true" in body or b"false" in body


_DATA_KEY = re.compile(rb'"data"[ \t\n\r]*:[ \t\n\r]*\[')


def _flat_data_span(body: bytes) -> tuple[int, int] | None:
    """Where the body's one flat `"data": [...]` array lies: (index after its `[`, index of its
    `]`); None when the raw bytes do not show that array plainly: escapes, a nested array, no or
    several "data" keys.

    Only single-byte searches (memchr speed) run over the array; `"data"` is searched before and
    after it, where the body is short. Without backslashes a raw `"data"` followed by a colon is
    a key (quotes pair up as string delimiters in a valid document), and a unique one is the
    tensor's.
    """
    if b"\\" in body:
        return None
    key = body.find(b'"data"')
    match = _DATA_KEY.match(body, key) if key != -1 else None
    if match is None:
        return None
    start = match.end()
    end = body.find(b"]", start)
    if end == -1 or body.find(b"[", start, end) != -1 or body.find(b'"data"', end) != -1:
        return None
    return start, end


def _plain_flat_data(body: bytes) -> bool | None:
    """Whether the body's one flat data array (``_flat_data_span``) holds nothing but JSON
    numbers (and null, which becomes NaN and fails the finiteness check); None when it cannot be
    located. ``_has_bool`` over a 100-row body costs ~80 us, this ~5 us.
    """
    span = _flat_data_span(body)
    if span is None:
        return None
    start, end = span
    return body.find(b'"', start, end) == -1 and (
        body.find(b"t", start, end) == -1 and body.find(b"f", start, end) == -1
    )


SPLIT_MIN_BYTES = 4096
"""OIP JSON bodies from this size up try the split parse (module docstring). Below it, orjson
over the whole body is as fast (a 1-row body is ~700 bytes)."""

_parsers = threading.local()


class _Undecided(Exception):
    """The split parse cannot decide this body; the whole-body paths will."""


def _split_data(body: bytes) -> tuple[bytes, np.ndarray] | None:
    """(the body with its data array emptied, that array's numbers as float64), or None when
    the array cannot be located or holds anything but JSON numbers a double can hold."""
    span = _flat_data_span(body)
    if span is None:
        return None
    start, end = span
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = simdjson.Parser()
    try:
        numbers = parser.parse(body[start - 1 : end + 1]).as_buffer(of_type="d")
    except (ValueError, TypeError, RuntimeError):
        return None
    return body[:start] + body[end:], np.frombuffer(numbers, dtype=np.float64)


# --------------------------------------------------------------------------------------- /predict


def predict_example(features: int) -> str:
    return f'{{"instances": [[<{features} numbers>], ...]}}'


def parse_predict(body: bytes, features: int) -> np.ndarray:
    """`{"instances": [[f1..fn], ...]}` -> float32 [rows, features]; raise InvalidInput."""
    expected = predict_example(features)
    doc = _loads(body, expected)
    if type(doc) is not dict:
        raise InvalidInput(
            f"request body must be a JSON object, got {_kind(doc)}; expected {expected}"
        )
    if "instances" not in doc:
        raise InvalidInput(f"missing field 'instances'; expected {expected}")
    if len(doc) != 1:
        extra = sorted(k for k in doc if k != "instances")
        raise InvalidInput(
            f"unknown field(s) {extra}; the only field is 'instances', as in {expected}"
        )
    # The body's first two quotes delimit the one key, so a third one is a string in the data. JSON
    # numbers never contain 'u' (true) or 'f' (false), and neither does the key. Single-byte
    # searches run at memchr speed: this costs ~1 us for 100 rows, where _has_bool costs ~50 us.
    key_end = body.find(b'"', body.find(b'"') + 1)
    fast = body.find(b'"', key_end + 1) == -1 and b"u" not in body and b"f" not in body
    return to_matrix(doc["instances"], features, "instances", fast=fast)


def to_matrix(value: Any, features: int, path: str, fast: bool = False) -> np.ndarray:
    """A JSON list of rows -> C-contiguous float32 [rows, features]; raise InvalidInput.

    ``fast=True`` allows the numpy fast path: pass it only when ``value`` is known to hold no
    strings and no booleans (see the module docstring).
    """
    if type(value) is not list:
        raise InvalidInput(
            f"'{path}' must be a list of rows, got {_kind(value)}; expected "
            f"[[<{features} numbers>], ...]"
        )
    if not value:
        raise InvalidInput(f"'{path}' is empty; send at least one row of {features} numbers")
    if fast:
        arr = _fast_float32(value)
        if arr is not None and arr.ndim == 2 and arr.shape[1] == features:
            return arr
    return _exact_matrix(value, features, path)


_EXACT_INT = float(2**53)
"""Below this magnitude float64 holds every integer exactly, so float64 -> float32 rounds once,
as the exact path's conversion does."""


def _fast_float32(value: list, limit: float = F32_MAX) -> np.ndarray | None:
    """numpy's conversion to float32, or None when it fails or meets a value at or beyond
    ``limit`` (or 2**53), NaN or null.

    Through float64, which no JSON number overflows, so the range check needs no errstate (~3 us
    per request) and NaN fails the comparison. Values at or beyond the bound are left to the exact
    path (which also accepts F32_MAX itself, and decimals slightly above it that round to it).
    """
    try:
        arr = np.array(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None
    return _float32_within(arr, limit)


def _float32_within(arr: np.ndarray, limit: float) -> np.ndarray | None:
    """float64 values -> float32, or None when one is at or beyond ``limit`` (or 2**53) or NaN."""
    if arr.size == 0 or not np.abs(arr).max() < min(limit, _EXACT_INT):
        return None
    return arr.astype(np.float32)


def _exact_matrix(rows: list, features: int, path: str) -> np.ndarray:
    out = np.empty((len(rows), features), dtype=np.float32)
    for i, row in enumerate(rows):
        if type(row) is not list:
            raise InvalidInput(
                f"'{path}[{i}]' must be a list of {features} numbers, got {_kind(row)} {_show(row)}"
            )
        if len(row) != features:
            raise InvalidInput(
                f"'{path}[{i}]' has {len(row)} values; expected {features}, one per feature "
                "(GET /v2/models/<name> lists the feature names)"
            )
        for j, v in enumerate(row):
            _check_number(v, f"{path}[{i}][{j}]", -F32_MAX, F32_MAX, False, "FP32")
        out[i] = row
    return out


def _check_number(v: Any, where: str, lo: float, hi: float, integral: bool, dtype: str) -> None:
    t = type(v)
    if t is not int and t is not float:
        raise InvalidInput(f"'{where}' is {_kind(v)} {_show(v)}; expected a number")
    if integral and t is float and not v.is_integer():
        raise InvalidInput(f"'{where}' is {v!r}; datatype {dtype} needs whole numbers")
    if not lo <= v <= hi:
        raise InvalidInput(
            f"'{where}' is {v!r}, outside the range of {dtype} ({_fmt(lo)} to {_fmt(hi)}); "
            "the model takes float32 features: send values within that range"
        )


def _fmt(x: float) -> str:
    return f"{x:.7g}" if isinstance(x, float) else str(x)


def encode_predict(probabilities: np.ndarray) -> bytes:
    """`{"predictions": [label, ...], "probabilities": [[p, ...], ...]}`."""
    return orjson.dumps(
        {"predictions": probabilities.argmax(axis=1), "probabilities": probabilities}, option=_JSON
    )


# ------------------------------------------------------------------------------- OIP v2 /infer


def infer_example(features: int, input_name: str) -> str:
    return (
        f'{{"inputs": [{{"name": "{input_name}", "shape": [<rows>, {features}], '
        f'"datatype": "FP32", "data": [<rows x {features} numbers>]}}]}}'
    )


def parse_infer(
    body: bytes, features: int, input_name: str, header_length: bytes | None = None
) -> InferRequest:
    """Validate an OIP v2 inference request body; raise InvalidInput naming the bad field.

    ``header_length`` is the raw value of the request's Inference-Header-Content-Length header
    (binary tensor extension), None when the request has none.
    """
    binary = None
    if header_length is not None:
        body, binary = split_body(body, header_length)
    elif len(body) >= SPLIT_MIN_BYTES and (split := _split_data(body)) is not None:
        head, numbers = split
        try:
            return _infer_request(orjson.loads(head), features, input_name, True, None, numbers)
        except (_Undecided, InvalidInput, orjson.JSONDecodeError):
            pass  # the whole body, through the exact rules, decides and names the problem
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = _loads(body, infer_example(features, input_name))  # raises, naming the problem
    fast = type(doc) is dict and _plain_flat_data(body)
    if fast is None:
        # Quotes beyond those of the strings outside the data mean strings inside it.
        fast = not _has_bool(body) and body.count(b'"') == 2 * _strings_outside_data(doc)
    return _infer_request(doc, features, input_name, fast, binary)


def _infer_request(
    doc: Any,
    features: int,
    input_name: str,
    fast: bool,
    binary: BinaryReader | None,
    numbers: np.ndarray | None = None,
) -> InferRequest:
    """The parsed document -> InferRequest; ``numbers``: inputs[0].data, parsed apart (whose
    place in ``doc`` holds an empty list)."""
    if type(doc) is not dict:
        raise InvalidInput(
            f"request body must be a JSON object, got {_kind(doc)}; expected "
            + infer_example(features, input_name)
        )
    if not _INFER_KEYS.issuperset(doc):
        unknown = sorted(set(doc) - _INFER_KEYS)
        raise InvalidInput(
            f"unknown field(s) {unknown}; allowed fields: id, parameters, inputs, outputs "
            "(and model_name, which must name the model in the URL)"
        )
    req_id = doc.get("id")
    if req_id is not None and type(req_id) is not str:
        raise InvalidInput(f"'id' must be a string, got {_kind(req_id)} {_show(req_id)}")
    model_name = doc.get("model_name")
    if model_name is not None and type(model_name) is not str:
        raise InvalidInput(f"'model_name' must be a string, got {_kind(model_name)}")
    parameters = doc.get("parameters", {})
    if type(parameters) is not dict:
        raise InvalidInput(f"'parameters' must be an object, got {_kind(parameters)}")
    binary_default = parameters.get("binary_data_output", False)
    if type(binary_default) is not bool:
        raise InvalidInput(
            f"'parameters.binary_data_output' is {_show(binary_default)}; expected true or false"
        )
    if "inputs" not in doc:
        raise InvalidInput(
            f"missing field 'inputs'; expected {infer_example(features, input_name)}"
        )
    inputs = doc["inputs"]
    if type(inputs) is not list or len(inputs) != 1:
        got = f"{len(inputs)} tensors" if type(inputs) is list else _kind(inputs)
        raise InvalidInput(
            f"'inputs' must be a list holding exactly one tensor ('{input_name}'), got {got}"
        )
    x = _parse_tensor(inputs[0], features, input_name, fast, binary, numbers)
    if binary is not None:
        binary.finish()
    outputs, binary_outputs = _parse_outputs(doc.get("outputs"), binary_default)
    return InferRequest(
        x=x, id=req_id, outputs=outputs, binary_outputs=binary_outputs, model_name=model_name
    )


def _count_strings(value: Any) -> int:
    """JSON strings in ``value``, object keys included."""
    t = type(value)
    if t is str:
        return 1
    if t is not dict and t is not list:
        return 0
    total = len(value) if t is dict else 0
    for item in value.values() if t is dict else value:
        if type(item) in _NESTED:
            total += _count_strings(item)
    return total


_NESTED = (str, dict, list)


def _strings_outside_data(doc: dict) -> int:
    """JSON strings (keys included) in an OIP request apart from inputs[0].data."""
    total = len(doc)
    for key, value in doc.items():
        if key == "inputs" and type(value) is list and value and type(value[0]) is dict:
            tensor = value[0]
            total += len(tensor)
            for k, v in tensor.items():
                if k != "data":
                    total += _count_strings(v)
            for other in value[1:]:
                total += _count_strings(other)
        else:
            total += _count_strings(value)
    return total


def _parse_tensor(
    tensor: Any,
    features: int,
    input_name: str,
    fast: bool,
    binary: BinaryReader | None = None,
    numbers: np.ndarray | None = None,
) -> np.ndarray:
    where = "inputs[0]"
    if type(tensor) is not dict:
        raise InvalidInput(
            f"'{where}' must be an object with name, shape, datatype, data; got {_kind(tensor)}"
        )
    if not _TENSOR_KEYS.issuperset(tensor):
        unknown = sorted(set(tensor) - _TENSOR_KEYS)
        raise InvalidInput(
            f"unknown field(s) {unknown} in '{where}'; "
            "allowed: name, shape, datatype, parameters, data"
        )
    parameters = tensor.get("parameters", {})
    if type(parameters) is not dict:
        raise InvalidInput(f"'{where}.parameters' must be an object, got {_kind(parameters)}")
    if "binary_data_size" in parameters:
        return _binary_tensor(tensor, features, input_name, binary)
    if "data" not in tensor:
        _explain_missing_data(parameters, features, input_name)
    for key in ("name", "shape", "datatype"):
        if key not in tensor:
            raise InvalidInput(
                f"missing field '{where}.{key}'; expected a tensor like "
                f'{{"name": "{input_name}", "shape": [<rows>, {features}], '
                '"datatype": "FP32", "data": [...]}'
            )
    if type(tensor["name"]) is not str:
        raise InvalidInput(f"'{where}.name' must be a string, got {_kind(tensor['name'])}")
    datatype = tensor["datatype"]
    if datatype not in DATATYPE_RANGES:
        raise InvalidInput(
            f"'{where}.datatype' is {_show(datatype)}; allowed: {', '.join(DATATYPE_RANGES)} "
            "(numeric; FP32 matches the model)"
        )
    shape = tensor["shape"]
    if (
        type(shape) is not list
        or len(shape) != 2
        or type(shape[0]) is not int
        or type(shape[1]) is not int
        or shape[0] < 1
        or shape[1] != features
    ):
        raise InvalidInput(
            f"'{where}.shape' is {_show(shape)}; expected [<rows>, {features}] with rows >= 1"
        )
    rows = shape[0]
    lo, hi, integral = DATATYPE_RANGES[datatype]
    data = tensor["data"]
    if type(data) is not list:
        raise InvalidInput(f"'{where}.data' must be a list of numbers, got {_kind(data)}")
    if numbers is not None:
        # Parsed apart (split parse): only the float rules can be decided without the values.
        arr = None if integral else _float32_within(numbers, hi)
        if arr is None:
            raise _Undecided
    # Integer datatypes take the exact path: float32 cannot tell 16777217 from 16777216.
    elif fast and not integral:
        arr = _fast_float32(data, hi)
    else:
        arr = None
    if arr is None:
        arr = _exact_data(data, shape, f"{where}.data", lo, hi, integral, datatype)
    elif arr.ndim != 1 and list(arr.shape) != shape:
        raise InvalidInput(
            f"'{where}.data' is nested as {list(arr.shape)} but shape is {shape}; send it flat "
            "(row-major) or nested exactly as the shape"
        )
    if arr.size != rows * features:
        raise InvalidInput(
            f"'{where}.data' has {arr.size} values but shape {shape} needs {rows * features}"
        )
    return arr.reshape(rows, features)


def _binary_tensor(
    tensor: dict, features: int, input_name: str, binary: BinaryReader | None
) -> np.ndarray:
    """An input sent as raw bytes after the JSON header (binary tensor extension)."""
    where = "inputs[0]"
    size = tensor["parameters"]["binary_data_size"]
    if binary is None:
        raise InvalidInput(
            f"'{where}.parameters.binary_data_size' is set but the request has no "
            "Inference-Header-Content-Length header; binary tensor data needs that header (the "
            "length of the JSON that starts the body), or send the values in 'data'"
        )
    if type(size) is not int or size < 0:
        raise InvalidInput(
            f"'{where}.parameters.binary_data_size' is {_show(size)}; expected the input's "
            "length in bytes, a whole number >= 0"
        )
    if "data" in tensor:
        raise InvalidInput(
            f"'{where}' has both 'data' and parameters.binary_data_size; send its values one "
            "way only"
        )
    for key in ("name", "shape", "datatype"):
        if key not in tensor:
            raise InvalidInput(
                f"missing field '{where}.{key}'; a binary input looks like "
                f'{{"name": "{input_name}", "shape": [<rows>, {features}], "datatype": "FP32", '
                '"parameters": {"binary_data_size": <rows x ' + str(features) + " x 4>}}"
            )
    if type(tensor["name"]) is not str:
        raise InvalidInput(f"'{where}.name' must be a string, got {_kind(tensor['name'])}")
    datatype = check_datatype(tensor["datatype"], where)
    shape = check_shape(tensor["shape"], where)
    label = f"'{where}' ('{tensor['name']}')"
    raw = binary.take(size, label)
    array = decode_raw(raw, datatype, shape, label)
    return to_features(array, datatype, features, input_name, label)


def _explain_missing_data(parameters: dict, features: int, input_name: str) -> None:
    if any(key.startswith("shared_memory") for key in parameters):
        raise InvalidInput(
            "'inputs[0].parameters' refers to shared memory; the shared-memory extension is not "
            "served here: send the values in 'data' or as binary data (binary_data_size)"
        )
    raise InvalidInput(
        "missing field 'inputs[0].data'; expected a tensor like "
        f'{{"name": "{input_name}", "shape": [<rows>, {features}], '
        '"datatype": "FP32", "data": [...]}, or parameters.binary_data_size with the '
        "Inference-Header-Content-Length header (binary tensor extension)"
    )


def _exact_data(
    data: list, shape: list[int], where: str, lo: float, hi: float, integral: bool, dtype: str
) -> np.ndarray:
    """Check ``data`` value by value: flat (row-major) numbers, or nested exactly as ``shape``."""
    rows, features = shape
    if data and all(type(item) is list for item in data):
        if len(data) != rows:
            raise InvalidInput(f"'{where}' is nested with {len(data)} rows but shape is {shape}")
        flat = []
        for i, row in enumerate(data):
            if len(row) != features:
                raise InvalidInput(
                    f"'{where}[{i}]' has {len(row)} values but shape {shape} needs "
                    f"{features} per row"
                )
            for j, v in enumerate(row):
                _check_number(v, f"{where}[{i}][{j}]", lo, hi, integral, dtype)
            flat.extend(row)
        return np.array(flat, dtype=np.float32)
    for i, v in enumerate(data):
        if type(v) is list:
            raise InvalidInput(
                f"'{where}[{i}]' is a list among numbers; send the data flat (row-major) or "
                f"nested exactly as the shape {shape}"
            )
        _check_number(v, f"{where}[{i}]", lo, hi, integral, dtype)
    return np.array(data, dtype=np.float32)


def _parse_outputs(outputs: Any, binary_default: bool) -> tuple[tuple[str, ...], frozenset[str]]:
    """Requested output names in order, and those to return as raw bytes."""
    if outputs is None:
        return OUTPUT_NAMES, frozenset(OUTPUT_NAMES) if binary_default else frozenset()
    if type(outputs) is not list:
        raise InvalidInput(
            f"'outputs' must be a list of {{\"name\": ...}} objects, got {_kind(outputs)}"
        )
    names: list[str] = []
    binary: set[str] = set()
    for i, out in enumerate(outputs):
        if type(out) is not dict or type(out.get("name")) is not str:
            raise InvalidInput(
                f"'outputs[{i}]' must be an object with a string 'name', got {_show(out)}"
            )
        unknown = sorted(set(out) - {"name", "parameters"})
        if unknown:
            raise InvalidInput(
                f"unknown field(s) {unknown} in 'outputs[{i}]'; allowed: name, parameters"
            )
        parameters = out.get("parameters", {})
        if type(parameters) is not dict:
            raise InvalidInput(f"'outputs[{i}].parameters' must be an object")
        if out["name"] not in OUTPUT_NAMES:
            raise InvalidInput(
                f"'outputs[{i}].name' is {_show(out['name'])}; this model's outputs are "
                f"{', '.join(OUTPUT_NAMES)}"
            )
        if "classification" in parameters:
            raise InvalidInput(
                f"'outputs[{i}].parameters.classification' asks for the classification "
                "extension, which is not served; request 'label' (the top class index) and "
                "'probabilities' instead"
            )
        as_binary = parameters.get("binary_data", binary_default)
        if type(as_binary) is not bool:
            raise InvalidInput(
                f"'outputs[{i}].parameters.binary_data' is {_show(as_binary)}; "
                "expected true or false"
            )
        if out["name"] not in names:
            names.append(out["name"])
            if as_binary:
                binary.add(out["name"])
    if not names:
        return OUTPUT_NAMES, frozenset(OUTPUT_NAMES) if binary_default else frozenset()
    return tuple(names), frozenset(binary)


def encode_infer(
    probabilities: np.ndarray,
    model_name: str,
    model_version: str,
    req_id: str | None,
    outputs: Sequence[str] = OUTPUT_NAMES,
) -> bytes:
    """OIP v2 inference response with the requested output tensors."""
    rows, classes = probabilities.shape
    tensors = []
    for name in outputs:
        if name == "label":
            tensors.append(
                {
                    "name": "label",
                    "datatype": "INT64",
                    "shape": [rows],
                    "data": probabilities.argmax(axis=1),
                }
            )
        else:
            tensors.append(
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": [rows, classes],
                    "data": probabilities.reshape(-1),
                }
            )
    doc: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if req_id is not None:
        doc["id"] = req_id
    doc["outputs"] = tensors
    return orjson.dumps(doc, option=_JSON)


def non_finite_rows(probabilities: np.ndarray) -> list[int]:
    """Rows whose outputs hold NaN or infinity (empty when all are finite)."""
    # One reduction: a NaN or infinity anywhere makes the sum non-finite (a finite sum may also
    # overflow, and then the exact check below finds no row).
    if math.isfinite(probabilities.sum()):
        return []
    return np.flatnonzero(~np.isfinite(probabilities).all(axis=1)).tolist()
