"""A producer/consumer walkthrough against a private beanstalkd (``make demo``).

Starts its own beanstalkd on a free loopback port, shows put, reserve,
release, bury, kick, delays, priorities, stats and batches, and stops the
server at the end.
"""

from __future__ import annotations

import time

import beanstalkm
from beanstalkm.testing import BeanstalkdServer


def say(text: str) -> None:
    print(f"  {text}")


def main() -> None:
    with BeanstalkdServer() as server:
        print(f"beanstalkd started on {server.host}:{server.port}")
        with (
            beanstalkm.Client(host=server.host, port=server.port, timeout=5) as producer,
            beanstalkm.Client(host=server.host, port=server.port, timeout=5) as worker,
        ):
            worker.watch("emails")
            worker.ignore("default")
            print("\n1. A producer puts jobs; a worker reserves them")
            for n in range(3):
                message = producer.put({"to": f"user{n}@example.org", "n": n}, tube="emails")
                say(f"put job {message.uid}: {message.body}")
            for _ in range(3):
                job = worker.reserve(timeout=1, drop=False)
                assert job is not None
                say(f"reserved job {job.uid}: sending mail to {job.body['to']} ... done, delete")
                job.delete()

            print("\n2. A failed job is released, then buried, then kicked back")
            producer.put({"to": "flaky@example.org"}, tube="emails")
            job = worker.reserve(timeout=1, drop=False)
            assert job is not None
            job.release()
            say(f"released job {job.uid}: state {worker.queue.stats_job(job.uid).state}")
            job = worker.reserve(timeout=1, drop=False)
            assert job is not None
            job.bury()
            say(f"buried job {job.uid}: state {worker.queue.stats_job(job.uid).state}")
            producer.queue.use("emails")
            say(f"kick 10 buried jobs in 'emails': kicked {producer.queue.kick(10)}")
            job = worker.reserve(timeout=1)
            assert job is not None
            say(f"reserved job {job.uid} again and dropped it on receipt (deleted: {job.deleted})")

            print("\n3. Priorities: lower numbers first, FIFO within one priority")
            for body, priority in (("low", 1000), ("urgent", 1), ("normal", 500), ("urgent-2", 1)):
                producer.put(body, tube="emails", priority=priority)
                say(f"put {body!r} with priority {priority}")
            order = [m.body for m in worker.reserve_many(4, timeout=1)]
            say(f"reserved in order: {order}")

            print("\n4. A delayed job becomes ready when its delay has passed")
            started = time.monotonic()
            producer.put("later", tube="emails", delay=1)
            say(f"reserve(timeout=0) right away: {worker.reserve(timeout=0)}")
            job = worker.reserve(timeout=3)
            assert job is not None
            say(f"reserved {job.body!r} after {time.monotonic() - started:.1f} s")

            print("\n5. Batches: one round trip for many commands")
            started = time.perf_counter()
            sent = producer.put_many([{"n": n} for n in range(1000)], tube="emails")
            put_s = time.perf_counter() - started
            started = time.perf_counter()
            got = worker.reserve_many(1000, timeout=0)
            reserve_s = time.perf_counter() - started
            say(
                f"put_many: {len(sent)} jobs in {put_s * 1000:.1f} ms; reserve_many+delete: {len(got)} in "
                f"{reserve_s * 1000:.1f} ms"
            )

            print("\n6. Statistics, typed")
            stats = producer.queue.stats()
            tube = producer.queue.stats_tube("emails")
            say(f"server {stats.version}: total jobs {stats.total_jobs}, connections {stats.current_connections}")
            say(f"tube 'emails': ready {tube.current_jobs_ready}, total {tube['total-jobs']}")

            print("\n7. Errors are typed and name the bad value")
            try:
                producer.put("x", tube="bad name")
            except beanstalkm.InvalidArgument as exc:
                say(f"{type(exc).__name__}: {exc}")
            try:
                producer.queue.delete(999999)
            except beanstalkm.NotFound as exc:
                say(f"{type(exc).__name__}: {exc}")
        print("\nbeanstalkd stopped; demo done")


if __name__ == "__main__":
    main()
