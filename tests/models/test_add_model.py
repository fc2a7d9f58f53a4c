"""Adding a model is copying a folder: models/README.md's "Add a model" steps, followed for real.

A copy of models/ gets `cp -r ml_model_1 ml_model_3` and one edit of the kind the README asks for
(a setting in model_code.py: the seed). The copy trains from its folder, builds with
MODEL_SOURCE=ml_model_3, and its image must hold and serve the copy's model, not its template's:
the old Dockerfiles, which named ml_model_1 in their COPY lines, built the template under the
copy's name.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from serving.manifest import ModelManifest, load_manifest
from serving_harness import MODELS, build_image, docker_run, served_image

TEMPLATE, ADDED = "ml_model_1", "ml_model_3"
MODEL_FOLDERS = sorted(p.parent.name for p in MODELS.glob("*/Dockerfile"))
SOURCE_LABEL = "mlplatform.io/model-source"


def _stage(dockerfile: Path, name: str) -> list[str]:
    """The instructions of stage ``name`` (comments and blank lines left out)."""
    lines, inside = [], False
    for line in dockerfile.read_text().splitlines():
        if line.startswith("FROM "):
            inside = line.endswith(f" AS {name}")
        if inside and line.strip() and not line.startswith("#"):
            lines.append(line)
    return lines


def test_no_model_dockerfile_names_a_model_folder():
    for folder in MODEL_FOLDERS:
        text = (MODELS / folder / "Dockerfile").read_text()
        named = [f for f in MODEL_FOLDERS if re.search(rf"\b{re.escape(f)}\b", text)]
        assert not named, (
            f"models/{folder}/Dockerfile names {named}: a copy of the folder would build that "
            "code; refer to the model's folder as ${MODEL_SOURCE}"
        )


def test_every_model_has_the_same_shared_stages():
    # Equal text is what lets BuildKit build the runtime environment once for every model.
    for stage in ("deps", "source", "runtime"):
        texts = {folder: _stage(MODELS / folder / "Dockerfile", stage) for folder in MODEL_FOLDERS}
        assert all(texts.values()), f"a model's Dockerfile lacks the stage {stage}: {texts}"
        assert len({tuple(t) for t in texts.values()}) == 1, f"stage {stage} differs: {texts}"


@pytest.mark.slow
def test_a_build_without_model_source_stops_before_building_and_says_how(docker):
    proc = subprocess.run(
        [docker, "build", "-f", str(MODELS / TEMPLATE / "Dockerfile"), str(MODELS)],
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "MODEL_SOURCE: is not set" in proc.stderr, proc.stderr[-2000:]
    assert "--build-arg MODEL_SOURCE=<folder>" in proc.stderr
    assert "[train" not in proc.stderr and "[deps" not in proc.stderr, "a stage ran first"


@pytest.fixture(scope="module")
def added_tree(tmp_path_factory) -> Path:
    """A copy of models/ with ml_model_3 added the way the README says."""
    root = tmp_path_factory.mktemp("repo") / "models"
    subprocess.run(["cp", "-r", str(MODELS), str(root)], check=True)
    # Step 1: copy the model closest to the new one.
    subprocess.run(["cp", "-r", str(root / TEMPLATE), str(root / ADDED)], check=True)
    # Step 2: edit model_code.py; here a setting, so the model differs from the template's.
    code = root / ADDED / "model_code.py"
    text = code.read_text()
    assert text.count("\nSEED = 42\n") == 1, "the template's seed setting moved; update this test"
    code.write_text(text.replace("\nSEED = 42\n", "\nSEED = 7\n"))
    return root


@pytest.fixture(scope="module")
def trained_locally(added_tree, tmp_path_factory) -> ModelManifest:
    """Step 4: the copy trained from its folder, as the image build runs it."""
    out = tmp_path_factory.mktemp(f"{ADDED}-local")
    proc = subprocess.run(
        [sys.executable, str(added_tree / ADDED / "model_code.py"), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{ADDED}: test accuracy "), proc.stdout
    return load_manifest(out)


@pytest.fixture(scope="module")
def added_image(docker, added_tree) -> Iterator[str]:
    """Step 4: the copy's image, built as ModelImage builds it (MODEL_SOURCE=ml_model_3)."""
    tag = f"mlplatform-test/{ADDED}:{os.getpid()}"  # the Docker engine may serve other checkouts
    build_image(docker, added_tree, ADDED, tag)
    yield tag
    docker_run(docker, "rmi", "-f", tag, check=False)


@pytest.mark.slow
def test_a_copied_folder_builds_and_serves_the_copys_model(docker, added_image, trained_locally):
    from ml_model_1 import model_code as template

    image_manifest = ModelManifest.model_validate_json(
        docker_run(docker, "run", "--rm", added_image, "cat", "/model/model.json").stdout
    )
    # The template's code would have named the model ml_model_1 and recorded seed 42's rows.
    template_rows = template.load_data().x_test[: len(image_manifest.sample.inputs)]
    assert trained_locally.sample.inputs != template_rows.tolist(), "the edit changed nothing"
    assert image_manifest.name == ADDED
    assert image_manifest.sample == trained_locally.sample
    assert image_manifest.quality == trained_locally.quality
    info = json.loads(docker_run(docker, "image", "inspect", added_image).stdout)[0]
    assert info["Config"]["Labels"][SOURCE_LABEL] == ADDED

    with served_image(docker, added_image) as served:
        rows = image_manifest.sample.inputs
        r = httpx.post(
            f"{served.url}/v2/models/{ADDED}/infer",
            json={
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [len(rows), len(rows[0])],
                        "datatype": "FP32",
                        "data": rows,
                    }
                ]
            },
            timeout=10,
        )
        assert r.status_code == 200, r.text
        outputs = {o["name"]: o for o in r.json()["outputs"]}
        probabilities = np.reshape(
            outputs["probabilities"]["data"], outputs["probabilities"]["shape"]
        )
        np.testing.assert_allclose(probabilities, image_manifest.sample.probabilities, atol=1e-5)
