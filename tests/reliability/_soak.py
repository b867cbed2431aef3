"""The producer and consumer processes of the soak test (a module, so spawned children can import it).

A job is identified by the ``id`` in its body, unique across the run.

Producers put their range of ids in batches (``put_many``). On a
``SocketError`` nothing is retried blindly: if ``maybe_executed`` is False
nothing was sent and the batch is sent again; if True the batch may be
stored, and the producer either re-sends it (``resend``: consumers then see
duplicates, which are counted) or records its ids as "maybe stored".

Consumers take batches (``reserve_many``). With ``drop=False`` a job counts
as delivered once the consumer holds it, and is deleted after that
(at-least-once). With ``drop=True`` ``reserve_many`` deletes the batch before
returning it, so a job counts as delivered only once its delete succeeded
(at-most-once).
"""

from __future__ import annotations

import time
from array import array
from typing import Any

from beanstalkm import BatchFailed, BeanstalkmException, Client, CorruptJob, Message, SocketError

TUBE = "soak"
BATCH = 100
RETRY_PAUSE = 0.02
CLIENT_TIMEOUT = 10.0


def _client(host: str, port: int, consumer: bool) -> Client:
    client = Client(host, port, timeout=CLIENT_TIMEOUT, validate=False)
    if consumer:
        client.watch(TUBE)
        client.ignore("default")
    return client


def _add(counter: Any, n: int) -> None:
    with counter.get_lock():
        counter.value += n


def producer(host: str, port: int, first: int, last: int, resend: bool, progress: Any, results: Any) -> None:
    """Put ids ``first`` to ``last - 1``; report what was confirmed, maybe stored, re-sent."""
    confirmed = array("q")
    maybe = array("q")
    written = 0  # jobs in put_many calls that reached the socket (re-sends included)
    resent = 0
    errors = 0
    client: Client | None = None
    for start in range(first, last, BATCH):
        ids = range(start, min(start + BATCH, last))
        while True:
            try:
                if client is None:
                    client = _client(host, port, consumer=False)
                client.put_many([{"id": i} for i in ids], tube=TUBE, ttr=600)
            except SocketError as exc:
                errors += 1
                if not exc.maybe_executed:  # nothing was sent: sending it now is safe
                    time.sleep(RETRY_PAUSE)
                    continue
                written += len(ids)
                if resend:  # at-least-once producer: send again, consumers dedupe by id
                    resent += len(ids)
                    time.sleep(RETRY_PAUSE)
                    continue
                maybe.extend(ids)  # at-most-once producer: never send twice
                break
            written += len(ids)
            confirmed.extend(ids)
            break
        _add(progress, len(ids))
    if client is not None:
        client.close()
    results.put(
        {
            "role": "producer",
            "confirmed": confirmed.tobytes(),
            "maybe": maybe.tobytes(),
            "written": written,
            "resent": resent,
            "errors": errors,
        }
    )


def consumer(host: str, port: int, drop: bool, stop: Any, progress: Any, results: Any) -> None:
    """Take jobs until ``stop`` is set and nothing is left; report every id delivered."""
    delivered = array("q")
    errors = 0
    failed_batches = 0
    damaged = 0  # jobs beanstalkd restored damaged from its binlog after a kill: deleted, never delivered
    client: Client | None = None
    while True:
        messages: list[Message] = []
        try:
            if client is None:
                client = _client(host, port, consumer=True)
            messages = client.reserve_many(BATCH, timeout=1, drop=drop)
        except SocketError:
            errors += 1  # with drop, the batch was not handed over: not delivered
            time.sleep(RETRY_PAUSE)
            continue
        except BatchFailed as exc:  # e.g. some deletes failed: the messages in results are ours
            failed_batches += 1
            messages = [r for r in exc.results if isinstance(r, Message)]
            for result in exc.results:
                if isinstance(result, CorruptJob) and client is not None:
                    damaged += 1
                    try:
                        client.queue.delete(result.job_id)
                    except BeanstalkmException:
                        pass  # a restart released it: the next consumer to reserve it deletes it
        if not messages:
            if stop.is_set():
                break
            continue
        delivered.extend(m.body["id"] for m in messages)  # the work: here, taking note of it
        _add(progress, len(messages))
        if not drop and client is not None:
            try:
                client.delete_many(messages)
            except SocketError:
                errors += 1  # not deleted (or maybe): the jobs come back, a duplicate delivery
            except BatchFailed:
                failed_batches += 1  # released by a restart and taken by another consumer
    if client is not None:
        client.close()
    results.put(
        {
            "role": "consumer",
            "delivered": delivered.tobytes(),
            "errors": errors,
            "failed_batches": failed_batches,
            "damaged": damaged,
        }
    )
