"""HTTP/2 connections of the gRPC port over their life: retired with a graceful GOAWAY before
zttp's flood budgets (serving/http2.py), and sent the same GOAWAY when the server drains.

The frames are driven by zttp's own client role over a real socket to a real server process, so
each test sees exactly what a client's transport sees; grpcio then shows that a real client
channel carries several budgets' worth of calls without one failing.
"""

from __future__ import annotations

import signal
import socket
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import zttp

from serving.http2 import (
    MAX_STREAM_ID,
    RESET_LIMIT,
    ROTATE_AFTER_RESETS,
    ROTATE_AFTER_STREAMS,
    STREAM_LIMIT,
    ZTTP_CONCURRENT_STREAMS,
    ZTTP_RESET_BUDGET,
    ZTTP_STREAM_BUDGET,
)
from serving.protocol.grpc import grpc_predict_v2_pb2 as pb
from serving.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from serving_harness import data_segments_sent
from test_grpc import infer_request, outputs_of, sample

NO_ERROR, CANCEL = 0x0, 0x8
HEADERS = [(b"host", b"localhost"), (b"content-type", b"application/grpc"), (b"te", b"trailers")]
LIVE = b"/inference.GRPCInferenceService/ServerLive"
INFER = b"/inference.GRPCInferenceService/ModelInfer"


def grpc_message(message) -> bytes:
    raw = message.SerializeToString()
    return b"\0" + len(raw).to_bytes(4, "big") + raw


class H2Client:
    """Prior-knowledge HTTP/2 over a socket, with zttp's client role: frames, not a channel."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.conn = zttp.Connection(zttp.CLIENT, protocol=zttp.HTTP2)
        self.conn.initiate_connection()
        self.answered: dict[int, bytes] = {}  # stream -> grpc-status
        self.goaways: list[tuple[int, int]] = []  # (error code, last stream id)
        self.closed = False  # the server closed the socket
        self.flush()

    def flush(self) -> None:
        if data := self.conn.data_to_send():
            self.sock.sendall(data)

    def open(self, path: bytes, body: bytes = b"", end: bool = True, send: bool = True):
        """A new stream with ``body``; ``send=False`` leaves its frames for the next write."""
        stream = self.conn.send_request(b"POST", path, b"2", HEADERS)
        if body:
            stream.send_data(body)
        if end:
            stream.end_message()
        if send:
            self.flush()
        return stream

    def read(self, until) -> None:
        """Read frames until ``until()`` holds or the server closes the connection."""
        while not until() and not self.closed:
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                return
            self.conn.receive_data(data)
            for event in iter(self.conn.next_event, zttp.NEED_DATA):
                if isinstance(event, zttp.EndOfMessage):
                    self.answered[event.stream_id] = dict(event.trailers).get(b"grpc-status")
                elif isinstance(event, zttp.GoAway):
                    self.goaways.append((event.error_code, event.last_stream_id))
            self.flush()  # SETTINGS and PING acks, window updates

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def h2(server1):
    clients: list[H2Client] = []

    def connect() -> H2Client:
        clients.append(H2Client(server1.grpc_target))
        return clients[-1]

    yield connect
    for client in clients:
        client.close()


def _flood_after(step) -> int:
    """How many ``step(client, server)`` a zttp server connection takes before it reads a flood."""
    client = zttp.Connection(zttp.CLIENT, protocol=zttp.HTTP2)
    server = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
    client.initiate_connection()
    server.initiate_connection()
    for n in range(10 * ZTTP_STREAM_BUDGET):
        try:
            step(client, server)
        except zttp.RemoteProtocolError as exc:
            assert "flood" in str(exc)
            return n
    raise AssertionError("no flood")


def _stream_answered(client, server) -> None:
    client.send_request(b"POST", LIVE, b"2", HEADERS).end_message()
    server.receive_data(client.data_to_send())
    requests = [e for e in iter(server.next_event, zttp.NEED_DATA) if isinstance(e, zttp.Request)]
    stream = server.stream(requests[0].stream_id)
    stream.send_response(200, [(b"content-type", b"application/grpc")])
    stream.end_message([(b"grpc-status", b"0")])
    client.receive_data(server.data_to_send())
    list(iter(client.next_event, zttp.NEED_DATA))


def _stream_reset(client, server) -> None:
    client.send_request(b"POST", INFER, b"2", HEADERS).reset(CANCEL)
    server.receive_data(client.data_to_send())
    list(iter(server.next_event, zttp.NEED_DATA))


def test_the_pinned_zttp_floods_where_the_rotation_assumes():
    """The budgets serving/http2.py rotates under, measured on the pinned zttp: a new zttp that
    moves them fails here and the rotation's margins need a new look."""
    assert _flood_after(_stream_answered) == ZTTP_STREAM_BUDGET
    assert _flood_after(_stream_reset) == ZTTP_RESET_BUDGET
    assert ROTATE_AFTER_STREAMS < STREAM_LIMIT <= ZTTP_STREAM_BUDGET - ZTTP_CONCURRENT_STREAMS
    assert ROTATE_AFTER_RESETS < RESET_LIMIT <= ZTTP_RESET_BUDGET - ZTTP_CONCURRENT_STREAMS
    server = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
    server.initiate_connection()
    settings = server.data_to_send()[9:]  # the server's SETTINGS payload, 6 bytes a setting
    advertised = {
        int.from_bytes(settings[i : i + 2], "big"): int.from_bytes(settings[i + 2 : i + 6], "big")
        for i in range(0, len(settings), 6)
    }
    assert advertised[zttp.H2Settings.MAX_CONCURRENT_STREAMS] == ZTTP_CONCURRENT_STREAMS


