"""Training, quality gates and ONNX parity of the two models, and the artifacts they write."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from serving.backends import load_backend
from serving.errors import ModelLoadError
from serving.export import PARITY_TOLERANCE, QualityGateFailed, check_metric, check_parity
from serving.manifest import load_manifest
from serving.selfcheck import SelfCheckFailed, selfcheck
from serving_harness import MODELS


@pytest.mark.parametrize(
    ("fixture", "files", "features", "classes", "threshold"),
    [
        ("model1_dir", {"model.onnx", "model.joblib", "model.json"}, 30, 2, 0.93),
        ("model2_dir", {"model.onnx", "model.keras", "model.json"}, 64, 10, 0.95),
    ],
)
def test_trained_model_passes_its_gates_and_records_them(
    request, fixture, files, features, classes, threshold
):
    model_dir = request.getfixturevalue(fixture)
    assert {p.name for p in model_dir.iterdir()} == files
    m = load_manifest(model_dir)
    assert m.input.features == features and len(m.classes) == classes
    assert m.quality.threshold == threshold and m.quality.value >= threshold
    assert m.quality.parity_tolerance == PARITY_TOLERANCE
    assert 0 <= m.quality.parity_max_abs_diff <= PARITY_TOLERANCE


@pytest.mark.parametrize("fixture", ["model1_dir", "model2_dir"])
@pytest.mark.parametrize("backend", ["onnx", "native"])
def test_both_backends_reproduce_the_recorded_outputs(request, fixture, backend):
    model_dir = request.getfixturevalue(fixture)
    assert selfcheck(model_dir, backend) <= PARITY_TOLERANCE


def test_onnx_matches_native_on_the_whole_held_out_set(model1_dir):
    from ml_model_1 import model_code

    manifest = load_manifest(model1_dir)
    data = model_code.load_data()
    onnx = load_backend(manifest, model1_dir, "onnx").predict_proba(data.x_test)
    native = load_backend(manifest, model1_dir, "native").predict_proba(data.x_test)
    assert np.abs(onnx - native).max() <= PARITY_TOLERANCE
    assert (onnx.argmax(axis=1) == data.y_test).mean() == pytest.approx(manifest.quality.value)


def test_training_is_seeded(model1_dir, tmp_path):
    from ml_model_1 import model_code

    again = model_code.build(tmp_path)
    first = load_manifest(model1_dir)
    assert again.sample == first.sample and again.quality == first.quality


def test_metric_gate_stops_the_build_below_threshold():
    check_metric("accuracy", 0.95, 0.93)
    with pytest.raises(
        QualityGateFailed, match=r"test accuracy 0\.9000 is below the threshold 0\.9300"
    ):
        check_metric("accuracy", 0.90, 0.93)


def test_parity_gate_stops_the_build_above_tolerance():
    native = np.array([[0.2, 0.8], [0.5, 0.5]], dtype=np.float32)
    assert check_parity(native, native + 1e-7) <= 1e-6
    with pytest.raises(QualityGateFailed, match=r"differ by up to 2e-05 \(row 1\)"):
        check_parity(native, native + np.array([[0, 0], [2e-5, 0]], dtype=np.float32))


def test_model_code_cli_exits_1_when_the_gate_fails(tmp_path):
    # No model reaches accuracy 1.01: the gate must fire and no manifest may be written.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from ml_model_1 import model_code as m; m.ACCURACY_THRESHOLD = 1.01;"
        "sys.exit(m.main(['--out', sys.argv[2], '--n-estimators', '3']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(MODELS), str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "quality gate FAILED" in proc.stderr and "below the threshold 1.0100" in proc.stderr
    assert not (tmp_path / "model.json").exists()


def test_model_code_runs_as_a_script_like_the_image_build(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(MODELS / "ml_model_1" / "model_code.py"),
            "--out",
            str(tmp_path),
            "--n-estimators",
            "20",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ONNX parity max abs diff" in proc.stdout
    assert load_manifest(tmp_path).name == "ml_model_1"


def test_self_check_catches_outputs_that_differ_from_the_recorded_ones(model1_dir, tmp_path):
    import shutil

    from serving.manifest import Sample, save_manifest

    shutil.copytree(model1_dir, tmp_path, dirs_exist_ok=True)
    m = load_manifest(tmp_path)
    shifted = [[p + 1e-3 for p in row] for row in m.sample.probabilities]
    save_manifest(
        m.model_copy(update={"sample": Sample(inputs=m.sample.inputs, probabilities=shifted)}),
        tmp_path,
    )
    with pytest.raises(
        SelfCheckFailed, match=r"differs from the recorded sample outputs by 0\.001"
    ):
        selfcheck(tmp_path)


def test_missing_model_dir_names_the_fix(tmp_path):
    with pytest.raises(ModelLoadError, match=r"model manifest .*model.json not found.*MODEL_DIR"):
        load_manifest(tmp_path)
