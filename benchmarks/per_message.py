"""The client's Python work per message: the envelope, the message, the batches (docs/sync-cpu.md).

Usage::

    PYTHONPATH=src python benchmarks/per_message.py [--rounds R]

Prints the lowest ``time.process_time()`` per message over ``--rounds`` rounds, and the function calls
cProfile counts per message (all, and the Python ones: steady whatever the load), of:

- ``encode``: ``envelope.encode`` of ``{"n": i, "to": ...}`` (canonical JSON, token, envelope bytes);
- ``received``: ``client._reserved_message(job)`` of the envelope ``Client.put`` writes (decoding,
  validation with ``validate=True``, the ``Message``);
- ``put_many`` and ``reserve_many``: ``Client.put_many`` of 100 bodies (the bodies' dicts built in
  the loop, as in ``benchmarks/run.py``) and ``Client.reserve_many(100, 0, drop=True)``, each with
  its socket stubbed to hand back the replies at once (no system call: the Python work alone).

Not a test and not part of ``make bench``: a profiling aid, steadier than the benchmark's CPU per
operation on a busy machine. It stubs private attributes of the transport (see ``hot_path.py``).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

import beanstalkm
from beanstalkm._core import envelope
from beanstalkm._core.requests import Job
from beanstalkm.testing import BeanstalkdServer
from hot_path import _calls, _stub_bsm

TO = "user@example.org"
BATCH = 100


def lowest(run: Callable[[int], None], n: int, rounds: int) -> float:
    """The lowest process time per item of ``run(n)`` over ``rounds`` rounds, in microseconds."""
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        start = time.process_time()
        run(n)
        best = min(best, time.process_time() - start)
    return best / n * 1e6


def _stubbed(client: beanstalkm.Client, replies: list[bytes]) -> None:
    _stub_bsm(client, replies)
    transport: Any = client._transport
    sock: Any = transport.sock
    sock.setblocking = lambda flag: None  # the duplex writer's switch: nothing to switch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--ops", type=int, default=10_000, help="messages per round (a multiple of 100)")
    args = parser.parse_args(argv)
    n, rounds = args.ops - args.ops % BATCH or BATCH, args.rounds
    with BeanstalkdServer() as server:
        client = beanstalkm.Client(server.host, server.port, validate=True)
        client.watch("per.message")
        client.put({"n": 0, "to": TO}, "per.message")
        message = client.reserve(0, drop=True)
        if message is None or message.raw is None:
            raise RuntimeError("could not read back the envelope beanstalkm puts")
        raw = message.raw
        sender_json = client._sender_wire[1]

        def encode(k: int) -> None:
            for i in range(k):
                envelope.encode({"n": i, "to": TO}, 1700000000000, sender_json)

        job = Job(7, raw)

        def received(k: int) -> None:
            to_message = client._reserved_message
            for _ in range(k):
                to_message(job)

        putter = beanstalkm.Client(server.host, server.port, validate=True)
        putter.put_many([0], "per.message")  # the tube in force from now on: no use in the batches
        _stubbed(putter, [b"".join(b"INSERTED %d\r\n" % (i + 1) for i in range(BATCH))])

        def put_many(k: int) -> None:
            for start in range(0, k, BATCH):
                putter.put_many([{"n": start + j, "to": TO} for j in range(BATCH)], "per.message")

        reserver = beanstalkm.Client(server.host, server.port, validate=True)
        reserved = b"".join(b"RESERVED %d %d\r\n%b\r\n" % (i + 1, len(raw), raw) for i in range(BATCH))
        _stubbed(reserver, [reserved, b"DELETED\r\n" * BATCH])

        def reserve_many(k: int) -> None:
            for _ in range(k // BATCH):
                reserver.reserve_many(BATCH, 0, drop=True)

        print(
            f"beanstalkm {beanstalkm.__version__}; lowest of {rounds} rounds of {n:,} messages; us per message"
            " (and cProfile's calls per message)"
        )
        for name, run in (
            ("encode", encode),
            ("received", received),
            ("put_many", put_many),
            ("reserve_many", reserve_many),
        ):
            calls, python = _calls(run, n)
            print(f"  {name:<14}{lowest(run, n, rounds):8.2f}   calls {calls:6.1f} ({python:5.1f} python)")
        for closing in (client, putter, reserver):
            closing.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
