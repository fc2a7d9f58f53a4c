"""Errors the model server turns into HTTP responses or start-up failures.

Each class builds its message from its arguments so the text a client or an operator reads always
names the offending field, the value, what is allowed and how to fix it.
"""

from __future__ import annotations


class ServingError(Exception):
    """Base class: an error with the HTTP status it maps to."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServingError):
    """The request body does not match what the model accepts (shape, dtype, missing fields)."""

    status = 400


class PayloadTooLarge(ServingError):
    """The request body is larger than MAX_BODY_BYTES."""

    status = 413

    def __init__(self, size: int | None, limit: int) -> None:
        got = f"{size} bytes" if size is not None else "more than that"
        super().__init__(
            f"request body is too large: {got}; the limit is {limit} bytes (MAX_BODY_BYTES). "
            "Send fewer rows per request, or raise MAX_BODY_BYTES on the server."
        )


class UnsupportedEncoding(ServingError):
    """The request body's Content-Encoding is not one the server inflates."""

    status = 415

    def __init__(self, encoding: str) -> None:
        super().__init__(
            f"Content-Encoding {encoding!r} is not supported; send the body uncompressed, or "
            "compressed with gzip or deflate"
        )


class ModelNotFound(ServingError):
    """The URL names a model (or version) this server does not serve."""

    status = 404

    def __init__(self, name: str, version: str | None, served: str, served_version: str) -> None:
        what = f"model '{name}'" + (f" version '{version}'" if version is not None else "")
        super().__init__(
            f"{what} not found; this server serves model '{served}' version '{served_version}'"
        )


class NonFiniteOutput(ServingError):
    """The model produced NaN or infinity: the inputs are outside what it handles."""

    status = 422

    def __init__(self, rows: list[int]) -> None:
        shown = ", ".join(str(r) for r in rows[:10]) + (" ..." if len(rows) > 10 else "")
        super().__init__(
            f"the model produced non-finite outputs for row(s) {shown}: their feature values are "
            "too large in magnitude for it; send values on the scale of the training data"
        )


class NotReady(ServingError):
    """The server is shutting down or the model is not loaded."""

    status = 503


class ConfigError(Exception):
    """A server setting (environment variable) or the model directory is invalid; fatal at start."""


class ModelLoadError(ConfigError):
    """The model directory's manifest or artifacts cannot be loaded."""
