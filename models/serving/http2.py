"""The gRPC port's connections: uvicorn's zttp protocols, with HTTP/2 connections retired in time.

zttp 0.0.35 (uvicorn's HTTP/2) counts over a connection's whole life the streams it carried and
the streams reset on it, and at the 4,097th stream or the 257th reset it ends the connection with
GOAWAY(ENHANCE_YOUR_CALM) as a flood: every call still in flight on it fails UNAVAILABLE. A
long-lived channel (a gateway's pooled connection, a client's channel) carries 4,096 calls in a
second under load. So the server retires each connection first, the way nginx's
``keepalive_requests`` and gRPC servers' max-connection-age do: after ``ROTATE_AFTER_STREAMS``
streams or ``ROTATE_AFTER_RESETS`` resets it shuts the connection down gracefully, in RFC 9113
6.8's two steps. A GOAWAY(NO_ERROR) naming stream 2^31-1 tells the client to open no more streams
here; streams it opened meanwhile are still served. ``GOAWAY_GRACE_SECONDS`` later, a second
GOAWAY names the last stream served, the open ones finish, and the connection closes. A client
(or a gateway like Traefik, which cannot replay a proxied body) loses no call to the rotation.
A shutdown retires every connection the same way, so clients stop opening calls on a draining
server instead of getting UNAVAILABLE for them.

An inline server's ModelInfer calls are answered by the protocol itself, as their message
completes: no ASGI scope, Task or messages, which cost more than the model's call at one row
(as on the REST port, serving/http1.py). Such a call stands in the protocol's ``cycles`` like
uvicorn's, so the stream accounting, the rotation and the close after the last stream see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import zttp
from uvicorn.protocols.http.auto_zttp_impl import AutoZttpProtocol
from uvicorn.protocols.http.zttp_h2_impl import ZttpH2Protocol
from uvicorn.protocols.http.zttp_impl import ZttpProtocol

from serving.http1 import CorkedTransport

ZTTP_STREAM_BUDGET = 4096
ZTTP_RESET_BUDGET = 256
"""What zttp 0.0.35 lets one connection carry before it reads a flood
(tests/models/test_grpc_connections.py measures both on the installed zttp)."""

ZTTP_CONCURRENT_STREAMS = 128
"""The SETTINGS_MAX_CONCURRENT_STREAMS zttp advertises: how many streams can be open at once."""

STREAM_LIMIT = ZTTP_STREAM_BUDGET - ZTTP_CONCURRENT_STREAMS
RESET_LIMIT = ZTTP_RESET_BUDGET - ZTTP_CONCURRENT_STREAMS
"""The second GOAWAY goes out by these at the latest: the streams still open then (at most
ZTTP_CONCURRENT_STREAMS, each of which may yet be reset) fit in what is left of the budgets."""

ROTATE_AFTER_STREAMS = STREAM_LIMIT // 2
ROTATE_AFTER_RESETS = RESET_LIMIT // 2
"""Where retiring starts, with the first GOAWAY: half-way to the limits, leaving the other half
for the streams the client opens before it reads it."""

GOAWAY_GRACE_SECONDS = 1.0
"""Between the two GOAWAYs: many round trips, for streams the client opened before it read the
first one. A client that keeps opening streams gets the second GOAWAY early, at STREAM_LIMIT
or RESET_LIMIT."""

LINGER_SECONDS = 2.0
"""After the second GOAWAY and the last answer: how long a retired connection waits for the
client to close it before closing it anyway."""

NO_ERROR = 0x0
MAX_STREAM_ID = 2**31 - 1


Headers = list[tuple[bytes, bytes]]

UnaryAnswer = tuple[Headers, bytes, Headers]
"""A unary call's answer: the response headers, the DATA (a framed message, or b"") and the
trailers."""


class UnaryCall(Protocol):
    """A call the protocol answers itself (serving.grpc_server.InlineModelInfer)."""

    @property
    def limit(self) -> int: ...

    def answer_now(self, body: bytes | None) -> UnaryAnswer: ...


Calls = Callable[[bytes, Callable[[bytes], bytes | None]], UnaryCall | None]
"""(the request's path, its header lookup) -> the call the protocol answers, or None for the
ASGI app to take it."""


def _no_calls(path: bytes, header: Callable[[bytes], bytes | None]) -> None:
    return None


class RotatingH2Protocol(ZttpH2Protocol):
    """uvicorn's HTTP/2 protocol, retiring the connection gracefully before zttp's budgets, and
    answering itself the calls ``calls`` gives (set by ``for_calls``; none by default)."""

    calls: Calls = staticmethod(_no_calls)

    @classmethod
    def for_calls(cls, calls: Calls) -> type[RotatingH2Protocol]:
        return type(cls.__name__, (cls,), {"calls": staticmethod(calls)})

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.streams = self.resets = self.highest_stream_id = 0
        self.retiring = False
        """The first GOAWAY was sent."""
        self.last_stream_id: int | None = None
        """The last stream served, once the second GOAWAY was sent."""
        self.eof_written = False

    def handle_request(self, event) -> None:
        if self.last_stream_id is not None and event.stream_id > self.last_stream_id:
            return  # opened after the second GOAWAY: unprocessed, as that GOAWAY said
        self.highest_stream_id = event.stream_id
        call = None
        if not self.shutdown_requested and self.limit_concurrency is None:
            headers = event.headers
            header = headers.get if isinstance(headers, zttp.HeaderBlock) else dict(headers).get
            call = self.calls(event.path, header)
        if call is None:
            super().handle_request(event)
        else:
            send_trailers = (header(b"te") or b"").strip().lower() == b"trailers"
            self.cycles[event.stream_id] = AnsweredHere(self, event, call, send_trailers)
        self.streams += 1
        self._check_budgets()

    def answer(self, here: AnsweredHere, answer: UnaryAnswer) -> None:
        """Write a call's answer (through the corked transport: one write with the others of
        this turn), then close its stream as uvicorn does after an answer."""
        here.response_complete = True
        headers, data, trailers = answer
        stream = self.conn.stream(here.stream_id)
        stream.send_response(200, self.server_state.default_headers + headers)
        if data:
            stream.send_data(data)
        # As uvicorn: trailers only to a client that said it reads them (gRPC's always do).
        stream.end_message(trailers if here.send_trailers else None)
        self.transport.write(self.conn.data_to_send())
        if self.access_log:
            self.access_logger.info(
                '%s - "POST %s HTTP/2" 200',
                f"{self.client[0]}:{self.client[1]}" if self.client else "",
                here.path.decode("latin-1"),
            )
        self.on_response_complete(here.stream_id)

    def handle_rst_stream(self, event) -> None:
        super().handle_rst_stream(event)
        self.resets += 1
        self._check_budgets()

    def _check_budgets(self) -> None:
        if self.streams >= STREAM_LIMIT or self.resets >= RESET_LIMIT:
            self.go_away_now()  # the client ignores the first GOAWAY: no more grace
        elif self.streams >= ROTATE_AFTER_STREAMS or self.resets >= ROTATE_AFTER_RESETS:
            self.go_away()

    def go_away(self) -> None:
        """The first GOAWAY: open no more streams; the second follows after the grace."""
        if self.retiring or self.transport.is_closing():
            return
        self.retiring = True
        self.conn.close(NO_ERROR, MAX_STREAM_ID)
        self.flush()
        self.loop.call_later(GOAWAY_GRACE_SECONDS, self.go_away_now)

    def go_away_now(self) -> None:
        """The second GOAWAY, naming the last stream served; the connection closes after it."""
        if self.last_stream_id is not None or self.transport.is_closing():
            return
        self.retiring = True
        self.last_stream_id = self.highest_stream_id
        self.conn.close(NO_ERROR, self.last_stream_id)
        self.flush()
        self.shutdown_requested = True  # uvicorn closes the connection after its last stream
        if not self.cycles:
            self._close_connection()

    def _close_connection(self) -> None:
        """After the second GOAWAY: a half-close, not a close. Closing a socket with the client's
        frames still unread makes the kernel send RST, which can destroy the GOAWAY before the
        client reads it; so the server sends FIN, reads (and drops) what still comes, and closes
        when the client does (``eof_received``) or after LINGER_SECONDS. No third GOAWAY: it may
        not name a higher stream than the second."""
        if self.last_stream_id is None:
            super()._close_connection()  # uvicorn's own close (keep-alive timeout, GOAWAY seen)
            return
        if self.eof_written or self.transport.is_closing():
            return
        self.flush()
        self.eof_written = True
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def flush(self) -> None:
        if not self.eof_written:  # acks zttp queues for what a retired connection still reads
            super().flush()

    def shutdown(self) -> None:
        """The server stops: retire the connection (uvicorn waits for it to close)."""
        self.go_away()


class AnsweredHere:
    """A call the protocol answers itself, in its ``cycles`` in place of uvicorn's
    RequestResponseCycle. uvicorn's event handling treats it as one: it appends each DATA frame
    to ``body``, clears ``more_body`` at the end of the message, sets ``disconnected`` when the
    stream or the connection goes, and calls ``message_event.set()`` after each (here: ``set``,
    which moves the body aside and answers once the message is complete or too large)."""

    __slots__ = (
        "protocol",
        "stream_id",
        "path",
        "call",
        "send_trailers",
        "body",
        "chunks",
        "size",
        "more_body",
        "disconnected",
        "response_complete",
    )

    def __init__(
        self, protocol: RotatingH2Protocol, event, call: UnaryCall, send_trailers: bool
    ) -> None:
        self.protocol = protocol
        self.stream_id = event.stream_id
        self.path = event.path
        self.call = call
        self.send_trailers = send_trailers
        self.body = bytearray()
        self.chunks: list[bytes] = []
        self.size = 0
        self.more_body = True
        self.disconnected = False
        self.response_complete = False

    @property
    def message_event(self) -> AnsweredHere:
        return self

    def set(self) -> None:
        if self.response_complete or self.disconnected:
            return  # answered already (too large: the rest is dropped), or the client left
        if self.body:
            # Moved aside frame by frame: uvicorn pauses reading while a cycle's body is large.
            self.chunks.append(bytes(self.body))
            self.size += len(self.body)
            self.body = bytearray()
            if self.size > self.call.limit:
                self.chunks = []
                self.protocol.answer(self, self.call.answer_now(None))
                return
        if not self.more_body:
            body = b"".join(self.chunks)
            self.chunks = []
            self.protocol.answer(self, self.call.answer_now(body))


class GrpcPortProtocol(AutoZttpProtocol):
    """uvicorn's zttp dispatch (HTTP/2 by prior knowledge, else HTTP/1.1, which the gRPC app
    answers 415) with the rotating HTTP/2 protocol, over a CorkedTransport: a call's HEADERS,
    DATA and trailers frames leave in one write."""

    h2_protocol: type[RotatingH2Protocol] = RotatingH2Protocol

    @classmethod
    def for_calls(cls, calls: Calls) -> type[GrpcPortProtocol]:
        """The port's protocol, whose HTTP/2 connections answer the calls ``calls`` gives."""
        h2 = RotatingH2Protocol.for_calls(calls)
        return type(cls.__name__, (cls,), {"h2_protocol": h2})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]

    def _switch(self, http2: bool, initial_data: bytes = b"") -> None:
        protocol_class = self.h2_protocol if http2 else ZttpProtocol
        protocol = protocol_class(
            config=self.config,
            server_state=self.server_state,
            app_state=self.app_state,
            _loop=self.loop,
        )
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if initial_data:
            protocol.data_received(initial_data)
