"""The REST port sends each answer in one write (serving/http1.py).

CorkedTransport's rules are checked on a real event loop against a transport that records what
reaches it; the server's answers are checked on the wire: the kernel's own count of the segments
the server's socket sent (`ss -ti`), over a keep-alive connection, pipelined requests,
`Expect: 100-continue` and `Connection: close`.
"""

from __future__ import annotations

import asyncio
import json
import socket
from urllib.parse import urlparse

import numpy as np
import pytest

from serving.http1 import HOLD_BYTES, CorkedTransport
from serving.manifest import load_manifest
from serving_harness import data_segments_sent


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


def read_answer(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer with a content-length from ``sock`` (``buffer`` keeps what follows)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-answer after {bytes(buffer)!r}"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        rest += chunk
    buffer[:] = rest[length:]
    return int(status_line.split()[1]), headers, rest[:length]


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
    sock, _ = connection
    body, _ = infer_body(model1_dir)
    sock.sendall(get("/v2/health/live") + post("/v2/models/ml_model_1/infer", body) + get("/nope"))
    buffer = bytearray()
    answers = [read_answer(sock, buffer) for _ in range(3)]
    assert [status for status, _, _ in answers] == [200, 200, 404]
    assert json.loads(answers[1][2])["model_name"] == "ml_model_1"


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
