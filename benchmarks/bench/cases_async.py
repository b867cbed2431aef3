"""The async cases: ``TASKS`` concurrent tasks over a pool of ``env.pool_size`` connections (beanstalkm,
aiostalk, raw asyncio streams); ``TASKS`` tasks on one auto-pipelined ``AsyncClient``; one task alone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from beanstalkm.aio import AsyncClient, AsyncPool
from bench import aiostalk
from bench.env import PRIORITY, TASKS, TO, TTR, Env, Prepared, Run
from bench.wire import put_command


async def share(op: Callable[[int], Awaitable[None]], k: int, tasks: int = TASKS) -> None:
    """``tasks`` concurrent tasks doing ``k`` operations between them (``op(i)``, i counting down)."""
    remaining = k

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await op(remaining)

    await asyncio.gather(*(worker() for _ in range(tasks)))


def drive(env: Env, op: Callable[[int], Awaitable[None]], tasks: int = TASKS) -> Run:
    """``run(k)``: ``share(op, k, tasks)`` on the cases' event loop."""

    def run(k: int) -> None:
        env.loop.run_until_complete(share(op, k, tasks))

    return run


def bsm_pool(env: Env, tube: str, *, use: bool) -> AsyncPool:
    """An AsyncPool with all its connections open (and, for putting, the tube in use on each)."""
    pool = AsyncPool(env.addr[0], env.addr[1], size=env.pool_size, watch=() if use else (tube,), validate=True)
    barrier = asyncio.Barrier(env.pool_size)

    async def hold() -> None:  # every slot borrowed at once: pool_size connections opened
        async with pool.client() as client:
            if use:
                await client.queue.use(tube)
            await barrier.wait()

    async def fill() -> None:
        await asyncio.gather(*(hold() for _ in range(env.pool_size)))

    env.loop.run_until_complete(fill())
    return pool


def bsm_async_put(env: Env, tube: str, n: int) -> Prepared:
    pool = bsm_pool(env, tube, use=True)

    async def op(i: int) -> None:
        await pool.put({"n": i, "to": TO}, tube)

    return drive(env, op), lambda: env.loop.run_until_complete(pool.close())


def bsm_async_reserve(env: Env, tube: str, n: int) -> Prepared:
    pool = bsm_pool(env, tube, use=False)

    async def op(i: int) -> None:
        if await pool.reserve(0, drop=True) is None:
            raise RuntimeError("AsyncPool.reserve: tube ran dry")

    return drive(env, op), lambda: env.loop.run_until_complete(pool.close())


def aio_pool(env: Env, tube: str) -> tuple[asyncio.Queue[Any], Callable[[], None]]:
    """A pool of env.pool_size connected aiostalk clients (it has none of its own), and its closer."""
    clients = [aiostalk.Client(env.addr, use=tube, watch=tube) for _ in range(env.pool_size)]

    async def fill() -> None:
        await asyncio.gather(*(c.connect() for c in clients))

    env.loop.run_until_complete(fill())
    idle: asyncio.Queue[Any] = asyncio.Queue()
    for client in clients:
        idle.put_nowait(client)

    async def close() -> None:
        for client in clients:
            await client.close()

    return idle, lambda: env.loop.run_until_complete(close())


def aio_borrowed_put(idle: asyncio.Queue[Any]) -> Callable[[int], Awaitable[None]]:
    """``op(i)``: borrow an aiostalk client from ``idle``, ``put(json.dumps(body))``, give it back."""
    dumps = json.dumps

    async def op(i: int) -> None:
        client = await idle.get()
        try:
            await client.put(dumps({"n": i, "to": TO}), PRIORITY, 0, TTR)
        finally:
            idle.put_nowait(client)

    return op


def aio_put(env: Env, tube: str, n: int) -> Prepared:
    idle, close = aio_pool(env, tube)
    return drive(env, aio_borrowed_put(idle)), close


def aio_reserve_delete(env: Env, tube: str, n: int) -> Prepared:
    idle, close = aio_pool(env, tube)
    loads = json.loads

    async def op(i: int) -> None:
        client = await idle.get()
        try:
            job = await client.reserve(0)
            loads(job.body)
            await client.delete(job)
        finally:
            idle.put_nowait(client)

    return drive(env, op), close


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def raw_async_pool(env: Env, setup: bytes, replies: int) -> tuple[asyncio.Queue[Streams], Callable[[], None]]:
    """env.pool_size raw asyncio stream connections, each sent ``setup`` (``replies`` replies read)."""

    async def one() -> Streams:
        reader, writer = await asyncio.open_connection(*env.addr)
        writer.write(setup)
        for _ in range(replies):
            await reader.readline()
        return reader, writer

    async def fill() -> list[Streams]:
        return list(await asyncio.gather(*(one() for _ in range(env.pool_size))))

    conns = env.loop.run_until_complete(fill())
    idle: asyncio.Queue[Streams] = asyncio.Queue()
    for conn in conns:
        idle.put_nowait(conn)

    async def close() -> None:
        for _, writer in conns:
            writer.close()
            await writer.wait_closed()

    return idle, lambda: env.loop.run_until_complete(close())


