"""Helpers for the model tier: free ports, polling, real server processes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
# KServe 0.21's venv, made by `scripts/bootstrap.sh kserve` (part of `make bootstrap`; the serving
# benchmark's peer too): kserve cannot be installed next to the repo's kubernetes 37.0.2.
KSERVE_PYTHON = ROOT / "benchmarks" / "peers" / ".venv-kserve" / "bin" / "python"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    what: str,
    check: Callable[[], bool],
    process: subprocess.Popen | None = None,
    timeout: float = 60,
) -> None:
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


def data_segments_sent(server_port: int, client_port: int) -> int:
    """The kernel's count of the data-carrying TCP segments the server's end of this connection
    sent (`ss` from iproute2, installed by make bootstrap; pure ACKs are not counted)."""
    ends = ["src", f"127.0.0.1:{server_port}", "dst", f"127.0.0.1:{client_port}"]
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", *ends], capture_output=True, text=True, check=True
    ).stdout
    found = re.findall(r"\bdata_segs_out:(\d+)", out)
    assert len(found) == 1, f"one socket expected in `ss` output:\n{out}"
    return int(found[0])


@dataclass
class Server:
    """A running `python -m serving` process."""

    url: str
    process: subprocess.Popen
    log_path: Path
    grpc_target: str | None = None
    """host:port of the gRPC endpoint; None when GRPC_PORT=0 disabled it."""
    probe_url: str | None = None
    """Base URL of the probe port; None when PROBE_PORT=0 disabled it."""

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


def split_answer(buffer: bytearray) -> tuple[int, dict[str, str], bytes] | None:
    """One whole HTTP/1.1 answer (sized by its content-length) off the front of ``buffer``;
    None while ``buffer`` holds less."""
    head, sep, rest = bytes(buffer).partition(b"\r\n\r\n")
    if not sep:
        return None
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers.get("content-length", "0"))
    if len(rest) < length:
        return None
    buffer[:] = rest[length:]
    return int(status_line.split()[1]), headers, rest[:length]


def read_answer(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer from ``sock`` (``buffer`` keeps what follows it)."""
    while (answer := split_answer(buffer)) is None:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection mid-answer, after {bytes(buffer)!r}"
        buffer += chunk
    return answer


def start_server(model_dir: Path, log_dir: Path, **env: str) -> Server:
    """Start the server on free loopback ports (HTTP and gRPC) and wait until it reports ready."""
    port = free_port()
    full_env = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GRPC_PORT": str(free_port()),
        "PROBE_PORT": str(free_port()),
        "PYTHONPATH": str(MODELS),
        **env,
    }
    grpc_port = int(full_env["GRPC_PORT"])
    probe_port = int(full_env["PROBE_PORT"])
    log_path = log_dir / f"server-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "serving"],
            cwd=MODELS,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    grpc_target = f"127.0.0.1:{grpc_port}" if grpc_port else None
    server = Server(f"http://127.0.0.1:{port}", process, log_path, grpc_target)
    server.probe_url = f"http://127.0.0.1:{probe_port}" if probe_port else None

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        return httpx.get(f"{server.url}/v2/health/ready", timeout=2).status_code == 200

    wait_for("server readiness", ready)
    return server


def docker_cli() -> str:
    """A docker client that can run BuildKit builds against the running engine.

    Docker >= 23 clients build with BuildKit only through the buildx plugin; Debian's 20.10 client
    (/usr/bin/docker) has BuildKit built in. Set DOCKER to force one.
    """
    import shutil

    candidates = (
        [os.environ["DOCKER"]] if os.environ.get("DOCKER") else ["docker", "/usr/bin/docker"]
    )
    problems = []
    for candidate in candidates:
        path = shutil.which(candidate)
        if path is None:
            problems.append(f"{candidate}: not found")
            continue
        if subprocess.run([path, "info"], capture_output=True).returncode != 0:
            problems.append(
                f"{path}: cannot reach the Docker engine (start it: scripts/docker.sh start)"
            )
            continue
        if subprocess.run([path, "buildx", "version"], capture_output=True).returncode == 0:
            return path
        version = subprocess.run(
            [path, "version", "-f", "{{.Client.Version}}"], capture_output=True, text=True
        ).stdout
        if version.split(".")[0].isdigit() and int(version.split(".")[0]) < 23:
            return path
        problems.append(
            f"{path}: client {version.strip()} needs the buildx plugin for BuildKit builds"
        )
    raise RuntimeError("no usable docker client: " + "; ".join(problems))


