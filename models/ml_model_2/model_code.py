"""ml_model_2: a small Keras MLP (TensorFlow backend) on the 8x8 handwritten digits that ship inside
scikit-learn (no download), exported to ONNX so the runtime image needs no TensorFlow.

    python model_code.py --out DIR [--seed N] [--epochs N]

trains, evaluates on a held-out split, exports with Keras' own ONNX exporter (tf2onnx underneath;
`tf2onnx.convert.from_keras` fails on Keras 3), checks ONNX against Keras on the whole held-out set
and writes DIR/{model.onnx, model.keras, model.json}. It exits 1 when test accuracy is below
ACCURACY_THRESHOLD or ONNX differs by more than 1e-5, which fails the image build. The command
line, the gates and the summary line are the shared runtime's (serving/training.py,
serving/export.py); this file holds what is the model's own: data, model, conversion.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    # Run as a script (image build, or from the repo): the shared runtime lives next to this folder.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Quiet TensorFlow's start-up banner; must be set before it is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from serving import training  # noqa: E402
from serving.export import QualityGateFailed, write_model_dir  # noqa: E402
from serving.manifest import ModelManifest  # noqa: E402

NAME = training.folder_name(__file__)
"""The folder's name (ml_model_2 here): a copied folder names its model after itself."""
VERSION = "1"
SEED = 42
EPOCHS = 40
BATCH_SIZE = 32
HIDDEN = 64
TEST_SIZE = 0.25
ACCURACY_THRESHOLD = 0.95
"""Build fails below this held-out accuracy (the seeded MLP reaches ~0.97-0.98 here)."""
PIXEL_MAX = 16.0
"""The digits' pixel intensities run 0..16; the model scales them to 0..1 itself."""
INPUT_NAME = "features"
NATIVE_FILE = "model.keras"


def load_data(seed: int = SEED) -> training.Dataset:
    """The bundled digits (1797 images of 8x8 = 64 features), split stratified and seeded."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = data.data.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, data.target, test_size=TEST_SIZE, random_state=seed, stratify=data.target
    )
    return training.Dataset(
        x_train,
        y_train,
        x_test,
        y_test,
        feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
        classes=[str(d) for d in range(10)],
    )


def train(data: training.Dataset, seed: int = SEED, epochs: int = EPOCHS):
    """Fit a 64-64-10 MLP; seeded (Python, NumPy and TensorFlow RNGs) and single-threaded."""
    import keras
    import tensorflow as tf

    # Determinism and a fair share of the build machine's cores.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((data.x_train.shape[1],), name=INPUT_NAME),
            keras.layers.Rescaling(1.0 / PIXEL_MAX),
            keras.layers.Dense(HIDDEN, activation="relu"),
            keras.layers.Dense(len(data.classes), activation="softmax"),
        ],
        name=NAME,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        data.x_train, data.y_train, epochs=epochs, batch_size=BATCH_SIZE, verbose=0, shuffle=True
    )
    return model


def predict(model, x: np.ndarray) -> np.ndarray:
    """Native inference: class probabilities, float32 [rows, classes]."""
    return np.asarray(model(x, training=False), dtype=np.float32)


def to_onnx(model) -> tuple[bytes, str, str]:
    """Export with Keras' ONNX exporter; return (graph bytes, input name, output name)."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        model.export(str(path), format="onnx", verbose=False)
        graph = onnx.load(str(path))
    inputs = [i.name for i in graph.graph.input]
    outputs = [o.name for o in graph.graph.output]
    if len(inputs) != 1 or len(outputs) != 1:
        raise QualityGateFailed(
            f"exported graph has inputs {inputs} and outputs {outputs}; expected one each"
        )
    return graph.SerializeToString(), inputs[0], outputs[0]


def build(out_dir: Path, seed: int = SEED, epochs: int = EPOCHS) -> ModelManifest:
    """Train, gate and write the model directory; raise QualityGateFailed when a gate fails."""
    import keras
    import tensorflow as tf
    import tf2onnx

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_data(seed)
    model = train(data, seed, epochs)
    model.save(out_dir / NATIVE_FILE)
    onnx_bytes, onnx_input, onnx_output = to_onnx(model)
    return write_model_dir(
        out_dir,
        name=NAME,
        version=VERSION,
        framework="keras",
        native_file=NATIVE_FILE,
        onnx_bytes=onnx_bytes,
        onnx_input=onnx_input,
        onnx_output=onnx_output,
        feature_names=data.feature_names,
        classes=data.classes,
        x_test=data.x_test,
        y_test=data.y_test,
        native_predict=lambda x: predict(model, x),
        threshold=ACCURACY_THRESHOLD,
        trained_with={
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "tf2onnx": tf2onnx.__version__,
        },
    )


def main(argv: list[str] | None = None) -> int:
    """``--out DIR`` plus one option per parameter of build (serving.training.main)."""
    return training.main(build, argv, name=NAME, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
