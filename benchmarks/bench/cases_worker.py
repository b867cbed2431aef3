"""The worker cases: ``beanstalkm.Worker`` with a no-op handler, against the hand-written greenstalk loop.

A chunk of ``k`` operations is one ``worker.run(max_jobs=k)``: its slots connect, take ``k`` jobs
(each: the previous job's delete pipelined with a ``reserve-with-timeout 0``, then a ``stats-job``
for its attempts, priority and TTR, then the handler), and stop. So each chunk also pays the
worker's start and stop (a connection and a thread per slot, and the lease keeper's thread).
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
