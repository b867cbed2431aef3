"""One Connection shared by 8 threads: bytes never interleave, no thread gets another's reply."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from beanstalkm import Client, Connection, Message, ServerStats, TubeStats
from beanstalkm.testing import BeanstalkdServer

THREADS = 8
ROUNDS = 60  # each round is 6 operations: 480 per thread, 3840 in all


def test_one_connection_shared_by_eight_threads(server: BeanstalkdServer) -> None:
    client = Client(server.host, server.port, timeout=30, validate=False)
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    ops: Counter[str] = Counter()
    ids: list[int] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        mine: list[int] = []
        done: Counter[str] = Counter()
        tube = f"thread-{k}"
        start.wait()
        try:
            for i in range(ROUNDS):
                marker = f"T{k}-{i}-".encode() + bytes([65 + k]) * (i % 7 * 300)  # varied sizes
                # a raw put to the shared used tube, checked by peeking its id
                job_id = client.queue.put(marker)
                peeked = client.queue.peek(job_id)
                assert peeked is not None and peeked.raw == marker, f"thread {k}: peek {job_id} is not my job"
                # an envelope routed to this thread's tube: the route and the put must not be split
                message = client.put({"thread": k, "i": i}, tube=tube)
                job = client.queue.stats_job(message.uid)
                assert job.tube == tube, f"thread {k}: job {message.uid} landed in {job.tube}"
                # a reply of another shape: stats (server-wide YAML)
                assert isinstance(client.queue.stats(), ServerStats)
                # a pipelined batch: its replies come back together and in order
                with client.pipeline() as p:
                    p.put(marker + b"!").stats_tube(tube).peek(job_id)
                assert p.results is not None
                batch_id, tube_stats, again = p.results
                assert isinstance(batch_id, int)
                assert isinstance(tube_stats, TubeStats) and tube_stats.name == tube
                assert isinstance(again, Message) and again.raw == marker
                peeked = client.queue.peek(batch_id)
                assert peeked is not None and peeked.raw == marker + b"!"
                mine += [job_id, message.uid, batch_id]
                done.update(put=3, peek=3, stats_job=1, stats=1, stats_tube=1)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        with lock:
            ids.extend(mine)
            ops.update(done)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[0]
    assert len(ids) == len(set(ids)) == THREADS * ROUNDS * 3
    with Connection(server.host, server.port, timeout=10) as observer:
        stats = observer.queue.stats()
        assert stats.total_jobs == len(ids)
        for k in range(THREADS):
            assert observer.queue.stats_tube(f"thread-{k}").total_jobs == ROUNDS
    assert client.queue.using() == "default"
    total = sum(ops.values())
    print(f"\nthreads: {THREADS} threads, {total} operations on one connection: {dict(ops)}", flush=True)


def test_a_failing_thread_does_not_desync_the_others(server: BeanstalkdServer) -> None:
    """Threads whose commands fail (bad arguments, NOT_FOUND, a batch item failing) share the
    connection with threads whose commands succeed: every thread still gets its own replies."""
    client = Client(server.host, server.port, timeout=30, validate=False)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def good(k: int) -> None:
        try:
            for i in range(150):
                body = f"good-{k}-{i}".encode()
                job_id = client.queue.put(body)
                peeked = client.queue.peek(job_id)
                assert peeked is not None and peeked.raw == body
        except BaseException as exc:
            with lock:
                errors.append(exc)

    def bad(k: int) -> None:
        expected: list[type[BaseException]] = []
        seen: list[type[BaseException]] = []
        try:
            for _ in range(150):
                for call, error in _failing_calls(client):
                    expected.append(error)
                    try:
                        call()
                    except BaseException as exc:
                        seen.append(type(exc))
            assert [issubclass(s, e) for s, e in zip(seen, expected, strict=True)] == [True] * len(expected)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=good, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=bad, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[0]
    assert client.connected


def _failing_calls(client: Client) -> list[tuple[Any, type[BaseException]]]:
    from beanstalkm import BatchFailed, InvalidArgument, NotFound

    def batch() -> None:
        with client.pipeline() as p:
            p.put(b"in a failing batch").delete(999_999_999).stats()

    return [
        (lambda: client.queue.delete(999_999_999), NotFound),
        (lambda: client.queue.use(""), InvalidArgument),
        (lambda: client.put("x", tube="bad tube"), InvalidArgument),
        (batch, BatchFailed),
        (lambda: client.queue.stats_job(999_999_999), NotFound),
    ]
