"""The Open Inference Protocol's gRPC service (``inference.GRPCInferenceService``), in-process.

It runs on the HTTP server's event loop and serves the same ``ModelServer``: the same runner
(inline or micro-batched), metrics, readiness and drain. ``GrpcListener`` is one of the model
server's listeners: it starts before the model reports ready, and on shutdown it refuses new RPCs
while in-flight ones get GRACEFUL_TIMEOUT_SECONDS to finish before the runner stops.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from enum import IntEnum
from time import perf_counter
from urllib.parse import quote

import uvicorn
from google.protobuf.message import DecodeError

from serving import __version__
from serving.app import EXTENSIONS, INTERNAL_ERROR, ModelServer
from serving.content_encoding import decode_body
from serving.errors import ConfigError, InvalidInput, NotReady, ServingError
from serving.http2 import GrpcPortProtocol
from serving.protocol.grpc import grpc_predict_v2_pb2 as pb
from serving.protocol.grpc.codec import encode_model_infer, parse_model_infer
from serving.settings import ServerSettings

log = logging.getLogger("serving")


class Code(IntEnum):
    """The gRPC status codes this server answers with (gRPC's own numbering)."""

    OK = 0
    INVALID_ARGUMENT = 3
    NOT_FOUND = 5
    RESOURCE_EXHAUSTED = 8
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14


STATUS_CODES = {
    400: Code.INVALID_ARGUMENT,
    404: Code.NOT_FOUND,
    413: Code.RESOURCE_EXHAUSTED,
    415: Code.UNIMPLEMENTED,  # a grpc-encoding other than gzip or deflate
    422: Code.INVALID_ARGUMENT,
    503: Code.UNAVAILABLE,
}
"""A ServingError's HTTP status -> the gRPC status it answers with (others: INTERNAL)."""


SERVICE = "inference.GRPCInferenceService"


def decode(message_type, raw: bytes):
    """Parse a request; a message that does not decode is bad input like any other."""
    try:
        return message_type.FromString(raw)
    except DecodeError as exc:
        raise InvalidInput(f"the {message_type.__name__} message does not decode: {exc}") from None


class InferenceServicer:
    """The six RPCs of the protocol's core, over one ModelServer.

    Each takes the request's serialized bytes and raises ServingError for bad requests;
    ``generic_handler`` turns those into gRPC statuses.
    """

    def __init__(self, model: ModelServer) -> None:
        self.model = model
        meta = model.metadata_doc()
        self._metadata = pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[_tensor_metadata(t) for t in meta["inputs"]],
            outputs=[_tensor_metadata(t) for t in meta["outputs"]],
        )

    async def ServerLive(self, raw: bytes) -> pb.ServerLiveResponse:
        decode(pb.ServerLiveRequest, raw)
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, raw: bytes) -> pb.ServerReadyResponse:
        decode(pb.ServerReadyRequest, raw)
        return pb.ServerReadyResponse(ready=self.model.state.ready)

    async def ServerMetadata(self, raw: bytes) -> pb.ServerMetadataResponse:
        decode(pb.ServerMetadataRequest, raw)
        return pb.ServerMetadataResponse(
            name="mlplatform-serving", version=__version__, extensions=EXTENSIONS
        )

    async def ModelReady(self, raw: bytes) -> pb.ModelReadyResponse:
        request = decode(pb.ModelReadyRequest, raw)
        self.model.check_model(request.name, request.version or None)
        return pb.ModelReadyResponse(ready=self.model.state.ready)

    async def ModelMetadata(self, raw: bytes) -> pb.ModelMetadataResponse:
        request = decode(pb.ModelMetadataRequest, raw)
        self.model.check_model(request.name, request.version or None)
        return self._metadata

    async def ModelInfer(self, raw: bytes) -> pb.ModelInferResponse:
        model = self.model
        metrics = model.metrics
        start = perf_counter()
        metrics.in_flight.inc()
        try:
            request = decode(pb.ModelInferRequest, raw)
            model.check_model(request.model_name, request.model_version or None)
            if not model.state.loaded:
                raise NotReady("the model is not loaded (the server is starting or stopping)")
            req = parse_model_infer(request, model.features, model.input_name)
            probabilities = await model.probabilities(req.x)
            response = encode_model_infer(
                probabilities, model.name, model.version, req.id, req.outputs
            )
        except BaseException:
            metrics.failure.inc()
            raise
        finally:
            metrics.in_flight.dec()
            metrics.duration.observe(perf_counter() - start)
        metrics.success.inc()
        return response


RPCS = (
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
)
"""The RPCs served (the protocol's core; no streaming, repository or statistics RPCs)."""


