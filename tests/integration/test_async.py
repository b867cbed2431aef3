"""What only the asyncio flavour has: cancellation, concurrent tasks, the pool, timeouts on the loop.

Plain test functions run their coroutine with ``asyncio.run`` (no pytest-asyncio).
Everything else the async client does is shown by the shared integration tests
(test_client.py, test_commands.py), which run against both flavours.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from beanstalkm import Client, InvalidArgument, InvalidEnvelope, NotFound, SocketError
from beanstalkm.aio import AsyncClient, AsyncConnection, AsyncMessage, AsyncPool
from beanstalkm.testing import BeanstalkdServer, ServerFactory

#: Longest any one of these tests may wait for the server to get somewhere.
PATIENCE = 5.0


async def _until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``predicate`` on the loop until it holds (AssertionError after PATIENCE seconds)."""
    deadline = time.monotonic() + PATIENCE
    while not await predicate():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.01)


async def _waiting(conn: AsyncConnection, n: int) -> None:
    """Until exactly ``n`` connections wait in a reserve on the server."""

    async def check() -> bool:
        return (await conn.queue.stats()).current_waiting == n

    await _until(check, f"{n} connection(s) waiting in reserve")


async def _state(conn: AsyncConnection, job_id: int) -> str:
    return (await conn.queue.stats_job(job_id)).state


# -- cancellation --------------------------------------------------------------------------------


def test_cancelling_a_blocked_reserve_closes_the_connection_cleanly(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with (
            AsyncClient(server.host, server.port, timeout=5) as client,
            AsyncConnection(server.host, server.port, timeout=5) as other,
        ):
            await client.watch("jobs")
            await client.ignore("default")
            await client.queue.use("mine")
            task = asyncio.create_task(client.reserve())
            await _waiting(other, 1)

            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # (a) clearly closed, not half-way through an exchange
            assert not client.connected
            await _waiting(other, 0)  # the server no longer holds a reserve for it

            # (c) a job put now is not taken by the dead reservation: it stays ready
            await other.queue.use("jobs")
            job_id = await other.queue.put(b'"after the cancel"')
            await asyncio.sleep(0.1)
            stats = await other.queue.stats_job(job_id)
            assert (stats.state, stats.reserves) == ("ready", 0)

            # (b) the same client's next reserve gets that job (not a stale reply), on a new
            # connection with its watch list and used tube restored
            got = await client.reserve(timeout=2, drop=False)
            assert got is not None and (got.uid, got.body) == (job_id, "after the cancel")
            assert client.connected
            assert await _state(other, job_id) == "reserved"
            assert await client.queue.watching() == ["jobs"]
            assert await client.queue.using() == "mine"
            await got.delete()
            assert (await other.queue.stats()).total_connections == 3

    asyncio.run(main())


def test_cancelling_with_the_reply_already_sent_never_reads_it_later(server: BeanstalkdServer) -> None:
    """The worst case: the server has answered RESERVED, but the task is cancelled before reading it."""

    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=5) as client:
            await client.watch("inflight")
            with Client(server.host, server.port, timeout=5) as other:
                task = asyncio.create_task(client.reserve(drop=False))
                while other.queue.stats().current_waiting != 1:
                    await asyncio.sleep(0.01)
                # From here on the sync calls block the loop, so the client cannot read what arrives.
                sent = other.put({"n": 1}, tube="inflight")
                deadline = time.monotonic() + PATIENCE
                while other.queue.stats_job(sent.uid).state != "reserved":  # RESERVED is on its way to the client
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert not client.connected

                # the server takes the job back from the closed connection
                deadline = time.monotonic() + PATIENCE
                while (stats := other.queue.stats_job(sent.uid)).state != "ready":
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.01)
                assert stats.reserves == 1

                # the next commands read their own replies
                assert await client.queue.using() == "default"
                assert await client.queue.watching() == ["default", "inflight"]
                other.put({"n": 2}, tube="inflight")
                got = await client.reserve(timeout=2, drop=False)
                assert got is not None and (got.uid, got.body) == (sent.uid, {"n": 1})
                again = await client.reserve(timeout=2)
                assert again is not None and again.body == {"n": 2}
                await got.delete()
                assert other.queue.stats().current_jobs_reserved == 0

    asyncio.run(main())


