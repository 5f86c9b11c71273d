"""Dynamic batching: gather single requests into one call of a batched function.

As inference servers do it: the first request of a batch waits at most ``max_wait_ms`` for
company (and stops waiting as soon as no new request arrived for a quarter of that), a batch
never exceeds ``max_batch`` items, a batch larger than ``align`` is cut to a multiple of it (the
generator pads to its chunk size anyway; the rest starts the next batch), and the batched function runs in an
executor (off the event loop). Admission control (the bounded queue that answers ``busy``) is
the caller's job: see :class:`chibi_meta.bridge.engine.Engine`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

from chibi_meta import limits

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger("chibi_meta.bridge.batcher")


class Batcher(Generic[T, R]):
    """Runs ``fn(list_of_items) -> list_of_results`` on batches of submitted items."""

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        executor: Executor,
        *,
        max_batch: int = limits.BATCH_MAX_SIZE,
        max_wait_ms: float = limits.BATCH_MAX_WAIT_MS,
        on_batch: Callable[[int, float], None] | None = None,
        align: int = 1,
    ) -> None:
        if max_batch < 1 or align < 1:
            raise ValueError("max_batch and align must be >= 1")
        self.fn = fn
        self.executor = executor
        self.max_batch = int(max_batch)
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self.on_batch = on_batch
        self.align = int(align)
        self._carry: list[tuple[T, asyncio.Future[R]]] = []
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        """Items waiting for a batch (not counting the batch running now)."""
        return self._queue.qsize() + len(self._carry)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            self._carry.append(self._queue.get_nowait())
        for _, fut in self._carry:
            if not fut.done():
                fut.cancel()
        self._carry = []

    def submit(self, item: T) -> asyncio.Future[R]:
        """Queue one item; the future resolves with its result. Cancelling it drops the item if not started."""
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))
        return fut

    async def _collect(self) -> list[tuple[T, asyncio.Future[R]]]:
        loop = asyncio.get_running_loop()
        batch, self._carry = self._carry, []
        if not batch:
            batch = [await self._queue.get()]
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:  # keep waiting only while requests keep coming (a lone client pays ~max_wait/4)
                batch.append(await asyncio.wait_for(self._queue.get(), min(remaining, self.max_wait / 4)))
            except asyncio.TimeoutError:
                break
        batch = [(item, fut) for item, fut in batch if not fut.done()]  # drop cancelled ones
        if len(batch) > self.align and len(batch) % self.align:
            # the function pads to multiples of `align`: run whole multiples now, the rest first next time
            keep = len(batch) - len(batch) % self.align
            batch, self._carry = batch[:keep], batch[keep:]
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            items = [item for item, _ in batch]
            t0 = loop.time()
            try:
                results = await loop.run_in_executor(self.executor, self.fn, items)
                if len(results) != len(items):
                    raise RuntimeError(f"batched function returned {len(results)} results for {len(items)} items")
            except asyncio.CancelledError:
                for _, fut in batch:
                    if not fut.done():
                        fut.cancel()
                raise
            except Exception as e:
                log.exception("event=batch_failed size=%d", len(items))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            ms = (loop.time() - t0) * 1000.0
            if self.on_batch is not None:
                self.on_batch(len(items), ms)
            log.debug("event=batch size=%d ms=%.2f", len(items), ms)
            for (_, fut), res in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(res)
