"""A server that refuses the ``use`` the client sends to route a put (``OUT_OF_MEMORY``: beanstalkd says so
when it cannot make the tube, and the tube in force stays) while the put itself runs, stored in that tube.
The put's error then carries the job it stored (``outcome``): it is not a refusal of the put, so the cluster
must not send it to another server (that would store it twice). A real server cannot be made to do this on
demand, so a scripted fake stands beside a real beanstalkd."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from beanstalkm import BatchFailed, Client, OutOfMemory
from beanstalkm.testing import BeanstalkdServer
from integration._fake import FakeServer

from .conftest import MakeCluster, url_of


def _refuse_use(line: str, body: bytes | None) -> object:
    """``use`` gets ``OUT_OF_MEMORY``; everything else the fake's minimal beanstalkd (``put`` stored)."""
    return b"OUT_OF_MEMORY\r\n" if line.startswith("use ") else NotImplemented


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    made = FakeServer(_refuse_use)
    try:
        yield made
    finally:
        made.close()


def _url(fake: FakeServer) -> str:
    return f"beanstalk://{fake.host}:{fake.port}"


def _jobs(server: BeanstalkdServer, tube: str) -> int:
    with Client(server.host, server.port, timeout=5) as client:
        return client.queue.stats_tube(tube).current_jobs_ready if tube in client.queue.list_tubes() else 0


def test_a_put_whose_use_was_refused_but_ran_is_not_sent_again(
    servers: list[BeanstalkdServer], fake: FakeServer, make_cluster: MakeCluster
) -> None:
    fake_url = _url(fake)

    def fake_first(up: list[str], tube: str, key: str | None) -> str:
        return fake_url if fake_url in up else up[0]

    cluster = make_cluster([fake_url, url_of(servers[0])], placement=fake_first, timeout=5)
    with pytest.raises(OutOfMemory) as caught:
        cluster.put({"n": 1}, tube="work")
    assert caught.value.outcome == 1  # stored on the fake, in its tube in force
    assert fake.commands("put") == 1 and _jobs(servers[0], "work") == 0  # and nowhere else


def test_put_many_items_whose_use_was_refused_but_ran_are_reported_not_sent_again(
    servers: list[BeanstalkdServer], fake: FakeServer, make_cluster: MakeCluster
) -> None:
    cluster = make_cluster([_url(fake), url_of(servers[0])], timeout=5)  # round-robin: one item each
    with pytest.raises(BatchFailed) as caught:
        cluster.put_many([{"n": 1}, {"n": 2}], tube="work")
    refused = [r for r in caught.value.results if isinstance(r, OutOfMemory)]
    assert len(refused) == 1 and refused[0].outcome == 1  # the fake's item: stored there, reported so
    assert fake.commands("put") == 1 and _jobs(servers[0], "work") == 1  # the real server's one item only
