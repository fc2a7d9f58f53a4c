"""The gRPC port's protocol (serving/http2.py): an inline server's ModelInfer calls are answered
by the protocol itself, as their message completes; every other call goes to the ASGI app.

Driven in process on a real loop, frames from zttp's client role: which calls reach the app as a
task, what each call is answered, the metrics, and what the protocol still does for the calls it
answers (the message limit while the body streams, a stream the client resets mid-body, calls
interleaved on one connection). The wire behaviour (one segment per answer, the GOAWAY rotation,
drain) is in test_grpc_connections.py, over a real server process.
"""

from __future__ import annotations

import asyncio

import numpy as np
import uvicorn
import zttp
from uvicorn.server import ServerState

from serving.grpc_server import GrpcApp, InferenceServicer
from serving.http1 import CorkedTransport
from serving.http2 import GrpcPortProtocol
from serving.protocol.grpc import grpc_predict_v2_pb2 as pb
from serving.server import build
from serving.settings import ServerSettings
from test_grpc import infer_request, outputs_of, sample
from test_grpc_connections import HEADERS, INFER, LIVE, grpc_message
from test_http1 import Recording, next_turn

CANCEL = 0x8


class Exchange:
    """One HTTP/2 connection to a fresh GrpcPortProtocol of a ModelServer (in this process, on a
    real loop), with a zttp client on the other end: streams in, answers and metrics out."""

    def __init__(self, model_dir, **env: str) -> None:
        settings = ServerSettings.from_env({"MODEL_DIR": str(model_dir), **env})
        self.server = build(settings)
        self.app = GrpcApp(InferenceServicer(self.server), settings.max_body_bytes)
        self.asgi_paths: list[str] = []
        self.client = zttp.Connection(zttp.CLIENT, protocol=zttp.HTTP2)
        self.client.initiate_connection()
        self.answers: dict[int, dict] = {}  # stream -> {"http": status, "data", "trailers"}

    async def recording_app(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.asgi_paths.append(scope["path"])
        await self.app(scope, receive, send)

    def run(self, steps) -> None:
        """``steps(client)`` yields batches of the client's frames; after each, the protocol
        reads it, the app's tasks get up to 2 s to finish, and the client reads the answers."""

        async def main():
            loop = asyncio.get_running_loop()
            config = uvicorn.Config(
                self.recording_app, interface="asgi3", lifespan="off", log_config=None
            )
            state = ServerState()
            # The HTTP/2 protocol the port's dispatch switches to, over the transport it gives.
            h2 = GrpcPortProtocol.for_calls(self.app.inline_call).h2_protocol
            protocol = h2(config=config, server_state=state, app_state={}, _loop=loop)
            transport = Recording()
            protocol.connection_made(CorkedTransport(transport, loop))
            await self.server.runner.start()
            self.server.state.loaded = True
            for batch in steps(self.client):
                protocol.data_received(batch)
                for _ in range(200):  # the app's tasks finish (one waiting for a body may not)
                    if not state.tasks:
                        break
                    await asyncio.sleep(0.01)
                await next_turn()
                self._read(transport)
            await self.server.runner.stop()

        asyncio.run(main())

    def _read(self, transport: Recording) -> None:
        written = b"".join(
            b"".join(call[1]) if call[0] == "writelines" else call[1]
            for call in transport.calls
            if call[0] in ("write", "writelines")
        )
        transport.calls.clear()
        self.client.receive_data(written)
        for event in iter(self.client.next_event, zttp.NEED_DATA):
            if isinstance(event, zttp.Response):
                self.answers[event.stream_id] = {"http": event.status_code, "data": b""}
            elif isinstance(event, zttp.Data):
                self.answers.setdefault(event.stream_id, {"data": b""})["data"] += event.data
            elif isinstance(event, zttp.EndOfMessage):
                answer = self.answers.setdefault(event.stream_id, {"data": b""})
                answer["trailers"] = dict(event.trailers or [])

    def status(self, stream_id: int) -> bytes | None:
        return self.answers.get(stream_id, {}).get("trailers", {}).get(b"grpc-status")

    def message(self, stream_id: int) -> str:
        return self.answers[stream_id]["trailers"].get(b"grpc-message", b"").decode()

    def metrics(self) -> dict:
        m = self.server.metrics
        return {
            "success": m.success.value,
            "failure": m.failure.value,
            "in_flight": m.in_flight.value,
        }


def call(client, path: bytes, body: bytes, headers=HEADERS) -> int:
    stream = client.send_request(b"POST", path, b"2", headers)
    stream.send_data(body)
    stream.end_message()
    return stream.stream_id


def response_of(exchange: Exchange, stream_id: int) -> pb.ModelInferResponse:
    data = exchange.answers[stream_id]["data"]
    assert len(data) == 5 + int.from_bytes(data[1:5], "big")
    return pb.ModelInferResponse.FromString(data[5:])


def test_an_inline_servers_model_infer_never_reaches_the_asgi_app(model1_dir):
    """ModelInfer is answered in the protocol, right; ServerLive and a call that is not gRPC
    (another content type: 415 from the app) still go to the app."""
    _, x, expected = sample(model1_dir)
    infer = grpc_message(infer_request(x))
    exchange = Exchange(model1_dir)
    ids = {}

    def steps(client):
        ids["infer"] = call(client, INFER, infer)
        yield client.data_to_send()
        ids["live"] = call(client, LIVE, grpc_message(pb.ServerLiveRequest()))
        json_type = [(k, b"application/json" if k == b"content-type" else v) for k, v in HEADERS]
        ids["json"] = call(client, INFER, infer, json_type)
        ids["again"] = call(client, INFER, infer)
        yield client.data_to_send()

    exchange.run(steps)
    assert exchange.asgi_paths == [LIVE.decode(), INFER.decode()]  # live, then the JSON one
    assert exchange.status(ids["infer"]) == exchange.status(ids["again"]) == b"0"
    assert exchange.status(ids["live"]) == b"0"
    assert exchange.answers[ids["json"]]["http"] == 415
    for key in ("infer", "again"):
        got = outputs_of(response_of(exchange, ids[key]))["probabilities"]
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert exchange.metrics() == {"success": 2, "failure": 0, "in_flight": 0}


def test_a_batching_servers_model_infer_goes_through_the_app(model1_dir):
    _, x, expected = sample(model1_dir)
    exchange = Exchange(model1_dir, MAX_BATCH_SIZE="8")
    ids = []

    def steps(client):
        ids.append(call(client, INFER, grpc_message(infer_request(x))))
        yield client.data_to_send()

    exchange.run(steps)
    assert exchange.asgi_paths == [INFER.decode()]
    np.testing.assert_allclose(
        outputs_of(response_of(exchange, ids[0]))["probabilities"], expected, atol=1e-6
    )


def test_bad_input_answered_in_the_protocol_gets_the_apps_statuses(model1_dir):
    """The protocol's calls end as the app's would: INVALID_ARGUMENT naming the field, NOT_FOUND
    for another model, a bad frame prefix refused, each counted a failure, none in flight."""
    _, x, _ = sample(model1_dir)
    exchange = Exchange(model1_dir)
    ids = {}
    wrong_width = infer_request(np.zeros((1, x.shape[1] + 1), np.float32))
    other_model = infer_request(x)
    other_model.model_name = "no-such-model"

    def steps(client):
        ids["width"] = call(client, INFER, grpc_message(wrong_width))
        ids["model"] = call(client, INFER, grpc_message(other_model))
        ids["frame"] = call(client, INFER, grpc_message(infer_request(x))[:-1])
        yield client.data_to_send()

    exchange.run(steps)
    assert exchange.asgi_paths == []
    assert exchange.status(ids["width"]) == b"3" and "shape" in exchange.message(ids["width"])
    assert exchange.status(ids["model"]) == b"5"
    assert "no-such-model" in exchange.message(ids["model"])
    assert exchange.status(ids["frame"]) == b"3"
    assert "length-prefixed" in exchange.message(ids["frame"])
    assert exchange.metrics() == {"success": 0, "failure": 2, "in_flight": 0}


def test_a_message_over_the_limit_is_refused_while_it_streams_and_the_connection_serves_on(
    model1_dir,
):
    """MAX_BODY_BYTES: RESOURCE_EXHAUSTED as soon as the body passes the limit, before the end of
    the message; the rest of that stream is dropped and the next call is answered."""
    _, x, _ = sample(model1_dir)
    exchange = Exchange(model1_dir, MAX_BODY_BYTES="1024")
    ids = {}

    def steps(client):
        big = client.send_request(b"POST", INFER, b"2", HEADERS)
        big.send_data(b"\0" + (4000).to_bytes(4, "big") + bytes(1500))
        ids["big"] = big.stream_id
        yield client.data_to_send()
        assert exchange.status(ids["big"]) == b"8"  # answered with the message still open
        big.send_data(bytes(2500))
        big.end_message()
        ids["next"] = call(client, INFER, grpc_message(infer_request(x)))
        yield client.data_to_send()

    exchange.run(steps)
    assert exchange.asgi_paths == []
    assert "MAX_BODY_BYTES" in exchange.message(ids["big"])
    assert exchange.status(ids["next"]) == b"0"


def test_a_stream_reset_mid_body_is_not_answered_and_leaves_nothing_in_flight(model1_dir):
    _, x, _ = sample(model1_dir)
    infer = grpc_message(infer_request(x))
    exchange = Exchange(model1_dir)
    ids = {}

    def steps(client):
        half = client.send_request(b"POST", INFER, b"2", HEADERS)
        half.send_data(infer[:20])
        ids["half"] = half.stream_id
        yield client.data_to_send()
        half.reset(CANCEL)
        ids["next"] = call(client, INFER, infer)
        yield client.data_to_send()

    exchange.run(steps)
    assert exchange.asgi_paths == []
    assert ids["half"] not in exchange.answers
    assert exchange.status(ids["next"]) == b"0"
    assert exchange.metrics() == {"success": 1, "failure": 0, "in_flight": 0}
