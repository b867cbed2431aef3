"""``Cluster`` / ``AsyncCluster`` against three real servers: placement, messages that remember their
server (ids collide across servers on purpose), the verbs across servers, failover and health."""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter
from typing import Any

import pytest

from beanstalkm import (
    ArgumentTypeError,
    BatchFailed,
    Client,
    Cluster,
    ClusterStats,
    InvalidArgument,
    NotFound,
    NotIgnored,
    SocketError,
)
from beanstalkm.testing import BeanstalkdServer

from .conftest import MakeCluster, url_of

WAIT = 10.0  # the longest any bounded wait below may take
BAD: Any = 3  # an argument of the wrong type, on purpose


def test_round_robin_spreads_and_messages_remember_their_server(urls: list[str], make_cluster: MakeCluster) -> None:
    cluster = make_cluster(urls, timeout=5)
    sent = [cluster.put({"n": i}, tube="rr") for i in range(9)]
    assert Counter(m.server for m in sent) == dict.fromkeys(urls, 3)
    assert [m.uid for m in sent[:3]] == [1, 1, 1]  # ids collide across servers: the reference is (server, id)
    assert len({m.ref for m in sent}) == 9
    cluster.watch("rr")
    got = [cluster.reserve(timeout=0, drop=False) for _ in range(9)]
    assert cluster.reserve(timeout=0) is None
    by_ref = {m.ref: m.body for m in sent}
    for message in got:
        assert message is not None
        assert by_ref[message.ref] == message.body  # the job it says, on the server it says
        stats = message.stats()
        assert stats is not None and stats.state == "reserved"
    for message in got:
        assert message is not None
        message.delete()  # on the connection that reserved it, on its server
    assert cluster.stats().current_jobs_reserved == 0
    assert cluster.stats().total_jobs == 9


def test_hash_keeps_a_tube_or_key_on_one_server(urls: list[str], make_cluster: MakeCluster) -> None:
    cluster = make_cluster(urls, placement="hash", timeout=5)
    assert len({cluster.put(i, tube="orders").server for i in range(20)}) == 1
    by_key = {key: {cluster.put(i, tube="t", key=key).server for i in range(3)} for key in map(str, range(30))}
    assert all(len(where) == 1 for where in by_key.values())
    assert len({next(iter(w)) for w in by_key.values()}) == 3  # 30 keys use every server
    moved = make_cluster(urls[:2], placement="hash", timeout=5)  # one server less: only its keys move
    for key, where in by_key.items():
        server = next(iter(where))
        if server in urls[:2]:
            assert moved.put(0, tube="t", key=key).server == server


def test_callable_placement(urls: list[str], make_cluster: MakeCluster) -> None:
    seen: list[tuple[list[str], str, str | None]] = []

    def last(servers: list[str], tube: str, key: str | None) -> str:
        seen.append((servers, tube, key))
        return servers[-1]

    cluster = make_cluster(urls, placement=last, timeout=5)
    assert cluster.put("x", tube="c", key="k").server == urls[-1]
    assert seen == [(urls, "c", "k")]
    wrong = make_cluster(urls, placement=lambda servers, tube, key: "beanstalk://elsewhere:1", timeout=5)
    with pytest.raises(InvalidArgument, match="not one of those offered"):
        wrong.put("x")


def test_put_many_groups_by_server_in_order(urls: list[str], make_cluster: MakeCluster) -> None:
    cluster = make_cluster(urls, timeout=5)
    messages = cluster.put_many([{"n": i} for i in range(300)], tube="many")
    assert [m.body for m in messages] == [{"n": i} for i in range(300)]
    assert Counter(m.server for m in messages) == dict.fromkeys(urls, 100)
    per = cluster.stats_tube("many")
    assert {url: s.current_jobs_ready for url, s in per.items()} == dict.fromkeys(urls, 100)
    cluster.watch("many")
    got = cluster.reserve_many(300, timeout=1)
    assert sorted(m.body["n"] for m in got) == list(range(300))
    assert cluster.put_many([]) == []
    with pytest.raises(ArgumentTypeError):
        cluster.put_many("not a list")


