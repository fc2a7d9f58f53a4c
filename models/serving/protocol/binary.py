"""The Open Inference Protocol's REST binary tensor extension, as Triton and KServe implement it.

A request with the header ``Inference-Header-Content-Length: N`` carries its JSON document in the
body's first N bytes and raw tensor bytes (``serving.protocol.tensors``) after it. An input sent
that way has ``parameters.binary_data_size`` instead of ``data``; the inputs' bytes follow one
another in input order, and nothing else may follow them.

Outputs come back raw when a requested output has ``parameters.binary_data: true`` or, for outputs
without that parameter, when the request has ``parameters.binary_data_output: true``. The response
then carries the same header; each raw output has ``parameters.binary_data_size`` instead of
``data`` and its bytes follow the JSON in output order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson

from serving.errors import InvalidInput
from serving.protocol.tensors import encode_raw, output_arrays

HEADER = "Inference-Header-Content-Length"
HEADER_KEY = HEADER.lower().encode()
"""The header's name as ASGI scopes carry it (lower-case bytes)."""

_JSON = orjson.OPT_SERIALIZE_NUMPY


class BinaryReader:
    """Hands out the raw bytes after the JSON header, input by input, in order."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._offset = 0

    def take(self, size: int, where: str) -> memoryview:
        left = len(self._data) - self._offset
        if size > left:
            raise InvalidInput(
                f"{where} has parameters.binary_data_size {size} but only {left} bytes of binary "
                f"data are left after the JSON header ({HEADER}) and the inputs before it"
            )
        chunk = self._data[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def finish(self) -> None:
        left = len(self._data) - self._offset
        if left:
            raise InvalidInput(
                f"the body has {left} bytes beyond the JSON header and the {self._offset} bytes "
                "the inputs' parameters.binary_data_size add up to; every byte after the header "
                "must belong to an input"
            )


def split_body(body: bytes, header_length: bytes) -> tuple[bytes, BinaryReader]:
    """Split a binary-extension body at ``header_length`` (the raw header value)."""
    if not header_length.isdigit():  # ASCII digits only: no sign, space or exponent
        raise InvalidInput(
            f"header {HEADER} is {header_length.decode('latin-1')!r}; expected the length in "
            f"bytes of the JSON that starts the body, a whole number from 1 to {len(body)} "
            "(the body's length)"
        )
    n = int(header_length)
    if not 1 <= n <= len(body):
        raise InvalidInput(
            f"header {HEADER} is {n} but the body has {len(body)} bytes; it must be the length "
            f"in bytes of the JSON that starts the body (1 to {len(body)})"
        )
    return body[:n], BinaryReader(memoryview(body)[n:])


def encode_infer_binary(
    probabilities: np.ndarray,
    model_name: str,
    model_version: str,
    req_id: str | None,
    outputs: Sequence[str],
    binary_outputs: frozenset[str],
) -> tuple[bytes, int]:
    """OIP v2 response with the ``binary_outputs`` raw; returns (body, JSON header length)."""
    tensors, chunks = [], []
    for name, datatype, array in output_arrays(probabilities, outputs):
        tensor = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if name in binary_outputs:
            raw = encode_raw(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = array.reshape(-1)
        tensors.append(tensor)
    doc: dict = {"model_name": model_name, "model_version": model_version}
    if req_id is not None:
        doc["id"] = req_id
    doc["outputs"] = tensors
    header = orjson.dumps(doc, option=_JSON)
    return header + b"".join(chunks), len(header)
