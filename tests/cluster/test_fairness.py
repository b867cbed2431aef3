"""Fair, demand-driven reserve across servers: every backlog drains at the same pace, an empty server
never holds a reserve while another has jobs, and a blocking reserve wakes for a job on any server."""

from __future__ import annotations

import threading
import time
from collections import Counter

from beanstalkm import Client
from beanstalkm.testing import BeanstalkdServer

from .conftest import MakeCluster


def _fill(server: BeanstalkdServer, tube: str, n: int) -> None:
    with Client(server.host, server.port, timeout=10) as client:
        for start in range(0, n, 500):
            client.put_many([{"n": i} for i in range(start, min(n, start + 500))], tube=tube)


def test_backlogs_drain_at_the_same_pace(
    servers: list[BeanstalkdServer], urls: list[str], make_cluster: MakeCluster
) -> None:
    backlogs = dict(zip(urls, (1000, 500, 100), strict=True))
    for server, n in zip(servers, backlogs.values(), strict=True):
        _fill(server, "fair", n)
    cluster = make_cluster(urls, timeout=10)
    cluster.watch("fair")
    cluster.ignore("default")
    half = sum(backlogs.values()) // 2
    given: Counter[str] = Counter()
    for _ in range(half):
        message = cluster.reserve(timeout=5)
        assert message is not None
        given[message.server] += 1
    shares = {url: given[url] / backlogs[url] for url in urls}
    print(f"at the half-way point ({half} of {2 * half}), each server's share of its backlog: {shares}")
    for url, share in shares.items():
        assert 0.35 <= share <= 0.65, f"{url} gave {share:.0%} of its backlog at the half-way point: {shares}"
    rest = 0
    while cluster.reserve(timeout=0) is not None:
        rest += 1
    assert rest == half
    assert cluster.stats().current_jobs_reserved == 0


def test_a_blocking_reserve_wakes_for_a_job_on_any_server(
    servers: list[BeanstalkdServer], urls: list[str], make_cluster: MakeCluster
) -> None:
    cluster = make_cluster(urls, timeout=10)
    cluster.watch("wake")
    assert cluster.reserve(timeout=0) is None  # two of the three stay empty throughout
    put_at: list[float] = []

    def put_later() -> None:
        time.sleep(1.5)  # in the second of its one-second waits on all servers at once
        with Client(servers[2].host, servers[2].port, timeout=10) as client:
            put_at.append(time.monotonic())
            client.put("late", tube="wake")

    thread = threading.Thread(target=put_later)
    thread.start()
    message = cluster.reserve(timeout=10)
    returned = time.monotonic()
    thread.join(10)
    assert message is not None and message.body == "late" and message.server == urls[2]
    latency = returned - put_at[0]
    print(f"a blocking reserve returned {latency * 1000:.1f} ms after the put on the third server")
    assert latency < 1.0


def test_jobs_arriving_on_two_servers_during_a_wait_are_all_handed_out(
    servers: list[BeanstalkdServer], urls: list[str], make_cluster: MakeCluster
) -> None:
    cluster = make_cluster(urls, timeout=10)
    cluster.watch("race")
    got: list[object] = []

    def consume() -> None:
        for _ in range(2):
            message = cluster.reserve(timeout=5, drop=True)
            got.append(None if message is None else message.body)

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.3)  # the consumer waits on all three
    clients = [Client(s.host, s.port, timeout=10) for s in servers[:2]]
    for i, client in enumerate(clients):
        client.put(f"job {i}", tube="race")
    thread.join(15)
    assert sorted(map(str, got)) == ["job 0", "job 1"]  # the one taken by the wait that lost went back at once
    for client in clients:
        stats = client.queue.stats_tube("race")
        assert stats.current_jobs_ready == 0 and stats.current_jobs_reserved == 0
        client.close()
