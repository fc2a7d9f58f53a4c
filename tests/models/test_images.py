"""The two model images, built for real with Docker (BuildKit): size, non-root user, no
TensorFlow/scikit-learn in the runtime, and a container that serves, drains and scores a batch."""

from __future__ import annotations

import json

import grpc
import httpx
import numpy as np
import pytest

from serving.protocol.grpc import grpc_predict_v2_pb2 as pb
from serving.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from serving_harness import (
    KSERVE_PYTHON,
    MODELS,
    build_image,
    check_kserve_report,
    docker_run,
    run_client_probe,
    served_image,
)

pytestmark = pytest.mark.slow

MAX_IMAGE_BYTES = 250_000_000
IMAGES = {
    "ml_model_1": "mlplatform-test/ml_model_1:test",
    "ml_model_2": "mlplatform-test/ml_model_2:test",
}


@pytest.fixture(scope="module")
def images(docker) -> dict[str, str]:
    for model, tag in IMAGES.items():
        build_image(docker, MODELS, model, tag)
    return IMAGES


@pytest.mark.parametrize("model", list(IMAGES))
def test_image_is_small_non_root_and_has_no_training_frameworks(docker, images, model):
    info = json.loads(docker_run(docker, "image", "inspect", images[model]).stdout)[0]
    assert info["Size"] <= MAX_IMAGE_BYTES, f"{model} image is {info['Size'] / 1e6:.0f} MB"
    assert info["Config"]["User"] == "10001:10001"
    assert docker_run(docker, "run", "--rm", images[model], "id", "-u").stdout.strip() == "10001"
    probe = (
        "import importlib.util as u; "
        "print([m for m in ('tensorflow', 'keras', 'sklearn', 'pip') if u.find_spec(m)])"
    )
    assert (
        docker_run(docker, "run", "--rm", images[model], "python", "-c", probe).stdout.strip()
        == "[]"
    )


@pytest.mark.parametrize("model", list(IMAGES))
def test_container_serves_a_prediction_and_exits_0_on_sigterm(docker, images, model):
    """REST, gRPC and KServe's own clients against the running image, then a clean SIGTERM."""
    manifest = json.loads(
        docker_run(docker, "run", "--rm", images[model], "cat", "/model/model.json").stdout
    )
    with served_image(docker, images[model], DRAIN_SECONDS="1") as served:
        r = httpx.post(
            f"{served.url}/predict",
            json={"instances": manifest["sample"]["inputs"][:1]},
            timeout=10,
        )
        assert r.status_code == 200
        np.testing.assert_allclose(
            r.json()["probabilities"], manifest["sample"]["probabilities"][:1], atol=1e-5
        )
        _check_grpc(served.grpc_target, manifest)
        sample = manifest["sample"]
        spec = {"url": served.url, "grpc": served.grpc_target, "model": manifest["name"]}
        report = run_client_probe(
            KSERVE_PYTHON, "kserve_client_probe.py", spec | {"rows": sample["inputs"]}
        )
        check_kserve_report(
            report, manifest["name"], sample["inputs"], sample["probabilities"], 1e-5
        )
        docker_run(docker, "stop", "-t", "30", served.container)
        state = json.loads(docker_run(docker, "inspect", served.container).stdout)[0]["State"]
        assert state["ExitCode"] == 0
        logs = docker_run(docker, "logs", served.container).stderr.strip().splitlines()
        assert all(json.loads(line)["time"] for line in logs)


def _check_grpc(target: str, manifest: dict) -> None:
    """The image serves the OIP gRPC endpoint too (uvicorn's HTTP/2, without grpcio)."""
    x = np.asarray(manifest["sample"]["inputs"][:1], dtype=np.float32)
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        request = pb.ModelInferRequest(
            model_name=manifest["name"], raw_input_contents=[x.tobytes()]
        )
        request.inputs.add(name="input-0", datatype="FP32", shape=list(x.shape))
        request.outputs.add(name="probabilities")
        response = stub.ModelInfer(request, timeout=10)
    probabilities = np.frombuffer(response.raw_output_contents[0], "<f4")
    np.testing.assert_allclose(probabilities, manifest["sample"]["probabilities"][0], atol=1e-5)


def test_batch_mode_runs_in_the_same_image(docker, images, tmp_path):
    manifest = json.loads(
        docker_run(docker, "run", "--rm", images["ml_model_1"], "cat", "/model/model.json").stdout
    )
    (tmp_path / "rows.jsonl").write_text(
        "\n".join(json.dumps(r) for r in manifest["sample"]["inputs"]) + "\n"
    )
    tmp_path.chmod(0o777)  # the container's user (10001) writes the output here
    docker_run(
        docker,
        "run",
        "--rm",
        "-v",
        f"{tmp_path}:/data",
        images["ml_model_1"],
        "python",
        "-m",
        "serving.batch",
        "--input",
        "/data/rows.jsonl",
        "--output",
        "/data/out.json",
    )
    out = json.loads((tmp_path / "out.json").read_text())
    np.testing.assert_allclose(out["probabilities"], manifest["sample"]["probabilities"], atol=1e-5)


def test_native_backend_for_keras_says_how_to_get_tensorflow(docker, images):
    proc = docker_run(
        docker, "run", "--rm", "-e", "INFERENCE_BACKEND=native", images["ml_model_2"], check=False
    )
    assert proc.returncode == 2
    assert "needs TensorFlow" in proc.stderr and "--target native" in proc.stderr


def test_native_target_serves_with_scikit_learn(docker, images):
    tag = "mlplatform-test/ml_model_1:native"
    build_image(docker, MODELS, "ml_model_1", tag, "--target", "native")
    assert docker_run(docker, "run", "--rm", tag, "id", "-u").stdout.strip() == "10001"
    with served_image(docker, tag) as served:
        meta = httpx.get(f"{served.url}/v2/models/ml_model_1").json()
        assert meta["platform"] == "scikit-learn"
        rows = json.loads(docker_run(docker, "run", "--rm", tag, "cat", "/model/model.json").stdout)
        r = httpx.post(
            f"{served.url}/predict", json={"instances": rows["sample"]["inputs"]}, timeout=30
        )
        np.testing.assert_allclose(
            r.json()["probabilities"], rows["sample"]["probabilities"], atol=1e-6
        )
