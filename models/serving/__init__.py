"""The one shared model server runtime: ONNX Runtime behind Starlette, speaking the Open Inference
Protocol v2 REST API plus a plain JSON /predict; also the batch scorer (`python -m serving.batch`)
and what every model's training shares: its command line (`serving.training`), the quality
gates and the model directory (`serving.export`). The same process serves the protocol's
gRPC service (`serving.grpc_server`). Every model image copies this package."""

__version__ = "0.1.0"
