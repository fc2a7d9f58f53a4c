"""``ModelInferRequest`` -> ``InferRequest`` and probabilities -> ``ModelInferResponse``.

Inputs come as typed ``contents`` (the field chosen by the datatype) or as
``raw_input_contents`` (one raw tensor per input, see ``serving.protocol.tensors``); outputs always
go back raw, as Triton answers, which every OIP client reads.
"""

from __future__ import annotations

import numpy as np

from serving.errors import InvalidInput
from serving.protocol.grpc import grpc_predict_v2_pb2 as pb
from serving.protocol.tensors import (
    DTYPES,
    OUTPUT_NAMES,
    InferRequest,
    check_datatype,
    check_shape,
    decode_raw,
    element_count,
    encode_raw,
    output_arrays,
    to_features,
)

CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
"""Datatype -> the InferTensorContents field that carries it (FP16 has none: raw only)."""

_FIELD_DTYPE = {
    "bool_contents": np.bool_,
    "int_contents": np.int32,
    "int64_contents": np.int64,
    "uint_contents": np.uint32,
    "uint64_contents": np.uint64,
    "fp32_contents": np.float32,
    "fp64_contents": np.float64,
}


def parse_model_infer(
    request: pb.ModelInferRequest, features: int, input_name: str
) -> InferRequest:
    """Validate a ModelInferRequest's tensors; raise InvalidInput naming the bad field."""
    inputs = request.inputs
    if len(inputs) != 1:
        raise InvalidInput(
            f"'inputs' must hold exactly one tensor ('{input_name}'), got {len(inputs)}"
        )
    tensor = inputs[0]
    where = "inputs[0]"
    label = f"'{where}' ('{tensor.name}')"
    datatype = check_datatype(tensor.datatype, where)
    shape = check_shape(list(tensor.shape), where)
    raw = request.raw_input_contents
    if raw:
        if len(raw) != len(inputs):
            raise InvalidInput(
                f"'raw_input_contents' has {len(raw)} entries for {len(inputs)} input(s); send "
                "one raw tensor per input, in input order"
            )
        if tensor.contents.ListFields():
            raise InvalidInput(
                f"{label} has both contents and raw_input_contents; send its values one way only"
            )
        array = decode_raw(raw[0], datatype, shape, label)
    else:
        array = _typed_contents(tensor.contents, datatype, shape, label)
    x = to_features(array, datatype, features, input_name, label)
    return InferRequest(x=x, id=request.id or None, outputs=_requested_outputs(request.outputs))


def _typed_contents(
    contents: pb.InferTensorContents, datatype: str, shape: list[int], label: str
) -> np.ndarray:
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInput(
            f"{label} has datatype {datatype}, which has no typed contents field; send it in "
            "raw_input_contents"
        )
    others = [f.name for f, _ in contents.ListFields() if f.name != field]
    if others:
        raise InvalidInput(
            f"{label} has datatype {datatype} but carries {', '.join(others)}; {datatype} values "
            f"go in contents.{field}"
        )
    values = getattr(contents, field)
    count = element_count(shape)
    if len(values) != count:
        raise InvalidInput(
            f"{label} has {len(values)} values in contents.{field} but shape {shape} needs {count}"
        )
    if field == "bytes_contents":
        array = np.empty(count, dtype=object)
        array[:] = list(values)
        return array.reshape(shape)
    array = np.array(values, dtype=_FIELD_DTYPE[field])
    target = DTYPES[datatype]
    if target is not None and target.kind in "iu" and target.itemsize < array.dtype.itemsize:
        info = np.iinfo(target)
        outside = (array < info.min) | (array > info.max)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise InvalidInput(
                f"{label} element {i} is {array[i]}, outside the range of {datatype} "
                f"({info.min} to {info.max})"
            )
    try:
        return array.reshape(shape)
    except ValueError as exc:
        raise InvalidInput(f"{label} cannot take shape {shape}: {exc}") from None


def _requested_outputs(outputs) -> tuple[str, ...]:
    names: list[str] = []
    for i, out in enumerate(outputs):
        if out.name not in OUTPUT_NAMES:
            raise InvalidInput(
                f"'outputs[{i}].name' is {out.name!r}; this model's outputs are "
                f"{', '.join(OUTPUT_NAMES)}"
            )
        if "classification" in out.parameters:
            raise InvalidInput(
                f"'outputs[{i}].parameters.classification' asks for the classification "
                "extension, which is not served; request 'label' (the top class index) and "
                "'probabilities' instead"
            )
        if out.name not in names:
            names.append(out.name)
    return tuple(names) if names else OUTPUT_NAMES


def encode_model_infer(
    probabilities: np.ndarray,
    model_name: str,
    model_version: str,
    req_id: str | None,
    outputs: tuple[str, ...],
) -> pb.ModelInferResponse:
    """The response, each requested output as a raw tensor."""
    response = pb.ModelInferResponse(
        model_name=model_name, model_version=model_version, id=req_id or ""
    )
    for name, datatype, array in output_arrays(probabilities, outputs):
        response.outputs.add(name=name, datatype=datatype, shape=array.shape)
        response.raw_output_contents.append(encode_raw(array, datatype))
    return response
