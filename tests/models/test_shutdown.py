"""SIGTERM: readiness goes false, in-flight requests finish, then the process exits 0."""

from __future__ import annotations

import json
import signal
import socket
from urllib.parse import urlparse

import httpx
import orjson

from serving.manifest import load_manifest
from serving_harness import read_answer, wait_for


def test_sigterm_drains_then_exits_cleanly(server_factory, model1_dir):
    # A long drain, so the test (not the clock) decides when it ends: by the second SIGTERM.
    server = server_factory(model1_dir, DRAIN_SECONDS="600")
    url = urlparse(server.url)
    rows = load_manifest(model1_dir).sample.inputs[:2]
    body = orjson.dumps({"instances": rows})
    half = len(body) // 2

    # An in-flight request: headers and half of the body sent, the rest held back.
    conn = socket.create_connection((url.hostname, url.port))
    conn.sendall(
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:half]
    )

    server.process.send_signal(signal.SIGTERM)
    wait_for(
        "readiness false after SIGTERM",
        lambda: httpx.get(f"{server.url}/v2/health/ready", timeout=2).status_code == 503,
    )
    # Still serving while draining: liveness stays up, model readiness agrees, new requests work.
    assert httpx.get(f"{server.url}/v2/health/live", timeout=5).status_code == 200
    assert httpx.get(f"{server.url}/v2/models/ml_model_1/ready", timeout=5).json()["ready"] is False
    assert httpx.post(f"{server.url}/predict", content=body, timeout=5).status_code == 200

    # The second SIGTERM ends the drain wait: the listener closes, the in-flight request finishes.
    server.process.send_signal(signal.SIGTERM)
    wait_for("listener closed", lambda: _refused(url.hostname, url.port))
    conn.sendall(body[half:])
    conn.settimeout(30)
    status, headers, content = read_answer(conn, bytearray())
    conn.close()
    assert status == 200, content[:200]
    assert headers["connection"] == "close"  # the connection ends with it
    assert len(json.loads(content)["predictions"]) == 2

    assert server.process.wait(timeout=60) == 0
    messages = [json.loads(line)["message"] for line in server.log_lines()]
    assert "SIGTERM: readiness off, draining" in messages
    assert messages[-1].startswith("Finished server process")


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return True
    return False
