"""beanstalkm benchmarks: beanstalkm against greenstalk, aiostalk and raw-socket loops, on private beanstalkd servers.

Usage::

    python benchmarks/run.py                # full run in the default regime, --pin split (make bench)
    python benchmarks/run.py --pin same     # the same-CPU regime: a per-operation overhead figure
    python benchmarks/run.py --quick        # a short run
    python benchmarks/run.py --check        # exit 1 if a target (TARGETS, or a memory target) is missed

``--check`` is never run by ``make test``: these are timings on a shared machine.

Regimes (``--pin``)
-------------------
``split`` (the default): this process on one CPU, the beanstalkd servers on
another. Every round trip is a real loopback round trip with a cross-CPU
wake-up (tens of microseconds), as between a client and a server in a
deployment; the issue's targets are stated for this regime. The header prints
the round trip measured by a raw loop.

``same``: this process and the servers on one CPU. A round trip then costs only
the CPU time of both sides (~14 us) and no wake-up latency, so the figures are
CPU-bound and the ratios measure per-operation client overhead: a useful
secondary figure, not the regime the targets describe.

``none``: placement left to the scheduler.

Method
------
A warm-up round runs first and is discarded. Then, in each of ``--rounds``
rounds, every implementation of every case runs on a fresh tube of its own,
the tubes prefilled where the case reserves; the ``n`` operations of each
implementation are cut into ``--chunks`` chunks, and the chunks of the
implementations alternate (A B C, B C A, ...), so a slow spell of the machine
hits them all alike. An implementation's figure for a round is its ``n``
over the time its chunks took; the figure reported is the median over the
rounds, with the spread (half the range over the median). A ratio is the
median of the per-round ratios (both sides measured in the same round), shown
with its range over the rounds; the targets are judged on it. Every tube is
drained and its job count checked afterwards. Validation is on: beanstalkm
clients are created with ``validate=True``, jsonschema must be installed, and a
preflight makes sure an invalid envelope is refused.

What is compared
----------------
Each library is used as its user would use it for the same job:

* ``Client.put({"n": i, "to": ...}, tube)`` (beanstalkm builds and encodes its
  envelope) against greenstalk's ``put(json.dumps({"n": i, "to": ...}))``;
* ``Client.reserve(0, drop=True)`` (decodes and validates the envelope, then
  deletes) against greenstalk's ``reserve(0)`` + ``json.loads(job.body)`` +
  ``delete(job)``, both reserving the same jobs (the envelope ``Client.put``
  writes);
* the low-level ``conn.queue.put(data)`` against greenstalk's ``put(data)``, the
  same envelope bytes;
* the 1 MiB body likewise: ``Client.put(body)`` + ``reserve(0, drop=True)``
  against ``put(json.dumps(body))`` + ``reserve(0)`` + ``json.loads`` + ``delete``;
* the batches (``put_many``, ``reserve_many`` of 100) against greenstalk's
  sequential put and reserve cycle above;
* async: 100 concurrent asyncio tasks over ``AsyncPool(size=--pool-size)``
  doing ``pool.put`` or ``pool.reserve(0, drop=True)``, against aiostalk with
  the same 100 tasks over a pool of the same size (aiostalk has none: an
  ``asyncio.Queue`` of connected aiostalk clients, one borrowed per operation
  as ``AsyncPool.put``/``reserve`` do), doing ``put(json.dumps(body))`` or
  ``reserve(0)`` + ``json.loads`` + ``delete``.

``raw`` is the floor: a minimal ``sendall``/``recv`` loop (asyncio streams
for the async cases, over a pool of the same size) with precomputed commands,
sending the envelope bytes, decoding nothing. In the batch cases it is the raw
*pipelined* loop: 100 commands in one write, then 100 replies read.

Results (with machine information) are written to
``benchmarks/results/latest-<regime>.json``. The memory measurements
(``benchmarks/memory.py``) run last, in subprocesses.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import beanstalkm
from beanstalkm.aio import AsyncPool
from beanstalkm.testing import BeanstalkdServer, find_beanstalkd

try:
    import aiostalk  # type: ignore[import-untyped, import-not-found, unused-ignore]
    import greenstalk  # type: ignore[import-not-found, unused-ignore]
except ImportError:
    sys.exit(
        "benchmarks/run.py needs greenstalk and aiostalk (the `bench` extra): run `make bench`, "
        "or pip install -e '.[bench]'"
    )

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

Address = tuple[str, int]
Run = Callable[[int], None]  # runs k operations
Prepared = tuple[Run, Callable[[], None]]  # the operations, and what closes their connections
Prepare = Callable[["Env", str, int], Prepared]  # (env, fresh tube, n) -> prepared run

IMPLS = ("beanstalkm", "other", "raw")  # "other" is greenstalk (sync cases) or aiostalk (async cases)
PRIORITY = beanstalkm.DEFAULT_PRIORITY
TTR = beanstalkm.DEFAULT_TTR
BATCH = 100  # messages per put_many / reserve_many call (and per raw pipelined write)
BIG = 1024 * 1024  # the large body: 1 MiB
TASKS = 100  # concurrent asyncio tasks in the async cases
TO = "user@example.org"  # the body every put sends: {"n": i, "to": TO}
ROUNDS, QUICK_ROUNDS, CHUNKS, ASYNC_CHUNKS = 9, 3, 20, 6


@dataclass(frozen=True)
class Target:
    """A ratio a case must reach: beanstalkm / ``versus`` ("other": greenstalk or aiostalk; or "raw")."""

    case: str
    versus: str
    minimum: float
    text: str


TARGETS: tuple[Target, ...] = (
    Target("put", "other", 0.9, "Client.put >= 0.9x greenstalk put(json.dumps(body))"),
    Target("reserve_drop", "other", 0.9, "Client.reserve(drop=True) >= 0.9x greenstalk reserve+loads+delete"),
    Target("queue_put", "other", 0.95, "raw queue.put >= 0.95x greenstalk put (same bytes)"),
    Target("put_many", "other", 10.0, "put_many >= 10x greenstalk sequential put"),
    Target("put_many", "raw", 0.7, "put_many >= 0.7x the raw pipelined loop"),
    Target("reserve_many", "other", 10.0, "reserve_many(drop=True) >= 10x greenstalk reserve+loads+delete"),
)


@dataclass(frozen=True)
class Env:
    """What every case needs: the servers, the bytes beanstalkm puts, the event loop of the async cases."""

    addr: Address
    big_addr: Address
    prefix: str
    envelope: bytes  # what Client.put writes for {"n": 0, "to": TO}: prefilled for the reserve cases
    big_body: str
    big_envelope: bytes
    loop: asyncio.AbstractEventLoop
    pool_size: int


# -- the raw-socket side ------------------------------------------------------------------------------


def put_command(body: bytes) -> bytes:
    return b"put %d 0 %d %d\r\n%b\r\n" % (PRIORITY, TTR, len(body), body)


class Raw:
    """A minimal raw connection (sendall/recv) for setup, draining and the raw loops."""

    def __init__(self, addr: Address) -> None:
        self.sock = socket.create_connection(addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def _fill(self, need: int) -> None:
        chunk = self.sock.recv(max(65536, need))
        if not chunk:
            raise ConnectionError("beanstalkd closed the connection")
        self.buf += chunk

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill(0)
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def body(self, size: int) -> bytes:
        while len(self.buf) < size + 2:
            self._fill(size + 2 - len(self.buf))
        data = bytes(self.buf[:size])
        del self.buf[: size + 2]
        return data

    def command(self, data: bytes, expect: bytes) -> bytes:
        self.sock.sendall(data)
        line = self.line()
        if not line.startswith(expect):
            raise RuntimeError(f"{data[:40]!r}: unexpected reply {line!r}")
        return line

    def reserve_batch(self, count: int) -> list[bytes]:
        """Pipelined: ``count`` reserve-with-timeout 0 in one write; the ids of the jobs reserved."""
        self.sock.sendall(b"reserve-with-timeout 0\r\n" * count)
        ids: list[bytes] = []
        for _ in range(count):
            parts = self.line().split()
            if parts[0] == b"RESERVED":
                self.body(int(parts[2]))
                ids.append(parts[1])
            elif parts[0] != b"TIMED_OUT":
                raise RuntimeError(f"reserve: unexpected reply {parts!r}")
        return ids

    def delete_batch(self, ids: list[bytes]) -> None:
        """Pipelined: one write of ``delete`` commands, then every reply."""
        if not ids:
            return
        self.sock.sendall(b"".join([b"delete %b\r\n" % job_id for job_id in ids]))
        for _ in ids:
            line = self.line()
            if line != b"DELETED":
                raise RuntimeError(f"delete: unexpected reply {line!r}")


def raw_open(addr: Address, use: str | None = None, watch: str | None = None) -> Raw:
    raw = Raw(addr)
    if use is not None:
        raw.command(b"use %b\r\n" % use.encode(), b"USING")
    if watch is not None:
        raw.command(b"watch %b\r\n" % watch.encode(), b"WATCHING")
        raw.command(b"ignore default\r\n", b"WATCHING")
    return raw


def prefill(addr: Address, tube: str, payload: bytes, count: int) -> None:
    """Put ``count`` copies of ``payload`` into ``tube`` (pipelined, untimed)."""
    raw = raw_open(addr, use=tube)
    try:
        command = put_command(payload)
        done = 0
        while done < count:
            chunk = min(500, count - done)
            raw.sock.sendall(command * chunk)
            for _ in range(chunk):
                if not raw.line().startswith(b"INSERTED "):
                    raise RuntimeError("prefill: put failed")
            done += chunk
    finally:
        raw.close()


def drain(addr: Address, tube: str) -> int:
    """Delete every ready job of ``tube``; how many there were."""
    raw = raw_open(addr, watch=tube)
    total = 0
    try:
        while True:
            ids = raw.reserve_batch(500)
            raw.delete_batch(ids)
            total += len(ids)
            if len(ids) < 500:
                return total
    finally:
        raw.close()


def _recv_line(sock: socket.socket, expect: bytes) -> None:
    reply = sock.recv(256)
    while not reply.endswith(b"\r\n"):
        more = sock.recv(256)
        if not more:
            raise ConnectionError("beanstalkd closed the connection")
        reply += more
    if not reply.startswith(expect):
        raise RuntimeError(f"unexpected reply {reply!r}")


def _recv_job(sock: socket.socket) -> bytes:
    """Read one RESERVED reply (header and body); the job id."""
    data = sock.recv(65536)
    while (end := data.find(b"\r\n")) < 0:
        data += sock.recv(65536)
    parts = data[:end].split()
    if parts[0] != b"RESERVED":
        raise RuntimeError(f"reserve: unexpected reply {data[:end]!r}")
    need = end + 2 + int(parts[2]) + 2
    have = len(data)
    while have < need:  # the rest of the body: read and dropped
        chunk = sock.recv(need - have)
        if not chunk:
            raise ConnectionError("beanstalkd closed the connection")
        have += len(chunk)
    return parts[1]


def _recv_replies(sock: socket.socket, count: int, expect: bytes) -> None:
    data = b""
    while data.count(b"\r\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("beanstalkd closed the connection")
        data += chunk
    if data.count(expect) != count:
        raise RuntimeError(f"expected {count} {expect!r} replies: {data[:80]!r}")


def round_trip_us(addr: Address, count: int = 2000, repeats: int = 5) -> float:
    """The median time of one raw round trip (``list-tube-used``), in microseconds."""
    raw = raw_open(addr)
    sock, command = raw.sock, b"list-tube-used\r\n"
    times: list[float] = []
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(count):
                sock.sendall(command)
                _recv_line(sock, b"USING ")
            times.append((time.perf_counter() - start) / count)
    finally:
        raw.close()
    return statistics.median(times) * 1e6


def raw_put(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.addr, use=tube)
    sock, command = raw.sock, put_command(env.envelope)

    def run(k: int) -> None:
        for _ in range(k):
            sock.sendall(command)
            _recv_line(sock, b"INSERTED ")

    return run, raw.close


def raw_reserve_delete(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.addr, watch=tube)
    sock = raw.sock

    def run(k: int) -> None:
        for _ in range(k):
            sock.sendall(b"reserve-with-timeout 0\r\n")
            job_id = _recv_job(sock)
            sock.sendall(b"delete %b\r\n" % job_id)
            _recv_line(sock, b"DELETED")

    return run, raw.close


def raw_simple(command: bytes) -> Prepare:
    """A command answered ``OK <bytes>`` and a body (stats, list-tubes): the bytes read, not parsed."""

    def prepare(env: Env, tube: str, n: int) -> Prepared:
        raw = raw_open(env.addr)

        def run(k: int) -> None:
            for _ in range(k):
                raw.sock.sendall(command)
                header = raw.line()
                raw.body(int(header[3:]))

        return run, raw.close

    return prepare


def raw_big(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.big_addr, use=tube, watch=tube)
    sock, command = raw.sock, put_command(env.big_envelope)

    def run(k: int) -> None:
        for _ in range(k):
            sock.sendall(command)
            _recv_line(sock, b"INSERTED ")
            sock.sendall(b"reserve-with-timeout 0\r\n")
            job_id = _recv_job(sock)
            sock.sendall(b"delete %b\r\n" % job_id)
            _recv_line(sock, b"DELETED")

    return run, raw.close


def raw_put_pipelined(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.addr, use=tube)
    sock, command = raw.sock, put_command(env.envelope)

    def run(k: int) -> None:
        for _ in range(k // BATCH):
            sock.sendall(command * BATCH)
            _recv_replies(sock, BATCH, b"INSERTED ")

    return run, raw.close


def raw_reserve_delete_pipelined(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.addr, watch=tube)

    def run(k: int) -> None:
        for _ in range(k // BATCH):
            ids = raw.reserve_batch(BATCH)
            if len(ids) != BATCH:
                raise RuntimeError("raw pipelined reserve: tube ran dry")
            raw.delete_batch(ids)

    return run, raw.close


# -- greenstalk: as its user would (json.dumps per put, json.loads per reserve) -----------------------


def gs_put(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr, use=tube)
    dumps = json.dumps

    def run(k: int) -> None:
        put = client.put
        for i in range(k):
            put(dumps({"n": i, "to": TO}), PRIORITY, 0, TTR)

    return run, client.close


def gs_put_bytes(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr, encoding=None, use=tube)  # bytes in, as conn.queue.put
    data = env.envelope

    def run(k: int) -> None:
        put = client.put
        for _ in range(k):
            put(data, PRIORITY, 0, TTR)

    return run, client.close


def gs_reserve_delete(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr, watch=tube)
    loads = json.loads

    def run(k: int) -> None:
        reserve, delete = client.reserve, client.delete
        for _ in range(k):
            job = reserve(0)
            loads(job.body)
            delete(job)

    return run, client.close


def gs_stats(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr)

    def run(k: int) -> None:
        for _ in range(k):
            client.stats()

    return run, client.close


def gs_list_tubes(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr)

    def run(k: int) -> None:
        for _ in range(k):
            client.tubes()

    return run, client.close


def gs_big(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.big_addr, use=tube, watch=tube)
    body = env.big_body

    def run(k: int) -> None:
        for _ in range(k):
            client.put(json.dumps(body), PRIORITY, 0, TTR)
            job = client.reserve(0)
            if json.loads(job.body) != body:
                raise RuntimeError("greenstalk: the 1 MiB body did not come back")
            client.delete(job)

    return run, client.close


# -- beanstalkm ---------------------------------------------------------------------------------------


def bsm_client(addr: Address, watch: str | None = None) -> beanstalkm.Client:
    client = beanstalkm.Client(addr[0], addr[1], validate=True)
    if watch is not None:
        client.watch(watch)
        client.ignore("default")
    return client


def bsm_put(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr)

    def run(k: int) -> None:
        put = client.put
        for i in range(k):
            put({"n": i, "to": TO}, tube)

    return run, client.close


def bsm_queue_put(env: Env, tube: str, n: int) -> Prepared:
    conn = beanstalkm.Connection(env.addr[0], env.addr[1], validate=True)
    conn.queue.use(tube)
    data = env.envelope

    def run(k: int) -> None:
        put = conn.queue.put
        for _ in range(k):
            put(data)

    return run, conn.close


def bsm_reserve_drop(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr, watch=tube)

    def run(k: int) -> None:
        reserve = client.reserve
        for _ in range(k):
            if reserve(0, drop=True) is None:
                raise RuntimeError("reserve: tube ran dry")

    return run, client.close


def bsm_reserve_keep(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr, watch=tube)

    def run(k: int) -> None:
        reserve = client.reserve
        for _ in range(k):
            message = reserve(0, drop=False)
            if message is None:
                raise RuntimeError("reserve: tube ran dry")
            message.delete()

    return run, client.close


def bsm_stats(env: Env, tube: str, n: int) -> Prepared:
    conn = beanstalkm.Connection(env.addr[0], env.addr[1], validate=True)

    def run(k: int) -> None:
        stats = conn.queue.stats
        for _ in range(k):
            stats()

    return run, conn.close


def bsm_list_tubes(env: Env, tube: str, n: int) -> Prepared:
    conn = beanstalkm.Connection(env.addr[0], env.addr[1], validate=True)

    def run(k: int) -> None:
        list_tubes = conn.queue.list_tubes
        for _ in range(k):
            list_tubes()

    return run, conn.close


def bsm_big(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.big_addr, watch=tube)
    body = env.big_body

    def run(k: int) -> None:
        for _ in range(k):
            client.put(body, tube)
            message = client.reserve(0, drop=True)
            if message is None or message.body != body:
                raise RuntimeError("reserve: the 1 MiB body did not come back")

    return run, client.close


def bsm_put_many(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr)

    def run(k: int) -> None:
        for start in range(0, k, BATCH):
            client.put_many([{"n": start + j, "to": TO} for j in range(BATCH)], tube)

    return run, client.close


def bsm_reserve_many(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr, watch=tube)

    def run(k: int) -> None:
        for _ in range(k // BATCH):
            if len(client.reserve_many(BATCH, 0, drop=True)) != BATCH:
                raise RuntimeError("reserve_many: tube ran dry")

    return run, client.close


# -- async: TASKS concurrent tasks over a pool of env.pool_size connections ---------------------------


def drive(env: Env, op: Callable[[int], Awaitable[None]]) -> Run:
    """``run(k)``: TASKS concurrent tasks doing ``k`` operations between them (``op(i)``, i counting down)."""

    def run(k: int) -> None:
        remaining = k

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await op(remaining)

        async def main() -> None:
            await asyncio.gather(*(worker() for _ in range(TASKS)))

        env.loop.run_until_complete(main())

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


def aio_put(env: Env, tube: str, n: int) -> Prepared:
    idle, close = aio_pool(env, tube)
    dumps = json.dumps

    async def op(i: int) -> None:
        client = await idle.get()
        try:
            await client.put(dumps({"n": i, "to": TO}), PRIORITY, 0, TTR)
        finally:
            idle.put_nowait(client)

    return drive(env, op), close


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


# -- the cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Impl:
    what: str
    prepare: Prepare


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    n: int  # operations per implementation per round, full run
    quick_n: int
    unit: str  # what one operation is
    other: str  # the client compared against: greenstalk or aiostalk
    impls: dict[str, Impl]
    prefill: bool = False  # the tube holds n envelopes before the timed loop
    leaves_jobs: bool = False  # the timed loop puts n jobs (drained and counted afterwards)
    big: bool = False  # runs on the server started with -z 2 MiB
    step: int = 1  # a chunk is a multiple of this many operations
    max_chunks: int | None = None  # async: each chunk starts TASKS tasks, so fewer, longer chunks

    def chunks(self, chunks: int) -> int:
        return chunks if self.max_chunks is None else min(chunks, self.max_chunks)

    def count(self, quick: bool, chunks: int) -> int:
        """Operations per implementation per round: ``n`` rounded down to whole chunks of whole steps."""
        chunks = self.chunks(chunks)
        per_chunk = max(self.step, (self.quick_n if quick else self.n) // chunks // self.step * self.step)
        return per_chunk * chunks


SINGLE, QUICK_SINGLE = 9000, 1800
PUT_WHAT = 'Client.put({"n": i, "to": ...}, tube)'
GS_PUT_WHAT = 'put(json.dumps({"n": i, "to": ...}))'
GS_CYCLE_WHAT = "reserve(0) + json.loads(job.body) + delete(job)"
ASYNC = f"{TASKS} tasks, pool of --pool-size"

CASES: tuple[Case, ...] = (
    Case(
        "put",
        "put a small body",
        SINGLE,
        QUICK_SINGLE,
        "msg",
        "greenstalk",
        {
            "beanstalkm": Impl(PUT_WHAT, bsm_put),
            "other": Impl(GS_PUT_WHAT, gs_put),
            "raw": Impl("sendall(put <envelope>)+recv", raw_put),
        },
        leaves_jobs=True,
    ),
    Case(
        "queue_put",
        "low-level put of the same bytes",
        SINGLE,
        QUICK_SINGLE,
        "msg",
        "greenstalk",
        {
            "beanstalkm": Impl("conn.queue.put(<envelope bytes>)", bsm_queue_put),
            "other": Impl("put(<the same envelope bytes>)", gs_put_bytes),
            "raw": Impl("sendall(put <envelope>)+recv", raw_put),
        },
        leaves_jobs=True,
    ),
    Case(
        "reserve_drop",
        "reserve + decode + delete",
        SINGLE,
        QUICK_SINGLE,
        "msg",
        "greenstalk",
        {
            "beanstalkm": Impl("Client.reserve(0, drop=True)", bsm_reserve_drop),
            "other": Impl(GS_CYCLE_WHAT, gs_reserve_delete),
            "raw": Impl("reserve-with-timeout 0 + delete, bytes not decoded", raw_reserve_delete),
        },
        prefill=True,
    ),
    Case(
        "reserve_keep",
        "reserve, then delete the message",
        SINGLE // 2,
        QUICK_SINGLE // 2,
        "msg",
        "greenstalk",
        {
            "beanstalkm": Impl("Client.reserve(0, drop=False); message.delete()", bsm_reserve_keep),
            "other": Impl(GS_CYCLE_WHAT, gs_reserve_delete),
            "raw": Impl("reserve-with-timeout 0 + delete, bytes not decoded", raw_reserve_delete),
        },
        prefill=True,
    ),
    Case(
        "stats",
        "stats, parsed",
        SINGLE // 3,
        QUICK_SINGLE // 3,
        "call",
        "greenstalk",
        {
            "beanstalkm": Impl("conn.queue.stats() -> ServerStats", bsm_stats),
            "other": Impl("stats() -> dict", gs_stats),
            "raw": Impl("stats, bytes read unparsed", raw_simple(b"stats\r\n")),
        },
    ),
    Case(
        "list_tubes",
        "list-tubes, parsed",
        SINGLE // 2,
        QUICK_SINGLE // 2,
        "call",
        "greenstalk",
        {
            "beanstalkm": Impl("conn.queue.list_tubes()", bsm_list_tubes),
            "other": Impl("tubes()", gs_list_tubes),
            "raw": Impl("list-tubes, bytes read unparsed", raw_simple(b"list-tubes\r\n")),
        },
    ),
    Case(
        "big",
        "1 MiB body: put + reserve + delete (-z 2 MiB)",
        60,
        12,
        "cycle",
        "greenstalk",
        {
            "beanstalkm": Impl("Client.put(<1 MiB str>) + Client.reserve(0, drop=True)", bsm_big),
            "other": Impl("put(json.dumps(<1 MiB str>)) + reserve(0) + json.loads + delete", gs_big),
            "raw": Impl("put <envelope> + reserve + delete, bytes not decoded", raw_big),
        },
        big=True,
    ),
    Case(
        "put_many",
        f"batch put ({BATCH} per call)",
        2 * SINGLE,
        2 * QUICK_SINGLE,
        "msg",
        "greenstalk",
        {
            "beanstalkm": Impl(f"Client.put_many(<{BATCH} bodies>, tube)", bsm_put_many),
            "other": Impl(f"sequential {GS_PUT_WHAT}", gs_put),
            "raw": Impl(f"pipelined: {BATCH} puts in one sendall, {BATCH} replies", raw_put_pipelined),
        },
        leaves_jobs=True,
        step=BATCH,
    ),
    Case(
        "reserve_many",
        f"batch reserve+delete ({BATCH} per call)",
        2 * SINGLE,
        2 * QUICK_SINGLE,
        "msg",
        "greenstalk",
        {
            "beanstalkm": Impl(f"Client.reserve_many({BATCH}, 0, drop=True)", bsm_reserve_many),
            "other": Impl(f"sequential {GS_CYCLE_WHAT}", gs_reserve_delete),
            "raw": Impl(
                f"pipelined: {BATCH} reserves in one sendall, then {BATCH} deletes", raw_reserve_delete_pipelined
            ),
        },
        prefill=True,
        step=BATCH,
    ),
    Case(
        "async_put",
        f"async put ({ASYNC})",
        2 * SINGLE,
        2 * QUICK_SINGLE,
        "msg",
        "aiostalk",
        {
            "beanstalkm": Impl('AsyncPool.put({"n": i, "to": ...}, tube)', bsm_async_put),
            "other": Impl(f"borrow a client; {GS_PUT_WHAT}", aio_put),
            "raw": Impl("borrow a stream; write(put <envelope>) + readline", raw_async_put),
        },
        leaves_jobs=True,
        max_chunks=ASYNC_CHUNKS,
    ),
    Case(
        "async_reserve",
        f"async reserve+delete ({ASYNC})",
        2 * SINGLE,
        2 * QUICK_SINGLE,
        "msg",
        "aiostalk",
        {
            "beanstalkm": Impl("AsyncPool.reserve(0, drop=True)", bsm_async_reserve),
            "other": Impl(f"borrow a client; {GS_CYCLE_WHAT}", aio_reserve_delete),
            "raw": Impl(
                "borrow a stream; reserve-with-timeout 0 + delete, bytes not decoded", raw_async_reserve_delete
            ),
        },
        prefill=True,
        max_chunks=ASYNC_CHUNKS,
    ),
)


# -- running ------------------------------------------------------------------------------------------


def rotated(items: tuple[str, ...], by: int) -> tuple[str, ...]:
    by %= len(items)
    return items[by:] + items[:by]


def measure(env: Env, case: Case, n: int, chunks: int, round_index: int) -> dict[str, float]:
    """One round of ``case``: ops/s of every implementation, their chunks interleaved; tubes drained after."""
    addr = env.big_addr if case.big else env.addr
    tubes = {impl: f"{env.prefix}.{case.name}.{impl}.r{round_index + 1}" for impl in IMPLS}
    if case.prefill:
        for impl in IMPLS:
            prefill(addr, tubes[impl], env.envelope, n)
    order = rotated(IMPLS, round_index)
    prepared: dict[str, Prepared] = {}
    elapsed = dict.fromkeys(IMPLS, 0.0)
    try:
        for impl in order:
            prepared[impl] = case.impls[impl].prepare(env, tubes[impl], n)
        chunks = case.chunks(chunks)
        k = n // chunks
        for chunk in range(chunks):
            for impl in rotated(order, chunk):
                run = prepared[impl][0]
                gc.collect()
                start = time.perf_counter()
                run(k)
                elapsed[impl] += time.perf_counter() - start
    finally:
        for _, close in prepared.values():
            close()
    expected = n if case.leaves_jobs else 0
    for impl in IMPLS:
        left = drain(addr, tubes[impl])
        if left != expected:
            raise RuntimeError(f"{case.name}/{impl}: {left} jobs left in {tubes[impl]}, expected {expected}")
    return {impl: n / elapsed[impl] for impl in IMPLS}


Samples = dict[str, dict[str, list[float]]]


def run_rounds(env: Env, cases: tuple[Case, ...], rounds: int, chunks: int, quick: bool) -> Samples:
    samples: Samples = {c.name: {i: [] for i in IMPLS} for c in cases}
    for r in range(-1, rounds):  # round -1: the warm-up, discarded
        start = time.perf_counter()
        for case in cases:
            result = measure(env, case, case.count(quick, chunks), chunks, r)
            if r >= 0:
                for impl in IMPLS:
                    samples[case.name][impl].append(result[impl])
        label = "warm-up round (discarded)" if r < 0 else f"round {r + 1}/{rounds}"
        print(f"  {label}: {time.perf_counter() - start:.1f} s", flush=True)
    return samples


def preflight(env: Env) -> None:
    """Make sure the comparison is of like with like, and that validation is on."""
    tube = f"{env.prefix}.preflight"
    with bsm_client(env.addr, watch=tube) as client:
        gs = greenstalk.Client(env.addr, use=tube, watch=tube)
        try:
            gs.put(env.envelope.decode(), PRIORITY, 0, TTR)
            message = client.reserve(5, drop=True)
            if message is None or message.body != {"n": 0, "to": TO} or not message.envelope:
                raise RuntimeError(f"beanstalkm did not read the envelope greenstalk put back: {message!r}")
            gs.put(json.dumps({"n": 1, "to": TO}), PRIORITY, 0, TTR)
            message = client.reserve(5, drop=True)
            if message is None or message.body != {"n": 1, "to": TO} or message.envelope:
                raise RuntimeError(f"beanstalkm did not read greenstalk's plain JSON back: {message!r}")
            client.put({"n": 2, "to": TO}, tube)
            job = gs.reserve(5)
            gs.delete(job)
            if json.loads(job.body)["body"] != {"n": 2, "to": TO}:
                raise RuntimeError("greenstalk did not read beanstalkm's envelope back")
        finally:
            gs.close()
        prefill(env.addr, tube, b'{"@context":"message","body":1}', 1)
        try:
            client.reserve(5, drop=True)
        except beanstalkm.InvalidEnvelope as exc:
            exc.message.delete()
        else:
            raise RuntimeError("validation is off: an invalid envelope was accepted")


def make_env(addr: Address, big_addr: Address, loop: asyncio.AbstractEventLoop, pool_size: int) -> Env:
    prefix = f"bench{os.getpid()}"
    big_body = "0123456789abcdef" * (BIG // 16)
    tube = f"{prefix}.envelope"
    with bsm_client(addr, watch=tube) as client:
        client.put({"n": 0, "to": TO}, tube)
        small = client.reserve(5, drop=True)
    with bsm_client(big_addr, watch=tube) as client:
        client.put(big_body, tube)
        large = client.reserve(5, drop=True)
    if small is None or small.raw is None or large is None or large.raw is None:
        raise RuntimeError("could not read back the envelopes beanstalkm puts")
    return Env(addr, big_addr, prefix, small.raw, big_body, large.raw, loop, pool_size)


# -- placement ----------------------------------------------------------------------------------------

REGIMES = {
    "split": (
        "this process on CPU {client}, the beanstalkd servers on CPU {server}: every round trip crosses CPUs\n"
        "  (a real loopback round trip with a wake-up, as between a client and a server in a deployment);\n"
        "  the regime the targets are stated for"
    ),
    "same": (
        "this process and the beanstalkd servers all on CPU {client}: no cross-CPU wake-up, a round trip costs\n"
        "  only both sides' CPU time, so the figures are CPU-bound and the ratios measure per-operation\n"
        "  client overhead (a secondary figure: the targets are stated for the split regime)"
    ),
    "none": "placement left to the scheduler (figures vary with where it runs each side)",
}


def pin(mode: str, server_pids: list[int]) -> tuple[str, str]:
    """Pin this process and the servers per ``mode``; the regime in effect and its description."""
    if mode == "none" or not hasattr(os, "sched_setaffinity"):
        return "none", REGIMES["none"]
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "split" and len(cpus) < 2:
        mode = "same"
        note = " (split asked for, but only one CPU is available)"
    else:
        note = ""
    client_cpu = cpus[0]
    server_cpu = cpus[1] if mode == "split" else client_cpu
    os.sched_setaffinity(0, {client_cpu})
    for pid in server_pids:
        os.sched_setaffinity(pid, {server_cpu})
    return mode, REGIMES[mode].format(client=client_cpu, server=server_cpu) + note


# -- other load on the machine ------------------------------------------------------------------------


class LoadMeter:
    """CPU time the rest of the machine used meanwhile: all CPUs' busy time minus this process's and the
    servers' (Linux /proc), and the time the hypervisor stole; in CPUs (1.0 = one CPU kept busy)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = self._sample()

    @staticmethod
    def _machine() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        return user + nice + system + irq + softirq, steal

    def _ours(self) -> int:
        total = 0
        for pid in [os.getpid(), *self.pids]:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total

    def _sample(self) -> tuple[float, int, int, int] | None:
        try:
            busy, steal = self._machine()
            return time.perf_counter(), busy, steal, self._ours()
        except (OSError, ValueError, IndexError):
            return None

    def other_cpus(self) -> dict[str, float] | None:
        """{"other": CPUs used by other processes, "steal": CPUs stolen}, since the start; None off Linux."""
        end = self._sample()
        if self.start is None or end is None:
            return None
        tick = os.sysconf("SC_CLK_TCK")
        wall = end[0] - self.start[0]
        other = (end[1] - self.start[1]) - (end[3] - self.start[3])
        return {"other": max(0, other) / tick / wall, "steal": (end[2] - self.start[2]) / tick / wall}