def test_watch_ignore_and_the_verbs_across_servers(
    servers: list[BeanstalkdServer], urls: list[str], make_cluster: MakeCluster
) -> None:
    cluster = make_cluster(urls, timeout=5)
    assert cluster.watch("a") == 2
    assert cluster.ignore("default") == 1
    with pytest.raises(NotIgnored):
        cluster.ignore("a")
    for server in servers:
        with Client(server.host, server.port, timeout=5) as c:
            c.put("buried", tube="a")
            c.put("delayed", tube="a", delay=3600)
    stats = cluster.stats()
    assert isinstance(stats, ClusterStats)
    assert stats.current_jobs_ready == 3 and stats.current_jobs_delayed == 3
    assert (stats.total_jobs, stats.cmd_put, stats.current_jobs_buried, stats.job_timeouts) == (6, 6, 0, 0)
    assert set(stats.servers) == set(urls) and not stats.errors
    assert "a" in cluster.list_tubes()
    first = cluster.peek_ready("a")
    assert first is not None and first.body == "buried" and first.server == urls[0]
    for _ in range(3):
        message = cluster.reserve(timeout=1, drop=False)
        assert message is not None
        message.bury()
    assert cluster.reserve(timeout=0) is None
    buried = cluster.peek_buried("a")
    assert buried is not None and buried.body == "buried"
    assert cluster.peek_delayed("a") is not None
    assert cluster.peek_ready("a") is None
    peeked = cluster.peek(buried.ref)
    assert peeked is not None and peeked.ref == buried.ref
    assert cluster.peek((urls[1], 999)) is None
    assert cluster.kick("a", 2) == 2  # at most 2 in all, buried ones first
    assert cluster.stats().current_jobs_buried == 1
    # per server, as beanstalkd does: buried jobs if it has any, else delayed ones
    assert cluster.kick("a", 10) == 3  # the last buried one, and the delayed ones of the two servers without
    after = cluster.stats()
    assert after.current_jobs_buried == 0 and after.current_jobs_delayed == 1
    with pytest.raises(InvalidArgument, match="not a server of this cluster"):
        cluster.peek(("beanstalk://127.0.0.1:1", 1))
    with pytest.raises(ArgumentTypeError):
        cluster.peek(BAD)
    with pytest.raises(NotFound):
        cluster.stats_tube("nowhere")
    refs = [m.ref for m in [cluster.peek_ready("a")] if m is not None]
    cluster.delete_many(refs)
    with pytest.raises(BatchFailed) as failed:
        cluster.delete_many(refs)  # gone now: each a NotFound
    assert all(isinstance(e, NotFound) for e in failed.value.errors)


def test_bad_arguments_are_refused_before_anything_is_sent(urls: list[str], make_cluster: MakeCluster) -> None:
    with pytest.raises(InvalidArgument, match="invalid urls"):
        Cluster(["beanstalk://h:0"])
    with pytest.raises(InvalidArgument, match="listed twice"):
        Cluster([urls[0], urls[0]])
    with pytest.raises(InvalidArgument, match="placement"):
        Cluster(urls, placement="random")
    with pytest.raises(ArgumentTypeError, match="placement"):
        Cluster(urls, placement=BAD)
    with pytest.raises(InvalidArgument, match="beanstalks"):
        import ssl

        Cluster(urls, ssl=ssl.create_default_context())
    cluster = make_cluster(urls, timeout=5)
    with pytest.raises(ArgumentTypeError, match="key"):
        cluster.put("x", key=BAD)
    with pytest.raises(InvalidArgument, match="tube"):
        cluster.put("x", tube="-bad")
    with pytest.raises(InvalidArgument, match="priority"):
        cluster.put_many([1], priority=-1)
    with pytest.raises(ArgumentTypeError, match="drop"):
        cluster.reserve(drop=BAD)
    assert cluster.stats().cmd_put == 0


