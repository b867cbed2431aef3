"""``reserve_many`` when the backlog estimates (``stats-tube``, asked every ``BACKLOG_REFRESH`` s and
counted down between asks) are wrong: the jobs that are ready are still returned, at once. Three real
servers, both flavours; the estimates are kept stale on purpose (a longer refresh period)."""

from __future__ import annotations

import pytest

from beanstalkm import Client

from .conftest import MakeCluster

WAIT = 10.0


def test_reserve_many_with_stale_estimates_asks_the_servers_thought_empty(
    urls: list[str], make_cluster: MakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backlog estimates are wrong (the server thought full was drained by another consumer, one
    thought empty filled): ``reserve_many`` still returns the jobs that are ready, at once."""
    import beanstalkm._async.cluster
    import beanstalkm._sync.cluster

    for module in (beanstalkm._async.cluster, beanstalkm._sync.cluster):  # the estimates stay stale all along
        monkeypatch.setattr(module, "BACKLOG_REFRESH", 3600.0)
    full, filled = (Client.from_url(url, timeout=WAIT) for url in urls[:2])
    try:
        full.put_many([{"i": i} for i in range(10)], tube="t")
        cluster = make_cluster(urls, timeout=5)
        cluster.watch("t")
        cluster.ignore("default")
        assert [m.server for m in cluster.reserve_many(1)] == [urls[0]]  # estimates: 10, 0, 0
        full.watch("t")
        while full.reserve(timeout=0) is not None:  # another consumer drains it
            pass
        filled.put_many([{"j": j} for j in range(100)], tube="t")
        got = cluster.reserve_many(5, timeout=0, drop=False)
        assert [m.server for m in got] == [urls[1]] * 5
        assert sorted(m.body["j"] for m in got) == [0, 1, 2, 3, 4]
        for message in got:
            message.delete()
        assert filled.queue.stats_tube("t").current_jobs_ready == 95
    finally:
        full.close()
        filled.close()