# -- reporting ----------------------------------------------------------------------------------------


def version_of(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        out = subprocess.run([find_beanstalkd(), "-v"], capture_output=True, text=True, timeout=10)
        server = (out.stdout or out.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        server = "unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", str(HERE), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "beanstalkd": server,
        "beanstalkm": beanstalkm.__version__,
        "greenstalk": version_of("greenstalk"),
        "aiostalk": version_of("aiostalk"),
        "jsonschema": version_of("jsonschema"),
        "commit": commit or None,
    }


def spread(values: list[float]) -> float:
    """Half the range of ``values`` over their median."""
    return (max(values) - min(values)) / 2 / statistics.median(values)


def ratio_summary(numerators: list[float], denominators: list[float]) -> dict[str, float]:
    """The median of the per-round ratios, and their range."""
    ratios = [a / b for a, b in zip(numerators, denominators, strict=True)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def summarize(samples: Samples, cases: tuple[Case, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in cases:
        s = samples[case.name]
        out[case.name] = {
            "title": case.title,
            "unit": case.unit,
            "other": case.other,
            "impls": {
                (case.other if impl == "other" else impl): {
                    "what": case.impls[impl].what,
                    "ops_per_s": statistics.median(s[impl]),
                    "rounds": s[impl],
                    "spread": spread(s[impl]),
                }
                for impl in IMPLS
            },
            "ratio_vs_other": ratio_summary(s["beanstalkm"], s["other"]),
            "ratio_vs_raw": ratio_summary(s["beanstalkm"], s["raw"]),
            "other_vs_raw": ratio_summary(s["other"], s["raw"]),
        }
    return out


def fmt_ratio(r: dict[str, float]) -> str:
    return f"{r['median']:.2f}x [{r['min']:.2f}-{r['max']:.2f}]"


def print_table(summary: dict[str, Any], cases: tuple[Case, ...], other: str) -> None:
    rows = [c for c in cases if c.other == other]
    if not rows:
        return
    head = (
        f"{'case':<14}{'unit':>6}{'beanstalkm':>12}{other:>12}{'raw':>12}   "
        f"{'vs ' + other + ' [range]':<25}{'vs raw [range]':<25}spread (bsm/{other[:5]}/raw)"
    )
    print()
    print(head)
    print("-" * len(head))
    for case in rows:
        s = summary[case.name]
        impls = [s["impls"][name] for name in ("beanstalkm", other, "raw")]
        spreads = "/".join(f"±{i['spread'] * 100:.0f}" for i in impls) + "%"
        print(
            f"{case.name:<14}{case.unit:>6}"
            + "".join(f"{i['ops_per_s']:>12,.0f}" for i in impls)
            + f"   {fmt_ratio(s['ratio_vs_other']):<25}{fmt_ratio(s['ratio_vs_raw']):<25}{spreads}"
        )


def print_what(cases: tuple[Case, ...]) -> None:
    print()
    print("what each column runs:")
    for case in cases:
        print(f"  {case.name} ({case.title}):")
        for impl in IMPLS:
            name = case.other if impl == "other" else impl
            print(f"    {name:<11} {case.impls[impl].what}")


def check_targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for target in TARGETS:
        if target.case not in summary:
            continue
        ratio = summary[target.case]["ratio_vs_other" if target.versus == "other" else "ratio_vs_raw"]
        results.append(
            {
                "target": target.text,
                "case": target.case,
                "versus": summary[target.case]["other"] if target.versus == "other" else "raw",
                "value": ratio["median"],
                "range": [ratio["min"], ratio["max"]],
                "unit": "x",
                "kind": "min",
                "limit": target.minimum,
                "met": ratio["median"] >= target.minimum,
            }
        )
    return results


def describe(target: dict[str, Any]) -> str:
    """One target's line: met or MISSED, what, the value and the limit (the shape memory.py uses too)."""
    mark = "met   " if target["met"] else "MISSED"
    unit, limit = target["unit"], target["limit"]
    value = f"{target['value']:+,} KiB" if unit == "KiB" else f"{target['value']:.3f}x"
    need = f"{'>=' if target['kind'] == 'min' else '<='} {limit:,}{' KiB' if unit == 'KiB' else 'x'}"
    extra = f"  rounds {target['range'][0]:.2f}-{target['range'][1]:.2f}" if "range" in target else ""
    return f"  {mark} {target['target']:<70} {value:>10}  (needs {need}){extra}"


def print_targets(results: list[dict[str, Any]], regime: str) -> None:
    print()
    print(f"targets ({regime} regime{'' if regime == 'split' else '; the targets are stated for split'})")
    for target in results:
        print(describe(target))


def _failed(text: str) -> dict[str, Any]:
    return {"target": text, "value": 0.0, "unit": "x", "kind": "min", "limit": 1.0, "met": False}


def run_memory(quick: bool) -> dict[str, Any] | None:
    """Run benchmarks/memory.py in its own process (so RSS figures are its children's own); its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "memory.json"
        cmd = [sys.executable, str(HERE / "memory.py"), "--json", str(out)] + (["--quick"] if quick else [])
        done = subprocess.run(cmd, check=False)
        if done.returncode not in (0, 1) or not out.exists():
            print(f"memory benchmark failed (exit {done.returncode})", file=sys.stderr)
            return None
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run: fewer operations and rounds")
    parser.add_argument("--check", action="store_true", help="exit 1 if any target is missed")
    parser.add_argument(
        "--rounds", type=int, default=None, help=f"measured rounds (default {ROUNDS}, {QUICK_ROUNDS} with --quick)"
    )
    parser.add_argument(
        "--chunks", type=int, default=CHUNKS, help=f"interleaved chunks per measurement (default {CHUNKS})"
    )
    parser.add_argument("--pool-size", type=int, default=10, help="connections in the async pools (default 10)")
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument(
        "--pin",
        choices=("split", "same", "none"),
        default="split",
        help="CPU placement: split (default) puts this process and the servers on different CPUs (a real round "
        "trip, the regime of the targets); same puts them on one CPU (CPU-bound: per-operation overhead); "
        "none leaves it to the scheduler",
    )
    parser.add_argument("--out", type=Path, default=None, help=f"JSON results (default {RESULTS}/latest-<pin>.json)")
    args = parser.parse_args(argv)
    rounds: int = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    if rounds < 1 or args.chunks < 1 or args.pool_size < 1:
        parser.error("--rounds, --chunks and --pool-size must be positive")
    cases = CASES
    if args.cases:
        wanted = set(args.cases.split(","))
        unknown = wanted - {c.name for c in CASES}
        if unknown:
            parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
        cases = tuple(c for c in CASES if c.name in wanted)

    validation = importlib.util.find_spec("jsonschema") is not None
    info = machine_info()
    print(
        f"beanstalkm {info['beanstalkm']} vs greenstalk {info['greenstalk']} (sync) and aiostalk "
        f"{info['aiostalk']} (async) vs raw sockets; {info['beanstalkd']}"
    )
    print(f"{info['python']} on {info['cpu']} ({info['cpus']} CPUs), {info['platform']}; {info['time']}")
    state = f"on (validate=True, jsonschema {info['jsonschema']} installed)" if validation else "jsonschema MISSING"
    print(f"validation: {state}")

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    with BeanstalkdServer() as server, BeanstalkdServer(max_job_size=2 * BIG) as big_server:
        regime, regime_text = pin(args.pin, [p for p in (server.pid, big_server.pid) if p is not None])
        env = make_env((server.host, server.port), (big_server.host, big_server.port), loop, args.pool_size)
        preflight(env)
        rtt = round_trip_us(env.addr)
        print()
        print(f"REGIME: {regime.upper()}{' (the default)' if regime == 'split' else ''} -- {regime_text}")
        print(f"  round trip: {rtt:.1f} us (raw list-tube-used loop, median of 5 x 2,000)")
        print(
            f"  {rounds} rounds after a discarded warm-up round{' (quick)' if args.quick else ''}; each "
            f"measurement cut into {args.chunks} chunks (async: {min(args.chunks, ASYNC_CHUNKS)}), the "
            f"implementations' chunks interleaved\n  async: {TASKS} tasks, pools of {args.pool_size} connections"
        )
        # Tubes that exist for the whole run, so list-tubes has something to list.
        holder = raw_open(env.addr)
        for i in range(20):
            holder.command(b"watch %b.hold%02d\r\n" % (env.prefix.encode(), i), b"WATCHING")
        try:
            meter = LoadMeter([p for p in (server.pid, big_server.pid) if p is not None])
            samples = run_rounds(env, cases, rounds, args.chunks, args.quick)
            load = meter.other_cpus()
            rtt_after = round_trip_us(env.addr)
        finally:
            holder.close()
    loop.close()

    summary = summarize(samples, cases)
    print()
    print(
        f"REGIME {regime.upper()} (round trip {rtt:.1f} us before the rounds, {rtt_after:.1f} us after): "
        f"median ops/s over {rounds} rounds"
    )
    print(
        "ratios: median of the per-round ratios [their range]; spread: half the range of each column's rounds, "
        "over its median"
    )
    if load is not None:
        quiet = load["other"] < 0.1 and load["steal"] < 0.1
        verdict = "(quiet)" if quiet else "-- NOT QUIET: the figures are disturbed; run again on a quiet machine"
        print(
            f"other load during the rounds: {load['other']:.2f} CPU by other processes, "
            f"{load['steal']:.2f} CPU stolen by the hypervisor {verdict}"
        )
    print_table(summary, cases, "greenstalk")
    print_table(summary, cases, "aiostalk")
    print_what(cases)
    targets = check_targets(summary)
    if not validation:
        targets.append(_failed("the targets hold with jsonschema installed and validation on: jsonschema is missing"))
    print_targets(targets, regime)

    memory = None if args.no_memory else run_memory(args.quick)
    if memory is not None:
        targets += memory["targets"]
    elif not args.no_memory:
        targets.append(_failed("the memory measurements (benchmarks/memory.py) ran"))

    result = {
        "machine": info,
        "config": {
            "regime": regime,
            "regime_text": regime_text,
            "round_trip_us": [rtt, rtt_after],
            "other_load_cpus": load,
            "rounds": rounds,
            "chunks": {c.name: c.chunks(args.chunks) for c in cases},
            "quick": args.quick,
            "batch": BATCH,
            "async_tasks": TASKS,
            "pool_size": args.pool_size,
            "validation": validation,
            "n": {c.name: c.count(args.quick, args.chunks) for c in cases},
        },
        "cases": summary,
        "memory": memory,
        "targets": targets,
    }
    out: Path = args.out or RESULTS / f"latest-{regime}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults written to {out}")

    missed = [t for t in targets if not t["met"]]
    if missed:
        print(f"{len(missed)} target(s) missed: " + "; ".join(str(t["target"]) for t in missed))
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
