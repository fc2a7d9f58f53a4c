"""Drives the kserve package's own clients against a running server and prints what it saw as one
JSON document: `InferenceRESTClient` (protocol v2, JSON and binary tensors) and
`InferenceGRPCClient`.

test_interop.py runs it with the Python of KServe's venv (benchmarks/peers/.venv-kserve, made by
`scripts/bootstrap.sh kserve`): kserve 0.21.0 cannot be installed next to the repo's
kubernetes 37.0.2 (python-dateutil < 3 against >= 3).

    python kserve_client_probe.py '{"url": "http://127.0.0.1:8080", "grpc": "127.0.0.1:8081",
                                    "model": "m", "rows": [[...]]}'
"""

from __future__ import annotations

import asyncio
import json
import sys

import grpc
import httpx
import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


def _request(rows: np.ndarray, model: str, request_id: str, *, binary: bool) -> InferRequest:
    tensor = InferInput("input-0", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows.astype(np.float32), binary_data=binary)
    outputs = [RequestedOutput(n, {"binary_data": binary}) for n in ("label", "probabilities")]
    return InferRequest(
        model_name=model, infer_inputs=[tensor], request_id=request_id, request_outputs=outputs
    )


def _result(response) -> dict:
    outputs = {o.name: o for o in response.outputs}
    return {
        "id": response.id,
        "model_name": response.model_name,
        "label": outputs["label"].as_numpy().tolist(),
        "probabilities": outputs["probabilities"].as_numpy().tolist(),
    }


async def _rest(spec: dict, rows: np.ndarray) -> dict:
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
    url, model = spec["url"], spec["model"]
    report: dict = {
        "live": await client.is_server_live(url),
        "ready": await client.is_server_ready(url),
        "model_ready": await client.is_model_ready(url, model),
        "results": {},
    }
    for binary in (False, True):
        key = "binary" if binary else "json"
        request = _request(rows, model, f"kserve-rest-{key}", binary=binary)
        headers: dict = {}
        response = await client.infer(url, request, model_name=model, response_headers=headers)
        # The client decodes binary outputs and drops their binary_data_size; the header tells.
        binary_json_length = headers.get("inference-header-content-length")
        report["results"][key] = _result(response) | {"binary_json_length": binary_json_length}
    narrow = _request(np.zeros((1, 2), np.float32), model, "narrow", binary=False)
    try:
        await client.infer(url, narrow, model_name=model)
        report["error"] = {"status": None, "message": "no error"}
    except httpx.HTTPStatusError as exc:
        report["error"] = {"status": exc.response.status_code, "message": exc.response.text}
    await client.close()
    return report


async def _grpc(spec: dict, rows: np.ndarray) -> dict:
    client = InferenceGRPCClient(spec["grpc"], retries=0, timeout=30)
    model = spec["model"]
    report: dict = {
        "live": await client.is_server_live(),
        "ready": await client.is_server_ready(),
        "model_ready": await client.is_model_ready(model),
    }
    response = await client.infer(_request(rows, model, "kserve-grpc", binary=False))
    report["result"] = _result(response)
    narrow = _request(np.zeros((1, 2), np.float32), model, "narrow", binary=False)
    try:
        await client.infer(narrow)
        report["error"] = {"status": None, "message": "no error"}
    except grpc.RpcError as exc:
        report["error"] = {"status": exc.code().name, "message": exc.details()}
    await client.close()
    return report


async def main(spec: dict) -> dict:
    rows = np.asarray(spec["rows"], dtype=np.float32)
    return {"rest": await _rest(spec, rows), "grpc": await _grpc(spec, rows)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
