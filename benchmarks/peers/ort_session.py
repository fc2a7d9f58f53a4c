"""The ONNX Runtime session every ONNX peer serves with: the model server's own settings.

One intra-op thread, sequential execution, no spinning: the server process is pinned to one core
(as models/serving/backends.py runs it), so each peer runs the same ONNX file the same way and the
benchmark compares the servers, not their session options.
"""

import onnxruntime as ort


def onnx_session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def output_names(session: ort.InferenceSession) -> list[str]:
    """The graph's outputs, e.g. ['label', 'probabilities'] for the skl2onnx forest."""
    return [o.name for o in session.get_outputs()]
