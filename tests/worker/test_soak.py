"""Soak: 5,000 jobs (5% of them running 1.1x to 3x their 2 s TTR) through three ``beanstalkm worker``
processes (threads, then tasks) that are SIGKILLed 3 times and SIGTERMed twice, with one server kill
(binlog) in between.

Shown: 0 jobs lost; 0 TTR expiries (the server's ``job-timeouts`` before and after its kill, and each
finished handler's own ``timeouts``); every duplicate run is one that was in flight (or had its delete
in flight) at a SIGKILL of its process or at the server kill, counted and printed; SIGTERM causes none.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from beanstalkm import Client
from beanstalkm.testing import ServerFactory

from ._support import FLAVOUR_IDS, FLAVOURS, WAIT, Run, Workers, read_runlog, url

JOBS = 5000
LONG = 0.05
TTR = 2
LONG_SLEEP = (1.1 * TTR, 3.0 * TTR)
PROCESSES = 3
CONCURRENCY = 16
FAULTS = (  # (fraction of jobs finished, what happens)
    (0.08, "SIGKILL"),
    (0.20, "SIGTERM"),
    (0.35, "SIGKILL"),
    (0.50, "server"),
    (0.65, "SIGKILL"),
    (0.80, "SIGTERM"),
)
DEADLINE = 110.0
IN_FLIGHT_SLACK = 0.5
"""A run that ended this little before a kill may still have had its delete in flight."""


@pytest.mark.slow
@pytest.mark.parametrize("flavour", FLAVOURS, ids=FLAVOUR_IDS)
def test_soak_nothing_lost_duplicates_only_from_kills(
    server_factory: ServerFactory, workers: Workers, tmp_path: Path, flavour: str
) -> None:
    server = server_factory(binlog_dir=str(tmp_path / "binlog"))
    runlog = tmp_path / "run.log"
    rng = random.Random(13)
    bodies = [{"id": i, "sleep": rng.uniform(*LONG_SLEEP) if rng.random() < LONG else 0.0} for i in range(JOBS)]
    args = ["-s", url(server), "-c", str(CONCURRENCY), "--grace", "30", "--log-level", "WARNING"]

    def start() -> subprocess.Popen[bytes]:
        return workers.start(f"worker._apps:soak{flavour}", args, runlog)

    with Client(server.host, server.port) as client:
        for start_at in range(0, JOBS, 500):
            client.put_many(bodies[start_at : start_at + 500], tube="soak", ttr=TTR)
    live = [start() for _ in range(PROCESSES)]
    killed: dict[int, float] = {}  # pid -> when it was SIGKILLed
    terminated: list[subprocess.Popen[bytes]] = []
    server_down: tuple[float, float] | None = None
    timeouts_before_kill = 0
    faults = list(FAULTS)
    turn = 0
    deadline = time.monotonic() + DEADLINE
    run = Run()
    while True:
        run = read_runlog(runlog)
        finished = len(run.ends)
        if faults and finished >= faults[0][0] * JOBS:
            _, fault = faults.pop(0)
            if fault == "server":
                with Client(server.host, server.port) as client:
                    timeouts_before_kill = client.queue.stats().job_timeouts
                down = time.time()
                server.kill()
                time.sleep(0.3)
                server.start()
                server_down = (down, time.time())
            else:
                victim = live.pop(turn % len(live))
                turn += 1
                if fault == "SIGKILL":
                    victim.kill()
                    killed[victim.pid] = time.time()
                    victim.wait(WAIT)
                else:
                    victim.send_signal(signal.SIGTERM)
                    terminated.append(victim)
                live.append(start())
        if finished == JOBS and not faults and _empty(server.host, server.port):
            break
        assert time.monotonic() < deadline, f"{finished} of {JOBS} finished in {DEADLINE} s\n{workers.logs()[-3000:]}"
        time.sleep(0.1)

    for proc in terminated:
        assert proc.wait(WAIT) == 0, f"a SIGTERMed worker exited {proc.returncode}\n{workers.logs()[-3000:]}"
    for proc in live:
        proc.send_signal(signal.SIGTERM)
    for proc in live:
        assert proc.wait(WAIT) == 0, workers.logs()[-3000:]

    with Client(server.host, server.port) as client:
        timeouts_after = client.queue.stats().job_timeouts
    lost = [i for i in range(JOBS) if i not in run.ends]
    handler_timeouts = sum(1 for ends in run.ends.values() for _, _, t in ends if t != 0)
    sigtermed = {p.pid for p in terminated}
    explained = {"SIGKILL": 0, "server kill": 0}
    unexplained: list[str] = []
    for job, runs in run.runs.items():
        for pid, started, ended, _ in sorted(runs, key=lambda r: r[1])[:-1]:  # every run but the last was repeated
            if pid in killed and started <= killed[pid] and (ended is None or ended >= killed[pid] - IN_FLIGHT_SLACK):
                explained["SIGKILL"] += 1
            elif (
                server_down is not None
                and started <= server_down[1]
                and (ended is None or ended >= server_down[0] - IN_FLIGHT_SLACK)
            ):
                explained["server kill"] += 1
            else:
                unexplained.append(
                    f"job {job}: run by {pid}{' (SIGTERMed)' if pid in sigtermed else ''} at {started}, ended {ended};"
                    f" runs {runs}"
                )
    long_jobs = sum(1 for b in bodies if b["sleep"])
    print(
        f"\nsoak: {JOBS} jobs ({long_jobs} running {LONG_SLEEP[0]:.1f}-{LONG_SLEEP[1]:.1f} s on a {TTR} s TTR),"
        f" {sum(len(s) for s in run.starts.values())} handler runs; lost {len(lost)};"
        f" job-timeouts {timeouts_before_kill} + {timeouts_after}; handler-seen timeouts {handler_timeouts};"
        f" duplicate runs: {explained['SIGKILL']} in flight at a SIGKILL, {explained['server kill']} at the"
        f" server kill, {len(unexplained)} unexplained"
    )
    assert not lost, f"lost: {lost[:20]}"
    assert timeouts_before_kill == 0 and timeouts_after == 0 and handler_timeouts == 0
    assert not unexplained, (unexplained[:20], killed, server_down, workers.logs()[-5000:])
    assert server_down is not None and len(killed) == 3 and len(terminated) == 2


def _empty(host: str, port: int) -> bool:
    with Client(host, port) as client:
        if "soak" not in client.queue.list_tubes():
            return True
        stats = client.queue.stats_tube("soak")
    return not (
        stats.current_jobs_ready + stats.current_jobs_reserved + stats.current_jobs_delayed + stats.current_jobs_buried
    )
