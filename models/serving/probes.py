"""Kubernetes probes answered off the request loop.

The model runs inline on the event loop (the fastest path for small models), so a request never
yields: under overload a probe sent to the HTTP port waits behind every queued request and times
out. The kubelet then takes the busiest replica out of its Service, or restarts it, exactly when
capacity is short (measured: an overloaded single replica lost its endpoint and the gateway
answered 503 for seconds). Here a small threaded HTTP server on PROBE_PORT answers from the shared
state instead:

- ``/v2/health/ready``: 200 while the model is loaded and the process is not draining (the same
  rule as the HTTP port's), else 503;
- ``/v2/health/live``: 200 while the event loop has ticked within ``stall_seconds`` (the runner
  records a heartbeat every tick), else 503, so a loop that is truly stuck still gets restarted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from serving.app import ServingState
from serving.errors import ConfigError

log = logging.getLogger("serving")

LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"


class ProbeListener:
    """A ``serving.app.Listener`` for the probe port, serving from its own thread."""

    def __init__(
        self,
        state: ServingState,
        host: str,
        port: int,
        stall_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state, self.address, self.stall_seconds, self.clock = (
            state,
            (host, port),
            stall_seconds,
            clock,
        )
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def answer(self, path: str) -> tuple[int, bytes]:
        """(status, body) for a probe path."""
        if path == READY_PATH:
            ready = self.state.ready
            return (200 if ready else 503), (b'{"ready":true}' if ready else b'{"ready":false}')
        if path == LIVE_PATH:
            stalled = self.clock() - self.state.heartbeat
            if stalled <= self.stall_seconds:
                return 200, b'{"live":true}'
            return 503, b'{"live":false,"stalled_seconds":%d}' % int(stalled)
        return 404, b'{"error":"probe port: GET /v2/health/live or /v2/health/ready"}'

    async def start(self) -> None:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                status, body = listener.answer(self.path.split("?", 1)[0])
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # probes every few seconds
                pass

        try:
            self._server = ThreadingHTTPServer(self.address, Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen for probes on {self.address[0]}:{self.address[1]} ({exc}): the "
                "port is taken or the address is not local. Fix: set PROBE_PORT to a free port "
                "(0 answers probes on PORT)."
            ) from exc
        self._server.daemon_threads = True
        # The loop has not ticked yet (the model loaded before it ran): count from now.
        self.state.heartbeat = self.clock()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="probes", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            # shutdown() waits for serve_forever to return: off the loop, which may be busy.
            await asyncio.to_thread(server.shutdown)
            server.server_close()
