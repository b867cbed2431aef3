"""Soak: 100,000 jobs per delivery mode through several producer and consumer processes while
the server (with a binlog) is SIGKILLed and restarted at least 3 times.

* at-least-once (``drop=False``, delete after the work; producers re-send a
  batch whose outcome is unknown): every job is delivered; duplicates are
  counted.
* at-most-once (``drop=True``; producers never re-send, they count "maybe
  stored"): no job is delivered twice; losses are counted.

The counts are printed (``pytest -s`` shows them; so does the captured output of a failure).
"""

from __future__ import annotations

import multiprocessing
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from beanstalkm import Connection, NotFound, SocketError
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from . import _soak

JOBS = 100_000
PRODUCERS = 3
CONSUMERS = 3
FAULTS_AT = (0.08, 0.2, 0.32, 0.44, 0.56, 0.68, 0.8, 0.92)  # fractions of the work done (puts + deliveries)
DOWN_FOR = 0.25  # seconds the server stays dead each time
DEADLINE = 150.0


def _ids(data: bytes) -> array[int]:
    out = array("q")
    out.frombytes(data)
    return out


def _left(server: BeanstalkdServer) -> int | None:
    """Jobs still in the soak tube (ready, reserved or delayed), or None if the server cannot say now."""
    try:
        with Connection(server.host, server.port, timeout=5) as conn:
            stats = conn.queue.stats_tube(_soak.TUBE)
    except NotFound:
        return 0
    except SocketError:
        return None
    return (
        stats.current_jobs_ready + stats.current_jobs_reserved + stats.current_jobs_delayed + stats.current_jobs_buried
    )


def _run(server: BeanstalkdServer, drop: bool) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    results: Any = ctx.Queue()
    progress: Any = ctx.Value("q", 0)
    stop: Any = ctx.Event()
    per = JOBS // PRODUCERS
    ranges = [(i * per, JOBS if i == PRODUCERS - 1 else (i + 1) * per) for i in range(PRODUCERS)]
    producers = [
        ctx.Process(target=_soak.producer, args=(server.host, server.port, a, b, not drop, progress, results))
        for a, b in ranges
    ]
    consumers = [
        ctx.Process(target=_soak.consumer, args=(server.host, server.port, drop, stop, progress, results))
        for _ in range(CONSUMERS)
    ]
    processes = producers + consumers
    start = time.monotonic()
    deadline = start + DEADLINE
    faults = 0
    reports: list[dict[str, Any]] = []
    try:
        for p in processes:
            p.start()
        # faults at fixed points of progress, so they land while jobs are moving whatever the speed
        for fraction in FAULTS_AT:
            while progress.value < fraction * 2 * JOBS:
                assert time.monotonic() < deadline, f"stuck at {progress.value} (before fault {faults + 1})"
                assert any(p.is_alive() for p in processes), "every worker exited early"
                time.sleep(0.005)
            server.kill()
            time.sleep(DOWN_FOR)
            server.start()
            faults += 1
        # a child exits only once the parent has read what it queued: read before joining
        while sum(r["role"] == "producer" for r in reports) < PRODUCERS:
            reports.append(results.get(timeout=max(1.0, deadline - time.monotonic())))
        for p in producers:
            p.join(30)
            assert p.exitcode == 0, f"a producer failed (exit code {p.exitcode})"
        # every job stored has been taken (and, at-least-once, deleted after it was counted)
        while (left := _left(server)) != 0:
            assert time.monotonic() < deadline, f"{left} jobs never consumed"
            time.sleep(0.1)
        stop.set()
        while len(reports) < len(processes):
            reports.append(results.get(timeout=max(1.0, deadline - time.monotonic())))
        for p in consumers:
            p.join(30)
            assert p.exitcode == 0, f"a consumer failed (exit code {p.exitcode})"
    finally:
        for p in processes:
            if p.is_alive():
                p.terminate()
                p.join(5)
    elapsed = time.monotonic() - start

    confirmed: Counter[int] = Counter()
    maybe: set[int] = set()
    delivered: Counter[int] = Counter()
    written = resent = producer_errors = consumer_errors = failed_batches = damaged = 0
    for r in reports:
        if r["role"] == "producer":
            confirmed.update(_ids(r["confirmed"]))
            maybe.update(_ids(r["maybe"]))
            written += r["written"]
            resent += r["resent"]
            producer_errors += r["errors"]
        else:
            delivered.update(_ids(r["delivered"]))
            consumer_errors += r["errors"]
            failed_batches += r["failed_batches"]
            damaged += r["damaged"]
    everything = set(range(JOBS))
    return {
        "mode": "at-most-once (drop=True)" if drop else "at-least-once (drop=False)",
        "jobs": JOBS,
        "producers": PRODUCERS,
        "consumers": CONSUMERS,
        "faults injected": faults,
        "jobs written (re-sends included)": written,
        "puts confirmed": sum(confirmed.values()),
        "maybe stored (not re-sent)": len(maybe),
        "re-sent": resent,
        "deliveries": sum(delivered.values()),
        "delivered (distinct)": len(delivered),
        "duplicated": sum(n - 1 for n in delivered.values() if n > 1),
        "lost (confirmed, never delivered)": len(set(confirmed) - set(delivered)),
        "maybe stored, never delivered": len(maybe - set(delivered)),
        "never put": len(everything - set(confirmed) - maybe),
        "unknown ids delivered": len(set(delivered) - everything),
        "socket errors seen by producers": producer_errors,
        "socket errors seen by consumers": consumer_errors,
        "batches partly failed": failed_batches,
        "damaged jobs deleted (beanstalkd restored them broken from its binlog)": damaged,
        "seconds": round(elapsed, 1),
        "_confirmed": confirmed,
        "_delivered": delivered,
    }


def _print(counts: dict[str, Any]) -> None:
    shown = {k: v for k, v in counts.items() if not k.startswith("_")}
    print("\nsoak: " + "; ".join(f"{k}: {v}" for k, v in shown.items()), flush=True)


@pytest.fixture
def binlog_server(server_factory: ServerFactory, tmp_path: Path) -> BeanstalkdServer:
    return server_factory(binlog_dir=str(tmp_path / "binlog"))


@pytest.mark.slow
def test_soak_at_least_once(binlog_server: BeanstalkdServer) -> None:
    counts = _run(binlog_server, drop=False)
    _print(counts)
    assert counts["faults injected"] >= 3
    assert counts["never put"] == 0 and counts["maybe stored (not re-sent)"] == 0
    assert counts["unknown ids delivered"] == 0
    # the guarantee: every job delivered
    assert counts["lost (confirmed, never delivered)"] == 0
    assert counts["delivered (distinct)"] == JOBS
    # duplicates come only from faults: per fault at most one batch in flight per process
    assert counts["duplicated"] <= counts["faults injected"] * (PRODUCERS + CONSUMERS) * _soak.BATCH


@pytest.mark.slow
def test_soak_at_most_once(binlog_server: BeanstalkdServer) -> None:
    counts = _run(binlog_server, drop=True)
    _print(counts)
    assert counts["faults injected"] >= 3
    assert counts["never put"] == 0 and counts["re-sent"] == 0
    assert counts["unknown ids delivered"] == 0
    # the guarantee: no job delivered twice
    assert counts["duplicated"] == 0
    # losses come only from faults: a batch whose deletes ran but whose replies were lost
    assert counts["lost (confirmed, never delivered)"] <= counts["faults injected"] * CONSUMERS * _soak.BATCH
    assert (
        counts["delivered (distinct)"]
        + counts["lost (confirmed, never delivered)"]
        + counts["maybe stored, never delivered"]
        == JOBS
    )
