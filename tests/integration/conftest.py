"""Fixtures that run the integration tests against both flavours of the client.

``flavour`` is parametrized ("sync", "async"); ``make_client``/``make_connection``
build a connected ``Client``/``Connection`` of that flavour (the async one
behind the synchronous facade of ``_flavours.py``) and close what they built at
teardown. A test that takes one of them, or ``client``/``observer``/``conn``,
runs once per flavour.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest

from beanstalkm import Client, Connection
from beanstalkm.testing import BeanstalkdServer

from ._flavours import FLAVOURS, ClientFactory, ConnectionFactory, Flavour


@pytest.fixture(scope="session", params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> Iterator[Flavour]:
    """One flavour of the client (session-wide, so all sync tests run, then all async ones)."""
    made = Flavour(cast(str, request.param))
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def make_client(flavour: Flavour) -> Iterator[ClientFactory]:
    """``make_client(host, port, timeout=..., ...)``: a connected ``Client`` of this test's flavour."""
    made: list[Client] = []

    def factory(*args: Any, **kwargs: Any) -> Client:
        client = flavour.client(*args, **kwargs)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def make_connection(flavour: Flavour) -> Iterator[ConnectionFactory]:
    """``make_connection(host, port, timeout=..., ...)``: a connected ``Connection`` of this test's flavour."""
    made: list[Connection] = []

    def factory(*args: Any, **kwargs: Any) -> Connection:
        conn = flavour.connection(*args, **kwargs)
        made.append(conn)
        return conn

    yield factory
    for conn in made:
        conn.close()


@pytest.fixture
def client(server: BeanstalkdServer, make_client: ClientFactory) -> Iterator[Client]:
    with make_client(server.host, server.port, timeout=10) as c:
        yield c


@pytest.fixture
def observer(server: BeanstalkdServer, make_connection: ConnectionFactory) -> Iterator[Connection]:
    """A second connection, to look at the server without touching the client's state."""
    with make_connection(server.host, server.port, timeout=10) as c:
        yield c
