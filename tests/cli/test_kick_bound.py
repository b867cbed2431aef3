"""``kick TUBE N`` with several servers kicks at most N jobs in all (docs/cli.md, "Commands"), as
``Cluster.kick(tube, bound)`` does. Real servers, the real command as a subprocess."""

from __future__ import annotations

from beanstalkm.testing import ServerFactory

from ._support import client, ok, url


def test_kick_n_over_several_servers_kicks_n_in_all(server_factory: ServerFactory) -> None:
    """Three buried jobs on each of two servers. Failed before the fix: ``kick t 2`` kicked 2 on each
    server (4 in all, "kicked 4 job(s)")."""
    a, b = server_factory(), server_factory()
    for server in (a, b):
        with client(server) as made:
            made.watch("t")
            for n in range(3):
                made.put({"n": n}, tube="t")
                reserved = made.reserve(timeout=0, drop=False)
                assert reserved is not None
                reserved.bury()

    def buried() -> list[int]:
        counts = []
        for server in (a, b):
            with client(server) as made:
                counts.append(made.queue.stats_tube("t").current_jobs_buried)
        return counts

    two = ok("--json", "kick", "t", "2", servers=[a, b]).json()
    assert two["kicked"] == 2 and two["servers"] == [{"server": url(a), "kicked": 2}]
    assert buried() == [1, 3]
    three = ok("--json", "kick", "t", "3", servers=[a, b]).json()  # the rest of a, then b
    assert three["kicked"] == 3 and [s["kicked"] for s in three["servers"]] == [1, 2]
    assert buried() == [0, 1]
    rest = ok("kick", "t", servers=[a, b])  # no N: all of them, on every server
    assert rest.out.strip() == "kicked 1 job(s) in tube 't'" and buried() == [0, 0]
