"""Fixtures for the cluster tests: three real beanstalkd servers (binlogs in ``tmp_path``, so a
SIGKILLed one restarts with its jobs) and clusters of both flavours behind one synchronous face."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from beanstalkm import Cluster
from beanstalkm.aio import AsyncCluster
from beanstalkm.testing import BeanstalkdServer
from integration._flavours import LoopThread, _Proxy

MakeCluster = Callable[..., Cluster]


def url_of(server: BeanstalkdServer) -> str:
    return f"beanstalk://{server.host}:{server.port}"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[BeanstalkdServer]]:
    """Three fresh servers, each with a binlog directory of its own."""
    made = [BeanstalkdServer(binlog_dir=str(tmp_path / f"binlog{i}")) for i in range(3)]
    try:
        for server in made:
            server.start()
        yield made
    finally:
        for server in made:
            server.stop()


@pytest.fixture
def urls(servers: list[BeanstalkdServer]) -> list[str]:
    return [url_of(s) for s in servers]


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    try:
        yield loop
    finally:
        loop.close()


class _ClusterProxy(_Proxy):
    """An ``AsyncCluster`` as a ``Cluster``: each call runs on the loop; messages come back as proxies."""

    __slots__ = ()

    def __enter__(self) -> _ClusterProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._target.close)


@pytest.fixture(params=["sync", "async"])
def make_cluster(request: pytest.FixtureRequest, loop_thread: LoopThread) -> Iterator[MakeCluster]:
    """``make_cluster(urls, **options)``: a ``Cluster``, or an ``AsyncCluster`` behind a sync face."""
    made: list[Any] = []

    def factory(*args: Any, **kwargs: Any) -> Cluster:
        if request.param == "sync":
            cluster: Any = Cluster(*args, **kwargs)
        else:
            cluster = _ClusterProxy(loop_thread, AsyncCluster(*args, **kwargs))
        made.append(cluster)
        return cast(Cluster, cluster)

    yield factory
    for cluster in made:
        cluster.close()
