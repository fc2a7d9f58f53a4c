"""Drives tritonclient.grpc against a running server and prints what it saw as one JSON document.

test_interop.py runs it in a subprocess: Triton's client registers the same protobuf message
names (`inference.*`) as the server's own stubs, which the test process imports, and protobuf
refuses a second definition of a name in one process.

    python triton_grpc_probe.py '{"target": "127.0.0.1:8081", "model": "m", "rows": [[...]]}'
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException


def _error(call) -> dict:
    try:
        call()
    except InferenceServerException as exc:
        return {"status": exc.status(), "message": exc.message()}
    return {"status": None, "message": "no error"}


def main(spec: dict) -> dict:
    client = grpcclient.InferenceServerClient(spec["target"])
    model = spec["model"]
    rows = np.asarray(spec["rows"], dtype=np.float64)
    report: dict = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "server_metadata": client.get_server_metadata(as_json=True),
        "model_metadata": client.get_model_metadata(model, as_json=True),
        "results": {},
    }
    for datatype in ("FP32", "FP64"):
        tensor = grpcclient.InferInput("input-0", list(rows.shape), datatype)
        tensor.set_data_from_numpy(rows.astype(np.float32 if datatype == "FP32" else np.float64))
        result = client.infer(model, [tensor], request_id=f"triton-{datatype}")
        report["results"][datatype] = {
            "id": result.get_response().id,
            "label": result.as_numpy("label").tolist(),
            "probabilities": result.as_numpy("probabilities").tolist(),
        }
    one = grpcclient.InferInput("input-0", [1, rows.shape[1]], "FP32")
    one.set_data_from_numpy(rows[:1].astype(np.float32))
    only = client.infer(model, [one], outputs=[grpcclient.InferRequestedOutput("probabilities")])
    report["selected_outputs"] = [o.name for o in only.get_response().outputs]
    narrow = grpcclient.InferInput("input-0", [1, 2], "FP32")
    narrow.set_data_from_numpy(np.zeros((1, 2), np.float32))
    report["errors"] = {
        "shape": _error(lambda: client.infer(model, [narrow])),
        "model": _error(lambda: client.infer("no-such-model", [one])),
    }
    return report


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