class GrpcApp:
    """The service over HTTP/2 as an ASGI application: gRPC's framing (a 5-byte prefix per
    message), status and message in trailers, for unary calls (all the protocol's core RPCs).

    Requests reach the servicer as bytes, so a message that does not decode is INVALID_ARGUMENT
    like any other bad input; every ServingError becomes its gRPC status here.
    """

    def __init__(self, servicer: InferenceServicer, max_message_bytes: int) -> None:
        self.rpcs = {f"/{SERVICE}/{name}": getattr(servicer, name) for name in RPCS}
        self.max_message_bytes = max_message_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        content_type = encoding = b""
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value
            elif key == b"grpc-encoding":
                encoding = value
        if scope.get("http_version") != "2" or not content_type.startswith(b"application/grpc"):
            # Not a gRPC call (gRPC's spec: answer 415), e.g. HTTP/1.1 to the gRPC port.
            await _plain(send, 415, b"gRPC only: send HTTP/2 with content-type application/grpc\n")
            return
        rpc = self.rpcs.get(scope["path"])
        try:
            message = await self._message(receive, encoding)
            if rpc is None:
                raise _Status(
                    Code.UNIMPLEMENTED,
                    f"unknown method {scope['path']}; this server serves {SERVICE}: "
                    + ", ".join(RPCS),
                )
            response = (await rpc(message)).SerializeToString()
        except _Status as exc:
            await _answer(send, exc.code, exc.message)
        except ServingError as exc:
            code = STATUS_CODES.get(exc.status, Code.INTERNAL)
            if exc.status >= 500:
                log.error("request failed", extra={"grpc_status": code.name, "error": exc.message})
            else:
                log.debug("request refused", extra={"grpc_status": code.name, "error": exc.message})
            await _answer(send, code, exc.message)
        except _Gone:
            return
        except Exception as exc:  # a bug, not bad input: log it, answer INTERNAL, keep serving
            log.error("unhandled error", exc_info=exc, extra={"rpc": scope["path"]})
            message = INTERNAL_ERROR.format(type(exc).__name__)
            await _answer(send, Code.INTERNAL, message)
        else:
            await _answer(send, Code.OK, "", response)

    async def _message(self, receive, encoding: bytes) -> bytes:
        """The request's one message, unframed (and inflated: grpc-encoding gzip or deflate,
        bounded by MAX_BODY_BYTES); _Status or ServingError for what gRPC would refuse."""
        limit = self.max_message_bytes + 5
        chunks, size = [], 0
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                raise _Gone()
            chunk = event.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Status(
                    Code.RESOURCE_EXHAUSTED,
                    f"message larger than {self.max_message_bytes} bytes (MAX_BODY_BYTES)",
                )
            chunks.append(chunk)
            if not event.get("more_body", False):
                break
        body = b"".join(chunks)
        if len(body) < 5 or len(body) != 5 + int.from_bytes(body[1:5], "big"):
            raise _Status(
                Code.INVALID_ARGUMENT,
                "the request is not one length-prefixed gRPC message (unary calls only)",
            )
        if body[0] == 0:
            return body[5:]
        if encoding.strip().lower() in (b"", b"identity"):
            raise _Status(
                Code.INVALID_ARGUMENT,
                "the message is flagged compressed but the call has no grpc-encoding",
            )
        return decode_body(body[5:], encoding, self.max_message_bytes)


class _Status(Exception):
    def __init__(self, code: Code, message: str) -> None:
        self.code, self.message = code, message


class _Gone(Exception):
    """The client went away before its request was complete."""


_GRPC_HEADERS = [(b"content-type", b"application/grpc")]
# gRPC's percent-encoding of grpc-message: printable ASCII but '%' stays as it is.
_MESSAGE_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


async def _answer(send, code: Code, message: str, response: bytes | None = None) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": _GRPC_HEADERS, "trailers": True}
    )
    body = b"" if response is None else b"\x00" + len(response).to_bytes(4, "big") + response
    await send({"type": "http.response.body", "body": body})
    trailers = [(b"grpc-status", b"%d" % code)]
    if message:
        trailers.append((b"grpc-message", quote(message, safe=_MESSAGE_SAFE).encode()))
    await send({"type": "http.response.trailers", "headers": trailers})


async def _plain(send, status: int, text: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(text))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})


def _tensor_metadata(tensor: dict) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
    )


class GrpcListener:
    """The gRPC endpoint on GRPC_PORT, a listener of the ModelServer (``server.listeners``).

    HTTP/2 in cleartext (gRPC's insecure channels: prior knowledge) from uvicorn's zttp protocol,
    compiled, on the HTTP server's event loop: a call costs a third of the CPU grpcio's asyncio
    server takes (benchmarks/results/serving-peers-profile.md). Each connection is retired with
    a graceful GOAWAY before zttp's per-connection budgets run out (serving/http2.py). Stopping
    sends every connection that GOAWAY, so clients open no new calls on it, while in-flight ones
    get GRACEFUL_TIMEOUT_SECONDS to finish.
    """

    def __init__(self, model: ModelServer, settings: ServerSettings) -> None:
        self.model = model
        self.host, self.port = settings.host, settings.grpc_port
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.address = f"{shown}:{self.port}"
        self.config = uvicorn.Config(
            GrpcApp(InferenceServicer(model), settings.max_body_bytes),
            http=GrpcPortProtocol,  # zttp's HTTP/2, connections retired before its flood guard
            lifespan="off",
            loop="none",
            log_config=None,
            access_log=False,
            server_header=False,
            date_header=False,
            # gRPC channels (and a gateway's pooled connections) are long-lived; grpcio's server
            # never closed idle ones. 10 minutes, then GOAWAY: clients reconnect unharmed.
            timeout_keep_alive=600,
            timeout_graceful_shutdown=settings.graceful_timeout_seconds,
        )
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._stopping: asyncio.Task | None = None

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"cannot listen for gRPC on {self.address} ({exc.strerror}): the port is taken "
                "or the address is not local. Fix: set GRPC_PORT to a free port (0 disables gRPC)."
            ) from None
        sock.listen(self.config.backlog)
        sock.setblocking(False)
        self.config.load()
        server = uvicorn.Server(self.config)
        server.lifespan = self.config.lifespan_class(self.config)  # what Server.serve() sets up
        await server.startup(sockets=[sock])
        self._server, self._socket = server, sock
        log.info("gRPC listening", extra={"address": self.address})

    async def stop(self) -> None:
        if self._server is None:
            return
        if self._stopping is None:
            log.info(
                "gRPC: refusing new calls, in-flight calls finish",
                extra={"grace": self.config.timeout_graceful_shutdown},
            )
            self._stopping = asyncio.ensure_future(self._server.shutdown([self._socket]))
        await asyncio.shield(self._stopping)
