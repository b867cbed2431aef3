"""The CLI's bulk commands against a one-round-trip-per-command loop with the same library, same run.

Run just these: ``python benchmarks/run.py --cli`` (``--quick`` for 10,000 jobs and 200 tubes).

* ``flush``: ``beanstalkm flush TUBE --yes`` (the tube is dense, so one id walk: ``stats-job`` for each id
  and ``delete`` for each job, two batches in flight) against a loop that already knows every id and sends
  one ``delete`` per job, waiting for each reply (1 command per job against the CLI's 2);
* ``export``: ``beanstalkm export TUBE`` to /dev/null (the walk's ``stats-job``, then ``peek``, per job:
  one NDJSON line each) against the same two commands per job, one round trip each, and the same line
  written;
* ``tubes``: ``beanstalkm --json tubes`` over N tubes (``list-tubes`` then ``stats-tube``, batches in
  flight) against ``list-tubes`` then one ``stats-tube`` round trip per tube.

The target (10x) is stated against these loops; no second baseline. ``Ceiling`` shows, for each case, the
most any client could reach against its loop on this machine, from the capacity figures: the loop's wall
time per item over beanstalkd's own CPU per item for the commands the CLI sends (per command, measured on a
raw socket, times the commands per item), since a pipelined server can go no faster than its CPU. Where
that is under 10x, the target is out of physical reach on this machine, whatever the client does.

``--cli`` also prints the capacity model that bounds those ratios (``capacity``): for each command the
bulk commands send, pipelined in batches of 1,000 as they send it, beanstalkd's own CPU per command
(``/proc/<pid>/stat`` utime + stime before and after), this process's CPU per command
(``time.process_time``) and the wall time, beside the one-round-trip loop's wall time per command.

The CLI runs in this process (``beanstalkm.cli.main``, stdout to /dev/null), so the figure is the command's
work, not the interpreter's start-up (reported beside it: one ``python -m beanstalkm --version``). Each
side runs on a freshly filled tube; the median of ``rounds`` runs is reported, with the ratio of medians.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from beanstalkm import Client, JobStats, Message
from beanstalkm.cli import main as cli_main
from beanstalkm.testing import BeanstalkdServer
from bench.env import LoadMeter, pin
from bench.wire import raw_open

TARGET = 10.0
BODY = json.dumps({"to": "someone@example.com", "n": 0}).encode()


def _fill(client: Client, tube: str, n: int) -> list[int]:
    ids: list[int] = []
    for start in range(0, n, 1000):
        pipeline = client.pipeline().use(tube)
        for _ in range(min(1000, n - start)):
            pipeline.put(BODY, 100, 0, 60)
        ids += [r for r in pipeline.execute()[1:] if isinstance(r, int)]
    return ids


def _cli(url: str, *args: str) -> None:
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = cli_main(["-s", url, *args])
    if code != 0:
        raise RuntimeError(f"beanstalkm {' '.join(args)} exited {code}")


_CPU: dict[str, list[tuple[float, float]]] = {}  # (client, beanstalkd) CPU seconds of each timed run, by label
_PID: list[int] = []  # the benchmark server's pid


def _timed(run: Callable[[], None], label: str = "") -> float:
    server = _server_cpu(_PID[0]) if _PID else 0.0
    client, start = time.process_time(), time.perf_counter()
    run()
    wall = time.perf_counter() - start
    if label:
        server = (_server_cpu(_PID[0]) - server) if _PID else 0.0
        _CPU.setdefault(label, []).append((time.process_time() - client, server))
    return wall


def _flush(server: BeanstalkdServer, url: str, n: int, rounds: int) -> dict[str, Any]:
    cli_times, loop_times = [], []
    with Client(server.host, server.port, validate=False) as client:
        for r in range(rounds):
            tube = f"flush-cli-{r}"
            _fill(client, tube, n)

            def flush(tube: str = tube) -> None:
                _cli(url, "flush", tube, "--yes")

            cli_times.append(_timed(flush, "flush-cli"))
            assert client.queue.list_tubes().count(tube) == 0 or client.queue.stats_tube(tube).total_jobs == n
            tube = f"flush-loop-{r}"
            ids = _fill(client, tube, n)

            def loop(ids: list[int] = ids) -> None:
                for job_id in ids:
                    client.queue.delete(job_id)

            loop_times.append(_timed(loop, "flush-loop"))
    return _figure("flush", n, "jobs", cli_times, loop_times)


def _export(server: BeanstalkdServer, url: str, n: int, rounds: int) -> dict[str, Any]:
    cli_times, loop_times = [], []
    with Client(server.host, server.port, validate=False) as client:
        tube = "export"
        ids = _fill(client, tube, n)
        for _ in range(rounds):
            cli_times.append(_timed(lambda: _cli(url, "export", tube), "export-cli"))

            def loop() -> None:
                with open(os.devnull, "w") as sink:
                    for job_id in ids:
                        stats = client.queue.stats_job(job_id)
                        message = client.queue.peek(job_id)
                        if isinstance(stats, JobStats) and isinstance(message, Message) and message.raw is not None:
                            line = {"id": job_id, "state": stats.state, "priority": stats.pri, "ttr": stats.ttr}
                            sink.write(json.dumps({**line, "data": message.raw.decode()}) + "\n")

            loop_times.append(_timed(loop, "export-loop"))
        client.delete_many(ids)
    return _figure("export", n, "jobs", cli_times, loop_times)


def _tubes(server: BeanstalkdServer, url: str, n: int, rounds: int) -> dict[str, Any]:
    cli_times, loop_times = [], []
    with Client(server.host, server.port, validate=False) as client:
        for i in range(n):  # a job keeps each tube alive
            client.queue.use(f"tube-{i:05d}")
            client.queue.put(BODY)
        for _ in range(rounds):
            cli_times.append(_timed(lambda: _cli(url, "--json", "tubes"), "tubes-cli"))

            def loop() -> None:
                for name in client.queue.list_tubes():
                    client.queue.stats_tube(name)

            loop_times.append(_timed(loop, "tubes-loop"))
    return _figure("tubes", n, "tubes", cli_times, loop_times)


def _server_cpu(pid: int) -> float:
    """beanstalkd's CPU seconds so far (utime + stime, /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _per_command(pid: int, commands: int, run: Callable[[], None]) -> dict[str, float]:
    server, client, wall = _server_cpu(pid), time.process_time(), time.perf_counter()
    run()
    wall, client, server = time.perf_counter() - wall, time.process_time() - client, _server_cpu(pid) - server
    return {
        "server_us": server / commands * 1e6,
        "client_us": client / commands * 1e6,
        "wall_us": wall / commands * 1e6,
    }


