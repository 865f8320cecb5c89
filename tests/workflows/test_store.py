"""The SQLite writer queue: one writer at a time, and the ack path goes first."""

from __future__ import annotations

import asyncio

from workflows.store import WriterQueue


async def test_urgent_writers_go_before_queued_background_writers() -> None:
    queue = WriterQueue()
    order: list[str] = []

    async def writer(name: str, urgent: bool) -> None:
        await queue.acquire(urgent=urgent)
        order.append(name)
        await asyncio.sleep(0)
        queue.release()

    await queue.acquire()  # a worker's transaction in progress
    waiting = [asyncio.create_task(writer(f"worker-{i}", False)) for i in range(3)]
    await asyncio.sleep(0)
    ack = asyncio.create_task(writer("ack", True))
    await asyncio.sleep(0)
    queue.release()
    await asyncio.gather(*waiting, ack)
    assert order == ["ack", "worker-0", "worker-1", "worker-2"]


async def test_a_cancelled_waiter_neither_holds_nor_blocks_the_queue() -> None:
    queue = WriterQueue()
    await queue.acquire()
    gone = asyncio.create_task(queue.acquire())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    queue.release()
    await asyncio.wait_for(queue.acquire(), timeout=1)
    queue.release()
