"""A job whose lease was lost (docs/worker.md, "The lease keeper") is never settled by the worker, whatever
state the server has it in when its handler returns: both flavours, a real beanstalkd frozen (SIGSTOP)
past the job's TTR, so the keeper's touch finds the lease gone."""

from __future__ import annotations

import asyncio
import time

import pytest

from beanstalkm import Client, Message, Worker
from beanstalkm.aio import AsyncMessage, AsyncWorker
from beanstalkm.testing import BeanstalkdServer

from ._support import wait_for
from .test_worker import FLAVOURS, run_worker

FROZEN = 2.2
"""How long the server is frozen while the handler runs: past the job's TTR (1 s)."""


@pytest.mark.parametrize("then", ["ready", "buried"])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_job_whose_lease_was_lost_is_not_deleted_when_its_handler_returns(
    server: BeanstalkdServer, flavour: str, then: str
) -> None:
    """The TTR ran out under the running handler (the keeper recorded the lease lost); then the job is
    ready on the server (nobody took it yet), or another client took it and buried it (its own failure).
    Failed before the fix: the handler's return still sent the delete, which beanstalkd takes from any
    connection for a ready, delayed or buried job, so the job was deleted (and counted ``succeeded``):
    the other client's buried job vanished under it. Now it is left as the server has it."""
    with Client(server.host, server.port) as client, Client(server.host, server.port) as other:
        other.watch("t")
        job = client.put({"n": 1}, tube="t", ttr=1, priority=7).uid
        cls = Worker if flavour == "threads" else AsyncWorker
        worker = cls(host=server.host, port=server.port, grace=1, timeout=10)

        def after_loss() -> None:  # what happens to the job on the server before the handler returns
            if then == "buried":
                got = other.reserve(timeout=5, drop=False)
                assert got is not None and got.uid == job
                got.bury()

        if isinstance(worker, AsyncWorker):

            @worker.handler("t")
            async def handle_async(message: AsyncMessage) -> None:
                server.pause()
                try:
                    await asyncio.sleep(FROZEN)  # past the TTR: on resume the server times the job out
                finally:
                    server.resume()
                for _ in range(200):
                    if message.lease_lost:
                        break
                    await asyncio.sleep(0.05)
                assert message.lease_lost
                after_loss()

        else:

            @worker.handler("t")
            def handle(message: Message) -> None:
                server.pause()
                try:
                    time.sleep(FROZEN)
                finally:
                    server.resume()
                wait_for(lambda: message.lease_lost, timeout=10, what="the keeper to see the lease lost")
                after_loss()

        try:
            stats = run_worker(worker, max_jobs=1)
        finally:
            server.resume()
        assert stats.lease_lost == 1 and stats.succeeded == 0, stats
        state = client.queue.stats_job(job)  # NotFound here: the worker deleted a job it no longer held
        assert (state.state, state.pri, state.timeouts) == (then, 7, 1)