def raw_async_put(env: Env, tube: str, n: int) -> Prepared:
    idle, close = raw_async_pool(env, b"use %b\r\n" % tube.encode(), 1)
    command = put_command(env.envelope)

    async def op(i: int) -> None:
        conn = await idle.get()
        reader, writer = conn
        writer.write(command)
        if not (await reader.readline()).startswith(b"INSERTED "):
            raise RuntimeError("raw async put failed")
        idle.put_nowait(conn)

    return drive(env, op), close


def raw_async_reserve_delete(env: Env, tube: str, n: int) -> Prepared:
    idle, close = raw_async_pool(env, b"watch %b\r\nignore default\r\n" % tube.encode(), 2)

    async def op(i: int) -> None:
        conn = await idle.get()
        reader, writer = conn
        writer.write(b"reserve-with-timeout 0\r\n")
        parts = (await reader.readline()).split()
        if parts[0] != b"RESERVED":
            raise RuntimeError(f"raw async reserve: {parts!r}")
        await reader.readexactly(int(parts[2]) + 2)
        writer.write(b"delete %b\r\n" % parts[1])
        if await reader.readline() != b"DELETED\r\n":
            raise RuntimeError("raw async delete failed")
        idle.put_nowait(conn)

    return drive(env, op), close


# -- one connection: TASKS tasks on one auto-pipelined AsyncClient, and one task alone ------------------


def bsm_one_client(env: Env) -> AsyncClient:
    client = AsyncClient(env.addr[0], env.addr[1], validate=True)
    env.loop.run_until_complete(client.connect())
    return client


def bsm_client_put(env: Env, tube: str, n: int) -> Prepared:
    """TASKS tasks doing ``AsyncClient.put`` on one client: its commands auto-pipelined."""
    client = bsm_one_client(env)

    async def op(i: int) -> None:
        await client.put({"n": i, "to": TO}, tube)

    return drive(env, op), lambda: env.loop.run_until_complete(client.close())


def bsm_client_put_alone(env: Env, tube: str, n: int) -> Prepared:
    """One task doing sequential ``AsyncClient.put``."""
    client = bsm_one_client(env)

    async def op(i: int) -> None:
        await client.put({"n": i, "to": TO}, tube)

    return drive(env, op, 1), lambda: env.loop.run_until_complete(client.close())


def aio_put_alone(env: Env, tube: str, n: int) -> Prepared:
    """One task doing sequential aiostalk ``put(json.dumps(body))`` on one client."""
    client = aiostalk.Client(env.addr, use=tube)
    env.loop.run_until_complete(client.connect())
    dumps = json.dumps

    async def op(i: int) -> None:
        await client.put(dumps({"n": i, "to": TO}), PRIORITY, 0, TTR)

    return drive(env, op, 1), lambda: env.loop.run_until_complete(client.close())


def raw_async_stream(env: Env, tube: str) -> tuple[Streams, Callable[[], None]]:
    """One raw asyncio stream connection using ``tube``, and its closer."""

    async def one() -> Streams:
        reader, writer = await asyncio.open_connection(*env.addr)
        writer.write(b"use %b\r\n" % tube.encode())
        await reader.readline()
        return reader, writer

    reader, writer = env.loop.run_until_complete(one())

    async def close() -> None:
        writer.close()
        await writer.wait_closed()

    return (reader, writer), lambda: env.loop.run_until_complete(close())


def raw_async_put_pipelined(env: Env, tube: str, n: int) -> Prepared:
    """The floor of one connection: TASKS puts in one write, then their TASKS replies, in a loop."""
    (reader, writer), close = raw_async_stream(env, tube)
    batches = pipelined_puts(reader, writer, put_command(env.envelope))
    return (lambda k: env.loop.run_until_complete(batches(k))), close


def pipelined_puts(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: bytes
) -> Callable[[int], Awaitable[None]]:
    """``batches(k)``: ``k`` puts of ``command`` on one raw stream, TASKS in one write, then their replies."""

    async def batches(k: int) -> None:
        for _ in range(k // TASKS):
            writer.write(command * TASKS)
            for _ in range(TASKS):
                if not (await reader.readline()).startswith(b"INSERTED "):
                    raise RuntimeError("raw pipelined async put failed")

    return batches


def raw_async_put_alone(env: Env, tube: str, n: int) -> Prepared:
    """One task: write(put <envelope>) + readline, in a loop."""
    (reader, writer), close = raw_async_stream(env, tube)
    command = put_command(env.envelope)

    async def op(i: int) -> None:
        writer.write(command)
        if not (await reader.readline()).startswith(b"INSERTED "):
            raise RuntimeError("raw async put failed")

    return drive(env, op, 1), close
