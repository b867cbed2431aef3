"""Replies dispatched as the event loop reads them (``beanstalkm._transport.pipelined``): the pool's
reserve-and-delete under random cancellation, one timer bounding every pipelined command's wait, and
the stream handing out nothing once it is out of step.

Plain test functions run their coroutine with ``asyncio.run``; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import random
import time

from beanstalkm import Client, SocketError
from beanstalkm.aio import AsyncConnection, AsyncMessage, AsyncPool
from beanstalkm.testing import BeanstalkdServer

PATIENCE = 10.0
"""The longest any one wait here may take."""


async def _until_none_reserved(observer: AsyncConnection, tube: str) -> None:
    """Hand-backs run in tasks of their own: wait (bounded) until the tube holds no reserved job."""
    deadline = time.monotonic() + PATIENCE
    while (await observer.queue.stats_tube(tube)).current_jobs_reserved:
        assert time.monotonic() < deadline, "a job stayed reserved by nobody"
        await asyncio.sleep(0.01)


def _pool_round(server: BeanstalkdServer, seed: int) -> tuple[int, int]:
    """100 tasks taking jobs with ``pool.reserve(timeout=0, drop=True)``, some cancelled at random turns
    of the loop; (jobs deleted unseen, jobs handed back) for this round."""
    rng = random.Random(seed)
    tube = f"drop{seed}"
    jobs = 300

    async def main() -> tuple[int, int]:
        with Client(server.host, server.port, timeout=5) as producer:
            ids = {m.uid for m in producer.put_many([{"n": i} for i in range(jobs)], tube=tube)}
        async with (
            AsyncPool(server.host, server.port, timeout=5, size=2, watch=[tube]) as pool,
            AsyncConnection(server.host, server.port, timeout=5) as observer,
        ):
            seen: list[AsyncMessage] = []

            async def take() -> None:
                while (message := await pool.reserve(timeout=0, drop=True)) is not None:
                    seen.append(message)

            released_before = (await observer.queue.stats()).cmd_release
            tasks = [asyncio.create_task(take()) for _ in range(100)]
            cancelled = 0
            for _turn in range(30):
                for index in rng.sample(range(100), 4):
                    if not tasks[index].done():
                        tasks[index].cancel()
                        cancelled += 1
                for _ in range(rng.randrange(4)):
                    await asyncio.sleep(0)
            results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), PATIENCE)
            assert all(r is None or isinstance(r, asyncio.CancelledError) for r in results), results
            assert cancelled
            await _until_none_reserved(observer, tube)
            stats = await observer.queue.stats_tube(tube)
            uids = [m.uid for m in seen]
            assert len(uids) == len(set(uids)), "a job was handed to two tasks"
            assert set(uids) <= ids and all(m.deleted for m in seen)
            left = stats.current_jobs_ready
            # every job: returned (deleted), still ready (never reserved, or handed back), or deleted
            # unseen by a task cancelled once its reserve was answered (its delete went through)
            unseen = jobs - len(uids) - left
            assert unseen >= 0 and stats.current_jobs_reserved == 0
            assert stats.total_jobs == jobs
            # in step: the pool's pipelined connection still answers its own commands
            rest = await asyncio.wait_for(asyncio.gather(*(pool.reserve(timeout=0) for _ in range(left + 5))), PATIENCE)
            assert sum(m is not None for m in rest) == left
            assert {m.uid for m in rest if m is not None}.isdisjoint(uids)
            return unseen, (await observer.queue.stats()).cmd_release - released_before

    return asyncio.run(main())


def test_pool_reserve_drop_cancelled_at_random_loses_no_job_and_leaves_none_reserved(server: BeanstalkdServer) -> None:
    """A cancelled pool reserve either never reserved, hands its job back (released, seen by nobody),
    or, once the job is reserved and its delete queued, deletes it all the same (at-most-once, the
    delete kept): never a job left reserved, never one handed to two tasks."""
    unseen = released = 0
    for seed in range(8):
        deleted, handed_back = _pool_round(server, seed)
        unseen += deleted
        released += handed_back
    assert unseen and released, "the rounds cancelled no task between its reserve and its delete"


def test_pipelined_commands_on_a_stopped_server_all_time_out_together(server: BeanstalkdServer) -> None:
    """One timer per stream bounds the wait: 50 commands in flight on a stopped server each get a
    ``SocketError`` (timed out, may have run) about ``timeout`` after they were written, not 50 timeouts
    one after another; the connection is dropped and the next command connects again."""

    async def main() -> None:
        async with AsyncConnection(server.host, server.port, timeout=0.5) as conn:
            await conn.queue.use("frozen")
            server.pause()
            try:
                start = time.monotonic()
                results = await asyncio.wait_for(
                    asyncio.gather(*(conn.queue.put(b"x%d" % i) for i in range(50)), return_exceptions=True), PATIENCE
                )
                elapsed = time.monotonic() - start
            finally:
                server.resume()
            assert all(isinstance(r, SocketError) for r in results), results
            assert all(isinstance(r, SocketError) and r.maybe_executed for r in results)
            assert any("timed out" in str(r) for r in results)
            assert 0.4 <= elapsed < 3, elapsed
            assert not conn.connected
            assert await conn.queue.using() == "frozen"  # connected again, the used tube restored

    asyncio.run(main())


def test_a_stream_that_replies_as_it_is_read_keeps_no_byte_for_later(server: BeanstalkdServer) -> None:
    """Replies go to their commands as they are read: once every command is answered, nothing is kept
    (a later command's stray check finds the stream clean), over many rounds of concurrent commands."""

    async def main() -> None:
        async with AsyncConnection(server.host, server.port, timeout=5) as conn:
            await conn.queue.use("clean")
            for round_ in range(20):
                bodies = [b"%d-%d" % (round_, i) for i in range(50)]
                ids = await asyncio.wait_for(asyncio.gather(*(conn.queue.put(b) for b in bodies)), PATIENCE)
                assert len(set(ids)) == 50
                transport = conn._transport
                assert transport is not None and not transport.readable() and not transport.buffered()
                assert (await conn.queue.peek(ids[-1])) is not None
            assert conn.connected

    asyncio.run(main())
