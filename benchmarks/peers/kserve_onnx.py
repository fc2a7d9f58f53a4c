"""Peer: KServe's Python ModelServer with an ONNX Runtime model class (KServe 0.21).

    MODEL_NAME=ml_model_1 MODEL_PATH=.../model.onnx HTTP_PORT=8080 GRPC_PORT=8081 \
        python kserve_onnx.py

The model class is what KServe's docs show for a custom runtime: load() builds the session,
predict() takes the decoded InferRequest and answers an InferResponse with the graph's outputs
(REST JSON, the REST binary tensor extension and gRPC all go through KServe's own codecs). One
uvicorn worker; the per-request access and latency log lines are turned off, as the model server's
are by default, so the run measures serving rather than logging.
"""

import logging
import os

import kserve
from kserve import InferOutput, InferRequest, InferResponse
from kserve.utils.utils import from_np_dtype, generate_uuid
from ort_session import onnx_session, output_names


class OnnxModel(kserve.Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        self.session = onnx_session(self.path)
        self.input = self.session.get_inputs()[0].name
        self.outputs = output_names(self.session)
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        x = payload.inputs[0].as_numpy()
        results = self.session.run(self.outputs, {self.input: x})
        binary = payload.use_binary_outputs
        outputs = []
        for name, array in zip(self.outputs, results, strict=True):
            out = InferOutput(
                name=name, shape=list(array.shape), datatype=from_np_dtype(array.dtype)
            )
            out.set_data_from_numpy(array, binary_data=binary)
            outputs.append(out)
        return InferResponse(
            model_name=self.name,
            infer_outputs=outputs,
            response_id=payload.id or generate_uuid(),
            use_binary_outputs=binary,
            requested_outputs=payload.request_outputs,
        )


if __name__ == "__main__":
    model = OnnxModel(os.environ["MODEL_NAME"], os.environ["MODEL_PATH"])
    server = kserve.ModelServer(
        http_port=int(os.environ["HTTP_PORT"]),
        grpc_port=int(os.environ["GRPC_PORT"]),
        workers=1,
        enable_latency_logging=False,
    )
    for name in ("uvicorn.access", "kserve.trace"):  # a line (two for kserve.trace) per request
        logging.getLogger(name).setLevel(logging.WARNING)
    server.start([model])
