"""Batch mode (`python -m serving.batch`) as the Kubernetes Job runs it: a real process on files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from serving.backends import load_backend
from serving.manifest import load_manifest
from serving_harness import MODELS


def run_batch(model_dir, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(MODELS), "MODEL_DIR": str(model_dir)}
    return subprocess.run(
        [sys.executable, "-m", "serving.batch", *args],
        cwd=MODELS,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def rows():
    from ml_model_1 import model_code

    return model_code.load_data().x_test


@pytest.fixture(scope="module")
def expected(model1_dir, rows):
    return load_backend(load_manifest(model1_dir), model1_dir, "onnx").predict_proba(rows)


def write_csv(path, header, data):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(data)


@pytest.mark.parametrize("out_name", ["out.jsonl", "out.csv", "out.json"])
def test_csv_with_reordered_header_is_scored_like_the_server(
    model1_dir, rows, expected, tmp_path, out_name
):
    names = load_manifest(model1_dir).input.feature_names
    order = list(reversed(range(len(names))))
    src = tmp_path / "rows.csv"
    write_csv(src, [names[i] for i in order], rows[:, order].tolist())
    out = tmp_path / out_name
    proc = run_batch(model1_dir, "--input", str(src), "--output", str(out), "--chunk-rows", "50")
    assert proc.returncode == 0, proc.stderr
    if out_name.endswith(".jsonl"):
        docs = [json.loads(line) for line in out.read_text().splitlines()]
        probabilities = np.array([d["probabilities"] for d in docs])
        assert [d["row"] for d in docs] == list(range(len(rows)))
        assert docs[0]["class"] in ("malignant", "benign")
    elif out_name.endswith(".csv"):
        table = list(csv.reader(out.open()))
        assert table[0] == ["row", "prediction", "class", "p_malignant", "p_benign"]
        probabilities = np.array([[float(v) for v in r[3:]] for r in table[1:]])
    else:
        doc = json.loads(out.read_text())
        probabilities = np.array(doc["probabilities"])
        assert doc["predictions"] == expected.argmax(axis=1).tolist()
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    summary = json.loads(proc.stderr.strip().splitlines()[-1])
    assert summary["event"] == "batch_done" and summary["rows"] == len(rows)


def test_jsonl_and_npy_inputs(model1_dir, rows, expected, tmp_path):
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows.tolist()) + "\n")
    np.save(tmp_path / "rows.npy", rows)
    for name in ("rows.jsonl", "rows.npy"):
        out = tmp_path / f"{name}.json"
        proc = run_batch(model1_dir, "--input", str(tmp_path / name), "--output", str(out))
        assert proc.returncode == 0, proc.stderr
        np.testing.assert_allclose(
            json.loads(out.read_text())["probabilities"], expected, atol=1e-6
        )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "1,2,3\n", "line 1 has 3 columns; expected 30"),
        (
            "bad.csv",
            ",".join(["1"] * 30) + "\n" + ",".join(["1"] * 29 + ["x"]) + "\n",
            "line 2, column 30 is 'x'",
        ),
        ("bad.csv", ",".join(["1"] * 29 + ["nan"]) + "\n", "line 1: holds NaN, infinity"),
        ("bad.csv", "a,b\n1,2\n", "the header must name each of the model's 30 features"),
        ("bad.jsonl", json.dumps([1] * 30) + "\n{oops\n", "line 2 is not valid JSON"),
        (
            "bad.jsonl",
            json.dumps([1] * 30) + "\n" + json.dumps([1] * 3) + "\n",
            "'rows[1]' has 3 values; expected 30",
        ),
        ("bad.parquet", "x", "unsupported extension '.parquet'"),
    ],
)
def test_bad_input_exits_2_naming_file_line_and_column(
    model1_dir, tmp_path, name, content, message
):
    src = tmp_path / name
    src.write_text(content)
    out = tmp_path / "out.jsonl"
    proc = run_batch(model1_dir, "--input", str(src), "--output", str(out))
    assert proc.returncode == 2
    error = json.loads(proc.stderr.strip().splitlines()[-1])
    assert error["level"] == "error" and message in error["message"], error["message"]
    assert not out.exists() and not (tmp_path / "out.jsonl.partial").exists()


def test_missing_model_dir_exits_2(tmp_path):
    src = tmp_path / "rows.jsonl"
    src.write_text("[1]\n")
    proc = run_batch(
        tmp_path / "nowhere", "--input", str(src), "--output", str(tmp_path / "o.jsonl")
    )
    assert proc.returncode == 2 and "model.json not found" in proc.stderr
