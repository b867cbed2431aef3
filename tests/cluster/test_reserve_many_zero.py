"""``reserve_many(n)`` never takes more than ``n`` jobs (docs/cluster.md, "Failure semantics"): with
``n`` 0 it takes none, and a wait (``timeout``) for the first of ``n`` 1 takes that one only. Three real
servers, both flavours. With ``drop=True`` a job taken beyond ``n`` is deleted with nobody asking for it."""

from __future__ import annotations

import threading
import time

from beanstalkm import Client

from .conftest import MakeCluster


def _ready(urls: list[str]) -> int:
    total = 0
    for url in urls:
        with Client.from_url(url) as client:
            total += client.queue.stats().current_jobs_ready
    return total


def test_reserve_many_of_zero_takes_no_job(urls: list[str], make_cluster: MakeCluster) -> None:
    """Failed before the fix: the backlog estimates gave every server a share of 0, so none was asked, and
    the sweep of "the servers not asked" then took (and, with ``drop=True``, deleted) a job."""
    cluster = make_cluster(urls, timeout=5)
    cluster.put_many([{"n": i} for i in range(9)], tube="t")
    cluster.watch("t")
    for message in [cluster.reserve(timeout=1, drop=False) for _ in range(9)]:
        assert message is not None
        message.bury()
    assert cluster.kick("t", 4) == 4
    assert cluster.reserve_many(0) == []
    assert cluster.reserve_many(0, timeout=1, drop=False) == []
    assert _ready(urls) == 4  # nothing taken, nothing deleted


def test_reserve_many_of_one_that_waits_returns_one_job(urls: list[str], make_cluster: MakeCluster) -> None:
    """Nothing ready, then two jobs arrive during the wait: ``reserve_many(1, timeout=...)`` returns one.
    Failed before the fix: the first came from the wait, then ``reserve_many(0)`` for "the rest" took the
    second too (deleted, with ``drop=True``)."""
    cluster = make_cluster(urls, timeout=5)
    cluster.watch("t")
    assert cluster.reserve_many(1) == []

    def put_later() -> None:
        time.sleep(0.3)
        with Client.from_url(urls[0]) as client:
            client.put_many([{"n": 1}, {"n": 2}], tube="t")

    putter = threading.Thread(target=put_later, daemon=True)
    putter.start()
    got = cluster.reserve_many(1, timeout=5)
    putter.join(10)
    assert len(got) == 1, got
    assert _ready(urls) == 1  # the other job is still there