def test_a_dead_server_is_skipped_and_rejoins_after_its_backoff(
    servers: list[BeanstalkdServer], urls: list[str], make_cluster: MakeCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="beanstalkm")
    cluster = make_cluster(urls, timeout=5, backoff=0.2, max_backoff=0.4)
    cluster.put("warm", tube="d")  # every server gets a connection
    cluster.put("warm", tube="d")
    cluster.put("warm", tube="d")
    servers[1].kill()
    placed = [cluster.put(i, tube="d").server for i in range(6)]  # the dead one's puts provably did not land
    assert urls[1] not in placed and len(placed) == 6
    health = {h.url: h for h in cluster.servers}
    assert not health[urls[1]].up and health[urls[1]].last_error and health[urls[1]].failures >= 1
    assert health[urls[0]].up and health[urls[2]].up
    servers[1].start()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and urls[1] not in {cluster.put("again", tube="d").server for _ in range(3)}:
        time.sleep(0.05)
    health = {h.url: h for h in cluster.servers}
    assert health[urls[1]].up and health[urls[1]].failures == 0
    assert health[urls[1]].last_error is not None  # kept, for the record
    logged = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert ("beanstalkm.cluster", "WARNING") in {(n, lv) for n, lv, m in logged if f"server {urls[1]} is down" in m}
    assert ("beanstalkm.cluster", "INFO") in {(n, lv) for n, lv, m in logged if f"server {urls[1]} is back" in m}
    assert any(n == "beanstalkm.connection" and lv == "DEBUG" and "connected to" in m for n, lv, m in logged)


def test_no_server_up_is_a_socket_error(
    servers: list[BeanstalkdServer], urls: list[str], make_cluster: MakeCluster
) -> None:
    cluster = make_cluster(urls, timeout=5, backoff=0.1)
    for server in servers:
        server.kill()
    with pytest.raises(SocketError, match="no server of the cluster could serve it") as caught:
        cluster.put("x")
    assert not caught.value.maybe_executed
    with pytest.raises(SocketError, match="no server"):
        cluster.reserve(timeout=0)
    with pytest.raises(SocketError, match="no server"):
        cluster.stats()


def test_draining_server_gets_no_puts_but_its_jobs_are_reserved(
    servers: list[BeanstalkdServer], urls: list[str], make_cluster: MakeCluster
) -> None:
    cluster = make_cluster(urls, timeout=5)
    cluster.watch("dr")
    with Client(servers[0].host, servers[0].port, timeout=5) as c:
        c.put("old job", tube="dr")
    servers[0].signal(signal.SIGUSR1)  # drain mode: put answers DRAINING
    placed = [cluster.put(i, tube="dr").server for i in range(6)]
    assert urls[0] not in placed
    assert not {h.url: h for h in cluster.servers}[urls[0]].accepting_puts
    bodies = []
    for _ in range(7):
        message = cluster.reserve(timeout=1)
        assert message is not None
        bodies.append(message.body)
    assert "old job" in bodies
    assert url_of(servers[0]) == urls[0]


def test_put_many_sends_what_a_draining_server_refused_to_the_others(
    servers: list[BeanstalkdServer], urls: list[str], make_cluster: MakeCluster
) -> None:
    """A batch's items a server refused for sure (``DRAINING``: nothing stored) go to the other servers,
    as a single put's do; the server then gets no puts for a while, and nothing is stored twice."""
    cluster = make_cluster(urls, timeout=5)
    servers[0].signal(signal.SIGUSR1)  # drain mode: put answers DRAINING
    for _ in range(2):  # the second call: the server is known to refuse, it is not even tried
        messages = cluster.put_many(range(9), tube="dm")
        assert [m.body for m in messages] == list(range(9))  # every item sent, in order
        assert urls[0] not in {m.server for m in messages}
    assert not {h.url: h for h in cluster.servers}[urls[0]].accepting_puts
    stats = cluster.stats().servers
    assert stats[urls[0]].total_jobs == 0
    assert stats[urls[1]].total_jobs + stats[urls[2]].total_jobs == 18  # each stored once


