"""The cluster case: ``Cluster.put_many`` of 30,000 jobs spread over three servers from one client,
against one server's ``Client.put_many`` of the same bodies; and the capacity model's figures (each
server's CPU per command, the client's CPU per message).

Run by ``benchmarks/run.py`` after the other cases (``--no-cluster`` skips it), or alone::

    python benchmarks/bench/cluster.py [--quick] [--pin split|same|none]

Method: ``--rounds`` rounds; in each, both sides put the same ``N`` bodies into a fresh tube, in
calls of ``CALL`` bodies (one call of all 30,000, and calls of 1,000), the side that goes first
alternating from round to round. A side's rate is ``N`` over its wall time; the figure is the median
over the rounds, the ratio the median of the per-round ratios. Server CPU is the servers' own
``rusage`` (from ``stats``) over the puts they stored; client CPU is this process's CPU time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run alone: make `bench` and `beanstalkm` importable as run.py does
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import beanstalkm
from beanstalkm.testing import BeanstalkdServer
from bench.env import TO, pin

N, QUICK_N = 30_000, 6_000
CALLS = (30_000, 1_000)  # bodies per put_many call
ROUNDS, QUICK_ROUNDS = 7, 3
TARGET = 0.9

_CPUS = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
"""The CPUs this process may use when imported: run.py pins itself to one before this case runs, and
``pin`` places the servers on another of these."""


def _server_cpu(client: beanstalkm.Client) -> float:
    stats = client.queue.stats()
    return float(stats.rusage_utime) + float(stats.rusage_stime)


def _timed(run: Any, n: int, call: int, tube: str) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) of putting ``n`` bodies in calls of ``call``."""
    bodies = [{"n": i, "to": TO} for i in range(n)]
    cpu, start = time.process_time(), time.perf_counter()
    for at in range(0, n, call):
        run(bodies[at : at + call], tube)
    return time.perf_counter() - start, time.process_time() - cpu


def run_cluster(quick: bool = False, pin_mode: str = "split", rounds: int | None = None) -> dict[str, Any]:
    """Measure, print and return the cluster case (with its target)."""
    n = QUICK_N if quick else N
    rounds = rounds or (QUICK_ROUNDS if quick else ROUNDS)
    servers = [BeanstalkdServer() for _ in range(4)]  # three for the cluster, one for the single client
    for server in servers:
        server.start()
    try:
        if _CPUS is not None:
            os.sched_setaffinity(0, _CPUS)
        regime, _ = pin(pin_mode, [s.pid for s in servers if s.pid is not None])
        urls = [f"beanstalk://{s.host}:{s.port}" for s in servers[:3]]
        single = servers[3]
        admins = [beanstalkm.Client(s.host, s.port, timeout=30) for s in servers]
        with (
            beanstalkm.Cluster(urls, timeout=30) as cluster,
            beanstalkm.Client(single.host, single.port, timeout=30) as client,
        ):
            cluster.put_many([{"warm": True}] * 300, tube="warm")
            client.put_many([{"warm": True}] * 300, tube="warm")
            cases: dict[str, Any] = {}
            for call in CALLS:
                call = min(call, n)
                rates: dict[str, list[float]] = {"cluster": [], "client": []}
                cpu: dict[str, list[float]] = {"cluster": [], "client": []}
                server_cpu: dict[str, list[float]] = {"cluster": [], "client": []}
                ratios: list[float] = []
                for r in range(rounds):
                    order = ("cluster", "client") if r % 2 == 0 else ("client", "cluster")
                    got: dict[str, float] = {}
                    for side in order:
                        used = admins[:3] if side == "cluster" else admins[3:]
                        before = sum(_server_cpu(a) for a in used)
                        run = cluster.put_many if side == "cluster" else client.put_many
                        wall, spent = _timed(run, n, call, f"c{call}r{r}{side}")
                        got[side] = n / wall
                        rates[side].append(n / wall)
                        cpu[side].append(spent / n * 1e6)
                        server_cpu[side].append((sum(_server_cpu(a) for a in used) - before) / n * 1e6)
                    ratios.append(got["cluster"] / got["client"])
                cases[f"put_many_{call}"] = {
                    "call": call,
                    "n": n,
                    "cluster_per_s": statistics.median(rates["cluster"]),
                    "client_per_s": statistics.median(rates["client"]),
                    "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
                    "client_cpu_us_per_msg": {k: statistics.median(v) for k, v in cpu.items()},
                    "server_cpu_us_per_put": {k: statistics.median(v) for k, v in server_cpu.items()},
                }
        for admin in admins:
            admin.close()
    finally:
        for server in servers:
            server.stop()
    head = cases[f"put_many_{min(CALLS[0], n)}"]
    target = {
        "target": f"Cluster.put_many of {n:,} over 3 servers >= {TARGET}x one server's Client.put_many",
        "case": "cluster_put_many",
        "value": head["ratio"]["median"],
        "range": [head["ratio"]["min"], head["ratio"]["max"]],
        "unit": "x",
        "kind": "min",
        "limit": TARGET,
        "met": head["ratio"]["median"] >= TARGET,
    }
    _print(cases, regime, rounds, target)
    return {"regime": regime, "rounds": rounds, "cases": cases, "targets": [target]}


def _print(cases: dict[str, Any], regime: str, rounds: int, target: dict[str, Any]) -> None:
    from bench.report import describe

    print(f"\nCLUSTER ({regime} regime, {rounds} rounds): put_many over 3 servers vs one server's Client.put_many")
    print(f"  {'case':<18}{'Cluster/s':>12}{'Client/s':>12}{'ratio':>24}  client CPU us/msg  server CPU us/put")
    for name, case in cases.items():
        ratio = case["ratio"]
        cpu, srv = case["client_cpu_us_per_msg"], case["server_cpu_us_per_put"]
        print(
            f"  {name:<18}{case['cluster_per_s']:>12,.0f}{case['client_per_s']:>12,.0f}"
            f"{ratio['median']:>10.3f}x [{ratio['min']:.2f}-{ratio['max']:.2f}]"
            f"  {cpu['cluster']:5.2f} / {cpu['client']:5.2f}     {srv['cluster']:5.2f} / {srv['client']:5.2f}"
        )
    print("  (CPU columns: cluster / single client)")
    print(describe(target))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--pin", choices=("split", "same", "none"), default="split")
    args = parser.parse_args(argv)
    result = run_cluster(args.quick, args.pin, args.rounds)
    return 0 if result["targets"][0]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