def test_cancelling_a_pipelined_batch(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with (
            AsyncClient(server.host, server.port, timeout=5) as client,
            AsyncConnection(server.host, server.port, timeout=5) as other,
        ):
            await client.watch("batch")
            pipeline = client.pipeline()
            pipeline.use("batch").put(b"one").put(b"two", delay=3600).reserve_with_timeout(60).using()
            pipeline.reserve_with_timeout(60).stats()
            # the first reserve takes "one"; the second waits: the batch is cut off mid-way
            task = asyncio.create_task(pipeline.execute())
            await _waiting(other, 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not client.connected
            assert pipeline.results is None

            # what the server carried out stays done; the job the first reserve took is handed back
            await other.queue.use("batch")
            one = await other.queue.peek_ready()
            two = await other.queue.peek_delayed()
            assert one is not None and two is not None and (one.raw, two.raw) == (b"one", b"two")
            await _until(lambda: _is_state(other, one.uid, "ready"), "the job back to ready")

            # the next command reads its own reply, on a new connection; "batch" was never
            # recorded as used, since the batch did not finish
            assert await client.queue.using() == "default"
            assert await client.queue.watching() == ["default", "batch"]
            got = await client.reserve(timeout=0, drop=False)
            assert got is not None and (got.uid, got.raw) == (one.uid, b"one")
            await got.delete()
            # and a whole batch afterwards is in step
            async with client.pipeline() as p:
                p.use("batch").put(b"three").peek_ready().using()
            assert p.results is not None
            assert p.results[0] == "batch" and p.results[3] == "batch"
            peeked = p.results[2]
            assert isinstance(peeked, AsyncMessage) and (peeked.uid, peeked.raw) == (p.results[1], b"three")

    asyncio.run(main())


async def _is_state(conn: AsyncConnection, job_id: int, state: str) -> bool:
    return await _state(conn, job_id) == state


def test_cancelling_a_task_waiting_its_turn_leaves_the_connection_usable(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with (
            AsyncClient(server.host, server.port, timeout=5) as client,
            AsyncConnection(server.host, server.port, timeout=5) as other,
        ):
            await client.watch("turns")
            blocked = asyncio.create_task(client.reserve(timeout=30))
            await _waiting(other, 1)
            queued = asyncio.create_task(client.queue.stats())  # waits for the reserve to finish
            await asyncio.sleep(0.05)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            assert client.connected  # it never started its exchange: nothing to throw away
            await other.queue.use("turns")
            job_id = await other.queue.put(b'"turn"')
            got = await blocked
            assert got is not None and (got.uid, got.body, got.deleted) == (job_id, "turn", True)
            assert (await client.queue.stats()).total_connections == 2  # the same connection all along

    asyncio.run(main())


def test_wait_for_around_reserve(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=5) as client:
            await client.watch("w")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.reserve(), 0.2)
            assert not client.connected
            await client.put("then", tube="w")
            got = await asyncio.wait_for(client.reserve(), 2)
            assert got is not None and got.body == "then"

    asyncio.run(main())


# -- close() while another task is using the connection ------------------------------------------


def test_close_lets_a_plain_command_in_another_task_finish(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with (
            AsyncClient(server.host, server.port, timeout=5) as client,
            AsyncConnection(server.host, server.port, timeout=5) as other,
        ):
            await client.connect()
            # the put's task starts first: close() finds its exchange under way, and waits for it
            sent, closed = await asyncio.gather(client.put({"n": 1}, tube="t"), client.close())
            assert closed is None
            assert isinstance(sent, AsyncMessage) and sent.uid > 0 and sent.body == {"n": 1}
            stats = await other.queue.stats_job(sent.uid)
            assert (stats.tube, stats.state) == ("t", "ready")
            assert (await other.queue.stats_tube("t")).current_jobs_ready == 1
            # the same with a batch
            many, _ = await asyncio.gather(client.put_many([1, 2, 3], tube="t"), client.close())
            assert [m.uid > 0 for m in many] == [True, True, True]
            assert (await other.queue.stats_tube("t")).current_jobs_ready == 4

    asyncio.run(main())


def test_close_cuts_short_a_reserve_waiting_in_another_task(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with (
            AsyncClient(server.host, server.port, timeout=5) as client,
            AsyncConnection(server.host, server.port, timeout=5) as other,
        ):
            await client.watch("idle")
            task = asyncio.create_task(client.reserve())
            await _waiting(other, 1)
            await asyncio.sleep(0.05)  # the task is reading by now
            start = time.monotonic()
            await asyncio.wait_for(client.close(), 2)
            assert time.monotonic() - start < 2
            with pytest.raises(SocketError):
                await asyncio.wait_for(task, 2)
            assert not client.connected
            await _waiting(other, 0)
            # the client works again, its watch list restored
            sent = await client.put("after close", tube="idle")
            assert sent.uid > 0
            got = await client.reserve(timeout=0)
            assert got is not None and got.uid == sent.uid

    asyncio.run(main())


# -- concurrency on one connection -----------------------------------------------------------------


def test_concurrent_tasks_on_one_connection_get_their_own_replies(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=10) as client:

            async def work(n: int) -> None:
                tube = f"tube-{n % 7}"
                sent = await client.put({"task": n}, tube=tube, priority=n)
                peeked = await client.queue.peek(sent.uid)
                assert peeked is not None and peeked.body == {"task": n}
                stats = await sent.stats()
                assert stats is not None and (stats.id, stats.tube, stats.pri) == (sent.uid, tube, n)
                raw_id = await client.queue.put(f"raw {n}".encode())
                raw = await client.queue.peek(raw_id)
                assert raw is not None and raw.raw == f"raw {n}".encode()

            await asyncio.gather(*(work(n) for n in range(50)))
            assert await client.queue.using() == "default"
            stats = await client.queue.stats()
            assert (stats.current_jobs_ready, stats.total_connections) == (100, 1)

    asyncio.run(main())


def test_concurrent_batches_on_one_connection(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=10) as client:
            await client.watch("many")
            await client.ignore("default")

            async def work(n: int) -> list[Any]:
                sent = await client.put_many([[n, i] for i in range(10)], tube="many")
                return [m.uid for m in sent]

            batches = await asyncio.gather(*(work(n) for n in range(20)))
            for uids in batches:
                assert uids == sorted(uids)  # each batch's puts went out together, in order
            got = await client.reserve_many(500)
            assert len(got) == 200
            assert sorted(m.body for m in got) == sorted([n, i] for n in range(20) for i in range(10))

    asyncio.run(main())


# -- the pool ------------------------------------------------------------------------------------


def test_pool_moves_2000_jobs_among_100_tasks_without_loss_or_duplication(server: BeanstalkdServer) -> None:
    tasks, per_task, size = 100, 20, 10

    async def main() -> None:
        got: list[Any] = []
        async with AsyncPool(server.host, server.port, timeout=10, size=size, watch=["pool"]) as pool:

            async def work(n: int) -> None:
                for i in range(per_task):
                    await pool.put({"from": n, "i": i}, tube="pool")
                    # every reserve follows a put that has finished, so one job at least is there for it
                    async with pool.client() as c:
                        m = await c.reserve(timeout=10, drop=False)
                        assert m is not None and m.reserved
                        got.append(m.body)
                        await m.delete()

            await asyncio.gather(*(work(n) for n in range(tasks)))
            async with AsyncConnection(server.host, server.port) as observer:
                stats = await observer.queue.stats()
        assert len(got) == tasks * per_task
        assert sorted((b["from"], b["i"]) for b in got) == [(n, i) for n in range(tasks) for i in range(per_task)]
        assert (stats.total_jobs, stats.cmd_delete, stats.current_jobs_ready) == (2000, 2000, 0)
        assert stats.current_jobs_reserved == 0
        # the pool's connections, its one pipelined connection (every put), and the observer
        assert stats.total_connections <= size + 2

    asyncio.run(main())


def test_pool_put_and_reserve(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncPool(server.host, server.port, timeout=5, size=3, watch=["a", "b"]) as pool:
            await asyncio.gather(*(pool.put(n, tube="ab"[n % 2]) for n in range(30)))
            got = await asyncio.gather(*(pool.reserve(timeout=2) for _ in range(30)))
            assert sorted(m.body for m in got if m is not None) == list(range(30))
            assert all(m is not None and m.deleted for m in got)
            assert await pool.reserve(timeout=0) is None
            async with pool.client() as c:
                assert sorted(await c.queue.watching()) == ["a", "b"]  # and not 'default'
                # the 3 pooled connections, and the one pipelined connection every put went through
                assert (await c.queue.stats()).total_connections <= 4

    asyncio.run(main())


def test_pool_rejects_a_bad_size() -> None:
    for size in (0, -1, 1.5, True):
        with pytest.raises(InvalidArgument, match="size"):
            AsyncPool(size=size)  # type: ignore[arg-type]


def test_pool_takes_broken_clients_out(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with (
            AsyncPool(server.host, server.port, timeout=5, size=1) as pool,
            AsyncConnection(server.host, server.port, timeout=5) as observer,
        ):
            async with pool.client() as first:
                pass
            # an error that leaves the client connected: it goes back to the pool
            with pytest.raises(NotFound):
                async with pool.client() as c:
                    assert c is first
                    await c.queue.delete(987654321)
            # a task cancelled in a blocking reserve breaks its client: it is not handed out again
            borrowed = asyncio.Event()

            async def reserve_forever() -> None:
                async with pool.client() as c:
                    assert c is first
                    borrowed.set()
                    await c.reserve()

            task = asyncio.create_task(reserve_forever())
            await borrowed.wait()
            await _waiting(observer, 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not first.connected
            async with pool.client() as second:
                assert second is not first and second.connected
                assert await second.queue.using() == "default"
            # and a client whose connection the server dropped
            with pytest.raises(SocketError):
                async with pool.client() as c:
                    assert c is second
                    await _kill_connection(observer, c)
                    await c.queue.stats()
            async with pool.client() as third:
                assert third is not second and third is not first
                assert (await third.queue.stats()).total_connections == 4  # first, second, third, observer
            # size=1 throughout: only the live one is left to close
            assert (await observer.queue.stats()).current_connections == 2

    asyncio.run(main())


async def _kill_connection(observer: AsyncConnection, client: AsyncClient) -> None:
    """Make the server drop ``client``'s connection (ask it to quit behind the client's back)."""
    assert client._transport is not None
    writer = client._transport.writer
    writer.write(b"quit\r\n")
    await writer.drain()

    async def gone() -> bool:
        return (await observer.queue.stats()).current_connections == 1

    await _until(gone, "the server to drop the connection")


def test_pool_reserve_drop_false_keeps_its_connection_until_settled(server: BeanstalkdServer) -> None:
    """A job stays reserved on the connection that reserved it: no other task may block that connection."""

    async def main() -> None:
        async with (
            AsyncPool(server.host, server.port, timeout=5, size=2, watch=["held"]) as pool,
            AsyncConnection(server.host, server.port, timeout=5) as observer,
        ):
            await pool.put("first", tube="held")
            m = await pool.reserve(drop=False)
            assert m is not None and m.reserved
            waiter = asyncio.create_task(pool.reserve())  # blocks: nothing is ready
            await _waiting(observer, 1)
            async with asyncio.timeout(PATIENCE):
                await m.delete()  # not stuck behind the waiter
            assert m.deleted
            await pool.put("second", tube="held")
            got = await asyncio.wait_for(waiter, PATIENCE)
            assert got is not None and got.body == "second"
            assert (await observer.queue.stats()).current_jobs_reserved == 0

    asyncio.run(main())


def test_pool_reserve_drop_false_holds_a_slot(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncPool(server.host, server.port, timeout=5, size=1, watch=["slot"]) as pool:
            await pool.put("job", tube="slot")
            m = await pool.reserve(timeout=1, drop=False)  # a reserve that may wait: on a pooled connection
            assert m is not None

            async def borrow() -> None:
                async with pool.client():
                    pass

            borrowing = asyncio.create_task(borrow())
            await asyncio.sleep(0.1)
            assert not borrowing.done()  # the one pooled connection is the message's until it is settled
            # a put does not wait for it: it goes through the pool's pipelined connection
            await asyncio.wait_for(pool.put("later", tube="slot"), PATIENCE)
            await m.release()
            await asyncio.wait_for(borrowing, PATIENCE)
            again = await pool.reserve(timeout=0, drop=False)
            assert again is not None and again.uid == m.uid
            await again.bury()
            later = await pool.reserve(timeout=0)
            assert later is not None and later.body == "later"

    asyncio.run(main())


def test_pool_invalid_envelope_keeps_its_connection_until_settled(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with (
            AsyncPool(server.host, server.port, timeout=5, size=2, watch=["bad"]) as pool,
            AsyncConnection(server.host, server.port, timeout=5) as observer,
        ):
            await observer.queue.use("bad")
            job_id = await observer.queue.put(b'{"@context": "message", "body": 1}')
            with pytest.raises(InvalidEnvelope) as info:
                await pool.reserve(timeout=0)  # drop=True, yet the invalid job stays reserved
            message = info.value.message
            assert isinstance(message, AsyncMessage) and message.uid == job_id and message.reserved
            waiter = asyncio.create_task(pool.reserve())
            await _waiting(observer, 1)
            async with asyncio.timeout(PATIENCE):
                await message.bury()
            assert await _state(observer, job_id) == "buried"
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter

    asyncio.run(main())


def test_pool_drops_a_client_given_back_with_other_tubes(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncPool(server.host, server.port, timeout=5, size=1, watch=["jobs"]) as pool:
            async with pool.client() as changed:
                await changed.watch("scratch")
                await changed.ignore("jobs")
            assert not changed.connected  # it left the pool
            await pool.put({"n": 1}, tube="jobs")
            got = await pool.reserve(timeout=1)
            assert got is not None and got.body == {"n": 1}
            async with pool.client() as c:
                assert c is not changed
                assert await c.queue.watching() == ["jobs"]
                await c.queue.use("elsewhere")
            async with pool.client() as d:
                assert d is not c
                assert await d.queue.using() == "default"
                assert await d.queue.watching() == ["jobs"]
            async with pool.client() as e:
                assert e is d  # an unchanged client stays in the pool

    asyncio.run(main())


def test_pool_put_message_does_not_wait_behind_a_blocking_reserve(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with (
            AsyncPool(server.host, server.port, timeout=5, size=2, watch=["jobs"]) as pool,
            AsyncConnection(server.host, server.port, timeout=5) as observer,
        ):
            m = await pool.put({"n": 1}, tube="other")
            waiter = asyncio.create_task(pool.reserve(timeout=3))  # takes the idle connection, waits 3 s
            await _waiting(observer, 1)
            start = time.monotonic()
            stats = await asyncio.wait_for(m.stats(), PATIENCE)
            assert time.monotonic() - start < 1.5
            assert stats is not None and (stats.id, stats.tube, stats.state) == (m.uid, "other", "ready")
            assert not waiter.done()
            await m.delete()
            assert m.deleted and await m.stats() is None
            assert await asyncio.wait_for(waiter, PATIENCE) is None

    asyncio.run(main())


# -- timeouts ------------------------------------------------------------------------------------


def test_timeout_against_a_stopped_server(server: BeanstalkdServer) -> None:
    async def main() -> None:
        connected = AsyncConnection(server.host, server.port, timeout=0.5)
        await connected.connect()
        fresh = AsyncConnection(server.host, server.port, timeout=0.5)  # connects at its first command
        server.pause()
        try:
            for conn in (connected, fresh):
                start = time.monotonic()
                with pytest.raises(SocketError, match="timed out") as info:
                    await conn.queue.stats()
                assert 0.4 <= time.monotonic() - start < 2
                assert isinstance(info.value, OSError)
                assert not conn.connected
        finally:
            server.resume()
        assert (await connected.queue.stats()).version == "1.12"  # and it recovers
        await connected.close()
        await fresh.close()

    asyncio.run(main())


def test_a_write_to_a_stopped_server_times_out(server_factory: ServerFactory) -> None:
    big = server_factory(max_job_size=20_000_000)

    async def main() -> None:
        async with AsyncConnection(big.host, big.port, timeout=0.5) as conn:
            big.pause()
            try:
                start = time.monotonic()
                with pytest.raises(SocketError) as info:  # the body cannot all fit in the socket buffers
                    async with asyncio.timeout(PATIENCE):
                        await conn.queue.put(b"x" * 15_000_000)
                assert time.monotonic() - start < 2
                assert info.value.maybe_executed is True  # part of it went out
                assert not conn.connected
            finally:
                big.resume()
            assert await conn.queue.using() == "default"

    asyncio.run(main())


def test_a_slow_write_that_progresses_is_not_cut_short(server_factory: ServerFactory) -> None:
    """The timeout bounds a write without progress (as for the sync driver's sends), not the whole write."""
    big = server_factory(max_job_size=100_000_000)
    stop = threading.Event()

    def stutter() -> None:  # the server runs 10 ms in every 210: it reads, slowly
        while not stop.is_set():
            big.pause()
            time.sleep(0.2)
            big.resume()
            time.sleep(0.01)

    async def main() -> None:
        async with AsyncConnection(big.host, big.port, timeout=0.5) as conn:
            thread = threading.Thread(target=stutter)
            thread.start()
            try:
                start = time.monotonic()
                job_id = await conn.queue.put(b"x" * 80_000_000)
                elapsed = time.monotonic() - start
            finally:
                stop.set()
                thread.join()
                big.resume()
            assert elapsed > 0.5  # longer than the timeout in all
            assert (await conn.queue.stats_job(job_id)).state == "ready"

    asyncio.run(main())


def test_reserve_with_timeout_is_not_cut_short_by_the_timeout(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with (
            AsyncClient(server.host, server.port, timeout=0.5) as client,
            AsyncConnection(server.host, server.port, timeout=5) as other,
        ):
            start = time.monotonic()
            assert await client.reserve(timeout=2) is None
            assert time.monotonic() - start >= 1.9
            assert client.connected

            async def late() -> None:
                await asyncio.sleep(1)
                await other.queue.put(b'"late"')

            start = time.monotonic()
            putter = asyncio.create_task(late())
            got = await client.reserve(timeout=2)
            await putter
            assert got is not None and got.body == "late"
            assert 0.9 <= time.monotonic() - start < 1.9
            # a reserve without a timeout waits as long as it takes too
            putter = asyncio.create_task(late())
            got = await client.reserve()
            await putter
            assert got is not None and got.body == "late" and client.connected

    asyncio.run(main())


# -- the async-only parts of the API -----------------------------------------------------------


def test_async_message_settings_are_none_until_known(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=5) as client:
            sent = await client.put("p", priority=42, delay=0, ttr=30)
            assert (sent.priority, sent.delay, sent.ttr) == (42, 0, 30)
            await client.watch("receive")
            got = await client.reserve(drop=False)
            assert got is not None
            assert (got.priority, got.delay, got.ttr) == (None, None, None)
            await got.release()  # keeps its own priority, learning it on the way
            assert got.priority == 42
            assert (await client.queue.stats_job(got.uid)).pri == 42
            got = await client.reserve(drop=False)
            assert got is not None
            stats = await got.stats()
            assert stats is not None
            assert (got.priority, got.delay, got.ttr) == (42, 0, 30)
            await got.delete()
            assert await got.stats() is None

    asyncio.run(main())


def test_async_connection_connects_lazily(server: BeanstalkdServer) -> None:
    async def main() -> None:
        conn = AsyncConnection(server.host, server.port, timeout=5)
        assert not conn.connected
        assert repr(conn).endswith("closed>")
        assert await conn.queue.using() == "default"  # the first command connects
        assert conn.connected
        await conn.close()
        assert not conn.connected
        await conn.reconnect()
        assert conn.connected
        await conn.close()

    asyncio.run(main())


def test_connection_refused_is_raised_when_connecting() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> None:
        conn = AsyncConnection("127.0.0.1", port, timeout=5)  # nothing listens on `port`; nothing happens yet
        with pytest.raises(SocketError, match=f"127.0.0.1:{port}"):
            await conn.connect()
        with pytest.raises(SocketError, match=f"127.0.0.1:{port}"):
            await conn.queue.stats()
        assert not conn.connected

    asyncio.run(main())
