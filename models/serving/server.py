"""Process entry point: settings -> model -> HTTP and gRPC servers, with a draining shutdown.

SIGTERM (what Kubernetes sends) does not stop the listener at once: readiness turns false and
requests are still served for DRAIN_SECONDS, so endpoints and load balancers stop sending traffic
first; then the listener closes, in-flight requests finish (GRACEFUL_TIMEOUT_SECONDS at most) and
the process exits 0. The gRPC listener follows the same phases: its readiness RPCs turn false
with the HTTP ones, and it stops taking calls when the HTTP listener closes. A second SIGTERM
skips the rest of the drain wait; SIGINT (Ctrl-C) skips it too, and a signal during the final
phase forces exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from types import FrameType

import prometheus_client
import uvicorn

from serving.app import ModelServer
from serving.backends import load_backend
from serving.errors import ConfigError
from serving.grpc_server import GrpcListener
from serving.http1 import InferenceProtocol
from serving.jsonlog import configure, log_config
from serving.manifest import load_manifest
from serving.probes import ProbeListener
from serving.settings import ServerSettings

log = logging.getLogger("serving")
LIVENESS_STALL_SECONDS = 20.0
"""The probe port reports not live once the event loop has not ticked for this long."""


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose first SIGTERM starts a drain period instead of closing the listener."""

    def __init__(
        self, config: uvicorn.Config, model_server: ModelServer, drain_seconds: float
    ) -> None:
        super().__init__(config)
        self.model_server = model_server
        self.state = model_server.state
        self.drain_seconds = drain_seconds
        self.drain_deadline: float | None = None
        self.config_error = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not calling super(): uvicorn re-raises captured signals after shutdown, which would turn
        # a clean drain into death-by-signal (exit 143) instead of exit 0.
        if self.should_exit:
            self.force_exit = True
            return
        if self.drain_deadline is None and sig == signal.SIGTERM and self.drain_seconds > 0:
            self.state.draining = True
            self.drain_deadline = time.monotonic() + self.drain_seconds
            log.info(
                "SIGTERM: readiness off, draining", extra={"drain_seconds": self.drain_seconds}
            )
            return
        self.state.draining = True
        self.should_exit = True
        log.info("stopping: listener closes, in-flight requests finish", extra={"signal": sig})

    async def startup(self, sockets=None) -> None:
        # The other listeners first: a taken gRPC port stops the start like any bad setting
        # (exit 2), and readiness turns true only once every endpoint listens.
        try:
            for listener in self.model_server.listeners:
                await listener.start()
        except ConfigError as exc:
            log.error(str(exc), extra={"event": "config_error"})
            self.config_error = True
            self.should_exit = True
            await self.model_server.close_listeners()
            return
        await super().startup(sockets)

    async def shutdown(self, sockets=None) -> None:
        # The other listeners (gRPC) close with the HTTP one, and their in-flight calls finish
        # alongside the HTTP requests; the lifespan then stops the runner after both.
        closing = asyncio.ensure_future(self.model_server.close_listeners())
        try:
            await super().shutdown(sockets)
        finally:
            await closing

    async def on_tick(self, counter: int) -> bool:
        self.state.heartbeat = time.monotonic()  # the probe thread's sign of a live loop
        if (
            self.drain_deadline is not None
            and not self.should_exit
            and time.monotonic() >= self.drain_deadline
        ):
            log.info("drain period over: listener closes, in-flight requests finish")
            self.should_exit = True
        return await super().on_tick(counter)


def process_age_seconds() -> float | None:
    """Seconds since this process was exec'd (Linux /proc), to log the true cold-start time."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return round(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 3)
    except (OSError, ValueError, IndexError):
        return None


def build(settings: ServerSettings) -> ModelServer:
    """Load the model named by ``settings`` and build its server (raises ConfigError)."""
    manifest = load_manifest(settings.model_dir)
    backend = load_backend(
        manifest, settings.model_dir, settings.inference_backend, settings.onnx_threads
    )
    server = ModelServer(settings, manifest, backend)
    if settings.grpc_port:
        server.listeners.append(GrpcListener(server, settings))
    if settings.probe_port:
        server.listeners.append(
            ProbeListener(server.state, settings.host, settings.probe_port, LIVENESS_STALL_SECONDS)
        )
    return server


def main() -> int:
    started = time.monotonic()
    try:
        settings = ServerSettings.from_env()
    except ConfigError as exc:
        configure("info")
        log.error(str(exc), extra={"event": "config_error"})
        return 2
    configure(settings.log_level)
    # `_created` samples double the series count for no use in dashboards or alerts.
    prometheus_client.disable_created_metrics()
    try:
        server = build(settings)
    except ConfigError as exc:
        log.error(str(exc), extra={"event": "config_error"})
        return 2
    config = uvicorn.Config(
        server.app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        # httptools; inference answered in the protocol, each answer in one write (serving/http1.py)
        http=InferenceProtocol.for_calls(server.inference_call),
        lifespan="on",
        log_config=log_config(settings.log_level),
        access_log=settings.access_log,
        server_header=False,
        timeout_graceful_shutdown=settings.graceful_timeout_seconds,
    )
    runner = DrainingServer(config, server, settings.drain_seconds)
    log.info(
        "starting",
        extra={
            "model": server.name,
            "version": server.version,
            "backend": settings.inference_backend,
            "port": settings.port,
            "grpc_port": settings.grpc_port or None,
            "probe_port": settings.probe_port or None,
            "load_seconds": round(time.monotonic() - started, 3),
            "process_age_seconds": process_age_seconds(),
        },
    )
    runner.run()
    if runner.config_error:
        return 2
    return 0 if runner.started else 1


if __name__ == "__main__":
    sys.exit(main())
