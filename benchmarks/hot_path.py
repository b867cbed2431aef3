"""The sync hot path, per operation: beanstalkm against greenstalk, client CPU and Python calls.

Usage::

    PYTHONPATH=src python benchmarks/hot_path.py                  # every case
    PYTHONPATH=src python benchmarks/hot_path.py put reserve_drop # some
    PYTHONPATH=src python benchmarks/hot_path.py --profile put    # and the profile of beanstalkm's side

For each case (the sync cases of ``benchmarks/run.py``: ``queue_put``, ``put``, ``reserve_drop``,
``reserve_keep``, ``list_tubes``) it prints three figures for each side:

- **CPU/op**: this process's ``time.process_time()`` per operation over ``--ops`` operations against
  a private beanstalkd, the client pinned to CPU 0 and the server to CPU 1, rounds alternating the
  two sides; the lowest round and the median. System calls included: the real cost.
- **calls/op**: the function calls cProfile counts per operation (Python functions and the C
  functions they call), and of those the Python ones.
- **python/op**: the CPU per operation with the socket replaced by C callables that hand back
  canned replies at once (no system call): the Python work alone, steadier than the first figure
  on a busy machine.

Not a test and not part of ``make bench``: a profiling aid (see docs/hot-path.md). It reaches into
private attributes (the transport's socket and poll) to stub the I/O, so it may need changing when
they do.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import io
import itertools
import json
import os
import pstats
import statistics
import time
from collections.abc import Callable
from typing import Any

import beanstalkm
from beanstalkm.testing import BeanstalkdServer
from bench import greenstalk

TO = "user@example.org"
PRIORITY, TTR = beanstalkm.DEFAULT_PRIORITY, beanstalkm.DEFAULT_TTR
LIST = b"---\n- default\n- receive\n- bench.a\n"
Run = Callable[[int], None]


class _StubSocket:
    """A socket whose ``sendall`` takes the bytes and whose ``recv`` hands back the next canned reply."""

    def __init__(self, replies: list[bytes], real: Any) -> None:
        self.close = real.close  # the real socket, closed at the end
        self.sendall = len
        self.send = len
        self.recv = functools.partial(next, itertools.cycle(replies))

    def settimeout(self, timeout: float | None) -> None:
        pass

    def gettimeout(self) -> float | None:
        return None


def _stub_bsm(conn: beanstalkm.Connection, replies: list[bytes]) -> None:
    transport: Any = conn._transport
    transport.sock = _StubSocket(replies, transport.sock)
    transport._poll = {0: []}.get  # nothing waits: the stray-reply check finds nothing


def _stub_gs(client: Any, stream: bytes, ops: int) -> None:
    client._sock = _StubSocket([b""], client._sock)
    client._reader = io.BufferedReader(io.BytesIO(stream * ops))


class Cases:
    """Each case's two sides (beanstalkm, greenstalk), as its user would write them, on ``addr``;
    with ``stub``, their sockets stubbed once set up (``ops``: how many operations the stubs serve)."""

    def __init__(self, addr: tuple[str, int], stub: bool, ops: int) -> None:
        self.addr, self.stub, self.ops = addr, stub, ops
        with beanstalkm.Client(*addr) as client:
            client.watch("hot.envelope")
            client.put({"n": 0, "to": TO}, "hot.envelope")
            message = client.reserve(0, drop=True)
        if message is None or message.raw is None:
            raise RuntimeError("could not read back the envelope beanstalkm puts")
        self.envelope = message.raw
        self.job = b"RESERVED 7 %d\r\n%b\r\n" % (len(self.envelope), self.envelope)
        self.closers: list[Callable[[], None]] = []

    def _bsm(self, conn: Any, replies: list[bytes]) -> Any:
        """``conn``, set up, with its socket stubbed to answer ``replies`` in turn if stubbing."""
        if self.stub:
            _stub_bsm(conn, replies)
        self.closers.append(conn.close)
        return conn

    def _gs(self, stream: bytes, **options: Any) -> Any:
        client: Any = greenstalk.Client(self.addr, **options)
        if self.stub:
            _stub_gs(client, stream, self.ops + 10)
        self.closers.append(client.close)
        return client

    def queue_put(self) -> tuple[Run, Run]:
        conn = beanstalkm.Connection(*self.addr, validate=True)
        conn.queue.use("hot.queue_put.bsm")
        conn = self._bsm(conn, [b"INSERTED 5\r\n"])
        gs = self._gs(b"INSERTED 5\r\n", encoding=None, use="hot.queue_put.gs")
        data = self.envelope

        def bsm(k: int) -> None:
            put = conn.queue.put
            for _ in range(k):
                put(data)

        def other(k: int) -> None:
            put = gs.put
            for _ in range(k):
                put(data, PRIORITY, 0, TTR)

        return bsm, other

    def put(self) -> tuple[Run, Run]:
        client = beanstalkm.Client(*self.addr, validate=True)
        client.put(0, "hot.put.bsm")  # the tube in force from now on: every put goes direct
        client = self._bsm(client, [b"INSERTED 5\r\n"])
        gs = self._gs(b"INSERTED 5\r\n", use="hot.put.gs")
        dumps = json.dumps

        def bsm(k: int) -> None:
            put = client.put
            for i in range(k):
                put({"n": i, "to": TO}, "hot.put.bsm")

        def other(k: int) -> None:
            put = gs.put
            for i in range(k):
                put(dumps({"n": i, "to": TO}), PRIORITY, 0, TTR)

        return bsm, other

    def _reserve(self, drop: bool) -> tuple[Run, Run]:
        client = beanstalkm.Client(*self.addr, validate=True)
        client.watch("hot.reserve.bsm")
        client.ignore("default")
        client = self._bsm(client, [self.job, b"DELETED\r\n"])
        gs = self._gs(self.job + b"DELETED\r\n", watch="hot.reserve.gs")
        loads = json.loads

        def bsm(k: int) -> None:
            reserve = client.reserve
            for _ in range(k):
                message = reserve(0, drop=drop)
                if message is None:
                    raise RuntimeError("reserve: the tube ran dry")
                if not drop:
                    message.delete()

        def other(k: int) -> None:
            reserve, delete = gs.reserve, gs.delete
            for _ in range(k):
                job = reserve(0)
                loads(job.body)
                delete(job)

        return bsm, other

    def reserve_drop(self) -> tuple[Run, Run]:
        return self._reserve(True)

    def reserve_keep(self) -> tuple[Run, Run]:
        return self._reserve(False)

    def list_tubes(self) -> tuple[Run, Run]:
        reply = b"OK %d\r\n%b\r\n" % (len(LIST), LIST)
        conn = self._bsm(beanstalkm.Connection(*self.addr, validate=True), [reply])
        gs = self._gs(reply)

        def bsm(k: int) -> None:
            list_tubes = conn.queue.list_tubes
            for _ in range(k):
                list_tubes()

        def other(k: int) -> None:
            for _ in range(k):
                gs.tubes()

        return bsm, other

    def close(self) -> None:
        for close in self.closers:
            close()


CASES = ("queue_put", "put", "reserve_drop", "reserve_keep", "list_tubes")
RESERVES = ("reserve_drop", "reserve_keep")


def _cpu(run: Run, k: int) -> float:
    gc.collect()
    start = time.process_time()
    run(k)
    return (time.process_time() - start) / k * 1e6


def _calls(run: Run, k: int, show: int = 0) -> tuple[float, float]:
    """Calls per op counted by cProfile: all, and Python functions only (this file's left out)."""
    profile = cProfile.Profile()
    profile.enable()
    run(k)
    profile.disable()
    return tally(profile, k, show)


def tally(profile: cProfile.Profile, k: int, show: int = 0, skip: tuple[str, ...] = ()) -> tuple[float, float]:
    """Calls per op of ``k`` ops that ``profile`` counted: all, and Python functions only (this file's
    and the files ``skip`` names left out); ``show``: print that many of the costliest."""
    stats = pstats.Stats(profile)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = getattr(stats, "stats")  # noqa: B009
    left_out = (__file__, *skip)
    mine = [
        v[1]
        for key, v in raw.items()
        if key[0] not in left_out and key[2] != "<method 'disable' of '_lsprof.Profiler' objects>"
    ]
    python = [v[1] for key, v in raw.items() if key[0] != "~" and key[0] not in left_out]
    if show:
        stats.sort_stats("tottime").print_stats(show)
    return sum(mine) / k, sum(python) / k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", help=f"of {', '.join(CASES)} (default: all)")
    parser.add_argument("--ops", type=int, default=20_000, help="operations per round (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per side (default 5)")
    parser.add_argument("--profile", action="store_true", help="print beanstalkm's profile per case")
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}: choose from {', '.join(CASES)}")
    server = BeanstalkdServer()
    server.start()
    try:
        pinned = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1
        if pinned and server.pid is not None:
            os.sched_setaffinity(server.pid, {1})
            os.sched_setaffinity(0, {0})
        addr = (server.host, server.port)
        print(
            f"beanstalkm {beanstalkm.__version__} vs greenstalk; {args.ops:,} ops x {args.rounds} rounds per side;"
            f" {'client on CPU 0, server on CPU 1' if pinned else 'not pinned'}"
        )
        print(
            f"{'case':13s} {'CPU/op bsm':>16s} {'greenstalk':>16s} {'ratio':>6s}   {'calls/op (python)':>22s}"
            f"   {'python/op bsm':>13s} {'gs':>6s}"
        )
        for name in args.cases or CASES:
            _one(addr, name, args.ops, args.rounds, args.profile)
    finally:
        server.stop()


