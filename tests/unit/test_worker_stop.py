"""A worker asked to stop stops gracefully, and stays stopped: keep_working restarts a worker that
ended by itself, never one that was asked to stop, and asks by the worker's own stop() (a cancel
landing while a Procrastinate worker starts can be swallowed between two database calls, and that
worker would then run on forever)."""

from __future__ import annotations

import asyncio

import pytest

from app.jobs.runtime import keep_working

DEADLINE = 30.0


class DeafToCancels:
    """A worker that swallows every cancel, as one cancelled while starting did; only stop() ends it."""

    def __init__(self, log: list[str], started: asyncio.Event) -> None:
        self.log = log
        self.started = started
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        self.log.append("run")
        self.started.set()
        while not self.stopped.is_set():
            try:
                await self.stopped.wait()
            except asyncio.CancelledError:
                self.log.append("cancel swallowed")
        self.log.append("finished its jobs")

    def stop(self) -> None:
        self.stopped.set()


async def test_a_worker_deaf_to_cancels_is_stopped_by_its_stop_and_not_restarted() -> None:
    log: list[str] = []
    started = asyncio.Event()
    stopping = asyncio.Event()
    task = asyncio.create_task(keep_working(lambda: DeafToCancels(log, started), name="w", stopping=stopping))
    await asyncio.wait_for(started.wait(), DEADLINE)
    stopping.set()
    await asyncio.wait_for(task, DEADLINE)
    assert log == ["run", "finished its jobs"]


async def test_a_worker_that_ends_by_itself_is_started_again_until_asked_to_stop() -> None:
    log: list[str] = []
    again = asyncio.Event()

    class FailsFirst(DeafToCancels):
        async def run(self) -> None:
            if not log:
                log.append("failed")
                raise RuntimeError("its side task failed")
            again.set()
            await super().run()

    stopping = asyncio.Event()
    task = asyncio.create_task(
        keep_working(lambda: FailsFirst(log, asyncio.Event()), name="w", stopping=stopping)
    )
    await asyncio.wait_for(again.wait(), DEADLINE)
    stopping.set()
    await asyncio.wait_for(task, DEADLINE)
    assert log == ["failed", "run", "finished its jobs"]


async def test_cancelling_from_outside_leaves_the_jobs_and_ends() -> None:
    stopping = asyncio.Event()
    started = asyncio.Event()

    class Slow(DeafToCancels):
        async def run(self) -> None:
            self.started.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(keep_working(lambda: Slow([], started), name="w", stopping=stopping))
    await asyncio.wait_for(started.wait(), DEADLINE)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, DEADLINE)