def docker_run(docker: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``docker <args>``, output captured; with ``check``, a failure fails the test with stderr."""
    proc = subprocess.run([docker, *args], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def build_image(
    docker: str, context: Path, source: str, tag: str, *options: str, check: bool = True
) -> subprocess.CompletedProcess:
    """Build ``<context>/<source>/Dockerfile`` the way ModelImage does: context ``models/``,
    ``--build-arg MODEL_SOURCE=<source>``, BuildKit, host network; ``options`` go before the
    context (``--target native``). With ``check``, a failed build fails the test with its log tail.
    """
    proc = subprocess.run(
        [docker, "build", "--network", "host", "--build-arg", f"MODEL_SOURCE={source}"]
        + ["-f", str(context / source / "Dockerfile"), "-t", tag, *options, str(context)],
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        text=True,
    )
    if check:
        assert proc.returncode == 0, f"building {source} failed:\n{proc.stderr[-4000:]}"
    return proc


@dataclass(frozen=True)
class ServedImage:
    """A model image running as a container on the host network (see served_image)."""

    container: str
    url: str
    grpc_target: str


@contextlib.contextmanager
def served_image(docker: str, image: str, **env: str) -> Iterator[ServedImage]:
    """Run `image` detached on loopback ports of its own until it is ready; remove it after.

    `env` adds or overrides the server's environment (PORT, GRPC_PORT, PROBE_PORT and HOST are
    chosen here).
    """
    port, grpc_port = free_port(), free_port()
    settings = {
        "PORT": str(port),
        "GRPC_PORT": str(grpc_port),
        "PROBE_PORT": str(free_port()),
        "HOST": "127.0.0.1",
        **env,
    }
    flags = [part for name, value in settings.items() for part in ("-e", f"{name}={value}")]
    cid = docker_run(docker, "run", "-d", "--network", "host", *flags, image).stdout.strip()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(
            f"{image} container ready",
            lambda: httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200,
        )
        yield ServedImage(cid, url, f"127.0.0.1:{grpc_port}")
    finally:
        docker_run(docker, "rm", "-f", cid, check=False)


def run_client_probe(python: str | Path, script: str, spec: dict) -> dict:
    """Run a client probe script of this directory (triton_grpc_probe.py, kserve_client_probe.py)
    with `python` in a subprocess; what it saw, as the JSON document it printed."""
    assert Path(python).exists(), f"{python} is missing: run `scripts/bootstrap.sh kserve`"
    proc = subprocess.run(
        [str(python), str(Path(__file__).with_name(script)), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def check_kserve_report(report: dict, model: str, rows, probabilities, atol: float) -> None:
    """What kserve_client_probe.py saw: every call answered with the model's own samples, binary
    only when asked, and a wrong shape refused with 400 / INVALID_ARGUMENT naming it."""
    rest, grpc_ = report["rest"], report["grpc"]
    assert rest["live"] and rest["ready"] and rest["model_ready"], rest
    assert grpc_["live"] and grpc_["ready"] and grpc_["model_ready"], grpc_
    results = {f"rest-{k}": v for k, v in rest["results"].items()} | {"grpc": grpc_["result"]}
    assert sorted(results) == ["grpc", "rest-binary", "rest-json"]
    for key, result in results.items():
        assert result["id"] == f"kserve-{key}" and result["model_name"] == model, result
        np.testing.assert_allclose(result["probabilities"], probabilities, atol=atol)
        np.testing.assert_array_equal(result["label"], np.argmax(probabilities, axis=1))
    # Only the binary request got a binary answer (a JSON header, then the tensors' bytes).
    assert rest["results"]["json"]["binary_json_length"] is None
    assert int(rest["results"]["binary"]["binary_json_length"]) > 0
    features = np.shape(rows)[1]
    assert rest["error"]["status"] == 400, rest["error"]
    assert f"is [1,2]; expected [<rows>, {features}]" in rest["error"]["message"]
    assert grpc_["error"]["status"] == "INVALID_ARGUMENT", grpc_["error"]
    assert f"expects [<rows>, {features}]" in grpc_["error"]["message"]