def _one(addr: tuple[str, int], name: str, ops: int, rounds: int, profile: bool) -> None:
    k = max(ops // 4, 2000)  # operations per stubbed round
    real = Cases(addr, stub=False, ops=ops)
    stub = Cases(addr, stub=True, ops=rounds * k * 2 + 1000)
    try:
        bsm, other = getattr(real, name)()
        cpu: dict[str, list[float]] = {"bsm": [], "gs": []}
        filler = greenstalk.Client(addr, encoding=None)
        for r in range(rounds):
            sides = (("bsm", bsm), ("gs", other)) if r % 2 == 0 else (("gs", other), ("bsm", bsm))
            for side, run in sides:
                if name in RESERVES:
                    filler.use(f"hot.reserve.{side}")
                    for _ in range(ops):
                        filler.put(real.envelope, PRIORITY, 0, TTR)
                cpu[side].append(_cpu(run, ops))
        filler.close()
        sbsm, sother = getattr(stub, name)()
        python = {"bsm": min(_cpu(sbsm, k) for _ in range(rounds)), "gs": min(_cpu(sother, k) for _ in range(rounds))}
        calls_bsm = _calls(sbsm, 1000, 30 if profile else 0)
        calls_gs = _calls(sother, 1000)
    finally:
        real.close()
        stub.close()
    b, g = cpu["bsm"], cpu["gs"]
    print(
        f"{name:13s} {min(b):6.2f} ({statistics.median(b):5.2f}) {min(g):6.2f} ({statistics.median(g):5.2f})"
        f" {min(b) / min(g):5.2f}x   bsm {calls_bsm[0]:5.1f} ({calls_bsm[1]:4.1f})"
        f" gs {calls_gs[0]:4.1f} ({calls_gs[1]:4.1f})"
        f"   {python['bsm']:10.2f} us {python['gs']:5.2f} us",
        flush=True,
    )


if __name__ == "__main__":
    main()
