"""Worker modules the tests run as real subprocesses: ``python -m beanstalkm.worker_main worker worker._apps:NAME``.

Each handler appends one line per event to the file named by ``$BSM_RUNLOG`` (``O_APPEND``, one
``write`` per line, so lines of concurrent processes never mix): ``S <id> <pid> <time> <run>`` when it
starts, ``E <id> <pid> <time> <run> <timeouts>`` when it finishes (``run`` names the run, ``timeouts``
is what ``stats-job`` says then). Both flavours of each worker: ``NAME`` (threads) and ``NAME_async`` (tasks).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

from beanstalkm import Message, SocketError, Worker
from beanstalkm.aio import AsyncMessage, AsyncWorker

RETRY_DELAYS = [1, 2, 3]


def note(kind: str, job_id: object, run: str = "-", extra: str = "") -> None:
    path = os.environ.get("BSM_RUNLOG")
    if not path:
        return
    line = f"{kind} {job_id} {os.getpid()} {time.time():.6f} {run} {extra}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


# -- the soak: jobs that sleep "sleep" seconds (some for longer than their TTR) ---------------------

soak = Worker()


@soak.handler("soak", retries=50)
def soak_job(message: Message) -> None:
    run = uuid.uuid4().hex[:12]
    note("S", message.body["id"], run)
    time.sleep(message.body["sleep"])
    stats = message.stats()
    note("E", message.body["id"], run, str(stats.timeouts if stats is not None else -1))


soak_async = AsyncWorker()


@soak_async.handler("soak", retries=50)
async def soak_job_async(message: AsyncMessage) -> None:
    run = uuid.uuid4().hex[:12]
    note("S", message.body["id"], run)
    await asyncio.sleep(message.body["sleep"])
    stats = await message.stats()
    note("E", message.body["id"], run, str(stats.timeouts if stats is not None else -1))


# -- a poison job: kills its worker process every time ------------------------------------------------

poison = Worker()
poison_async = AsyncWorker()


@poison.handler("poison", retries=2)
def poison_job(message: Message) -> None:
    note("S", message.uid)
    os._exit(17)


@poison_async.handler("poison", retries=2)
async def poison_job_async(message: AsyncMessage) -> None:
    note("S", message.uid)
    os._exit(17)


# -- a job that raises: retried with the configured backoff, then buried ---------------------------

raising = Worker()
raising_async = AsyncWorker()


@raising.handler("raising", retries=len(RETRY_DELAYS), backoff=RETRY_DELAYS)
def raising_job(message: Message) -> None:
    note("S", message.uid)
    raise ValueError(f"boom on job {message.uid}")


@raising_async.handler("raising", retries=len(RETRY_DELAYS), backoff=RETRY_DELAYS)
async def raising_job_async(message: AsyncMessage) -> None:
    note("S", message.uid)
    raise ValueError(f"boom on job {message.uid}")


# -- slow jobs, for the shutdown: each sleeps "sleep" seconds ----------------------------------------

slow = Worker(concurrency=4)
slow_async = AsyncWorker(concurrency=4)


@slow.handler("slow")
def slow_job(message: Message) -> None:
    note("S", message.uid)
    time.sleep(message.body["sleep"])
    note("E", message.uid)


@slow_async.handler("slow")
async def slow_job_async(message: AsyncMessage) -> None:
    note("S", message.uid)
    await asyncio.sleep(message.body["sleep"])
    note("E", message.uid)


# -- a job that raises (body {"n": "poison"}), past its one attempt: buried -----------------------------

poison_raises = Worker()


@poison_raises.handler("t", retries=0)
def poison_raises_job(message: Message) -> None:
    if message.body["n"] == "poison":
        raise ValueError("bad job")


# -- a worker with a bug in its slot (not in a handler): the slot dies, the worker stops ---------------


class _SlotBug(Worker):
    def _handle(self, *args: object) -> None:
        raise RuntimeError("a bug in the slot")


slot_bug = _SlotBug()


class _SlotSocketBug(Worker):
    """A slot bug that happens to raise a SocketError (not a server's doing: none is contacted)."""

    def _handle(self, *args: object) -> None:
        raise SocketError("a bug that raised a SocketError")


slot_socket_bug = _SlotSocketBug()


@slot_socket_bug.handler("t")
def slot_socket_bug_job(message: Message) -> None:
    pass


@slot_bug.handler("t")
def slot_bug_job(message: Message) -> None:
    pass