def _pipelined(client: Client, ids: list[int], add: Callable[[Any, int], None]) -> Callable[[], None]:
    def run() -> None:
        for start in range(0, len(ids), 1000):
            pipeline = client.pipeline()
            for job_id in ids[start : start + 1000]:
                add(pipeline, job_id)
            pipeline.execute()

    return run


def _raw_batches(raw: Any, commands: list[bytes], replies_per: int = 1) -> Callable[[], None]:
    """Write ``commands`` 1,000 at a time, then read every reply (its body, if any, by its length)."""

    def run() -> None:
        for start in range(0, len(commands), 1000):
            chunk = commands[start : start + 1000]
            raw.sock.sendall(b"".join(chunk))
            for _ in range(replies_per * len(chunk)):
                parts = raw.line().split(b" ")
                if parts[0] in (b"OK", b"FOUND", b"RESERVED"):
                    raw.body(int(parts[-1]))

    return run


def capacity(server: BeanstalkdServer, n: int) -> list[dict[str, Any]]:
    """beanstalkd's CPU, this process's CPU and the wall time per command, for each command of the bulk
    commands as they send it (pipelined, 1,000 a write), and for one ``delete`` per round trip."""
    if server.pid is None:
        return []
    pid = server.pid
    out: list[dict[str, Any]] = []
    with Client(server.host, server.port, validate=False) as client:
        ids = _fill(client, "capacity", n)
        steps: list[tuple[str, int, Callable[[], None]]] = [
            ("stats-job (raw YAML), pipelined", n, _pipelined(client, ids, lambda p, i: p.stats_job_yaml(i))),
            ("peek, pipelined", n, _pipelined(client, ids, lambda p, i: p.peek(i))),
            ("delete, pipelined", n, _pipelined(client, ids, lambda p, i: p.delete(i))),
        ]
        for name, commands, run in steps:
            out.append({"command": name, **_per_command(pid, commands, run)})
        ids = _fill(client, "capacity", n)
        client.watch("capacity")
        client.ignore("default")

        def reserve_and_delete() -> None:
            while client.reserve_many(1000, 0, drop=True):
                pass

        out.append(
            {
                "command": "reserve-with-timeout 0 + delete (reserve_many)",
                **_per_command(pid, 2 * n, reserve_and_delete),
            }
        )
        ids = _fill(client, "capacity", n)
        raw = raw_open((server.host, server.port), watch="capacity")

        def raw_pairs() -> None:  # the floor of a client: bytes out, lengths read, nothing decoded
            for start in range(0, n, 1000):
                chunk = ids[start : start + 1000]
                raw.sock.sendall(b"".join(b"stats-job %d\r\npeek %d\r\n" % (i, i) for i in chunk))
                for _ in range(2 * len(chunk)):
                    raw.body(int(raw.line().rsplit(b" ", 1)[1]))

        out.append({"command": "raw socket: stats-job + peek, pipelined", **_per_command(pid, 2 * n, raw_pairs)})

        def raw_drain() -> None:
            while batch := raw.reserve_batch(1000):
                raw.delete_batch(batch)

        out.append({"command": "raw socket: reserve-with-timeout 0 + delete", **_per_command(pid, 2 * n, raw_drain)})
        ids = _fill(client, "capacity", n)
        walk = [b"stats-job %d\r\ndelete %d\r\n" % (i, i) for i in ids]
        out.append(
            {
                "command": "raw socket: stats-job + delete (flush's walk)",
                **_per_command(pid, 2 * n, _raw_batches(raw, walk, 2)),
            }
        )
        names = client.queue.list_tubes()
        lines = [b"stats-tube %b\r\n" % name.encode() for name in names] * max(1, n // len(names))
        out.append(
            {
                "command": f"raw socket: stats-tube ({len(names):,} tubes)",
                **_per_command(pid, len(lines), _raw_batches(raw, lines)),
            }
        )
        raw.close()
        ids = _fill(client, "capacity", n)

        def one_by_one() -> None:
            for job_id in ids:
                client.queue.delete(job_id)

        out.append({"command": "delete, one round trip each", **_per_command(pid, n, one_by_one)})
    return out


CEILING_COMMANDS = {  # each case's commands per item, and the capacity row of their cost on a raw socket
    "flush": (2, "raw socket: stats-job + delete (flush's walk)"),
    "export": (2, "raw socket: stats-job + peek, pipelined"),
    "tubes": (1, "raw socket: stats-tube"),
}


def ceiling(results: list[dict[str, Any]], costs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each case, the most a client could reach against its loop here: the loop's wall time per item
    over beanstalkd's CPU per item for the CLI's commands (the raw-socket capacity figure per command times
    the commands per item). A pipelined server is bound by its CPU; the loop by its round trips."""
    out: list[dict[str, Any]] = []
    for r in results:
        commands, row = CEILING_COMMANDS[r["case"]]
        cost = next((c for c in costs if c["command"].startswith(row)), None)
        if cost is None or cost["server_us"] <= 0:
            continue
        loop_us = r["loop_s"] / r["n"] * 1e6
        server_us = commands * cost["server_us"]
        out.append(
            {
                "case": r["case"],
                "unit": r["unit"][:-1],
                "loop_us": loop_us,
                "commands": commands,
                "server_per_command_us": cost["server_us"],
                "server_us": server_us,
                "ceiling": loop_us / server_us,
            }
        )
    return out


def _figure(name: str, n: int, unit: str, cli_times: list[float], loop_times: list[float]) -> dict[str, Any]:
    cli_s, loop_s = statistics.median(cli_times), statistics.median(loop_times)
    cpu = {
        f"{side}_{who}_us": statistics.median(c[k] for c in _CPU.get(f"{name}-{side}", [(0.0, 0.0)])) / n * 1e6
        for side in ("cli", "loop")
        for k, who in enumerate(("client", "server"))
    }
    return {
        **cpu,
        "case": name,
        "n": n,
        "unit": unit,
        "cli_s": cli_s,
        "loop_s": loop_s,
        "ratio": loop_s / cli_s,
        "met": loop_s / cli_s >= TARGET,
    }


def _startup() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "beanstalkm", "--version"], check=True, capture_output=True, timeout=60)
    return time.perf_counter() - start


def run_cli_benchmarks(quick: bool, pin_mode: str = "split", rounds: int = 3) -> dict[str, Any]:
    """Run the three cases on a private server (placed as ``--pin`` says); print and return the figures."""
    jobs, tubes = (10_000, 200) if quick else (100_000, 1_000)
    with BeanstalkdServer() as server:
        regime, regime_text = pin(pin_mode, [server.pid] if server.pid is not None else [])
        _PID[:] = [server.pid] if server.pid is not None else []
        load = LoadMeter(list(_PID))
        url = f"beanstalk://{server.host}:{server.port}"
        results = [
            _flush(server, url, jobs, rounds),
            _export(server, url, jobs, rounds),
            _tubes(server, url, tubes, rounds),
        ]
        costs = capacity(server, jobs)
        other = load.other_cpus()
    startup = _startup()
    print(f"\nCLI bulk commands vs a one-round-trip-per-command loop (median of {rounds}; target >= {TARGET:g}x)")
    print(f"  regime {regime}: {regime_text}")
    for r in results:
        print(
            f"  {r['case']:<7} {r['n']:>7,} {r['unit']:<5}  cli {r['cli_s'] * 1000:9.1f} ms   "
            f"loop {r['loop_s'] * 1000:9.1f} ms   {r['ratio']:6.1f}x  {'met' if r['met'] else 'MISSED'}"
        )
        print(
            f"  {'':<7} CPU per {r['unit'][:-1]}: cli client {r['cli_client_us']:5.1f} us + beanstalkd "
            f"{r['cli_server_us']:5.1f} us;  loop client {r['loop_client_us']:5.1f} us + beanstalkd "
            f"{r['loop_server_us']:5.1f} us"
        )
    print(f"  (start-up of `python -m beanstalkm`, not included above: {startup * 1000:.0f} ms)")
    if other is not None:
        print(f"  other load meanwhile: {other['other']:.2f} CPUs used by other processes, {other['steal']:.2f} stolen")
    print(f"\nCapacity: CPU and wall time per command ({jobs:,} jobs; beanstalkd from /proc/<pid>/stat)")
    for c in costs:
        print(
            f"  {c['command']:<48} beanstalkd {c['server_us']:5.1f} us   client {c['client_us']:5.1f} us   "
            f"wall {c['wall_us']:6.1f} us"
        )
    ceilings = ceiling(results, costs)
    if ceilings:
        print("\nCeiling: the loop's wall per item / beanstalkd's CPU per item for the CLI's commands (raw socket)")
        for c in ceilings:
            print(
                f"  {c['case']:<7} loop {c['loop_us']:6.1f} us per {c['unit']:<4}  beanstalkd {c['commands']} x "
                f"{c['server_per_command_us']:4.1f} us = {c['server_us']:5.1f} us  ->  at most {c['ceiling']:5.1f}x"
                f"  {'(10x out of reach here)' if c['ceiling'] < TARGET else ''}"
            )
    return {
        "cases": results,
        "startup_s": startup,
        "target": TARGET,
        "regime": regime,
        "capacity": costs,
        "ceiling": ceilings,
        "load": other,
    }


def cli_targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The CLI cases as targets, in the shape ``bench.report`` prints."""
    return [
        {
            "target": f"beanstalkm {c['case']} ({c['n']:,} {c['unit']}) >= {TARGET:g}x a one-round-trip loop",
            "case": f"cli-{c['case']}",
            "value": c["ratio"],
            "unit": "x",
            "kind": "min",
            "limit": TARGET,
            "met": c["met"],
        }
        for c in figures["cases"]
    ]
