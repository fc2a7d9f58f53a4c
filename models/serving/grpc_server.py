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
from collections.abc import Callable
from enum import IntEnum
from time import perf_counter
from urllib.parse import quote

import uvicorn
from google.protobuf.message import DecodeError

from serving import __version__
from serving.app import EXTENSIONS, INTERNAL_ERROR, ModelServer
from serving.content_encoding import decode_body
from serving.errors import ConfigError, InvalidInput, NotReady, ServingError
from serving.http2 import GrpcPortProtocol, UnaryAnswer
from serving.protocol.grpc import grpc_predict_v2_pb2 as pb
from serving.protocol.grpc.codec import encode_model_infer, parse_model_infer
from serving.protocol.tensors import InferRequest
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
        with _Counted(model.metrics):
            req = self._infer_request(raw)
            probabilities = await model.probabilities(req.x)
            return encode_model_infer(probabilities, model.name, model.version, req.id, req.outputs)

    def model_infer_now(self, raw: bytes) -> pb.ModelInferResponse:
        """``ModelInfer`` for an inline server, without a coroutine (the port's protocol answers
        with it, serving/http2.py)."""
        model = self.model
        with _Counted(model.metrics):
            req = self._infer_request(raw)
            probabilities = model.probabilities_now(req.x)
            return encode_model_infer(probabilities, model.name, model.version, req.id, req.outputs)

    def _infer_request(self, raw: bytes) -> InferRequest:
        """The call's input, checked: the model named, loaded, and the tensors valid."""
        model = self.model
        request = decode(pb.ModelInferRequest, raw)
        model.check_model(request.model_name, request.model_version or None)
        if not model.state.loaded:
            raise NotReady("the model is not loaded (the server is starting or stopping)")
        return parse_model_infer(request, model.features, model.input_name)


class _Counted:
    """A ModelInfer call in the server's metrics: in flight while it runs, then its duration and
    its outcome (a raised error counts as a failure)."""

    __slots__ = ("metrics", "started")

    def __init__(self, metrics) -> None:
        self.metrics = metrics

    def __enter__(self) -> None:
        self.started = perf_counter()
        self.metrics.in_flight.inc()

    def __exit__(self, exc_type, exc, tb) -> None:
        metrics = self.metrics
        metrics.in_flight.dec()
        metrics.duration.observe(perf_counter() - self.started)
        (metrics.success if exc_type is None else metrics.failure).inc()


RPCS = (
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
)
"""The RPCs served (the protocol's core; no streaming, repository or statistics RPCs)."""


MODEL_INFER = f"/{SERVICE}/ModelInfer"
_MODEL_INFER_PATH = MODEL_INFER.encode()


class GrpcApp:
    """The service over HTTP/2 as an ASGI application: gRPC's framing (a 5-byte prefix per
    message), status and message in trailers, for unary calls (all the protocol's core RPCs).

    Requests reach the servicer as bytes, so a message that does not decode is INVALID_ARGUMENT
    like any other bad input; every ServingError becomes its gRPC status here.

    An inline server's ModelInfer calls do not come here: the port's protocol answers them
    (``inline_call``).
    """

    def __init__(self, servicer: InferenceServicer, max_message_bytes: int) -> None:
        self.servicer = servicer
        self.rpcs = {f"/{SERVICE}/{name}": getattr(servicer, name) for name in RPCS}
        self.max_message_bytes = max_message_bytes

    def inline_call(
        self, path: bytes, header: Callable[[bytes], bytes | None]
    ) -> InlineModelInfer | None:
        """The call for the port's protocol to answer as its message completes
        (serving/http2.py), given the request's path and a header lookup; None when this app
        must take it: another RPC, not a gRPC call, or a batching server (which awaits its
        runner)."""
        if path != _MODEL_INFER_PATH or not self.servicer.model.inline:
            return None
        content_type = header(b"content-type")
        if content_type is None or not content_type.startswith(b"application/grpc"):
            return None
        return InlineModelInfer(self, header(b"grpc-encoding") or b"")

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
        path = scope["path"]
        rpc = self.rpcs.get(path)
        try:
            message = self.unframe(await self._body(receive), encoding)
            if rpc is None:
                raise _Status(
                    Code.UNIMPLEMENTED,
                    f"unknown method {path}; this server serves {SERVICE}: " + ", ".join(RPCS),
                )
            response = (await rpc(message)).SerializeToString()
        except _Gone:
            return
        except Exception as exc:
            code, text = failure(exc, path)
            data = b""
        else:
            code, text, data = Code.OK, "", framed(response)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": GRPC_HEADERS,
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": data})
        await send({"type": "http.response.trailers", "headers": trailers(code, text)})

    async def _body(self, receive) -> bytes:
        """The request's body, up to the message limit; _Gone when the client leaves first."""
        limit = self.max_message_bytes + 5
        chunks, size = [], 0
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                raise _Gone()
            chunk = event.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self.too_large()
            chunks.append(chunk)
            if not event.get("more_body", False):
                return b"".join(chunks)

    def too_large(self) -> _Status:
        return _Status(
            Code.RESOURCE_EXHAUSTED,
            f"message larger than {self.max_message_bytes} bytes (MAX_BODY_BYTES)",
        )

    def unframe(self, body: bytes, encoding: bytes) -> bytes:
        """The request's one message, unframed (and inflated: grpc-encoding gzip or deflate,
        bounded by MAX_BODY_BYTES); _Status or ServingError for what gRPC would refuse."""
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