def test_each_call_is_answered_in_one_segment(h2, model1_dir):
    """A ModelInfer answer's HEADERS, DATA and trailers frames leave the server together: one
    data segment per call (uvicorn's HTTP/2 writes them apart, three per call), counted by the
    kernel on the server's socket."""
    client = h2()
    _, x, _ = sample(model1_dir)
    infer = grpc_message(infer_request(x))
    calls = 60

    def call() -> None:
        stream = client.open(INFER, infer)
        client.read(lambda s=stream.stream_id: s in client.answered)

    call()  # the connection's SETTINGS exchange and first answer, then count from here
    ports = client.sock.getpeername()[1], client.sock.getsockname()[1]
    before = data_segments_sent(*ports)
    for _ in range(calls):
        call()
    sent = data_segments_sent(*ports) - before
    assert set(client.answered.values()) == {b"0"} and len(client.answered) == calls + 1
    assert sent <= calls + 2, f"{sent} data segments for {calls} calls"


def test_a_connection_is_retired_in_two_goaways_after_its_stream_budget(h2):
    """Call after call on one connection: at ROTATE_AFTER_STREAMS the server sends GOAWAY(NO_ERROR,
    2^31-1), still serves the calls that crossed it, then names the last one served in a second
    GOAWAY and closes; a stream opened after that is not served."""
    client = h2()
    live = grpc_message(pb.ServerLiveRequest())
    for _ in range(ROTATE_AFTER_STREAMS - 1):
        stream = client.open(LIVE, live)
        client.read(lambda s=stream.stream_id: s in client.answered)
    assert not client.goaways and set(client.answered.values()) == {b"0"}
    # The budget's last call and five more in one write: the five cross the first GOAWAY.
    streams = [client.open(LIVE, live, send=False).stream_id for _ in range(6)]
    client.flush()
    client.read(lambda: len(client.goaways) == 2)
    assert client.goaways == [(NO_ERROR, MAX_STREAM_ID), (NO_ERROR, streams[-1])]
    assert {s: client.answered.get(s) for s in streams} == dict.fromkeys(streams, b"0")
    late = client.open(LIVE, live).stream_id
    client.read(lambda: False)  # until the server closes
    assert late not in client.answered
    assert len(client.answered) == ROTATE_AFTER_STREAMS + 5


