"""Model tier fixtures: models trained once per session, real server processes on loopback.

Training is seeded and small (a 100-tree forest: ~3 s; a Keras MLP: ~15 s, TensorFlow import
included); each model is trained once per session and shared.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
if str(MODELS) not in sys.path:
    # The runtime and the model code import `serving` the way the images do (PYTHONPATH=models/).
    sys.path.insert(0, str(MODELS))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], bool], process: subprocess.Popen | None = None, timeout: float = 60) -> None:
    """Poll ``check`` until true; fail with the process's output if it dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            pytest.fail(f"{what}: process exited with {process.returncode}:\n{out}")
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{what}: not reached within {timeout} s")


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


@dataclass
class Server:
    """A running `python -m serving` process."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def log_lines(self) -> list[str]:
        return [line for line in self.log_path.read_text().splitlines() if line.strip()]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # skips the drain wait
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(model_dir: Path, log_dir: Path, **env: str) -> Server:
    """Start the server on a free loopback port and wait until it reports ready."""
    port = free_port()
    full_env = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PYTHONPATH": str(MODELS),
        **env,
    }
    log_path = log_dir / f"server-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "serving"], cwd=MODELS, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        return httpx.get(f"{server.url}/v2/health/ready", timeout=2).status_code == 200

    wait_for("server readiness", ready)
    return server


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
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c
