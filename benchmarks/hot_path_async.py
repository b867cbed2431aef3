"""The asyncio hot path, per operation: beanstalkm against aiostalk, Python work and client CPU.

Usage::

    PYTHONPATH=src python benchmarks/hot_path_async.py                 # every case, stubbed and real
    PYTHONPATH=src python benchmarks/hot_path_async.py alone           # some cases
    PYTHONPATH=src python benchmarks/hot_path_async.py --profile alone # and beanstalkm's profile
    PYTHONPATH=src python benchmarks/hot_path_async.py --no-real       # the stubbed figures only

The cases (those of ``benchmarks/run.py`` that issue 15's asyncio targets judge):

- ``alone``: one task doing sequential ``AsyncClient.put({"n": i, "to": ...}, tube)``, against one
  aiostalk client's ``put(json.dumps(...))`` and a raw ``write`` + ``readline`` stream loop;
- ``queue_alone``: one task doing ``AsyncClient.queue.put(<envelope bytes>)`` (the command layers
  without the envelope), against aiostalk's ``put(<the same bytes>)``;
- ``tasks``: 100 tasks doing ``AsyncClient.put`` on one client (auto-pipelined), against aiostalk's
  100 tasks over a pool of 10 clients and a raw pipelined stream loop (100 puts in one write, then
  100 ``readline``).

For each side it prints:

- **python/op**: ``time.process_time()`` per operation with each stream's write stubbed: a write
  schedules (``call_soon``) the protocol's ``data_received`` with one canned reply per command
  written, as the event loop does once the socket is readable. No system call: the Python work of
  the client and of asyncio's loop alone, steady even on a busy machine. The lowest of ``--rounds``
  rounds, the sides alternating.
- **calls/op**: the function calls cProfile counts per operation, and of those the Python ones
  (this file's left out).
- **CPU/op** (unless ``--no-real``): the same against a private beanstalkd, the client pinned to CPU
  0 and the server to CPU 1, the sides alternating round by round in one process; the median and
  the lowest round. System calls included.

Not a test and not part of ``make bench``: a profiling aid (docs/hot-path.md, "Round three"). It
reaches into private attributes (the transport's writer and protocol) to stub the I/O.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import gc
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import beanstalkm
from beanstalkm.aio import AsyncClient
from beanstalkm.testing import BeanstalkdServer
from bench import aiostalk, cases_async
from bench.cases_async import aio_borrowed_put, pipelined_puts, share
from bench.wire import put_command
from hot_path import tally

TO = "user@example.org"
PRIORITY, TTR = beanstalkm.DEFAULT_PRIORITY, beanstalkm.DEFAULT_TTR
TASKS, POOL = 100, 10
INSERTED = b"INSERTED 5\r\n"
Run = Callable[[int], Awaitable[None]]


def _stub(loop: asyncio.AbstractEventLoop, holder: Any, protocol: Any) -> None:
    """``holder.write`` replaced: each write's commands (a put is two CRLF-ended lines, its body has
    no CRLF) answered by as many ``INSERTED`` replies, handed to ``protocol`` on the next loop turn."""
    call_soon, received = loop.call_soon, protocol.data_received

    def write(data: bytes) -> None:
        call_soon(received, INSERTED * (data.count(b"\r\n") >> 1))

    holder.write = write


def _stub_bsm(client: AsyncClient) -> None:
    transport: Any = client._transport
    _stub(asyncio.get_running_loop(), transport.writer, transport._stream)


def _protocol(writer: asyncio.StreamWriter) -> Any:
    return getattr(writer, "_protocol")  # noqa: B009 - private: the stream's protocol


def _stub_aio(client: Any) -> None:
    writer = client._writer
    _stub(asyncio.get_running_loop(), writer, _protocol(writer))


class Cases:
    """Each case's sides, as their users would write them, on ``addr``; with ``stub``, their streams'
    writes stubbed once set up."""

    def __init__(self, addr: tuple[str, int], stub: bool, envelope: bytes) -> None:
        self.addr, self.stub, self.envelope = addr, stub, envelope
        self.closers: list[Callable[[], Awaitable[None]]] = []

    async def _bsm(self, tube: str) -> AsyncClient:
        client = AsyncClient(*self.addr, validate=True)
        await client.put(0, tube)  # connected, and the tube in force from now on
        await client.queue.use(tube)
        if self.stub:
            _stub_bsm(client)
        self.closers.append(client.close)
        return client

    async def _aio(self, tube: str) -> Any:
        client = aiostalk.Client(self.addr, use=tube)
        await client.connect()
        if self.stub:
            _stub_aio(client)
        self.closers.append(client.close)
        return client

    async def _raw(self, tube: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw asyncio stream using ``tube`` (its writes stubbed if stubbing)."""
        reader, writer = await asyncio.open_connection(*self.addr)
        writer.write(b"use %b\r\n" % tube.encode())
        await reader.readline()
        if self.stub:
            _stub(asyncio.get_running_loop(), writer, _protocol(writer))
        self.closers.append(_closer(writer))
        return reader, writer

    async def alone(self) -> dict[str, Run]:
        client = await self._bsm("hot.alone.bsm")
        other = await self._aio("hot.alone.aio")
        reader, writer = await self._raw("hot.alone.raw")
        dumps, command = json.dumps, put_command(self.envelope)

        async def bsm(k: int) -> None:
            put = client.put
            for i in range(k):
                await put({"n": i, "to": TO}, "hot.alone.bsm")

        async def aio(k: int) -> None:
            put = other.put
            for i in range(k):
                await put(dumps({"n": i, "to": TO}), PRIORITY, 0, TTR)

        async def raw(k: int) -> None:
            write, readline = writer.write, reader.readline
            for _ in range(k):
                write(command)
                if not (await readline()).startswith(b"INSERTED "):
                    raise RuntimeError("raw put failed")

        return {"bsm": bsm, "aiostalk": aio, "raw": raw}

    async def queue_alone(self) -> dict[str, Run]:
        client = await self._bsm("hot.queue.bsm")
        other = await self._aio("hot.queue.aio")
        data = self.envelope

        async def bsm(k: int) -> None:
            put = client.queue.put
            for _ in range(k):
                await put(data)

        async def aio(k: int) -> None:
            put = other.put
            for _ in range(k):
                await put(data, PRIORITY, 0, TTR)

        return {"bsm": bsm, "aiostalk": aio}

    async def tasks(self) -> dict[str, Run]:
        client = await self._bsm("hot.tasks.bsm")
        pool = [await self._aio("hot.tasks.aio") for _ in range(POOL)]
        idle: asyncio.Queue[Any] = asyncio.Queue()
        for one in pool:
            idle.put_nowait(one)
        reader, writer = await self._raw("hot.tasks.raw")

        async def bsm_op(i: int) -> None:
            await client.put({"n": i, "to": TO}, "hot.tasks.bsm")

        raw = pipelined_puts(reader, writer, put_command(self.envelope))
        return {"bsm": _drive(bsm_op), "aiostalk": _drive(aio_borrowed_put(idle)), "raw": raw}

    async def close(self) -> None:
        for close in self.closers:
            await close()


