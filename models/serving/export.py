"""Training-side helpers shared by every model's ``model_code.py``: quality gates, ONNX parity,
writing the model directory. Build stages call them; a failed gate raises and fails the build.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from serving.manifest import (
    InputSpec,
    ModelManifest,
    NativeSpec,
    OnnxSpec,
    QualityReport,
    Sample,
    save_manifest,
)
from serving.selfcheck import selfcheck

PARITY_TOLERANCE = 1e-5
"""Largest |native - ONNX| probability difference a build accepts."""
SAMPLE_ROWS = 8


class QualityGateFailed(Exception):
    """The trained model missed its test-metric threshold, or ONNX disagrees with it."""


def check_metric(name: str, value: float, threshold: float) -> None:
    """Raise QualityGateFailed when ``value`` is below ``threshold``."""
    if not value >= threshold:
        raise QualityGateFailed(
            f"test {name} {value:.4f} is below the threshold {threshold:.4f}; "
            "the build stops here. "
            "Fix the training (data, hyperparameters, seed) or, deliberately, the threshold."
        )


def check_parity(
    native: np.ndarray, onnx: np.ndarray, tolerance: float = PARITY_TOLERANCE
) -> float:
    """Max |native - onnx| over the held-out set; raise QualityGateFailed above ``tolerance``."""
    if native.shape != onnx.shape:
        raise QualityGateFailed(
            f"ONNX output shape {onnx.shape} differs from native {native.shape}"
        )
    diff = float(np.abs(native.astype(np.float64) - onnx.astype(np.float64)).max())
    if not diff <= tolerance:
        row = int(np.abs(native - onnx).max(axis=1).argmax())
        raise QualityGateFailed(
            f"ONNX and native probabilities differ by up to {diff:.3g} (row {row}), above the "
            f"tolerance {tolerance:.3g}; the conversion is not faithful, so the build stops here"
        )
    return diff


def onnx_probabilities(
    onnx_path: Path, input_name: str, output_name: str, x: np.ndarray
) -> np.ndarray:
    """Run the converted graph the way the server will (CPU provider, float32 input)."""
    from serving.backends import onnx_session

    session = onnx_session(onnx_path)
    return session.run([output_name], {input_name: x.astype(np.float32)})[0]


def write_model_dir(
    out_dir: Path,
    *,
    name: str,
    version: str,
    framework: str,
    native_file: str,
    onnx_bytes: bytes,
    onnx_input: str,
    onnx_output: str,
    feature_names: list[str],
    classes: list[str],
    x_test: np.ndarray,
    y_test: np.ndarray,
    native_predict: Callable[[np.ndarray], np.ndarray],
    threshold: float,
    tolerance: float = PARITY_TOLERANCE,
    trained_with: dict[str, str] | None = None,
) -> ModelManifest:
    """Write model.onnx + model.json next to the already saved native file, after the gates pass.

    Gates: test accuracy of the native model >= ``threshold``; ONNX vs native probabilities within
    ``tolerance`` on the whole held-out set; then the written directory is loaded back through the
    server's own ONNX backend and replayed (self-check).
    """
    out_dir = Path(out_dir)
    onnx_path = out_dir / "model.onnx"
    onnx_path.write_bytes(onnx_bytes)
    x_test = np.ascontiguousarray(x_test, dtype=np.float32)
    native = np.asarray(native_predict(x_test), dtype=np.float32)
    accuracy = float((native.argmax(axis=1) == y_test).mean())
    check_metric("accuracy", accuracy, threshold)
    onnx = onnx_probabilities(onnx_path, onnx_input, onnx_output, x_test)
    diff = check_parity(native, onnx, tolerance)
    manifest = ModelManifest(
        name=name,
        version=version,
        input=InputSpec(
            onnx_name=onnx_input, features=x_test.shape[1], feature_names=feature_names
        ),
        classes=classes,
        onnx=OnnxSpec(file=onnx_path.name, probabilities_output=onnx_output),
        native=NativeSpec(framework=framework, file=native_file),
        quality=QualityReport(
            metric="accuracy",
            value=accuracy,
            threshold=threshold,
            test_rows=len(x_test),
            parity_max_abs_diff=diff,
            parity_tolerance=tolerance,
        ),
        sample=Sample(
            inputs=x_test[:SAMPLE_ROWS].tolist(), probabilities=native[:SAMPLE_ROWS].tolist()
        ),
        trained_with=trained_with or {},
    )
    save_manifest(manifest, out_dir)
    selfcheck(out_dir, "onnx")
    return manifest