def test_put_many_with_every_server_draining_fails_each_item_naming_the_servers(
    servers: list[BeanstalkdServer], urls: list[str], make_cluster: MakeCluster
) -> None:
    cluster = make_cluster(urls, timeout=5)
    for server in servers:
        server.signal(signal.SIGUSR1)
    with pytest.raises(BatchFailed) as caught:
        cluster.put_many(range(4), tube="dm")
    errors = [r for r in caught.value.results if isinstance(r, SocketError)]
    assert len(errors) == len(caught.value.results) == 4
    assert all(not r.maybe_executed and "no server" in str(r) and "DRAINING" in str(r) for r in errors)
    assert sum(s.total_jobs for s in cluster.stats().servers.values()) == 0


def test_an_unknown_outcome_is_raised_naming_the_server_and_never_resent(
    servers: list[BeanstalkdServer], urls: list[str], make_cluster: MakeCluster
) -> None:
    def first_up(up: list[str], tube: str, key: str | None) -> str:
        return urls[0] if urls[0] in up else up[0]

    cluster = make_cluster(urls, placement=first_up, timeout=1)
    assert cluster.put("warm", tube="u").server == urls[0]
    servers[0].pause()  # SIGSTOP: the put is written, its reply never comes
    try:
        with pytest.raises(SocketError) as caught:
            cluster.put("once", tube="u")
    finally:
        servers[0].resume()
    assert caught.value.maybe_executed is True
    assert f"put to {urls[0]}: outcome unknown (not resent)" in str(caught.value)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and cluster.stats().total_jobs < 2:
        time.sleep(0.05)
    stats = cluster.stats()
    assert stats.servers[urls[0]].total_jobs == 2  # it ran once the server woke: stored there, and only there
    assert stats.total_jobs == 2


def test_servers_in_their_backoff_are_tried_before_giving_up(
    servers: list[BeanstalkdServer], urls: list[str], make_cluster: MakeCluster
) -> None:
    cluster = make_cluster(urls[:2], timeout=5, backoff=60, max_backoff=60)
    cluster.watch("b")
    servers[0].kill()
    assert cluster.put("while the first is down", tube="b").server == urls[1]  # the first is now in a long backoff
    assert {h.url: h for h in cluster.servers}[urls[0]].retry_in > 10
    servers[0].start()
    servers[1].kill()
    message = cluster.put("last resort", tube="b")  # the second fails: the first is tried despite its backoff
    assert message.server == urls[0]
    got = cluster.reserve(timeout=2)
    assert got is not None and got.body == "last resort"


def test_a_cancelled_wait_gives_its_connections_back(servers: list[BeanstalkdServer], urls: list[str]) -> None:
    import asyncio

    from beanstalkm.aio import AsyncCluster

    async def main() -> tuple[object, list[int], int]:
        async with AsyncCluster(urls, timeout=5) as cluster:
            await cluster.watch("cancel")
            for _ in range(3):  # each cancelled in the middle of its wait on all three servers
                waiting = asyncio.ensure_future(cluster.reserve(timeout=10))
                await asyncio.sleep(0.2)
                waiting.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await waiting
            await cluster.put("after", tube="cancel")
            message = await cluster.reserve(timeout=5)
            stats = await cluster.stats()
            made = sum(len(server.clients) for server in cluster._servers)  # every client it ever made
            connections = [s.current_connections for s in stats.servers.values()]
            return (None if message is None else message.body), connections, made

    body, connections, made = asyncio.run(main())
    assert body == "after"
    assert made == 6, f"{made} clients made: the cancelled waits' consumers were not reused"
    assert all(n <= 2 for n in connections), connections  # one consumer and one producer each: nothing leaked
