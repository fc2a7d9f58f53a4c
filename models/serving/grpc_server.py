"""The Open Inference Protocol's gRPC service (``inference.GRPCInferenceService``), in-process.

It runs on the HTTP server's event loop and serves the same ``ModelServer``: the same runner
(inline or micro-batched), metrics, readiness and drain. ``GrpcListener`` is one of the model
server's listeners: it starts before the model reports ready, and on shutdown it refuses new RPCs
while in-flight ones get GRACEFUL_TIMEOUT_SECONDS to finish before the runner stops.
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter

import grpc
from google.protobuf.message import DecodeError

from serving import __version__
from serving.app import EXTENSIONS, ModelServer
from serving.errors import ConfigError, InvalidInput, NotReady, ServingError
from serving.protocol.grpc import grpc_predict_v2_pb2 as pb
from serving.protocol.grpc.codec import encode_model_infer, parse_model_infer
from serving.settings import ServerSettings

log = logging.getLogger("serving")

STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
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


def generic_handler(servicer: InferenceServicer) -> grpc.GenericRpcHandler:
    """The service's handlers. Requests reach the servicer as bytes, so a message that does not
    decode is INVALID_ARGUMENT like any other bad input (gRPC's own deserializer would answer
    INTERNAL); every ServingError becomes its gRPC status here."""

    def handler(rpc):
        async def call(raw: bytes, context: grpc.aio.ServicerContext):
            try:
                return await rpc(raw)
            except ServingError as exc:
                code = STATUS_CODES.get(exc.status, grpc.StatusCode.INTERNAL)
                if exc.status >= 500:
                    log.error(
                        "request failed", extra={"grpc_status": code.name, "error": exc.message}
                    )
                else:
                    log.debug(
                        "request refused", extra={"grpc_status": code.name, "error": exc.message}
                    )
                await context.abort(code, exc.message)
            except Exception as exc:  # a bug, not bad input: log it, answer INTERNAL, keep serving
                log.error("unhandled error", exc_info=exc, extra={"rpc": rpc.__name__})
                await context.abort(
                    grpc.StatusCode.INTERNAL,
                    f"internal error ({type(exc).__name__}); see the server log",
                )

        return grpc.unary_unary_rpc_method_handler(
            call, response_serializer=lambda message: message.SerializeToString()
        )

    return grpc.method_handlers_generic_handler(
        SERVICE, {name: handler(getattr(servicer, name)) for name in RPCS}
    )


def _tensor_metadata(tensor: dict) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
    )


class GrpcListener:
    """The gRPC endpoint on GRPC_PORT, a listener of the ModelServer (``server.listeners``)."""

    def __init__(self, model: ModelServer, settings: ServerSettings) -> None:
        self.model = model
        host = settings.host
        if ":" in host and not host.startswith("["):  # an IPv6 address, e.g. "::"
            host = f"[{host}]"
        self.address = f"{host}:{settings.grpc_port}"
        self.grace = settings.graceful_timeout_seconds
        self.options = [
            # Same limit as an HTTP body; larger messages get RESOURCE_EXHAUSTED from gRPC itself.
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            # gRPC enables SO_REUSEPORT by default: a second server on a taken port would start
            # and silently share it instead of failing.
            ("grpc.so_reuseport", 0),
        ]
        self._server: grpc.aio.Server | None = None
        self._stopping: asyncio.Task | None = None

    async def start(self) -> None:
        server = grpc.aio.server(options=self.options)
        server.add_generic_rpc_handlers((generic_handler(InferenceServicer(self.model)),))
        try:
            port = server.add_insecure_port(self.address)
        except RuntimeError as exc:  # grpcio raises when the address cannot be bound
            port, detail = 0, f" ({exc})"
        else:
            detail = ""
        if port == 0:
            raise ConfigError(
                f"cannot listen for gRPC on {self.address}{detail}: the port is taken or the "
                "address is not local. Fix: set GRPC_PORT to a free port (0 disables gRPC)."
            )
        await server.start()
        self._server = server
        log.info("gRPC listening", extra={"address": self.address})

    async def stop(self) -> None:
        if self._server is None:
            return
        if self._stopping is None:
            log.info(
                "gRPC: refusing new calls, in-flight calls finish", extra={"grace": self.grace}
            )
            self._stopping = asyncio.ensure_future(self._server.stop(self.grace))
        await asyncio.shield(self._stopping)