def _closer(writer: asyncio.StreamWriter) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        writer.close()
        await writer.wait_closed()

    return close


def _drive(op: Callable[[int], Awaitable[None]]) -> Run:
    """``TASKS`` concurrent tasks doing ``k`` operations between them (as ``benchmarks/run.py``'s ``drive``)."""
    return functools.partial(share, op)


CASES = ("alone", "queue_alone", "tasks")


async def _cpu(run: Run, k: int) -> float:
    gc.collect()
    start = time.process_time()
    await run(k)
    return (time.process_time() - start) / k * 1e6


async def _calls(run: Run, k: int, show: int = 0) -> tuple[float, float]:
    """Calls per op counted by cProfile: all, and Python functions only (this file's and the tasks'
    driver's left out)."""
    profile = cProfile.Profile()
    profile.enable()
    await run(k)
    profile.disable()
    return tally(profile, k, show, (__file__, cases_async.__file__))  # (the tasks' driver: ``share``)


async def _envelope(addr: tuple[str, int]) -> bytes:
    async with AsyncClient(*addr) as client:
        await client.watch("hot.envelope")
        await client.put({"n": 0, "to": TO}, "hot.envelope")
        message = await client.reserve(0, drop=True)
    if message is None or message.raw is None:
        raise RuntimeError("could not read back the envelope beanstalkm puts")
    return message.raw


