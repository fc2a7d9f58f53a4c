"""How requests reach the model: one call per request, or merged into micro-batches.

Inline (``InlineRunner``): each request calls the model on the event loop, a plain function call.

Merged (``MicroBatcher``): requests that queue up become one call of at most ``max_rows`` rows,
split back per request. There is no timer, so a lone request is never held back waiting for
company. Where the merged call runs depends on what a call costs:

- in a worker thread, for backends whose per-call cost dwarfs the per-row cost (scikit-learn's
  ``predict_proba`` costs milliseconds even for one row): while one batch runs there, the event
  loop keeps parsing requests, and everything queued by then becomes the next batch;
- on the event loop, for ONNX Runtime, whose calls cost microseconds, less than a hand-off to a
  thread: the batch is what the requests read in the same turn of the loop queued. Under
  concurrent load this costs less CPU per request than inline calls (the model's code and data
  stay in cache for the whole batch; measured in models/README.md).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]
Observe = Callable[[float], None]


class InlineRunner:
    """Calls the model on the event loop thread."""

    def __init__(self, predict: Predict, observe: Observe) -> None:
        self._predict = predict
        self._observe = observe

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def call(self, x: np.ndarray) -> np.ndarray:
        start = perf_counter()
        try:
            return self._predict(x)
        finally:
            self._observe(perf_counter() - start)

    async def run(self, x: np.ndarray) -> np.ndarray:
        return self.call(x)


class MicroBatcher:
    """Merges queued requests into one call of at most ``max_rows`` rows, run in a worker thread
    (``in_thread``) or on the event loop.

    A single request larger than ``max_rows`` still runs, alone.
    """

    def __init__(
        self, predict: Predict, observe: Observe, max_rows: int, *, in_thread: bool = True
    ) -> None:
        self._predict = predict
        self._observe = observe
        self._max_rows = max_rows
        self.in_thread = in_thread
        """Whether merged calls run in a worker thread (else on the event loop)."""
        self._pending: deque[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.calls = 0
        """Model calls made (tests read it to see that merging happened)."""

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        if self.in_thread:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._worker = asyncio.create_task(self._loop(), name="micro-batcher")

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker."""
        if self._worker is None:
            return
        while self._pending:
            await asyncio.sleep(0.01)
        self._worker.cancel()
        try:
            await self._worker
        except asyncio.CancelledError:
            pass
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._worker = None

    async def run(self, x: np.ndarray) -> np.ndarray:
        if self._worker is None:
            raise RuntimeError("MicroBatcher.run() before start()")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append((x, future))
        self._wakeup.set()  # type: ignore[union-attr]
        return await future

    def _take_batch(self) -> list[tuple[np.ndarray, asyncio.Future[np.ndarray]]]:
        batch = [self._pending.popleft()]
        rows = len(batch[0][0])
        while self._pending and rows + len(self._pending[0][0]) <= self._max_rows:
            item = self._pending.popleft()
            batch.append(item)
            rows += len(item[0])
        # A client that went away leaves a cancelled future: skip its rows.
        return [item for item in batch if not item[1].done()]

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()  # type: ignore[union-attr]
            self._wakeup.clear()  # type: ignore[union-attr]
            while self._pending:
                batch = self._take_batch()
                if not batch:
                    continue
                x = batch[0][0] if len(batch) == 1 else np.concatenate([b[0] for b in batch])
                start = perf_counter()
                try:
                    if self._executor is None:
                        probabilities = self._predict(x)
                    else:
                        probabilities = await loop.run_in_executor(self._executor, self._predict, x)
                except Exception as exc:  # handed to each waiting request, which reports it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                finally:
                    self.calls += 1
                    # Per request, as KServe counts it: each one waited for this whole call.
                    elapsed = perf_counter() - start
                    for _ in batch:
                        self._observe(elapsed)
                offset = 0
                for xi, future in batch:
                    n = len(xi)
                    if not future.done():
                        future.set_result(probabilities[offset : offset + n])
                    offset += n
