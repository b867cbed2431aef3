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

* the worker (``bench/cases_worker.py``): ``Worker`` with a no-op handler, at
  concurrency 1 and 8, each chunk one ``run(max_jobs=k)``, against the
  hand-written greenstalk loop ``reserve(0)`` + ``json.loads`` + ``delete``.

* async, one connection: ``TASKS`` tasks doing ``AsyncClient.put`` on one
  client (auto-pipelined) against aiostalk's 100 tasks over its pool, and a
  raw pipelined asyncio loop on one stream (100 puts in one write, then the
  100 replies); one task doing sequential ``AsyncClient.put`` against one
  aiostalk client and a raw write+readline loop.

Every figure comes with the client CPU per operation: this process's
``time.process_time()`` over the operations (microseconds), which does not
depend on how the scheduler places client and server.

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
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

from beanstalkm.testing import BeanstalkdServer
from bench.cases import CASES
from bench.cli import cli_targets, run_cli_benchmarks
from bench.cluster import run_cluster
from bench.env import (
    ASYNC_CHUNKS,
    BATCH,
    BIG,
    CHUNKS,
    QUICK_ROUNDS,
    RESULTS,
    ROUNDS,
    TASKS,
    LoadMeter,
    machine_info,
    pin,
)
from bench.measure import make_env, preflight, run_rounds, summarize
from bench.report import check_targets, failed_target, print_table, print_targets, print_what, run_memory
from bench.wire import raw_open, round_trip_us


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
    parser.add_argument("--cli", action="store_true", help="run only the CLI bulk-command cases (bench/cli.py)")
    parser.add_argument("--no-cluster", action="store_true", help="skip the cluster case (three more servers)")
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

    if args.cli:
        figures = run_cli_benchmarks(args.quick, args.pin)
        return 1 if args.check and not all(c["met"] for c in figures["cases"]) else 0

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
        targets.append(
            failed_target("the targets hold with jsonschema installed and validation on: jsonschema is missing")
        )
    print_targets(targets, regime)

    cluster = None if args.no_cluster else run_cluster(args.quick, args.pin)
    targets += cluster["targets"] if cluster is not None else []

    memory = None if args.no_memory else run_memory(args.quick)
    if memory is not None:
        targets += memory["targets"]
    elif not args.no_memory:
        targets.append(failed_target("the memory measurements (benchmarks/memory.py) ran"))

    cli = run_cli_benchmarks(args.quick, args.pin)
    targets += cli_targets(cli)

    result = {
        "cli": cli,
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
        "cluster": cluster,
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