async def _one(addr: tuple[str, int], name: str, args: argparse.Namespace, envelope: bytes) -> None:
    stub = Cases(addr, True, envelope)
    real = Cases(addr, False, envelope)
    try:
        sides = await getattr(stub, name)()
        k = args.ops
        for run in sides.values():  # warm up
            await run(k // 5 - k // 5 % TASKS or TASKS)
        python: dict[str, list[float]] = {side: [] for side in sides}
        for r in range(args.rounds):
            order = list(sides.items()) if r % 2 == 0 else list(sides.items())[::-1]
            for side, run in order:
                python[side].append(await _cpu(run, k))
        calls = {
            side: await _calls(run, 1000, 30 if args.profile and side == "bsm" else 0) for side, run in sides.items()
        }
        cpu: dict[str, list[float]] = {}
        if args.real:
            reals = await getattr(real, name)()
            cpu = {side: [] for side in reals}
            for r in range(args.rounds):
                order = list(reals.items()) if r % 2 == 0 else list(reals.items())[::-1]
                for side, run in order:
                    cpu[side].append(await _cpu(run, args.real_ops))
    finally:
        await stub.close()
        await real.close()
    for side in sides:
        low, median = min(python[side]), statistics.median(python[side])
        line = (
            f"{name:12s} {side:9s} python/op {low:6.2f} us (median {median:6.2f})"
            f"   calls/op {calls[side][0]:6.1f} ({calls[side][1]:5.1f} python)"
        )
        if side in cpu:
            line += f"   CPU/op {statistics.median(cpu[side]):6.2f} us (lowest {min(cpu[side]):6.2f})"
        print(line, flush=True)
    if "aiostalk" in python:
        ratio = min(python["bsm"]) / min(python["aiostalk"])
        line = f"{name:12s} {'bsm/aio':9s} python/op {ratio:5.2f}x"
        if cpu:
            per_round = [b / a for b, a in zip(cpu["bsm"], cpu["aiostalk"], strict=True)]
            line += f"   CPU/op median of per-round ratios {statistics.median(per_round):5.2f}x"
        print(line, flush=True)


async def _main(args: argparse.Namespace, addr: tuple[str, int]) -> None:
    envelope = await _envelope(addr)
    for name in args.cases or CASES:
        await _one(addr, name, args, envelope)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", help=f"of {', '.join(CASES)} (default: all)")
    parser.add_argument("--ops", type=int, default=5_000, help="operations per stubbed round (default 5,000)")
    parser.add_argument("--real-ops", type=int, default=5_000, help="operations per real round (default 5,000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per side (default 7)")
    parser.add_argument("--profile", action="store_true", help="print beanstalkm's profile per case")
    parser.add_argument("--no-real", dest="real", action="store_false", help="the stubbed figures only")
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}: choose from {', '.join(CASES)}")
    args.ops -= args.ops % TASKS
    args.real_ops -= args.real_ops % TASKS
    with BeanstalkdServer() as server:
        pinned = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1
        if pinned and server.pid is not None:
            os.sched_setaffinity(server.pid, {1})
            os.sched_setaffinity(0, {0})
        print(
            f"beanstalkm {beanstalkm.__version__} vs aiostalk; {args.ops:,} stubbed ops"
            + (f", {args.real_ops:,} real ops" if args.real else "")
            + f" x {args.rounds} rounds per side; {'client on CPU 0, server on CPU 1' if pinned else 'not pinned'}"
        )
        asyncio.run(_main(args, (server.host, server.port)))


if __name__ == "__main__":
    main()
