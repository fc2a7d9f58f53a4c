"""SIGTERM: readiness goes false, in-flight requests finish, then the process exits 0."""

from __future__ import annotations

import json
import signal
import socket
from urllib.parse import urlparse

import httpx
import orjson

from serving.manifest import load_manifest
from serving_harness import wait_for


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
    response = _read_response(conn)
    conn.close()
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert b"\r\nconnection: close\r\n" in response.lower()  # the connection ends with it
    payload = json.loads(response.split(b"\r\n\r\n", 1)[1])
    assert len(payload["predictions"]) == 2

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


def _read_response(conn: socket.socket) -> bytes:
    conn.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"the server closed the connection after {data!r}"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        chunk = conn.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        rest += chunk
    return head + b"\r\n\r\n" + rest
