"""ml_model_1: a RandomForest (scikit-learn) on the Wisconsin breast-cancer data that ships inside
scikit-learn (no download), converted to ONNX for serving.

    python model_code.py --out DIR [--seed N] [--n-estimators N]

trains, evaluates on a held-out split, converts with skl2onnx, checks ONNX against scikit-learn on
the whole held-out set and writes DIR/{model.onnx, model.joblib, model.json}. It exits 1 when test
accuracy is below ACCURACY_THRESHOLD or ONNX differs by more than 1e-5, which fails the image build.
The command line, the gates and the summary line are the shared runtime's (serving/training.py,
serving/export.py); this file holds what is the model's own: data, model, conversion.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    # Run as a script (image build, or from the repo): the shared runtime lives next to this folder.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from serving import training  # noqa: E402
from serving.export import write_model_dir  # noqa: E402
from serving.manifest import ModelManifest  # noqa: E402

NAME = training.folder_name(__file__)
"""The folder's name (ml_model_1 here): a copied folder names its model after itself."""
VERSION = "1"
SEED = 42
N_ESTIMATORS = 100
TEST_SIZE = 0.25
ACCURACY_THRESHOLD = 0.93
"""Build fails below this held-out accuracy (a seeded forest reaches ~0.95-0.97 here)."""
ONNX_INPUT = "input_0"  # skl2onnx turns "-" into "_"; the public OIP name stays "input-0"
ONNX_OUTPUT = "probabilities"
NATIVE_FILE = "model.joblib"


def load_data(seed: int = SEED) -> training.Dataset:
    """The bundled breast-cancer table (569 rows, 30 features), split stratified and seeded."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    x = data.data.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, data.target, test_size=TEST_SIZE, random_state=seed, stratify=data.target
    )
    return training.Dataset(
        x_train,
        y_train,
        x_test,
        y_test,
        feature_names=[str(n) for n in data.feature_names],
        classes=[str(c) for c in data.target_names],
    )


def train(data: training.Dataset, seed: int = SEED, n_estimators: int = N_ESTIMATORS):
    """Fit the forest (single-threaded: the build machine's cores are shared)."""
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    return model.fit(data.x_train, data.y_train)


def predict(model, x: np.ndarray) -> np.ndarray:
    """Native inference: class probabilities, float32 [rows, classes]."""
    return model.predict_proba(x).astype(np.float32)


def to_onnx(model, features: int) -> bytes:
    """Convert with skl2onnx; probabilities as a plain tensor (no ZipMap)."""
    from skl2onnx import to_onnx as skl_to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = skl_to_onnx(
        model,
        initial_types=[(ONNX_INPUT, FloatTensorType([None, features]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return onx.SerializeToString()


def build(out_dir: Path, seed: int = SEED, n_estimators: int = N_ESTIMATORS) -> ModelManifest:
    """Train, gate and write the model directory; raise QualityGateFailed when a gate fails."""
    import joblib
    import skl2onnx
    import sklearn

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_data(seed)
    model = train(data, seed, n_estimators)
    joblib.dump(model, out_dir / NATIVE_FILE)
    return write_model_dir(
        out_dir,
        name=NAME,
        version=VERSION,
        framework="sklearn",
        native_file=NATIVE_FILE,
        onnx_bytes=to_onnx(model, data.x_train.shape[1]),
        onnx_input=ONNX_INPUT,
        onnx_output=ONNX_OUTPUT,
        feature_names=data.feature_names,
        classes=data.classes,
        x_test=data.x_test,
        y_test=data.y_test,
        native_predict=lambda x: predict(model, x),
        threshold=ACCURACY_THRESHOLD,
        trained_with={"scikit-learn": sklearn.__version__, "skl2onnx": skl2onnx.__version__},
    )


def main(argv: list[str] | None = None) -> int:
    """``--out DIR`` plus one option per parameter of build (serving.training.main)."""
    return training.main(build, argv, name=NAME, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
