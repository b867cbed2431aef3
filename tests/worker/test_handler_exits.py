"""A handler that raises a BaseException that is not an Exception (docs/worker.md, "Retries and backoff"):
``SystemExit`` (``sys.exit()`` in a handler), ``KeyboardInterrupt``, or in asyncio a ``CancelledError``
of its own (awaiting a future someone else cancelled). Both flavours, a real beanstalkd."""

from __future__ import annotations

import asyncio
import sys

import pytest

from beanstalkm import Client, FailureRecord, Message, Worker
from beanstalkm.aio import AsyncMessage, AsyncWorker
from beanstalkm.testing import BeanstalkdServer

from .test_worker import run_worker


def _raise(kind: str) -> None:
    if kind == "SystemExit":
        sys.exit(3)
    if kind == "KeyboardInterrupt":
        raise KeyboardInterrupt
    raise asyncio.CancelledError  # as awaiting a cancelled future does, the task itself not cancelled


@pytest.mark.parametrize(
    ("flavour", "kind"),
    [
        ("threads", "SystemExit"),
        ("threads", "KeyboardInterrupt"),
        ("tasks", "SystemExit"),
        ("tasks", "CancelledError"),
    ],
)
def test_a_handler_raising_a_base_exception_fails_its_job_and_the_worker_goes_on(
    server: BeanstalkdServer, flavour: str, kind: str
) -> None:
    """The job fails like any other (retried, then buried with a record naming the exception, at its own
    priority); the slot goes on with the other jobs. Failed before the fix: the exception ended the slot
    silently (no log, no error), so ``run(burst=True)`` returned as if done with the other jobs still ready
    (and the CLI exited 0); without burst, a worker of one slot stopped consuming and exited 0."""
    with Client(server.host, server.port) as client:
        bad = client.put({"n": "bad"}, tube="t", priority=5).uid
        good = [client.put({"n": i}, tube="t", priority=10 + i).uid for i in range(3)]
        cls = Worker if flavour == "threads" else AsyncWorker
        worker = cls(host=server.host, port=server.port, grace=1)
        done: list[int] = []
        buried: list[FailureRecord] = []
        worker.on_bury(lambda message, record: buried.append(record))
        if isinstance(worker, AsyncWorker):

            @worker.handler("t", retries=0)
            async def handle_async(message: AsyncMessage) -> None:
                if message.body["n"] == "bad":
                    _raise(kind)
                done.append(message.uid)

        else:

            @worker.handler("t", retries=0)
            def handle(message: Message) -> None:
                if message.body["n"] == "bad":
                    _raise(kind)
                done.append(message.uid)

        stats = run_worker(worker, burst=True)
        assert sorted(done) == good, (done, stats)
        assert (stats.succeeded, stats.failed, stats.buried) == (3, 1, 1), stats
        assert [(r.job_id, r.reason, r.exception) for r in buried] == [(bad, "raised", kind)]
        job = client.queue.stats_job(bad)
        assert (job.state, job.pri) == ("buried", 5)
