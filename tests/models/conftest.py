"""Model tier fixtures: models trained once per session, real server processes on loopback.

Training is seeded and small (a 100-tree forest: ~3 s; a Keras MLP: ~15 s, TensorFlow import
included); each model is trained once per session and shared.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from serving_harness import MODELS, ROOT, Server, docker_cli, start_server

if str(MODELS) not in sys.path:
    # The runtime and the model code import `serving` the way the images do (PYTHONPATH=models/).
    sys.path.insert(0, str(MODELS))


@pytest.fixture(scope="session")
def model1_dir(tmp_path_factory) -> Path:
    """ml_model_1 trained with its real settings (100 trees, seed 42)."""
    from ml_model_1 import model_code

    out = tmp_path_factory.mktemp("ml_model_1")
    model_code.build(out)
    return out


@pytest.fixture(scope="session")
def model2_dir(tmp_path_factory) -> Path:
    """ml_model_2 (Keras MLP) trained with its real settings."""
    from ml_model_2 import model_code

    out = tmp_path_factory.mktemp("ml_model_2")
    model_code.build(out)
    return out


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory) -> Iterator[Callable[..., Server]]:
    """Start servers on demand; all are stopped at the end of the session."""
    started: list[Server] = []
    log_dir = tmp_path_factory.mktemp("server-logs")

    def make(model_dir: Path, **env: str) -> Server:
        server = start_server(model_dir, log_dir, **env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server1(server_factory, model1_dir) -> Server:
    """ml_model_1 behind the ONNX backend, small body limit for the 413 tests."""
    return server_factory(model1_dir, MAX_BODY_BYTES="65536")


@pytest.fixture(scope="session")
def server2(server_factory, model2_dir) -> Server:
    """ml_model_2 (Keras-trained) behind the ONNX backend: no TensorFlow in the serving path."""
    return server_factory(model2_dir)


@pytest.fixture(scope="session")
def docker() -> str:
    """A docker client for BuildKit builds, with the local base images made (seconds if current)."""
    cli = docker_cli()
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "base-images.sh")], check=True, capture_output=True
    )
    return cli


@pytest.fixture(scope="session")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c
