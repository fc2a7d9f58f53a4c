"""Micro-batching: queued requests are merged into one call, in a worker thread (requests queued
while the model is busy) or on the event loop (requests queued in the same turn of the loop)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from serving.batching import InlineRunner, MicroBatcher


class GatedModel:
    """A real predict function whose first call blocks until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.entered.set()
        self.gate.wait(timeout=30)
        self.batches.append(len(x))
        return np.stack([x.sum(axis=1), -x.sum(axis=1)], axis=1).astype(np.float32)


def test_requests_queued_during_a_call_are_merged_and_split_back():
    model = GatedModel()
    observed: list[float] = []

    async def scenario():
        batcher = MicroBatcher(model.predict, observed.append, max_rows=5)
        await batcher.start()
        first = asyncio.create_task(batcher.run(np.ones((1, 3), np.float32)))
        await asyncio.to_thread(model.entered.wait, 30)  # the first call is now inside the model
        rest = [
            asyncio.create_task(batcher.run(np.full((1, 3), i, np.float32))) for i in range(2, 9)
        ]
        await asyncio.sleep(0)  # let them queue
        model.gate.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return batcher.calls, results

    calls, results = asyncio.run(scenario())
    # 1 alone, then the 7 queued ones in batches of at most 5 rows.
    assert model.batches == [1, 5, 2] and calls == 3
    for i, r in zip([1, *range(2, 9)], results, strict=True):
        np.testing.assert_array_equal(r, [[3 * i, -3 * i]])
    assert len(observed) == 8  # one predict-time observation per request


def test_on_the_loop_requests_queued_in_one_turn_are_merged_and_split_back():
    threads: list[threading.Thread] = []
    batches: list[int] = []
    observed: list[float] = []

    def predict(x: np.ndarray) -> np.ndarray:
        threads.append(threading.current_thread())
        batches.append(len(x))
        return np.stack([x.sum(axis=1), -x.sum(axis=1)], axis=1).astype(np.float32)

    async def scenario():
        batcher = MicroBatcher(predict, observed.append, max_rows=4, in_thread=False)
        await batcher.start()
        lone = await batcher.run(np.full((1, 3), 9, np.float32))  # nobody to wait for
        # Six requests made ready in the same turn, as a read of six connections would.
        tasks = [asyncio.create_task(batcher.run(np.full((1, 3), i, np.float32))) for i in range(6)]
        results = await asyncio.gather(*tasks)
        await batcher.stop()
        return lone, results, batcher.calls

    lone, results, calls = asyncio.run(scenario())
    np.testing.assert_array_equal(lone, [[27, -27]])
    assert batches == [1, 4, 2] and calls == 3
    assert set(threads) == {threading.main_thread()}  # no worker thread
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r, [[3 * i, -3 * i]])
    assert len(observed) == 7


@pytest.mark.parametrize("in_thread", [True, False], ids=["thread", "loop"])
def test_a_request_larger_than_max_rows_runs_alone(in_thread):
    model = GatedModel()
    model.gate.set()

    async def scenario():
        batcher = MicroBatcher(model.predict, lambda s: None, max_rows=2, in_thread=in_thread)
        await batcher.start()
        out = await batcher.run(np.ones((7, 3), np.float32))
        await batcher.stop()
        return out

    assert asyncio.run(scenario()).shape == (7, 2) and model.batches == [7]


@pytest.mark.parametrize("in_thread", [True, False], ids=["thread", "loop"])
def test_model_errors_reach_every_waiting_request(in_thread):
    def broken(x):
        raise ValueError("bad model")

    async def scenario():
        batcher = MicroBatcher(broken, lambda s: None, max_rows=8, in_thread=in_thread)
        await batcher.start()
        results = await asyncio.gather(
            *(batcher.run(np.ones((1, 2), np.float32)) for _ in range(3)), return_exceptions=True
        )
        await batcher.stop()
        return results

    assert all(isinstance(r, ValueError) for r in asyncio.run(scenario()))


def test_inline_runner_calls_the_model_directly():
    seen = []
    runner = InlineRunner(lambda x: x * 2, seen.append)
    out = asyncio.run(runner.run(np.ones((2, 2))))
    assert out.tolist() == [[2, 2], [2, 2]] and len(seen) == 1


def test_run_before_start_is_an_error():
    batcher = MicroBatcher(lambda x: x, lambda s: None, max_rows=4)
    with pytest.raises(RuntimeError, match="before start"):
        asyncio.run(batcher.run(np.ones((1, 1))))
