"""The ASGI application: Open Inference Protocol v2 REST, /predict, /metrics, /openapi.json.

An inference request is an ``InferenceCall``. An inline server's calls are answered by the REST
port's protocol itself (``ModelServer.inference_call``, serving/http1.py); the app answers the
rest, and a batching server's, through ``_AsgiEndpoint``.

``ModelServer`` also holds the process's other listeners (the gRPC endpoint,
``serving.grpc_server``): the process runner starts them, and the lifespan closes them before the
runner they share stops.
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from time import perf_counter
from typing import Protocol

import numpy as np
import orjson
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from serving import __version__
from serving.backends import Backend
from serving.batching import InlineRunner, MicroBatcher
from serving.content_encoding import decode_body
from serving.errors import (
    InvalidInput,
    ModelNotFound,
    NonFiniteOutput,
    PayloadTooLarge,
    ServingError,
)
from serving.http1 import Answer, declared_too_large, response_headers
from serving.manifest import ModelManifest
from serving.metrics import ServingMetrics
from serving.openapi import build_openapi
from serving.protocol.binary import HEADER_KEY, encode_infer_binary
from serving.protocol.rest import (
    encode_infer,
    encode_predict,
    non_finite_rows,
    parse_infer,
    parse_predict,
)
from serving.settings import ServerSettings

log = logging.getLogger("serving")
INTERNAL_ERROR = "internal error ({}); see the server log"
"""The message of a 500 for a bug (formatted with the exception's type name)."""
JSON = "application/json"
EXTENSIONS = ["binary_tensor_data"]
"""OIP extensions served (server metadata lists them)."""


@dataclass
class ServingState:
    """Readiness, shared with the process runner that handles SIGTERM."""

    loaded: bool = False
    draining: bool = False
    heartbeat: float = field(default_factory=time.monotonic)
    """time.monotonic() of the event loop's last tick (the runner records it; probes read it)."""

    @property
    def ready(self) -> bool:
        return self.loaded and not self.draining


class ClientGone(Exception):
    """The client disconnected before sending the whole body; nobody is left to answer."""


class Listener(Protocol):
    """Another endpoint of the process (e.g. gRPC) serving the same model; it refuses inference
    with 503/UNAVAILABLE until the model is loaded."""

    async def start(self) -> None:
        """Start listening; raise ConfigError when that is impossible (e.g. the port is taken)."""
        ...

    async def stop(self) -> None:
        """Refuse new requests, let in-flight ones finish; safe to call more than once."""
        ...


_INFER_PATH = re.compile(
    r"^/v2/models/(?P<model_name>[^/]+)(?:/versions/(?P<model_version>[^/]+))?/infer$"
)


def inference_route(path: str) -> dict[str, str] | None:
    """The path parameters of an inference route: the model name (and version) of an OIP infer
    path, {} for /predict (which names no model); None for any other path."""
    if path == "/predict":
        return {}
    match = _INFER_PATH.match(path)
    if match is None:
        return None
    return {k: v for k, v in match.groupdict().items() if v is not None}


class _FastPath:
    """ASGI front: inference POSTs go straight to their handlers, everything else to Starlette.

    At ~10 us per ONNX call, Starlette's per-request machinery (routing, exception middleware,
    Request/Response objects: ~20 us) would cost more than the model.
    """

    def __init__(self, app, predict, infer) -> None:
        self.app = app
        self.predict = predict
        self.infer = infer

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            params = inference_route(scope["path"])
            if params == {}:
                return await self.predict(scope, receive, send)
            if params is not None:
                scope["path_params"] = params
                return await self.infer(scope, receive, send)
        await self.app(scope, receive, send)


class InferenceCall:
    """One inference request, from its headers to its answer: the clock, the in-flight gauge and
    the counters, parsing, the model call and encoding.

    Two drivers share it: ``answer_now`` (the REST port's protocol answers an inline server's
    POSTs with it as their body completes, serving/http1.py) and the ASGI endpoint, which awaits
    the body and a batching runner. Neither raises: a bug is logged and answered 500.
    """

    __slots__ = ("server", "path", "params", "started", "request")

    def __init__(self, server: ModelServer, path: str, params: dict[str, str] | None) -> None:
        """``params``: the OIP route's model name (and version); None for /predict."""
        self.server = server
        self.path = path
        self.params = params
        self.started = perf_counter()
        self.request = None
        server.metrics.in_flight.inc()

    @property
    def limit(self) -> int:
        """The largest body taken, in bytes (MAX_BODY_BYTES)."""
        return self.server.max_body

    def check_route(self) -> None:
        """Raise ModelNotFound when the URL names another model (before the body is read)."""
        params = self.params
        if params is not None:
            self.server.check_model(params["model_name"], params.get("model_version"))

    def parse(self, headers: list[tuple[bytes, bytes]], body: bytes) -> np.ndarray:
        """The model input the request carries; raise ServingError for bad input."""
        server = self.server
        encoding = binary = None
        for key, value in headers:
            if key == b"content-encoding":
                encoding = value
            elif key == HEADER_KEY:
                binary = value
        if encoding is not None:
            body = decode_body(body, encoding, server.max_body)
        if self.params is None:
            return parse_predict(body, server.features)
        req = parse_infer(body, server.features, server.input_name, binary)
        if req.model_name is not None and req.model_name != server.name:
            raise InvalidInput(
                f"'model_name' in the body is {req.model_name!r} but the URL names "
                f"model '{server.name}'; drop the field or make them agree"
            )
        self.request = req
        return req.x

    def answered(self, probabilities: np.ndarray) -> Answer:
        """The 200 answer for the model's ``probabilities``."""
        server, req = self.server, self.request
        if req is None:
            answer = 200, encode_predict(probabilities), None
        elif req.binary_outputs:
            content, header_length = encode_infer_binary(
                probabilities, server.name, server.version, req.id, req.outputs, req.binary_outputs
            )
            answer = 200, content, header_length
        else:
            answer = (
                200,
                encode_infer(probabilities, server.name, server.version, req.id, req.outputs),
                None,
            )
        self._end().success.inc()
        return answer

    def refused(self, exc: ServingError) -> Answer:
        """The answer for a request the server refuses (4xx) or cannot serve (5xx)."""
        self._end().failure.inc()
        if exc.status >= 500:
            log.error("inference failed", extra={"status": exc.status, "error": exc.message})
        else:
            log.debug("request refused", extra={"status": exc.status, "error": exc.message})
        return exc.status, orjson.dumps({"error": exc.message}), None

    def crashed(self, exc: BaseException) -> Answer:
        """The 500 answer for a bug (not bad input): logged, and the server keeps serving."""
        self.abandon()
        log.error("unhandled error", exc_info=exc, extra={"path": self.path})
        error = INTERNAL_ERROR.format(type(exc).__name__)
        return 500, orjson.dumps({"error": error}), None

    def abandon(self) -> None:
        """The request ends unanswered (the client left, or a crash): counted as a failure."""
        self._end().failure.inc()

    def answer_now(self, headers: list[tuple[bytes, bytes]], body: bytes | ServingError) -> Answer:
        """The answer, computed now with an inline runner's plain call; ``body`` is the error
        when the protocol refused it already (too large)."""
        try:
            if isinstance(body, ServingError):
                raise body
            self.check_route()
            return self.answered(self.server.probabilities_now(self.parse(headers, body)))
        except ServingError as exc:
            return self.refused(exc)
        except Exception as exc:
            return self.crashed(exc)

    def _end(self) -> ServingMetrics:
        metrics = self.server.metrics
        metrics.in_flight.dec()
        metrics.duration.observe(perf_counter() - self.started)
        return metrics


class _AsgiEndpoint:
    """The ASGI driver of an InferenceCall: awaits the body and (batching) the model."""

    def __init__(self, server: ModelServer, oip: bool) -> None:
        self.server = server
        self.oip = oip

    async def __call__(self, scope, receive, send) -> None:
        server = self.server
        call = InferenceCall(server, scope["path"], scope["path_params"] if self.oip else None)
        try:
            call.check_route()
            body = await server.receive_body(scope, receive)
            status, content, header_length = call.answered(
                await server.probabilities(call.parse(scope["headers"], body))
            )
        except ServingError as exc:
            status, content, header_length = call.refused(exc)
        except ClientGone:
            call.abandon()
            return
        except Exception as exc:
            status, content, header_length = call.crashed(exc)
        except BaseException:
            call.abandon()
            raise
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": response_headers(len(content), header_length),
            }
        )
        await send({"type": "http.response.body", "body": content})


