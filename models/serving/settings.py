"""Model server settings, read once from environment variables and validated once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from serving.errors import ConfigError


def _env(name: str, allowed: str) -> dict[str, Any]:
    return {"env": name, "allowed": allowed}


class ServerSettings(BaseModel):
    """Everything the server reads from its environment (docs/contracts.md names the variables)."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model_name: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$",
        description="MODEL_NAME: the name in URLs and metric labels. Default: the name in the "
        "model manifest. Valid: 1-63 lowercase letters, digits, '_', '.', '-'.",
        json_schema_extra=_env("MODEL_NAME", "1-63 chars of a-z 0-9 _ . - (alphanumeric ends)"),
    )
    model_version: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="MODEL_VERSION: version in metadata and metric labels. Default: manifest's.",
        json_schema_extra=_env("MODEL_VERSION", "a non-empty string of at most 64 characters"),
    )
    model_dir: Path = Field(
        Path("/model"),
        description="MODEL_DIR: directory holding model.json and the artifacts. Default /model.",
        json_schema_extra=_env("MODEL_DIR", "a directory path"),
    )
    inference_backend: Literal["onnx", "native"] = Field(
        "onnx",
        description="INFERENCE_BACKEND: 'onnx' (default; ONNX Runtime) or 'native' (scikit-learn "
        "or TensorFlow, which must be installed: the slim runtime images have neither).",
        json_schema_extra=_env("INFERENCE_BACKEND", "'onnx' or 'native'"),
    )
    host: str = Field(
        "0.0.0.0",
        description="HOST: address to listen on. Default 0.0.0.0 (all interfaces).",
        json_schema_extra=_env("HOST", "an IP address or host name"),
    )
    port: int = Field(
        8080,
        ge=1,
        le=65535,
        description="PORT: TCP port for HTTP and /metrics. Default 8080.",
        json_schema_extra=_env("PORT", "an integer from 1 to 65535"),
    )
    grpc_port: int = Field(
        8081,
        ge=0,
        le=65535,
        description="GRPC_PORT: TCP port of the Open Inference Protocol gRPC service "
        "(inference.GRPCInferenceService), served by the same process and model as HTTP. "
        "Default 8081; 0 disables gRPC. Must differ from PORT.",
        json_schema_extra=_env("GRPC_PORT", "an integer from 0 (off) to 65535, other than PORT"),
    )
    probe_port: int = Field(
        8082,
        ge=0,
        le=65535,
        description="PROBE_PORT: TCP port where Kubernetes' liveness and readiness probes are "
        "answered by a thread of their own, so a replica busy with queued requests still "
        "answers them in time (serving/probes.py). Default 8082; 0 answers probes on PORT "
        "only. Must differ from PORT and GRPC_PORT.",
        json_schema_extra=_env(
            "PROBE_PORT", "an integer from 0 (off) to 65535, other than PORT and GRPC_PORT"
        ),
    )
    max_batch_size: int = Field(
        1,
        ge=1,
        le=65536,
        description="MAX_BATCH_SIZE: most rows merged into one model call when concurrent "
        "requests queue up (micro-batching). 1 (default) disables merging: each request calls "
        "the model inline. Above 1, ONNX Runtime's merged calls run on the event loop (requests "
        "read in the same turn are merged; less CPU per request under concurrent load) and the "
        "native backend's in a worker thread (a call costs milliseconds; the loop keeps reading "
        "meanwhile).",
        json_schema_extra=_env("MAX_BATCH_SIZE", "an integer from 1 to 65536"),
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="MAX_BODY_BYTES: largest accepted request body; larger ones get 413. "
        "Default 4194304 (4 MiB).",
        json_schema_extra=_env("MAX_BODY_BYTES", "an integer from 1024 to 1073741824"),
    )
    drain_seconds: float = Field(
        5.0,
        ge=0,
        le=600,
        description="DRAIN_SECONDS: after SIGTERM, how long readiness reports false while requests "
        "are still served (so load balancers stop routing here) before the listener closes. "
        "A second SIGTERM ends the wait early. Default 5.",
        json_schema_extra=_env("DRAIN_SECONDS", "a number from 0 to 600"),
    )
    graceful_timeout_seconds: float = Field(
        20.0,
        gt=0,
        le=3600,
        description="GRACEFUL_TIMEOUT_SECONDS: after the listener closes, how long in-flight "
        "requests may take to finish before they are cancelled. Default 20.",
        json_schema_extra=_env("GRACEFUL_TIMEOUT_SECONDS", "a number above 0, at most 3600"),
    )
    onnx_threads: int = Field(
        1,
        ge=1,
        le=256,
        description="ONNX_THREADS: ONNX Runtime intra-op threads. Default 1: a server pod gets "
        "about one core and more threads only contend; batch jobs may raise it.",
        json_schema_extra=_env("ONNX_THREADS", "an integer from 1 to 256"),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        description="LOG_LEVEL: 'debug', 'info' (default), 'warning' or 'error'.",
        json_schema_extra=_env("LOG_LEVEL", "'debug', 'info', 'warning' or 'error'"),
    )
    access_log: bool = Field(
        False,
        description="ACCESS_LOG: log one JSON line per request. Default false: at thousands of "
        "requests per second the log costs more than inference; /metrics carries the counts.",
        json_schema_extra=_env("ACCESS_LOG", "true or false"),
    )

    @field_validator("grpc_port")
    @classmethod
    def _own_port(cls, grpc_port: int, info: ValidationInfo) -> int:
        if grpc_port and grpc_port == info.data.get("port"):
            raise ValueError(f"it equals PORT ({grpc_port}); HTTP and gRPC need ports of their own")
        return grpc_port

    @field_validator("probe_port")
    @classmethod
    def _own_probe_port(cls, probe_port: int, info: ValidationInfo) -> int:
        for other in ("port", "grpc_port"):
            if probe_port and probe_port == info.data.get(other):
                raise ValueError(
                    f"it equals {other.upper()} ({probe_port}); probes need a port of their own"
                )
        return probe_port

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Read the settings from ``environ`` (default ``os.environ``); raise ConfigError."""
        environ = os.environ if environ is None else environ
        raw: dict[str, str] = {}
        for field, info in cls.model_fields.items():
            env = info.json_schema_extra["env"]  # type: ignore[index]
            # An empty variable means "unset" (Kubernetes manifests often template empty values).
            if environ.get(env, "") != "":
                raw[field] = environ[env]
        try:
            return cls(**raw)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, raw)) from None


def _describe(exc: ValidationError, raw: Mapping[str, str]) -> str:
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0])
        info = ServerSettings.model_fields[field]
        extra = info.json_schema_extra
        env, allowed = extra["env"], extra["allowed"]  # type: ignore[index]
        lines.append(
            f"environment variable {env}={raw.get(field)!r} is invalid ({err['msg']}); "
            f"allowed: {allowed}. Fix: set {env} to an allowed value, or unset it for the "
            f"default ({info.default!r})."
        )
    return "\n".join(lines)
