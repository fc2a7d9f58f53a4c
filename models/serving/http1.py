"""Answers that leave in one write: the REST port's connections (uvicorn's httptools protocol)
and, through the same transport, the gRPC port's (serving/http2.py).

uvicorn writes an answer in pieces as the app sends its ASGI messages: over HTTP/1.1 the status
line and headers, then the body; over HTTP/2 (gRPC) the HEADERS, DATA and trailers frames.
uvloop sends each piece at once, so an answer costs two or three ``write`` syscalls and leaves as
that many TCP segments. On loopback (and over a pod's veth) the kernel runs the receiving side
of each segment inside the sender's syscall, so each extra piece costs the server real CPU
(benchmarks/results/serving-peers-profile.md has the measurements).

``CorkedTransport`` keeps what is written during one turn of the event loop and writes it as one
piece at the end of that turn (the loop runs it before it next waits for I/O), the way aiohttp
coalesces small responses and servers cork a socket. Nothing is held longer than the turn, so a
streamed body still leaves chunk by chunk; nor past ``HOLD_BYTES``, so a large answer reaches
the transport (and its write flow control) as it is written; close() and write_eof() write what
is kept first.

``InferenceProtocol`` (the REST port's) answers an inline server's inference POSTs itself, in
the parser's callback once the body is complete: no ASGI scope, Task, receive/send messages or
middleware, which cost more than the model's call at one row. Everything else, and every
request of a batching server (which awaits its runner), goes to the ASGI app as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from serving.errors import PayloadTooLarge, ServingError
from serving.protocol.binary import HEADER_KEY

HOLD_BYTES = 64 * 1024
"""Written bytes kept for the end of the turn at most; more go to the transport at once."""


class CorkedTransport:
    """A transport whose writes made in one turn of the loop go out as one write at its end."""

    __slots__ = ("transport", "loop", "pending", "held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.pending: list[bytes] | None = None
        """What was written this turn, not yet handed to the transport; None when nothing is."""
        self.held = 0
        """Bytes in ``pending``."""

    def write(self, data: bytes) -> None:
        if self.pending is None:
            self.pending = [data]
            self.held = len(data)
            self.loop.call_soon(self.flush)
        else:
            self.pending.append(data)
            self.held += len(data)
        if self.held >= HOLD_BYTES:
            self.flush()

    def flush(self) -> None:
        """Hand what was written this turn to the transport (a no-op once it is closing)."""
        pending, self.pending, self.held = self.pending, None, 0
        if pending and not self.transport.is_closing():
            self.transport.writelines(pending)

    def writelines(self, data) -> None:
        for piece in data:
            self.write(piece)

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + self.held

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def abort(self) -> None:
        self.pending, self.held = None, 0
        self.transport.abort()

    # The rest is the transport's own (named for the calls uvicorn makes on every request).
    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def get_extra_info(self, name: str, default=None):
        return self.transport.get_extra_info(name, default)

    def __getattr__(self, name: str):
        return getattr(self.transport, name)


class CorkedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol over a CorkedTransport: one write per answer."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]


Answer = tuple[int, bytes, int | None]
"""An inference answer: status, body, and the binary extension's JSON header length (None for a
JSON body, else the body is a binary-extension one)."""


def response_headers(length: int, header_length: int | None) -> list[tuple[bytes, bytes]]:
    """An inference answer's headers: content type and length (and the binary extension's)."""
    if header_length is None:
        return [(b"content-type", b"application/json"), (b"content-length", b"%d" % length)]
    return [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", b"%d" % length),
        (HEADER_KEY, b"%d" % header_length),
    ]


def declared_too_large(headers: list[tuple[bytes, bytes]], limit: int) -> PayloadTooLarge | None:
    """The refusal of a body whose Content-Length is over ``limit``, to answer before reading it;
    None when it declares no more (a chunked body is checked as it streams)."""
    for name, value in headers:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return PayloadTooLarge(int(value), limit)
    return None


class Call(Protocol):
    """An inference request the protocol answers (serving.app.InferenceCall)."""

    @property
    def limit(self) -> int: ...

    def answer_now(
        self, headers: list[tuple[bytes, bytes]], body: bytes | ServingError
    ) -> Answer: ...

    def abandon(self) -> None: ...


class InferenceProtocol(CorkedHttpToolsProtocol):
    """The REST port's protocol: the inference POSTs an inline server takes are answered here,
    as their body completes, with no ASGI scope, Task, messages or middleware; every other
    request goes to the ASGI app as before.

    ``calls(path)`` (set by ``for_calls``) gives the call for a POST to ``path``, or None for
    the app to answer. A call is taken only when no earlier request on the connection awaits its
    answer, so pipelined answers keep their order; it is answered inside the parser's callback,
    before the next request on the connection is read.
    """

    calls: Callable[[str], Call | None]

    @classmethod
    def for_calls(cls, calls: Callable[[str], Call | None]) -> type[InferenceProtocol]:
        return type(cls.__name__, (cls,), {"calls": staticmethod(calls)})

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.call: Call | None = None
        """The call whose body is being read."""
        self.skip_body = False
        """The answer left already (413): the rest of the request's body is dropped."""
        self.body: list[bytes] = []
        self.body_size = 0
        self.keep_alive = True

    def on_headers_complete(self) -> None:
        parser = self.parser
        if (
            parser.get_method() == b"POST"
            and (self.cycle is None or self.cycle.response_complete)
            and self.limit_concurrency is None
            and not parser.should_upgrade()
        ):
            call = self.calls(httptools.parse_url(self.url).path.decode("ascii"))
            if call is not None:
                self.begin(call)
                return
        super().on_headers_complete()

    def begin(self, call: Call) -> None:
        parser = self.parser
        self.keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        too_large = declared_too_large(self.headers, call.limit)
        if too_large is not None:
            self.respond(call.answer_now(self.headers, too_large))
            self.skip_body = True
            return
        self.call = call
        self.body = []
        self.body_size = 0
        if self.expect_100_continue:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        call = self.call
        if call is None:
            if not self.skip_body:
                super().on_body(body)
            return
        self.body.append(body)
        self.body_size += len(body)
        if self.body_size > call.limit:
            self.call, self.body, self.skip_body = None, [], True
            self.respond(call.answer_now(self.headers, PayloadTooLarge(None, call.limit)))

    def on_message_complete(self) -> None:
        call = self.call
        if call is None:
            if self.skip_body:
                self.skip_body = False
            else:
                super().on_message_complete()
            return
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.call, self.body = None, []
        self.respond(call.answer_now(self.headers, body))

    def respond(self, answer: Answer) -> None:
        """Write ``answer`` (one write, through the corked transport), then go on as uvicorn does
        after an answer: close if not keep-alive, else arm the keep-alive timer."""
        status, content, header_length = answer
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        for name, value in response_headers(len(content), header_length):
            head += [name, b": ", value, b"\r\n"]
        if not self.keep_alive:
            head.append(b"connection: close\r\n")
        head += [b"\r\n", content]
        transport = self.transport
        transport.write(b"".join(head))
        if self.access_log:
            self.access_logger.info(
                '%s - "POST %s HTTP/%s" %d',
                f"{self.client[0]}:{self.client[1]}" if self.client else "",
                self.url.decode("latin-1"),
                self.parser.get_http_version(),
                status,
            )
        if not self.keep_alive:
            transport.close()
        self.on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.call is not None:  # the client left before the whole body came
            self.call.abandon()
            self.call = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self.call is not None:  # a body is being read: answer it, then close
            self.keep_alive = False
        else:
            super().shutdown()