class InlineModelInfer:
    """A ModelInfer call of an inline server, answered by the gRPC port's protocol as its message
    completes (serving/http2.py): no ASGI scope, Task or messages. The servicer's call, metrics
    and statuses are the app's."""

    __slots__ = ("app", "encoding")

    def __init__(self, app: GrpcApp, encoding: bytes) -> None:
        self.app = app
        self.encoding = encoding

    @property
    def limit(self) -> int:
        """The largest request body taken, gRPC's 5-byte prefix included."""
        return self.app.max_message_bytes + 5

    def answer_now(self, body: bytes | None) -> UnaryAnswer:
        """The answer to ``body`` (None: the body passed ``limit``), computed now."""
        app = self.app
        try:
            if body is None:
                raise app.too_large()
            message = app.unframe(body, self.encoding)
            response = app.servicer.model_infer_now(message).SerializeToString()
        except Exception as exc:
            return GRPC_HEADERS, b"", trailers(*failure(exc, MODEL_INFER))
        return GRPC_HEADERS, framed(response), _OK


class _Status(Exception):
    def __init__(self, code: Code, message: str) -> None:
        self.code, self.message = code, message


class _Gone(Exception):
    """The client went away before its request was complete."""


def failure(exc: Exception, rpc: str) -> tuple[Code, str]:
    """The status and message a call that raised ``exc`` ends with: a ServingError's status, or
    INTERNAL for a bug (logged; the server keeps serving)."""
    if isinstance(exc, _Status):
        return exc.code, exc.message
    if isinstance(exc, ServingError):
        code = STATUS_CODES.get(exc.status, Code.INTERNAL)
        if exc.status >= 500:
            log.error("request failed", extra={"grpc_status": code.name, "error": exc.message})
        else:
            log.debug("request refused", extra={"grpc_status": code.name, "error": exc.message})
        return code, exc.message
    log.error("unhandled error", exc_info=exc, extra={"rpc": rpc})
    return Code.INTERNAL, INTERNAL_ERROR.format(type(exc).__name__)


GRPC_HEADERS = [(b"content-type", b"application/grpc")]
# gRPC's percent-encoding of grpc-message: printable ASCII but '%' stays as it is.
_MESSAGE_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def framed(response: bytes) -> bytes:
    """A message in gRPC's framing: uncompressed flag, 4-byte length, the message."""
    return b"\x00" + len(response).to_bytes(4, "big") + response


def trailers(code: Code, message: str) -> list[tuple[bytes, bytes]]:
    """A call's trailers: grpc-status, and grpc-message when there is one."""
    out = [(b"grpc-status", b"%d" % code)]
    if message:
        out.append((b"grpc-message", quote(message, safe=_MESSAGE_SAFE).encode()))
    return out


_OK = trailers(Code.OK, "")


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
    a graceful GOAWAY before zttp's per-connection budgets run out (serving/http2.py), and an
    inline server's ModelInfer calls are answered there, without the ASGI app. Stopping sends
    every connection that GOAWAY, so clients open no new calls on it, while in-flight ones get
    GRACEFUL_TIMEOUT_SECONDS to finish.
    """

    def __init__(self, model: ModelServer, settings: ServerSettings) -> None:
        self.model = model
        self.host, self.port = settings.host, settings.grpc_port
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.address = f"{shown}:{self.port}"
        app = GrpcApp(InferenceServicer(model), settings.max_body_bytes)
        self.config = uvicorn.Config(
            app,
            # zttp's HTTP/2, connections retired before its flood guard; an inline server's
            # ModelInfer calls answered by the protocol itself
            http=GrpcPortProtocol.for_calls(app.inline_call),
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