def _json(doc: object, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type=JSON)


def _error(exc: ServingError) -> Response:
    return _json({"error": exc.message}, exc.status)


class ModelServer:
    """One model behind the HTTP API; ``app`` is the ASGI application."""

    def __init__(
        self,
        settings: ServerSettings,
        manifest: ModelManifest,
        backend: Backend,
        state: ServingState | None = None,
    ) -> None:
        self.name = settings.model_name or manifest.name
        self.version = settings.model_version or manifest.version
        self.manifest = manifest
        self.backend = backend
        self.state = state if state is not None else ServingState()
        self.features = manifest.input.features
        self.input_name = manifest.input.name
        self.max_body = settings.max_body_bytes
        self.metrics = ServingMetrics(self.name, self.version)
        observe = self.metrics.predict_seconds.observe
        if settings.max_batch_size > 1:
            # ONNX Runtime calls cost microseconds: merged on the event loop, not in a thread.
            self.runner: InlineRunner | MicroBatcher = MicroBatcher(
                backend.predict_proba,
                observe,
                settings.max_batch_size,
                in_thread=backend.kind != "onnx",
            )
        else:
            self.runner = InlineRunner(backend.predict_proba, observe)
        self._openapi = orjson.dumps(
            build_openapi(manifest, self.name, self.version, self.max_body)
        )
        self._metadata = orjson.dumps(self.metadata_doc())
        self.starlette = Starlette(
            routes=self._routes(),
            exception_handlers={HTTPException: self._http_error, Exception: self._crash},
            lifespan=self._lifespan,
        )
        self.app = _FastPath(self.starlette, self._predict_endpoint, self._infer_endpoint)
        """The ASGI application."""
        self.listeners: list[Listener] = []
        """Other endpoints serving this model: started by the process runner (server.py), closed
        before the runner stops."""

    # ------------------------------------------------------------------------------ plumbing

    def _routes(self) -> list[Route]:
        model = "/v2/models/{model_name}"
        version = model + "/versions/{model_version}"
        # POSTs to the inference routes normally never get here (_FastPath answers them); the
        # routes still give other methods their 405 with an Allow header.
        self._predict_endpoint = _AsgiEndpoint(self, oip=False)
        self._infer_endpoint = _AsgiEndpoint(self, oip=True)
        return [
            Route("/predict", self._predict_endpoint, methods=["POST"]),
            Route(model + "/infer", self._infer_endpoint, methods=["POST"]),
            Route(version + "/infer", self._infer_endpoint, methods=["POST"]),
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ready, methods=["GET"]),
            Route("/v2", self.server_metadata, methods=["GET"]),
            Route(model, self.model_metadata, methods=["GET"]),
            Route(version, self.model_metadata, methods=["GET"]),
            Route(model + "/ready", self.model_ready, methods=["GET"]),
            Route(version + "/ready", self.model_ready, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]

    @asynccontextmanager
    async def _lifespan(self, app: Starlette):
        await self.runner.start()
        self.state.loaded = True
        log.info(
            "model ready",
            extra={"model": self.name, "version": self.version, "backend": self.backend.kind},
        )
        try:
            yield
        finally:
            self.state.loaded = False
            await self.close_listeners()
            await self.runner.stop()
            log.info("model server stopped", extra={"model": self.name})

    async def close_listeners(self) -> None:
        """Stop the other listeners (each waits for its in-flight requests); idempotent."""
        for listener in self.listeners:
            await listener.stop()

    async def _http_error(self, request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            message = f"no route {request.url.path}; see /openapi.json for the API"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "?")
            message = (
                f"method {request.method} not allowed on {request.url.path}; allowed: {allowed}"
            )
        else:
            message = exc.detail
        return Response(
            orjson.dumps({"error": message}), exc.status_code, headers=exc.headers, media_type=JSON
        )

    async def _crash(self, request: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
        return _json({"error": INTERNAL_ERROR.format(type(exc).__name__)}, 500)

    async def receive_body(self, scope: dict, receive) -> bytes:
        """The request's body (still content-encoded); raise PayloadTooLarge past MAX_BODY_BYTES
        and ClientGone when the client leaves first."""
        limit = self.max_body
        too_large = declared_too_large(scope["headers"], limit)
        if too_large is not None:
            raise too_large
        message = await receive()
        body = message.get("body", b"")
        if not message.get("more_body", False) and message["type"] == "http.request":
            if len(body) > limit:
                raise PayloadTooLarge(len(body), limit)
            return body
        chunks, size = [body], len(body)
        while True:
            if message["type"] == "http.disconnect":
                raise ClientGone()
            if not message.get("more_body", False):
                return b"".join(chunks)
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(None, limit)
            chunks.append(chunk)

    def _check_model(self, request: Request) -> None:
        params = request.path_params
        self.check_model(params["model_name"], params.get("model_version"))

    def check_model(self, name: str, version: str | None) -> None:
        """Raise ModelNotFound unless ``name`` (and ``version``, when given) are served here."""
        if name != self.name or (version is not None and version != self.version):
            raise ModelNotFound(name, version, self.name, self.version)

    async def probabilities(self, x: np.ndarray) -> np.ndarray:
        """The model's float32 probabilities for ``x``; raise NonFiniteOutput on NaN/infinity."""
        runner = self.runner
        # Inline: a plain call, no coroutine (a measurable share of a ~20 us request).
        return _finite(runner.call(x) if type(runner) is InlineRunner else await runner.run(x))

    def probabilities_now(self, x: np.ndarray) -> np.ndarray:
        """``probabilities`` for an inline server, without a coroutine."""
        return _finite(self.runner.call(x))

    @property
    def inline(self) -> bool:
        """The model runs on the event loop, one call per request (no micro-batching)."""
        return type(self.runner) is InlineRunner

    def inference_call(self, path: str) -> InferenceCall | None:
        """A call for the REST port's protocol to answer now, as the POST to ``path`` completes
        (serving/http1.py): None when the ASGI app must take it, for a path that is no inference
        route (or is %-encoded) and for a batching server, which awaits its runner."""
        if not self.inline:
            return None
        params = inference_route(path)
        if params is None or "%" in path:
            return None
        return InferenceCall(self, path, params or None)

    # ------------------------------------------------------------------------------ metadata

    def metadata_doc(self) -> dict:
        """OIP model metadata: name, versions, platform, input and output tensors."""
        m = self.manifest
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": self.backend.platform,
            "inputs": [
                {
                    "name": m.input.name,
                    "datatype": "FP32",
                    "shape": [-1, m.input.features],
                    "parameters": {"feature_names": m.input.feature_names},
                }
            ],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(m.classes)]},
            ],
            "parameters": {
                "classes": m.classes,
                "backend": self.backend.kind,
                "quality": m.quality.model_dump(),
            },
        }

    async def live(self, request: Request) -> Response:
        return _json({"live": True})

    async def ready(self, request: Request) -> Response:
        ready = self.state.ready
        return _json({"ready": ready}, 200 if ready else 503)

    async def server_metadata(self, request: Request) -> Response:
        return _json(
            {"name": "mlplatform-serving", "version": __version__, "extensions": EXTENSIONS}
        )

    async def model_metadata(self, request: Request) -> Response:
        try:
            self._check_model(request)
        except ModelNotFound as exc:
            return _error(exc)
        return Response(self._metadata, media_type=JSON)

    async def model_ready(self, request: Request) -> Response:
        try:
            self._check_model(request)
        except ModelNotFound as exc:
            return _error(exc)
        ready = self.state.ready
        return _json({"name": self.name, "ready": ready}, 200 if ready else 503)

    async def prometheus(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    async def openapi(self, request: Request) -> Response:
        return Response(self._openapi, media_type=JSON)


def _finite(probabilities: np.ndarray) -> np.ndarray:
    bad = non_finite_rows(probabilities)
    if bad:
        raise NonFiniteOutput(bad)
    return probabilities
