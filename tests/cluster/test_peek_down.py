"""``peek_ready/delayed/buried(tube)`` when servers are down (docs/cluster.md, "Failure semantics"): the
cluster raises only when no server can serve the call, and a peek that reached no server is such a call:
``None`` would say there is no such job. Three real servers, both flavours."""

from __future__ import annotations

import pytest

from beanstalkm import Client, SocketError
from beanstalkm.testing import BeanstalkdServer

from .conftest import MakeCluster


def test_a_peek_that_reaches_no_server_raises_instead_of_saying_none(
    servers: list[BeanstalkdServer], urls: list[str], make_cluster: MakeCluster
) -> None:
    """Failed before the fix: with every server down each peek returned None, as for an empty tube."""
    with Client.from_url(urls[0]) as client:
        client.watch("t")
        client.put({"n": 1}, tube="t", delay=60)
        client.put({"n": 2}, tube="t")
        reserved = client.reserve(timeout=0, drop=False)
        assert reserved is not None
        reserved.bury()
    cluster = make_cluster(urls, timeout=2)
    assert cluster.peek_buried("t") is not None
    servers[0].kill()
    assert cluster.peek_delayed("t") is None  # the others answered: they have none (a partial answer)
    for server in servers[1:]:
        server.kill()
    for peek in (cluster.peek_ready, cluster.peek_delayed, cluster.peek_buried):
        with pytest.raises(SocketError, match="no server of the cluster could serve it"):
            peek("t")
