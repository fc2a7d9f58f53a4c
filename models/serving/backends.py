"""Inference backends: ONNX Runtime (default) and the native frameworks (scikit-learn, Keras).

Every backend maps a C-contiguous float32 matrix [rows, features] to float32 class probabilities
[rows, classes]. Labels are the argmax, computed by the server, so all backends agree on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from serving.errors import ModelLoadError
from serving.manifest import ModelManifest


class Backend(Protocol):
    """What the server needs from a loaded model."""

    kind: str
    """'onnx' or 'native'."""
    platform: str
    """OIP metadata platform string, e.g. 'onnxruntime_onnx'."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities, float32 [rows, classes], for a float32 matrix [rows, features]."""
        ...


def onnx_session(path: Path, threads: int = 1):
    """An ONNX Runtime session configured as the server runs it (training's parity check uses it
    too, so the gate measures exactly what will be served)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning worker threads burn the one core a server pod gets for no gain.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxBackend:
    """ONNX Runtime session on the CPU execution provider."""

    kind = "onnx"
    platform = "onnxruntime_onnx"

    def __init__(self, manifest: ModelManifest, model_dir: Path, threads: int = 1) -> None:
        path = Path(model_dir) / manifest.onnx.file
        if not path.is_file():
            raise ModelLoadError(
                f"ONNX file {path} (manifest key onnx.file={manifest.onnx.file!r}) not found in "
                f"MODEL_DIR; re-run the model's training to produce it"
            )
        try:
            session = onnx_session(path, threads)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelLoadError(f"ONNX Runtime cannot load {path}: {exc}") from None
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        if manifest.input.onnx_name not in inputs:
            raise ModelLoadError(
                f"manifest input.onnx_name={manifest.input.onnx_name!r} is not an input of {path}; "
                f"the graph's inputs are {sorted(inputs)}"
            )
        width = inputs[manifest.input.onnx_name].shape[-1]
        if isinstance(width, int) and width != manifest.input.features:
            raise ModelLoadError(
                f"manifest input.features={manifest.input.features} but {path} expects "
                f"{width} columns"
            )
        if manifest.onnx.probabilities_output not in outputs:
            raise ModelLoadError(
                f"manifest onnx.probabilities_output={manifest.onnx.probabilities_output!r} "
                "is not an "
                f"output of {path}; the graph's outputs are {sorted(outputs)}"
            )
        self._session = session
        # The binding's run(), bound once: InferenceSession.run() re-validates the input names and
        # values on every call (~3 us), which the server has already checked against the manifest.
        self._run = getattr(session, "_sess", session).run
        self._input = manifest.input.onnx_name
        self._outputs = [manifest.onnx.probabilities_output]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self._run(self._outputs, {self._input: x}, None)[0]


class SklearnBackend:
    """scikit-learn estimator loaded with joblib; needs scikit-learn installed."""

    kind = "native"
    platform = "scikit-learn"

    def __init__(self, manifest: ModelManifest, model_dir: Path) -> None:
        try:
            import joblib
        except ImportError:
            raise ModelLoadError(_missing("scikit-learn", manifest)) from None
        path = Path(model_dir) / manifest.native.file
        if not path.is_file():
            raise ModelLoadError(f"native model file {path} (manifest key native.file) not found")
        self._model = joblib.load(path)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self._model.predict_proba(x), dtype=np.float32)


class KerasBackend:
    """Keras model compiled into a tf.function; needs TensorFlow installed."""

    kind = "native"
    platform = "tensorflow"

    def __init__(self, manifest: ModelManifest, model_dir: Path) -> None:
        try:
            import keras
            import tensorflow as tf
        except ImportError:
            raise ModelLoadError(_missing("TensorFlow", manifest)) from None
        path = Path(model_dir) / manifest.native.file
        if not path.is_file():
            raise ModelLoadError(f"native model file {path} (manifest key native.file) not found")
        model = keras.saving.load_model(path, compile=False)
        signature = [tf.TensorSpec((None, manifest.input.features), tf.float32)]
        # model.predict() costs ~55 ms per call in batching machinery; a traced function ~0.3 ms.
        self._call = tf.function(lambda x: model(x, training=False), input_signature=signature)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self._call(x).numpy(), dtype=np.float32)


def _missing(package: str, manifest: ModelManifest) -> str:
    return (
        f"INFERENCE_BACKEND=native for model '{manifest.name}' ({manifest.native.framework}) needs "
        f"{package}, which is not installed here: the slim runtime image serves through ONNX "
        f"Runtime only. Fix: unset INFERENCE_BACKEND (default 'onnx'), or run the model image's "
        f"'native' build target (docker build --target native), which has {package}."
    )


def load_backend(
    manifest: ModelManifest, model_dir: Path, kind: str, onnx_threads: int = 1
) -> Backend:
    """Load the model with the backend ``kind`` ('onnx' or 'native')."""
    if kind == "onnx":
        return OnnxBackend(manifest, model_dir, threads=onnx_threads)
    if kind == "native":
        if manifest.native.framework == "sklearn":
            return SklearnBackend(manifest, model_dir)
        return KerasBackend(manifest, model_dir)
    raise ModelLoadError(f"INFERENCE_BACKEND={kind!r} is not supported; allowed: 'onnx', 'native'")