def test_a_client_ignoring_the_first_goaway_never_meets_the_flood_guard(h2):
    """Calls go on after the first GOAWAY: the second comes, at the latest, while the streams
    still in flight fit in zttp's budget, and no GOAWAY is ever ENHANCE_YOUR_CALM."""
    client = h2()
    live = grpc_message(pb.ServerLiveRequest())
    while len(client.goaways) < 2 and not client.closed:
        stream = client.open(LIVE, live)
        client.read(lambda s=stream.stream_id: s in client.answered or len(client.goaways) == 2)
    assert [code for code, _ in client.goaways] == [NO_ERROR, NO_ERROR]
    last = client.goaways[1][1]
    assert last <= 2 * STREAM_LIMIT - 1  # client streams are odd: the n-th is 2n - 1
    assert max(client.answered) <= last and set(client.answered.values()) == {b"0"}


def test_a_connection_is_retired_in_two_goaways_after_its_reset_budget(h2):
    """Calls the client cancels mid-request (RST_STREAM) count toward zttp's reset budget; the
    server retires the connection from ROTATE_AFTER_RESETS, before zttp would call it a flood."""
    client = h2()
    half = grpc_message(infer_request(np.zeros((1, 30), np.float32)))[:20]
    streams = []
    for _ in range(ROTATE_AFTER_RESETS):
        stream = client.open(INFER, half, end=False, send=False)
        stream.reset(CANCEL)
        streams.append(stream.stream_id)
    client.flush()
    client.read(lambda: False)
    assert client.goaways == [(NO_ERROR, MAX_STREAM_ID), (NO_ERROR, streams[-1])]
    assert not client.answered


def test_one_grpc_channel_carries_several_budgets_of_calls_without_a_failure(server1, model1_dir):
    """grpcio reconnects on the GOAWAY and retries what raced it: 8 threads on one channel make
    three zttp budgets' worth of ModelInfer calls, every one answered right."""
    _, x, expected = sample(model1_dir)
    request = infer_request(x)
    calls = 3 * ZTTP_STREAM_BUDGET
    with grpc.insecure_channel(server1.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        def call(_):
            return outputs_of(stub.ModelInfer(request, timeout=30))["probabilities"]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, range(calls)))
    assert len(answers) == calls
    for got in answers:
        np.testing.assert_allclose(got, expected, atol=1e-5)
    log = server1.log_path.read_text()
    assert "flood" not in log and "Invalid HTTP/2 frame" not in log


def test_a_draining_server_sends_goaway_at_once_and_finishes_the_open_call(
    server_factory, model1_dir
):
    """SIGTERM (DRAIN_SECONDS=0): the connection gets its first GOAWAY at once, while a call on it
    is still open (its body half sent); that call then gets its answer, the second GOAWAY names
    the last stream, and the connection closes."""
    server = server_factory(model1_dir, DRAIN_SECONDS="0")
    _, x, _ = sample(model1_dir)
    body = grpc_message(infer_request(x))
    client = H2Client(server.grpc_target)
    try:
        stream = client.open(INFER, body[:20], end=False)
        # Answered in order behind it: the server has the open call when this one is answered.
        probe = client.open(LIVE, grpc_message(pb.ServerLiveRequest()))
        client.read(lambda: probe.stream_id in client.answered)
        server.process.send_signal(signal.SIGTERM)
        client.read(lambda: bool(client.goaways))
        assert client.goaways == [(NO_ERROR, MAX_STREAM_ID)]
        assert stream.stream_id not in client.answered
        stream.send_data(body[20:])
        stream.end_message()
        client.flush()
        client.read(lambda: False)
        assert client.answered[stream.stream_id] == b"0"
        assert client.goaways == [(NO_ERROR, MAX_STREAM_ID), (NO_ERROR, probe.stream_id)]
    finally:
        client.close()
    assert server.process.wait(timeout=60) == 0
