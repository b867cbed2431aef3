"""Client CPU per ``queue.put`` with the kernel's timeouts against Python's own (docs/hot-path.md,
"Kernel timeouts"): three connections to one private beanstalkd, alternated in one process.

Usage::

    PYTHONPATH=src python benchmarks/kernel_timeouts.py [--ops 10000] [--rounds 9] [--timeout 5]

The sides: ``timeout=T`` with the kernel's timeouts (the default on Linux), ``timeout=T`` with
Python's own (``SocketTransport.kernel_timeouts`` turned off for that connection), and
``timeout=None``. The client is pinned to CPU 0 and the server to CPU 1 where there are two. Not part
of ``make bench``: a check of one change.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable

import beanstalkm
from beanstalkm._transport.sockets import KERNEL_TIMEOUTS, SocketTransport
from beanstalkm.testing import BeanstalkdServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=10_000, help="puts per round and side (default 10,000)")
    parser.add_argument("--rounds", type=int, default=9, help="rounds (default 9)")
    parser.add_argument("--timeout", type=float, default=5.0, help="the connections' timeout (default 5)")
    args = parser.parse_args()
    if not KERNEL_TIMEOUTS:
        raise SystemExit("the kernel's timeouts are used on Linux only: nothing to compare here")
    body = b"x" * 100
    with BeanstalkdServer() as server:
        if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1 and server.pid is not None:
            os.sched_setaffinity(server.pid, {1})
            os.sched_setaffinity(0, {0})
        kernel = beanstalkm.Connection(server.host, server.port, timeout=args.timeout)
        SocketTransport.kernel_timeouts = False  # for the next connection made
        python = beanstalkm.Connection(server.host, server.port, timeout=args.timeout)
        SocketTransport.kernel_timeouts = KERNEL_TIMEOUTS
        forever = beanstalkm.Connection(server.host, server.port, timeout=None)
        sides: dict[str, Callable[[bytes], int]] = {
            f"timeout={args.timeout:g}, the kernel's": kernel.queue.put,
            f"timeout={args.timeout:g}, Python's": python.queue.put,
            "timeout=None": forever.queue.put,
        }
        for put in sides.values():
            put(body)  # connected
        figures: dict[str, list[float]] = {name: [] for name in sides}
        gc.disable()
        for _ in range(args.rounds):
            for name, put in sides.items():
                start = time.process_time()
                for _ in range(args.ops):
                    put(body)
                figures[name].append((time.process_time() - start) / args.ops * 1e6)
        gc.enable()
        for conn in (kernel, python, forever):
            conn.close()
    print(f"client CPU per queue.put, {args.ops:,} puts x {args.rounds} rounds per side, alternated")
    for name, values in figures.items():
        print(f"  {name:28s} lowest {min(values):6.2f} us   median {statistics.median(values):6.2f} us")


if __name__ == "__main__":
    main()
