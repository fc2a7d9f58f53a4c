"""A bounded load client for tests that send real traffic through the gateway.

Every run is capped twice, by request count and by wall time, and sends only to the URL it is
given (127.0.0.1 or an address inside the project's own network namespaces). Each worker keeps
one HTTP/1.1 connection alive, as clients of a model usually do; failures are counted by kind
(HTTP status, or the exception of a connection that broke), never raised.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    statuses: Counter = field(default_factory=Counter)
    """Non-2xx answers by status code."""
    errors: Counter = field(default_factory=Counter)
    """Requests without an answer, by exception name (connection refused, reset, timeout...)."""
    versions: Counter = field(default_factory=Counter)
    """`model_version` of the 2xx answers (Open Inference Protocol responses carry it)."""
    seconds: float = 0.0
    failure_times: list[float] = field(default_factory=list)
    """time.monotonic() of each failed request's end."""

    @property
    def failed(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    def summary(self) -> str:
        return (
            f"{self.sent} sent, {self.ok} ok, statuses {dict(self.statuses)}, errors "
            f"{dict(self.errors)}, versions {dict(self.versions)}, {self.seconds:.1f}s"
        )


class Load:
    """POST `payload` to `url` from `concurrency` workers until `requests` are sent or
    `max_seconds` pass, or `stop()` is called. Use as a context manager to run in the background,
    or call `run()` to wait for it."""

    def __init__(
        self,
        url: str,
        payload: Any,
        *,
        requests: int,
        max_seconds: float,
        concurrency: int = 8,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ):
        self.url, self.payload, self.timeout = url, payload, timeout
        self.headers = headers or {}
        self.requests, self.max_seconds, self.concurrency = requests, max_seconds, concurrency
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _claim(self) -> bool:
        with self._lock:
            if self._stop.is_set() or self.result.sent >= self.requests:
                return False
            if time.monotonic() - self._started > self.max_seconds:
                return False
            self.result.sent += 1
            return True

    def _worker(self) -> None:
        client = httpx.Client(timeout=self.timeout, headers=self.headers)
        try:
            while self._claim():
                try:
                    response = client.post(self.url, json=self.payload)
                except httpx.HTTPError as error:
                    with self._lock:
                        self.result.errors[type(error).__name__] += 1
                        self.result.failure_times.append(time.monotonic())
                    client.close()  # a broken connection: the next request opens a new one
                    client = httpx.Client(timeout=self.timeout, headers=self.headers)
                    continue
                with self._lock:
                    if response.is_success:
                        self.result.ok += 1
                        version = _version(response)
                        if version is not None:
                            self.result.versions[version] += 1
                    else:
                        self.result.statuses[response.status_code] += 1
                        self.result.failure_times.append(time.monotonic())
        finally:
            client.close()

    def start(self) -> Load:
        self._started = time.monotonic()
        self._threads = [
            threading.Thread(target=self._worker, daemon=True) for _ in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        return self.wait()

    def wait(self) -> LoadResult:
        for thread in self._threads:
            thread.join(self.max_seconds + self.timeout + 5)
        self.result.seconds = time.monotonic() - self._started
        return self.result

    def run(self) -> LoadResult:
        return self.start().wait()

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _version(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("model_version") if isinstance(body, dict) else None
