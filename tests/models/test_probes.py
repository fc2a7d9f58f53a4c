"""Probes answered off the request loop (serving/probes.py): the probe port answers readiness and
liveness from the shared state while the event loop is busy, turns readiness off on SIGTERM like
the HTTP port, and reports a loop that stopped ticking as not live."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from serving.app import ServingState
from serving.errors import ConfigError
from serving.probes import LIVE_PATH, READY_PATH, ProbeListener
from serving_harness import MODELS, free_port, wait_for


def test_the_probe_port_answers_what_the_http_port_answers(server_factory, model1_dir):
    server = server_factory(model1_dir)
    probes = httpx.get(f"{server.probe_url}{READY_PATH}", timeout=5)
    assert probes.status_code == 200 and probes.json() == {"ready": True}
    assert httpx.get(f"{server.url}{READY_PATH}", timeout=5).json()["ready"] is True
    assert httpx.get(f"{server.probe_url}{LIVE_PATH}", timeout=5).json() == {"live": True}
    other = httpx.get(f"{server.probe_url}/v2/models/ml_model_1/infer", timeout=5)
    assert other.status_code == 404 and "probe port" in other.json()["error"]


def test_readiness_turns_false_on_sigterm_on_the_probe_port_too(server_factory, model1_dir):
    server = server_factory(model1_dir, DRAIN_SECONDS="600")
    server.process.send_signal(signal.SIGTERM)
    wait_for(
        "probe-port readiness false after SIGTERM",
        lambda: httpx.get(f"{server.probe_url}{READY_PATH}", timeout=2).status_code == 503,
    )
    # still live, and the process drains as before
    assert httpx.get(f"{server.probe_url}{LIVE_PATH}", timeout=2).status_code == 200
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0


def test_probes_are_answered_while_the_event_loop_is_blocked():
    """The case they exist for: inline inference holds the loop; the kubelet's probe must not wait
    for it. Ordering, not timing: the answers arrive before the loop is released."""
    state = ServingState(loaded=True)
    port = free_port()
    answers: list[tuple[int, bool]] = []
    released = threading.Event()

    def probe() -> None:
        for path in (READY_PATH, LIVE_PATH):
            status = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).status_code
            answers.append((status, released.is_set()))

    async def scenario() -> None:
        listener = ProbeListener(state, "127.0.0.1", port, stall_seconds=30)
        await listener.start()
        try:
            prober = threading.Thread(target=probe)
            prober.start()
            time.sleep(3)  # the loop is blocked, as by a long inline request
            released.set()
            await asyncio.to_thread(prober.join, 15)
        finally:
            await listener.stop()

    asyncio.run(scenario())
    assert answers == [(200, False), (200, False)]


def test_a_loop_that_stopped_ticking_is_reported_not_live():
    now = [100.0]
    state = ServingState(loaded=True, heartbeat=100.0)
    listener = ProbeListener(state, "127.0.0.1", 0, stall_seconds=20, clock=lambda: now[0])
    assert listener.answer(LIVE_PATH)[0] == 200
    now[0] = 119.0
    assert listener.answer(LIVE_PATH)[0] == 200
    now[0] = 131.0
    status, body = listener.answer(LIVE_PATH)
    assert status == 503 and json.loads(body) == {"live": False, "stalled_seconds": 31}
    # readiness follows the loaded/draining state only
    assert listener.answer(READY_PATH)[0] == 200
    state.draining = True
    assert listener.answer(READY_PATH)[0] == 503


def test_a_taken_probe_port_is_a_config_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        listener = ProbeListener(ServingState(), "127.0.0.1", port, stall_seconds=20)
        with pytest.raises(ConfigError, match=f"cannot listen for probes on 127.0.0.1:{port}"):
            asyncio.run(listener.start())


def _start(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "serving"],
        cwd=MODELS,
        env={**os.environ, "PYTHONPATH": str(MODELS), "HOST": "127.0.0.1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("other", ["PORT", "GRPC_PORT"])
def test_the_probe_port_must_be_its_own(model1_dir, other):
    ports = {"PORT": str(free_port()), "GRPC_PORT": str(free_port())}
    ports[other] = "9124"
    proc = _start({"MODEL_DIR": str(model1_dir), **ports, "PROBE_PORT": "9124"})
    assert proc.returncode == 2
    assert "PROBE_PORT='9124' is invalid" in proc.stderr and f"equals {other}" in proc.stderr


def test_probe_port_zero_leaves_probes_on_the_http_port(server_factory, model1_dir):
    server = server_factory(model1_dir, PROBE_PORT="0")
    assert server.probe_url is None
    assert httpx.get(f"{server.url}{READY_PATH}", timeout=5).status_code == 200
