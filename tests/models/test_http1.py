"""The REST port (serving/http1.py): each answer in one write, and an inline server's inference
POSTs answered in the protocol itself.

CorkedTransport's rules are checked on a real event loop against a transport that records what
reaches it; the server's answers are checked on the wire: the kernel's own count of the segments
the server's socket sent (`ss -ti`), over a keep-alive connection, pipelined requests,
`Expect: 100-continue` and `Connection: close`. InferenceProtocol is driven in process (which
requests reach the ASGI app as a task) and on the wire: what uvicorn did for these requests
before it must still hold (body limits, HTTP/1.0, a client leaving mid-body, the access log).
"""

from __future__ import annotations

import asyncio
import json
import socket
from urllib.parse import urlparse

import numpy as np
import pytest
import uvicorn
from uvicorn.server import ServerState

from serving.http1 import HOLD_BYTES, CorkedTransport, InferenceProtocol
from serving.manifest import load_manifest
from serving.server import build
from serving.settings import ServerSettings
from serving_harness import data_segments_sent, read_answer, split_answer, wait_for


class Recording:
    """The transport under a CorkedTransport: what it was handed, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, pieces) -> None:
        self.calls.append(("writelines", [bytes(p) for p in pieces]))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close",))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort",))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default=None):
        return default


def on_a_loop(scenario):
    """Run ``scenario(corked, recording)`` (a coroutine) on a fresh loop; return the recording."""
    recording = Recording()

    async def main():
        await scenario(CorkedTransport(recording, asyncio.get_running_loop()), recording)

    asyncio.run(main())
    return recording.calls


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_writes_of_one_turn_reach_the_transport_together_after_it():
    async def scenario(corked, recording):
        corked.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        corked.write(b"{}")
        assert recording.calls == []  # held for the end of the turn
        assert corked.get_write_buffer_size() == 40
        await next_turn()
        corked.write(b"next")
        await next_turn()

    assert on_a_loop(scenario) == [
        ("writelines", [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", b"{}"]),
        ("writelines", [b"next"]),
    ]


def test_close_writes_what_is_held_first_and_abort_drops_it():
    async def closing(corked, recording):
        corked.write(b"answer")
        corked.close()
        await next_turn()

    assert on_a_loop(closing) == [("writelines", [b"answer"]), ("close",)]

    async def aborting(corked, recording):
        corked.write(b"answer")
        corked.abort()
        await next_turn()

    assert on_a_loop(aborting) == [("abort",)]


def test_a_large_answer_reaches_the_transport_as_it_is_written():
    """Past HOLD_BYTES nothing waits for the turn's end, so the transport's flow control
    (pause_writing) still sees a large body while the app writes it."""

    async def scenario(corked, recording):
        corked.write(b"head")
        corked.write(b"x" * HOLD_BYTES)
        assert recording.calls == [("writelines", [b"head", b"x" * HOLD_BYTES])]
        corked.write(b"tail")
        await next_turn()

    assert on_a_loop(scenario)[1:] == [("writelines", [b"tail"])]


def test_nothing_is_written_once_the_transport_is_closing():
    async def scenario(corked, recording):
        corked.write(b"late")
        recording.closing = True  # e.g. the peer reset the connection meanwhile
        await next_turn()

    assert on_a_loop(scenario) == []


# ------------------------------------------------------------------------- the server, on the wire


def post(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "host: test", "content-type: application/json"]
    head += [f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: test\r\n\r\n".encode()


@pytest.fixture
def connection(server1):
    port = urlparse(server1.url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield sock, port


def infer_body(model1_dir) -> tuple[bytes, np.ndarray]:
    manifest = load_manifest(model1_dir)
    x = np.asarray(manifest.sample.inputs, dtype=np.float32)
    doc = {"inputs": [{"name": manifest.input.name, "shape": list(x.shape), "datatype": "FP32",
                       "data": x.ravel().tolist()}]}  # fmt: skip
    return json.dumps(doc).encode(), np.asarray(manifest.sample.probabilities)


def test_each_answer_leaves_the_server_as_one_segment(connection, model1_dir):
    """Answers of every kind (inference, a 400, metadata, health, metrics) over one keep-alive
    connection: the server's socket sends one segment per answer, where two writes per answer
    (uvicorn's own protocol: head, then body) send two."""
    sock, port = connection
    body, expected = infer_body(model1_dir)
    requests = [
        post("/v2/models/ml_model_1/infer", body),
        post("/v2/models/ml_model_1/infer", b'{"inputs": []}'),
        get("/v2/models/ml_model_1"),
        get("/v2/health/ready"),
        get("/metrics"),
    ] * 10
    buffer = bytearray()
    sock.sendall(requests[0])
    read_answer(sock, buffer)  # the connection's first answer, then count from here
    before = data_segments_sent(port, sock.getsockname()[1])
    statuses = []
    for request in requests:
        sock.sendall(request)
        status, headers, content = read_answer(sock, buffer)
        statuses.append(status)
        if request is requests[0]:
            probs = json.loads(content)["outputs"][1]
            np.testing.assert_allclose(
                np.reshape(probs["data"], probs["shape"]), expected, atol=1e-5
            )
    sent = data_segments_sent(port, sock.getsockname()[1]) - before
    assert statuses == [200, 400, 200, 200, 200] * 10
    assert sent == len(requests), f"{sent} data segments for {len(requests)} answers"


def test_pipelined_requests_are_answered_whole_and_in_order(connection, model1_dir):
    """Inference answered in the protocol and requests the app answers (as a task), mixed."""
    sock, _ = connection
    body, _ = infer_body(model1_dir)
    infer = post("/v2/models/ml_model_1/infer", body)
    bad = post("/v2/models/ml_model_1/infer", b"{")
    sock.sendall(infer + bad + get("/v2/health/live") + infer + get("/nope") + bad)
    buffer = bytearray()
    answers = [read_answer(sock, buffer) for _ in range(6)]
    assert [status for status, _, _ in answers] == [200, 400, 200, 200, 404, 400]
    assert json.loads(answers[3][2])["model_name"] == "ml_model_1"


def test_expect_100_continue_and_connection_close(connection, model1_dir):
    sock, _ = connection
    body, _ = infer_body(model1_dir)
    request = post("/v2/models/ml_model_1/infer", body, "expect: 100-continue", "connection: close")
    head, _, _ = request.partition(b"\r\n\r\n")
    sock.sendall(head + b"\r\n\r\n")
    assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(body)
    buffer = bytearray()
    status, headers, content = read_answer(sock, buffer)
    assert status == 200 and headers["connection"] == "close"
    assert json.loads(content)["model_name"] == "ml_model_1"
    assert sock.recv(100) == b"" and not buffer  # the whole answer, then the server closed


# ------------------------------------------------------------- inference answered in the protocol


def protocol_run(model_dir, requests: list[bytes], **env: str) -> tuple[bytes, list[str], dict]:
    """Feed ``requests`` one by one, each once the one before is answered, to a fresh
    InferenceProtocol of a ModelServer for ``model_dir`` (in this process, a real loop); return
    what it wrote, the paths that reached the ASGI app, and the model's metric values."""
    settings = ServerSettings.from_env({"MODEL_DIR": str(model_dir), **env})
    server = build(settings)
    asgi_paths: list[str] = []

    async def app(scope, receive, send):  # the model server's app, recording what reaches it
        if scope["type"] == "http":
            asgi_paths.append(scope["path"])
        await server.app(scope, receive, send)

    async def main():
        loop = asyncio.get_running_loop()
        config = uvicorn.Config(app, lifespan="off", log_config=None, server_header=False)
        state = ServerState()
        protocol = InferenceProtocol.for_calls(server.inference_call)(
            config=config, server_state=state, app_state={}, _loop=loop
        )
        transport = Recording()
        protocol.connection_made(transport)
        await server.runner.start()
        for request in requests:
            protocol.data_received(request)
            while state.tasks:
                await asyncio.sleep(0.01)
            await next_turn()
        await server.runner.stop()
        return transport

    transport = asyncio.run(main())
    written = b"".join(
        b"".join(call[1]) if call[0] == "writelines" else call[1]
        for call in transport.calls
        if call[0] in ("write", "writelines")
    )
    m = server.metrics
    metrics = {
        "success": m.success.value,
        "failure": m.failure.value,
        "in_flight": m.in_flight.value,
    }
    return written, asgi_paths, metrics


def test_an_inline_servers_inference_posts_never_reach_the_asgi_app(model1_dir):
    body, expected = infer_body(model1_dir)
    predict = json.dumps({"instances": load_manifest(model1_dir).sample.inputs}).encode()
    version = load_manifest(model1_dir).version
    requests = [
        post("/v2/models/ml_model_1/infer", body),
        post(f"/v2/models/ml_model_1/versions/{version}/infer", body),
        post("/predict", predict),
        get("/v2/health/live"),
        post("/v2/models/ml_model_1/infer", b"{"),
        post("/v2/models/other/infer", body),
        post("/v2/models/ml%5Fmodel%5F1/infer", body),  # %-encoded: the app unquotes it
        post("/v2/health/live", b""),  # no inference route: the app's 405
    ]
    written, asgi_paths, metrics = protocol_run(model1_dir, requests)
    buffer = bytearray(written)
    answers = [split_answer(buffer) for _ in requests]
    assert [status for status, _, _ in answers] == [200, 200, 200, 200, 400, 404, 200, 405]
    probs = json.loads(answers[0][2])["outputs"][1]
    np.testing.assert_allclose(np.reshape(probs["data"], probs["shape"]), expected, atol=1e-5)
    assert answers[2][1]["content-type"] == "application/json"
    assert asgi_paths == ["/v2/health/live", "/v2/models/ml_model_1/infer", "/v2/health/live"]
    assert not buffer
    # Counted like the app counts them: 3 + the %-encoded one answered, 2 refused, none left.
    assert metrics == {"success": 4, "failure": 2, "in_flight": 0}


def test_a_batching_server_takes_its_inference_posts_through_the_app(model1_dir):
    body, _ = infer_body(model1_dir)
    written, asgi_paths, metrics = protocol_run(
        model1_dir, [post("/v2/models/ml_model_1/infer", body)], MAX_BATCH_SIZE="8"
    )
    assert split_answer(bytearray(written))[0] == 200
    assert asgi_paths == ["/v2/models/ml_model_1/infer"]
    assert metrics == {"success": 1, "failure": 0, "in_flight": 0}


def test_a_body_over_the_limit_is_413_and_the_connection_still_serves(connection, model1_dir):
    """server1's limit is 64 KiB. By Content-Length: refused before the body is read (no 100
    Continue), and the body sent anyway is dropped; chunked: refused once past the limit."""
    sock, _ = connection
    body, _ = infer_body(model1_dir)
    big = b"[" + b"1," * 40_000 + b"1]"
    head, _, _ = post("/v2/models/ml_model_1/infer", big, "expect: 100-continue").partition(
        b"\r\n\r\n"
    )
    buffer = bytearray()
    sock.sendall(head + b"\r\n\r\n")
    status, _, content = read_answer(sock, buffer)
    assert status == 413 and "MAX_BODY_BYTES" in json.loads(content)["error"]
    sock.sendall(big + post("/v2/models/ml_model_1/infer", body))
    assert read_answer(sock, buffer)[0] == 200

    chunked = (
        b"POST /v2/models/ml_model_1/infer HTTP/1.1\r\nhost: test\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (30_000, b" " * 30_000)
    sock.sendall(chunked + chunk * 3 + b"0\r\n\r\n" + post("/v2/models/ml_model_1/infer", body))
    status, _, content = read_answer(sock, buffer)
    assert status == 413 and "more than that" in json.loads(content)["error"]
    assert read_answer(sock, buffer)[0] == 200


def test_http_1_0_is_answered_then_closed(connection, model1_dir):
    sock, _ = connection
    body, _ = infer_body(model1_dir)
    sock.sendall(post("/v2/models/ml_model_1/infer", body).replace(b"HTTP/1.1", b"HTTP/1.0", 1))
    buffer = bytearray()
    status, headers, _ = read_answer(sock, buffer)
    assert status == 200 and headers["connection"] == "close"
    assert sock.recv(100) == b""


def test_a_client_leaving_mid_body_is_a_failure_and_leaves_nothing_in_flight(
    server_factory, model1_dir, client
):
    server = server_factory(model1_dir, ACCESS_LOG="true")
    port = urlparse(server.url).port
    body, _ = infer_body(model1_dir)
    request = post("/v2/models/ml_model_1/infer", body)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        assert read_answer(sock, bytearray())[0] == 200
        sock.sendall(request[:-10])  # the next one's body never completes

        def in_flight() -> float:
            text = client.get(f"{server.url}/metrics").text
            return next(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("model_infer_requests_in_flight{")
            )

        wait_for("the half-sent request in flight", lambda: in_flight() == 1)
    wait_for("the request given up", lambda: in_flight() == 0)
    text = client.get(f"{server.url}/metrics").text
    counts = {
        line.split("{")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(("model_infer_request_success_total", "model_infer_request_failure"))
    }
    assert counts == {
        "model_infer_request_success_total": 1,
        "model_infer_request_failure_total": 1,
    }
    # ACCESS_LOG: the answered request has its line, as uvicorn writes it for the app's answers.
    records = [json.loads(line) for line in server.log_lines()]
    access = [r["message"] for r in records if r["logger"] == "uvicorn.access"]
    assert any(line.endswith('"POST /v2/models/ml_model_1/infer HTTP/1.1" 200') for line in access)
