"""Auto-pipelining on one ``AsyncConnection``: concurrent commands share writes, replies go to their own
commands, cancellation never puts the stream out of step; ``AsyncPool`` routes blocking reserves apart.

Plain test functions run their coroutine with ``asyncio.run``; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import pytest

from beanstalkm import Client, SocketError
from beanstalkm.aio import AsyncClient, AsyncConnection, AsyncMessage, AsyncPool
from beanstalkm.testing import BeanstalkdServer

PATIENCE = 10.0
"""The longest any one wait here may take."""


class _Writes:
    """Counts the writes a connection's stream makes (wrapping its writer's ``write``)."""

    def __init__(self, conn: AsyncConnection, monkeypatch: pytest.MonkeyPatch) -> None:
        transport = conn._transport
        assert transport is not None
        self.calls: list[int] = []
        writer = transport.writer
        original = writer.write

        def write(data: Any) -> None:
            self.calls.append(len(data))
            original(data)

        monkeypatch.setattr(writer, "write", write)


def _drain_tube(server: BeanstalkdServer, tube: str) -> list[tuple[int, bytes]]:
    """Every ready job of ``tube`` (id, bytes), deleted."""
    jobs: list[tuple[int, bytes]] = []
    with Client(server.host, server.port, timeout=5) as client:
        client.watch(tube)
        client.ignore("default")
        while (message := client.reserve(timeout=0, drop=True)) is not None:
            assert message.raw is not None
            jobs.append((message.uid, message.raw))
    return jobs


def test_concurrent_puts_share_writes_and_each_gets_its_own_id(
    server: BeanstalkdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=5) as client:
            await client.queue.use("shared")
            writes = _Writes(client, monkeypatch)
            bodies = [b"body %d" % i for i in range(100)]
            ids = await asyncio.wait_for(asyncio.gather(*(client.queue.put(b) for b in bodies)), PATIENCE)
            assert len(writes.calls) <= 3, writes.calls  # 100 puts: the first alone, the rest together
            assert len(set(ids)) == 100
            for job_id, body in zip(ids, bodies, strict=True):  # each reply went to its own command
                peeked = await client.queue.peek(job_id)
                assert peeked is not None and peeked.raw == body
            assert (await client.queue.stats()).total_connections == 1  # all on the one connection

    asyncio.run(main())


def test_a_task_cancelled_before_its_command_is_written_sends_nothing(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=5) as client:
            await client.queue.use("unsent")
            first = asyncio.create_task(client.queue.put(b"first"))  # the reader: written at once
            await asyncio.sleep(0)
            second = asyncio.create_task(client.queue.put(b"second"))  # queued for the next write
            third = asyncio.create_task(client.queue.put(b"third"))
            await asyncio.sleep(0)  # both queued, the write not yet made
            second.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second
            await asyncio.wait_for(asyncio.gather(first, third), PATIENCE)
            assert client.connected
            assert (await client.queue.stats_tube("unsent")).current_jobs_ready == 2

    asyncio.run(main())
    assert sorted(raw for _, raw in _drain_tube(server, "unsent")) == [b"first", b"third"]


def test_a_written_command_cancelled_has_its_reply_dropped(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=5) as client:
            await client.queue.use("dropped")
            tasks = [asyncio.create_task(client.queue.put(b"job %d" % i)) for i in range(20)]
            for _ in range(3):  # the puts are written (the reader's first write, then the rest)
                await asyncio.sleep(0)
            cancelled = tasks[1::2]
            for task in cancelled:
                task.cancel()
            done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), PATIENCE)
            ids = {r for r in done if isinstance(r, int)}
            # the next commands read their own replies: the dropped ones were read past
            assert await client.queue.using() == "dropped"
            for job_id in ids:
                peeked = await client.queue.peek(job_id)
                assert peeked is not None and peeked.raw == b"job %d" % done.index(job_id)
            assert client.connected

    asyncio.run(main())
    left = _drain_tube(server, "dropped")
    assert len(left) == len({raw for _, raw in left}) and len(left) <= 20  # none twice


def test_random_cancellation_among_100_pipelined_puts_and_reserves(server: BeanstalkdServer) -> None:
    """100 tasks on one AsyncClient, puts (pipelined) and reserves (each alone on the connection), some
    cancelled at random points: every reply went to its own command, no job lost, none put twice, and
    the connection is in step afterwards. Eight rounds, each with its own seed and tube; between them
    they cancel puts whose command was written (their replies read and dropped)."""
    dropped = 0
    for seed in range(8):
        dropped += _random_cancellation_round(server, seed, f"mixed{seed}")
    assert dropped > 0, "no put was cancelled after its command was written"


def _random_cancellation_round(server: BeanstalkdServer, seed: int, tube: str) -> int:
    """One round; how many puts landed whose reply was dropped (their task cancelled)."""
    rng = random.Random(seed)

    async def main() -> tuple[dict[int, bytes], list[bytes], list[int], int]:
        async with (
            AsyncClient(server.host, server.port, timeout=5) as client,
            AsyncConnection(server.host, server.port, timeout=5) as observer,
        ):
            await client.watch(tube)
            await client.ignore("default")
            await observer.queue.use(tube)
            await client.queue.use(tube)
            for i in range(30):  # jobs for the reserves to take from the start
                await observer.queue.put(json.dumps({"pre": i}).encode())
            stored: dict[int, bytes] = {}  # put replies: id -> the body that put sent
            reserved: list[AsyncMessage] = []

            async def put(i: int) -> None:
                body = json.dumps({"put": i}).encode()
                job_id = await client.queue.put(body)
                stored[job_id] = body

            async def reserve() -> None:
                message = await client.reserve(timeout=0, drop=False)
                if message is not None:
                    reserved.append(message)

            kinds = ["put"] * 60 + ["reserve"] * 40
            rng.shuffle(kinds)
            tasks = [asyncio.create_task(put(i) if kind == "put" else reserve()) for i, kind in enumerate(kinds)]
            cancelled: list[int] = []
            for _turn in range(40):  # cancel some, at random turns of the loop
                for index in rng.sample(range(100), 3):
                    if not tasks[index].done():
                        tasks[index].cancel()
                        cancelled.append(index)
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
            results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), PATIENCE)
            for index, result in enumerate(results):  # a task fails only by being cancelled
                assert result is None or (isinstance(result, asyncio.CancelledError) and index in cancelled), result

            # in step: the next commands read their own replies
            assert (await client.queue.stats_tube(tube)).name == tube
            for job_id, body in stored.items():  # each put's reply was its own: the id holds its body
                peeked = await observer.queue.peek(job_id)
                assert peeked is not None and peeked.raw == body, (job_id, body)
            # a reserve cancelled mid-way drops the connection, and beanstalkd releases what it had
            # reserved: those messages are no longer reserved, their jobs back in the tube
            held = [m for m in reserved if m.reserved]
            taken = [m.raw for m in held if m.raw is not None]
            for message in held:
                await message.delete()
            landed = (await observer.queue.stats_tube(tube)).total_jobs - 30
            return stored, taken, cancelled, landed - len(stored)

    stored, taken, cancelled, dropped = asyncio.run(main())
    assert cancelled  # the test did cancel some
    left = [raw for _, raw in _drain_tube(server, tube)]
    everything = left + taken
    assert len(everything) == len(set(everything)), "a job was put or reserved twice"
    put_bodies = {json.dumps({"put": i}).encode() for i in range(100)}
    pre = {json.dumps({"pre": i}).encode() for i in range(30)}
    assert pre <= set(everything), "a job that was there before was lost"
    assert set(stored.values()) <= set(everything), "a job whose put succeeded was lost"
    assert set(everything) <= put_bodies | pre
    return dropped


def test_a_reserve_holds_the_connection_alone_and_commands_queue_behind(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=5) as client:
            await client.watch("alone")
            await client.queue.use("alone")
            order: list[str] = []

            async def reserve() -> None:
                message = await client.reserve(timeout=1, drop=True)
                order.append("reserve " + ("job" if message is not None else "none"))

            async def put() -> None:
                await client.queue.put(b"after")
                order.append("put")

            task = asyncio.create_task(reserve())
            await asyncio.sleep(0.05)  # the reserve is waiting on the server
            await asyncio.wait_for(asyncio.gather(task, put()), PATIENCE)
            # the put did not pipeline past the waiting reserve (it would have fed it its job)
            assert order == ["reserve none", "put"]
            assert (await client.queue.stats_tube("alone")).current_jobs_ready == 1

    asyncio.run(main())


def test_the_stream_failing_mid_pipeline_fails_every_command_in_flight(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=5) as client:
            await client.queue.use("failing")
            tasks = [asyncio.create_task(client.queue.put(b"x")) for _ in range(10)]
            await asyncio.sleep(0)
            transport = client._transport
            assert transport is not None
            transport.abort()  # the stream is cut under the commands in flight
            results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), PATIENCE)
            errors = [r for r in results if isinstance(r, BaseException)]
            assert errors and all(isinstance(e, SocketError) for e in errors), results
            assert not client.connected
            # the next command connects again, the used tube restored
            assert await client.queue.put(b"y") > 0
            assert await client.queue.using() == "failing"

    asyncio.run(main())


def test_pool_puts_go_through_one_pipelined_connection_past_blocked_reserves(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncPool(server.host, server.port, timeout=5, size=2, watch=["pool"]) as pool:
            consumers = [asyncio.create_task(pool.reserve(timeout=None, drop=True)) for _ in range(2)]
            await asyncio.sleep(0.1)  # both of the pool's slots are in a blocking reserve
            sent = await asyncio.wait_for(asyncio.gather(*(pool.put({"n": i}, "pool") for i in range(50))), PATIENCE)
            assert len({m.uid for m in sent}) == 50
            got = await asyncio.wait_for(asyncio.gather(*consumers), PATIENCE)
            assert all(m is not None and m.deleted for m in got)
            async with pool.client() as client:
                stats = await client.queue.stats()
            # the two reserving connections, the one pipelined connection for the puts
            assert stats.current_connections == 3
            assert stats.cmd_put == 50

    asyncio.run(main())


def test_a_cancelled_pipelined_reserve_hands_its_job_back(server: BeanstalkdServer) -> None:
    """A reserve that does not wait is pipelined; cancelled with its job on the way, the job is not left
    reserved by nobody: it goes back to ready, with its own priority, and the stream stays in step."""

    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=5) as client:
            await client.watch("handed")
            with Client(server.host, server.port, timeout=5) as other:
                job = other.put({"n": 1}, tube="handed", priority=7)
                first = asyncio.create_task(client.queue.stats())  # the reader
                await asyncio.sleep(0)
                reserve = asyncio.create_task(client.queue.reserve_with_timeout(0))  # pipelined behind it
                for _ in range(3):  # written
                    await asyncio.sleep(0)
                # the sync calls block the loop: the client cannot read the RESERVED on its way
                deadline = time.monotonic() + PATIENCE
                while other.queue.stats_job(job.uid).state != "reserved":
                    assert time.monotonic() < deadline, "the reserve never reached the server"
                    time.sleep(0.01)
                reserve.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await reserve
                await asyncio.wait_for(first, PATIENCE)
                deadline = time.monotonic() + PATIENCE
                while (stats := other.queue.stats_job(job.uid)).state != "ready":
                    assert time.monotonic() < deadline, "the job was never handed back"
                    await asyncio.sleep(0.01)
                assert (stats.pri, stats.reserves, stats.releases) == (7, 1, 1)
                assert client.connected
                again = await client.reserve(timeout=0)  # in step: the job, again
                assert again is not None and (again.uid, again.body) == (job.uid, {"n": 1})

    asyncio.run(main())


def test_pool_reserves_that_do_not_wait_are_pipelined(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncPool(server.host, server.port, timeout=5, size=2, watch=["now"]) as pool:
            sent = await asyncio.gather(*(pool.put({"n": i}, "now") for i in range(60)))
            got = await asyncio.wait_for(asyncio.gather(*(pool.reserve(timeout=0) for _ in range(70))), PATIENCE)
            messages = [m for m in got if m is not None]
            assert sorted(m.uid for m in messages) == sorted(m.uid for m in sent)  # each job once, none lost
            assert all(m.deleted for m in messages) and got.count(None) == 10
            put = await pool.put({"n": "kept"}, "now")
            kept = await pool.reserve(timeout=0, drop=False)
            assert kept is not None and kept.reserved and kept.uid == put.uid
            await kept.release()  # on the connection that reserved it
            async with pool.client() as client:
                stats = await client.queue.stats()
                assert (stats.current_jobs_ready, stats.current_jobs_reserved) == (1, 0)
                # the pooled connection borrowed here, and the pipelined one: the reserves borrowed none
                assert stats.total_connections == 2

    asyncio.run(main())
