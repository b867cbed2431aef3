"""The worker cases: ``beanstalkm.Worker`` with a no-op handler, against the hand-written greenstalk loop.

A chunk of ``k`` operations is one ``worker.run(max_jobs=k)``, so each chunk also pays the worker's
start and stop, which the greenstalk loop (one connection for the whole run) does not: a connection
per slot (TCP connect, ``quit`` at the end), a thread per slot (``run``'s own thread is the lease
keeper: no thread of its own), the first job's two round trips (its write carries the watch-list
change, the reserve and a ``peek-ready``; its ``stats-job`` follows), and the last job's delete on
its own. In between, a job is one round trip: the previous job's delete, a ``reserve-with-timeout 0``
and the ``stats-job`` of the job the slot expects (the id ``peek-ready`` showed, or the last id + 1
once ids come in sequence), in one write.
"""

from __future__ import annotations

from beanstalkm import Message, Worker
from bench.env import Env, Prepare, Prepared


def bsm_worker(concurrency: int) -> Prepare:
    """A worker of ``concurrency`` slots whose handler does nothing."""

    def prepare(env: Env, tube: str, n: int) -> Prepared:
        host, port = env.addr
        worker = Worker(host=host, port=port, concurrency=concurrency, validate=True)

        @worker.handler(tube)
        def handle(message: Message) -> None:
            pass

        def run(k: int) -> None:
            before = worker.stats.succeeded
            done = worker.run(max_jobs=k, handle_signals=False).succeeded - before
            if done != k:
                raise RuntimeError(f"the worker finished {done} of {k} jobs")

        return run, lambda: None

    return prepare
