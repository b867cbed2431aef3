"""``Client.reserve``: timeouts, waiting, priorities and argument checks, against a real beanstalkd."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from beanstalkm import (
    DEFAULT_TUBE,
    BatchFailed,
    Client,
    Connection,
    DeadlineSoon,
    Draining,
    InvalidArgument,
    NotFound,
)
from beanstalkm.testing import BeanstalkdServer

from ._client_support import _state
from ._flavours import ClientFactory

# -- reserve ---------------------------------------------------------------------------------------


def test_reserve_drop_true_deletes(client: Client, observer: Connection) -> None:
    sent = client.put({"job": 1})
    client.watch(DEFAULT_TUBE)
    got = client.reserve(timeout=0)
    assert got is not None
    assert got.body == {"job": 1}
    assert got.uid == sent.uid and got.deleted is True
    assert got.stats() is None
    with pytest.raises(NotFound):
        observer.queue.stats_job(sent.uid)
    assert observer.queue.peek(sent.uid) is None
    assert observer.queue.stats().cmd_delete == 1


def test_reserve_drop_false_leaves_it_reserved(client: Client, observer: Connection) -> None:
    sent = client.put({"job": 2})
    client.watch(DEFAULT_TUBE)
    got = client.reserve(drop=False)
    assert got is not None
    assert got.uid == sent.uid
    assert got.reserved is True
    stats = got.stats()
    assert stats is not None and stats.state == "reserved"
    assert _state(observer, sent.uid) == "reserved"
    got.delete()
    assert got.stats() is None
    got.delete()  # a second delete does nothing


def test_reserve_timeout_zero_on_empty_is_none(client: Client) -> None:
    assert client.reserve(timeout=0) is None
    client.watch(DEFAULT_TUBE)
    assert client.reserve(timeout=0) is None
    start = time.monotonic()
    assert client.reserve(timeout=1) is None
    assert time.monotonic() - start >= 0.9


def test_reserve_waits_for_a_delayed_job(client: Client) -> None:
    client.put("yes!", delay=1)
    client.watch(DEFAULT_TUBE)
    assert client.reserve(timeout=0) is None
    got = client.reserve(timeout=3, drop=False)
    assert got is not None and got.body == "yes!"
    got.delete()


@pytest.mark.parametrize("timeout", [None, 3])
def test_reserve_may_wait_longer_than_the_socket_timeout(
    server: BeanstalkdServer, observer: Connection, make_client: ClientFactory, timeout: int | None
) -> None:
    with make_client(server.host, server.port, timeout=0.2) as c:
        c.watch(DEFAULT_TUBE)
        timer = threading.Timer(0.6, lambda: observer.queue.put(b"late"))
        timer.start()
        try:
            start = time.monotonic()
            got = c.reserve(timeout=timeout)
            assert got is not None and got.body == "late"
            assert time.monotonic() - start >= 0.5
        finally:
            timer.join()
        assert c.connected


def test_invalid_arguments_send_nothing(client: Client, observer: Connection) -> None:
    client.put("warm up")
    before = observer.queue.stats()
    with pytest.raises(InvalidArgument, match="priority"):
        client.put("x", priority=2**32)
    with pytest.raises(InvalidArgument, match="tube"):
        client.put("x", tube="-leading-dash")
    with pytest.raises(InvalidArgument, match="tube"):
        client.put("x", tube="a b")
    with pytest.raises(InvalidArgument, match="delay"):
        client.queue.put(b"x", delay=-1)
    with pytest.raises(TypeError):
        client.put("x", ttr=True)
    with pytest.raises(InvalidArgument, match="tube"):
        client.watch("x" * 201)
    after = observer.queue.stats()
    assert (after.cmd_put, after.cmd_use, after.cmd_watch) == (before.cmd_put, before.cmd_use, before.cmd_watch)
    assert client.queue.using() == "default"


def test_draining_from_client_put(server: BeanstalkdServer, client: Client) -> None:
    server.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while not client.queue.stats().draining:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(Draining):
        client.put("x")
    with pytest.raises(BatchFailed) as info:
        client.put_many(["x", "y"])
    assert [type(r) for r in info.value.results] == [Draining, Draining]
    assert client.queue.using() == "default"


def test_reserve_deadline_soon(client: Client) -> None:
    sent = client.put("short", ttr=1)
    client.watch(DEFAULT_TUBE)
    got = client.reserve(timeout=0, drop=False)
    assert got is not None and got.uid == sent.uid
    with pytest.raises(DeadlineSoon):
        client.reserve(timeout=5)
    with pytest.raises(DeadlineSoon):
        client.reserve()
    with pytest.raises(DeadlineSoon):
        client.queue.reserve_with_timeout(5)


def test_priorities_order_reserves(client: Client) -> None:
    client.put({"v": "foo"}, priority=42)
    client.put({"v": "bar"}, priority=21)
    client.put({"v": "qux"}, priority=21)
    client.watch(DEFAULT_TUBE)
    order = []
    while (m := client.reserve(timeout=0)) is not None:
        order.append(m.body["v"])
    assert order == ["bar", "qux", "foo"]
