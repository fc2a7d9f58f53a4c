"""Peer: NVIDIA Triton Inference Server through PyTriton (its Python backend), ONNX Runtime inside.

    MODEL_NAME=ml_model_1 MODEL_PATH=.../model.onnx HTTP_PORT=8000 GRPC_PORT=8001 \
        METRICS_PORT=8002 [TRITON_WORKSPACE=DIR] python pytriton_onnx.py

PyTriton starts the tritonserver binary its wheel ships; every request goes tritonserver -> its
Python backend stub -> this process (over shared memory), which runs the ONNX session. Triton
serves the REST JSON, REST binary and gRPC endpoints itself. The model has no batching
(shapes [-1, features] in, [-1] and [-1, classes] out, as the model server declares them).
"""

import os
import sysconfig

import numpy as np
from ort_session import onnx_session, output_names
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

# Triton's names for ONNX Runtime's element types.
DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64}


def stub_libpython() -> None:
    """Make Triton's Python backend stub load this interpreter's libpython.

    The stub links plain ``libpython3.11.so.1.0`` and so finds the system's (Debian: 3.11.2) while
    it runs this venv's standard library (pyenv: 3.11.7), whose multiprocessing calls an RLock
    method 3.11.2 lacks; the model then fails to load. The interpreter's own library comes first
    on LD_LIBRARY_PATH, which tritonserver and the stub inherit.
    """
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        libdir = sysconfig.get_config_var("LIBDIR")
        os.environ["LD_LIBRARY_PATH"] = ":".join(
            p for p in (libdir, os.environ.get("LD_LIBRARY_PATH")) if p
        )


def main() -> None:
    stub_libpython()
    session = onnx_session(os.environ["MODEL_PATH"])
    graph_input = session.get_inputs()[0]
    outputs = output_names(session)
    features = graph_input.shape[-1]

    def infer(requests):
        responses = []
        for request in requests:
            x = next(iter(request.values()))  # the one input, whatever the client named it
            results = session.run(outputs, {graph_input.name: x})
            responses.append(dict(zip(outputs, results, strict=True)))
        return responses

    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=int(os.environ["HTTP_PORT"]),
        grpc_address="127.0.0.1",
        grpc_port=int(os.environ["GRPC_PORT"]),
        metrics_port=int(os.environ["METRICS_PORT"]),
        log_verbose=0,
    )
    # The bench's own folder (removed after the run): a killed PyTriton leaves its workspace.
    with Triton(config=config, workspace=os.environ.get("TRITON_WORKSPACE")) as triton:
        triton.bind(
            model_name=os.environ["MODEL_NAME"],
            infer_func=infer,
            inputs=[Tensor(name="input-0", dtype=np.float32, shape=(-1, features))],
            outputs=[
                Tensor(name=o.name, dtype=DTYPES[o.type], shape=(-1,) * len(o.shape))
                for o in session.get_outputs()
            ],
            config=ModelConfig(batching=False),
        )
        triton.serve()


if __name__ == "__main__":
    main()
