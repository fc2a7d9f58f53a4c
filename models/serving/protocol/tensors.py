"""Open Inference Protocol datatypes, the raw tensor encoding, and this model's tensors.

Raw tensors (the REST binary extension's bytes after the JSON header; gRPC's
``raw_input_contents`` / ``raw_output_contents``) hold the elements row-major, little-endian,
unpadded. BOOL takes one byte per element; BYTES is, per element, a 4-byte little-endian length
followed by that many bytes.

Every model here takes one float32 matrix [rows, features] and returns ``label`` (INT64 [rows])
and ``probabilities`` (FP32 [rows, classes]); ``to_features`` and ``output_arrays`` convert
between those and the tensors a client sends or receives.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from serving.errors import InvalidInput

F32_MAX = float(np.finfo(np.float32).max)

DTYPES: dict[str, np.dtype | None] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": None,  # variable length: see the module docstring
}
"""OIP datatype name -> numpy dtype of its raw encoding (None for BYTES)."""

FEATURE_DATATYPES = tuple(name for name in DTYPES if name not in ("BOOL", "BYTES"))
"""Datatypes the model input accepts: numbers, converted to float32."""

OUTPUT_NAMES = ("label", "probabilities")
OUTPUT_DATATYPES = {"label": "INT64", "probabilities": "FP32"}

_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class InferRequest:
    """A validated OIP v2 inference request, whichever protocol carried it."""

    x: np.ndarray
    """float32 [rows, features]."""
    id: str | None
    """The client's request id, echoed in the response."""
    outputs: tuple[str, ...]
    """Requested output tensors, in order."""
    binary_outputs: frozenset[str] = frozenset()
    """REST: outputs to return as raw bytes (binary tensor extension); empty: plain JSON."""
    model_name: str | None = None
    """REST: the body's optional model_name (KServe's client sends one); must match the URL."""


def element_count(shape: Sequence[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def check_datatype(datatype: object, where: str) -> str:
    if datatype not in DTYPES:
        raise InvalidInput(
            f"'{where}.datatype' is {datatype!r}; OIP datatypes are {', '.join(DTYPES)} "
            "(FP32 matches the model)"
        )
    return datatype  # type: ignore[return-value]


def check_shape(shape: object, where: str) -> list[int]:
    if type(shape) is not list or any(type(d) is not int or not 0 <= d < 2**63 for d in shape):
        raise InvalidInput(
            f"'{where}.shape' is {shape!r}; expected a list of non-negative whole numbers"
        )
    if element_count(shape) >= 2**63:
        raise InvalidInput(f"'{where}.shape' {shape} has more elements than a tensor can hold")
    return shape


def decode_raw(raw: bytes | memoryview, datatype: str, shape: Sequence[int], where: str):
    """Raw bytes -> array of ``shape`` (BYTES: an object array of ``bytes``); raise InvalidInput.

    ``where`` names the tensor in messages, e.g. "inputs[0] ('input-0')".
    """
    count = element_count(shape)
    dtype = DTYPES[datatype]
    if dtype is None:
        return _decode_bytes(raw, count, shape, where)
    need = count * dtype.itemsize
    if len(raw) != need:
        raise InvalidInput(
            f"{where} has {len(raw)} bytes of raw data but shape {list(shape)} of {datatype} "
            f"needs {need} ({count} elements x {dtype.itemsize} bytes, little-endian)"
        )
    if dtype.kind == "b":
        values = np.frombuffer(raw, dtype=np.uint8)
        if values.size and values.max() > 1:
            bad = int(np.flatnonzero(values > 1)[0])
            raise InvalidInput(
                f"{where} element {bad} is byte {values[bad]}; BOOL elements are 0 or 1"
            )
        return _reshape(values.view(np.bool_), shape, where)
    return _reshape(np.frombuffer(raw, dtype=dtype), shape, where)


def _reshape(flat: np.ndarray, shape: Sequence[int], where: str) -> np.ndarray:
    try:
        return flat.reshape(shape)
    except ValueError as exc:  # e.g. an empty tensor with dimensions numpy cannot index
        raise InvalidInput(f"{where} cannot take shape {list(shape)}: {exc}") from None


def _decode_bytes(raw: bytes | memoryview, count: int, shape: Sequence[int], where: str):
    view = memoryview(raw)
    items: list[bytes] = []
    offset = 0
    while offset < len(view):
        if len(view) - offset < 4:
            raise InvalidInput(
                f"{where}: BYTES element {len(items)} starts at byte {offset} but only "
                f"{len(view) - offset} bytes remain, too few for its 4-byte length prefix"
            )
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if length > len(view) - offset:
            raise InvalidInput(
                f"{where}: BYTES element {len(items)} declares {length} bytes but only "
                f"{len(view) - offset} remain"
            )
        items.append(bytes(view[offset : offset + length]))
        offset += length
    if len(items) != count:
        raise InvalidInput(
            f"{where} holds {len(items)} BYTES elements but shape {list(shape)} needs {count}"
        )
    out = np.empty(count, dtype=object)
    out[:] = items
    return _reshape(out, shape, where)


def encode_raw(array: np.ndarray, datatype: str) -> bytes:
    """An array -> its raw OIP encoding as ``datatype``."""
    dtype = DTYPES[datatype]
    if dtype is None:
        return b"".join(_LENGTH.pack(len(item)) + bytes(item) for item in array.reshape(-1))
    return np.ascontiguousarray(array, dtype=dtype).tobytes()


def to_features(
    array: np.ndarray, datatype: str, features: int, input_name: str, where: str
) -> np.ndarray:
    """A decoded input tensor -> the model's C-contiguous float32 [rows, features].

    Refuses non-numeric datatypes, shapes other than [rows >= 1, features], and values float32
    cannot hold (NaN, infinity, beyond +-3.4e38), naming the first offending element.
    """
    if datatype not in FEATURE_DATATYPES:
        raise InvalidInput(
            f"{where} has datatype {datatype}; input '{input_name}' takes numbers: FP32 (or "
            f"{', '.join(d for d in FEATURE_DATATYPES if d != 'FP32')}, converted to FP32)"
        )
    shape = list(array.shape)
    if len(shape) != 2 or shape[0] < 1 or shape[1] != features:
        raise InvalidInput(
            f"{where} has shape {shape}; input '{input_name}' expects [<rows>, {features}] "
            "with rows >= 1"
        )
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if array.dtype.itemsize > 4:  # FP64 beyond float32's range would become infinity
            finite &= np.abs(array) <= F32_MAX
        if not finite.all():
            row, col = (int(i) for i in np.argwhere(~finite)[0])
            raise InvalidInput(
                f"{where} element [{row}][{col}] is {array[row, col].item()!r}; the model takes "
                f"finite float32 features (magnitude at most {F32_MAX:.7g})"
            )
    return np.ascontiguousarray(array, dtype=np.float32)


def output_arrays(
    probabilities: np.ndarray, names: Sequence[str]
) -> list[tuple[str, str, np.ndarray]]:
    """``(name, datatype, array)`` for each requested output, in the requested order."""
    out = []
    for name in names:
        if name == "label":
            out.append((name, "INT64", probabilities.argmax(axis=1).astype(np.int64)))
        else:
            out.append((name, "FP32", probabilities))
    return out
