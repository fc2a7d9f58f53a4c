"""Peer: MLServer 1.7 with an ONNX Runtime custom runtime (MLServer has no ONNX runtime of its own).

A model folder's model-settings.json names ``mlserver_onnx.OnnxModel`` as its implementation and
the ONNX file as ``parameters.uri``; this folder must be on PYTHONPATH. The runtime is MLServer's
documented custom-runtime shape: load() builds the session, predict() decodes the request's first
input with NumpyCodec and encodes the graph's outputs the same way (REST JSON and gRPC).
"""

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri
from ort_session import onnx_session, output_names


class OnnxModel(MLModel):
    async def load(self) -> bool:
        self.session = onnx_session(await get_model_uri(self._settings))
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = output_names(self.session)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = self.decode(payload.inputs[0], default_codec=NumpyCodec)
        results = self.session.run(self.output_names, {self.input_name: x})
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output(name, array)
                for name, array in zip(self.output_names, results, strict=True)
            ],
        )
