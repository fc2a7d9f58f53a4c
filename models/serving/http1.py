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
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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
