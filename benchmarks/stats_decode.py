"""Where the time of a typed stats call goes: decode CPU, Python calls, and the whole call against greenstalk.

Usage::

    python benchmarks/stats_decode.py [--calls 20000] [--profile]

For ``stats``, ``stats-tube`` and ``stats-job`` against a private beanstalkd (this process pinned to
the first CPU it may use, the server to another where there is one), it prints:

* ``decode``: ``from_yaml`` on the body the server sent, ``time.process_time`` per call over
  ``--calls`` calls, and the Python function calls one decode makes (cProfile);
* ``whole call``: ``conn.queue.<command>()``'s client CPU per call over ``--calls`` calls, and its
  Python function calls, beside greenstalk's ``stats*()`` (a plain dict of int-or-str) on the same
  server, interleaved over five rounds (the median round is printed).

``--profile`` also prints each whole call's top functions by own time. These are timings on
whatever machine runs them: compare figures from one run only.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import time
from collections.abc import Callable
from functools import partial

import beanstalkm
from beanstalkm import JobStats, ServerStats, TubeStats
from beanstalkm.testing import BeanstalkdServer
from bench import greenstalk

TUBE = "stats-decode"
ROUNDS = 5


def cpu_per_call(fn: Callable[[], object], calls: int) -> float:
    """``fn``'s client CPU per call in microseconds (``time.process_time`` over ``calls`` calls)."""
    for _ in range(min(calls, 500)):  # warm up
        fn()
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls * 1e6


def calls_per_op(fn: Callable[[], object], ops: int = 1000) -> tuple[float, cProfile.Profile]:
    """The Python function calls one ``fn()`` makes (cProfile over ``ops`` calls), and the profile."""
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(ops):
        fn()
    profile.disable()
    calls = sum(entry.callcount for entry in profile.getstats())
    return calls / ops, profile


def pin(server: BeanstalkdServer) -> str:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or server.pid is None:
        return "not pinned (one CPU)"
    os.sched_setaffinity(0, {cpus[0]})
    os.sched_setaffinity(server.pid, {cpus[1]})
    return f"client on CPU {cpus[0]}, beanstalkd on CPU {cpus[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per measurement (default 20,000)")
    parser.add_argument("--profile", action="store_true", help="print each whole call's top functions")
    args = parser.parse_args()
    with BeanstalkdServer() as server:
        placement = pin(server)
        conn = beanstalkm.Connection(server.host, server.port)
        conn.queue.use(TUBE)
        job = conn.queue.put(b"x")
        gs = greenstalk.Client((server.host, server.port), use=TUBE)
        try:
            cases: list[tuple[str, Callable[[bytes], object], bytes, Callable[[], object], Callable[[], object]]] = [
                ("stats", ServerStats.from_yaml, conn.queue.stats_yaml().encode(), conn.queue.stats, gs.stats),
                (
                    "stats-tube",
                    TubeStats.from_yaml,
                    conn.queue.stats_tube_yaml(TUBE).encode(),
                    lambda: conn.queue.stats_tube(TUBE),
                    lambda: gs.stats_tube(TUBE),
                ),
                (
                    "stats-job",
                    JobStats.from_yaml,
                    conn.queue.stats_job_yaml(job).encode(),
                    lambda: conn.queue.stats_job(job),
                    lambda: gs.stats_job(job),
                ),
            ]
            print(f"beanstalkm {beanstalkm.__version__}, {placement}, {args.calls:,} calls per measurement")
            for name, decode, body, call, other in cases:
                decode_cpu = cpu_per_call(partial(decode, body), args.calls)
                decode_calls, _ = calls_per_op(partial(decode, body))
                rounds = [(cpu_per_call(call, args.calls), cpu_per_call(other, args.calls)) for _ in range(ROUNDS)]
                ours = statistics.median(r[0] for r in rounds)
                theirs = statistics.median(r[1] for r in rounds)
                whole_calls, profile = calls_per_op(call)
                print(
                    f"{name:10s}  decode {decode_cpu:6.2f} us ({decode_calls:.0f} calls)   whole call {ours:6.2f} us"
                    f" ({whole_calls:.0f} calls)   greenstalk {theirs:6.2f} us   ratio {ours / theirs:.2f}x"
                )
                if args.profile:
                    out = io.StringIO()
                    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(12)
                    print(out.getvalue())
        finally:
            gs.close()
            conn.close()


if __name__ == "__main__":
    main()
