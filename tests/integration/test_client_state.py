"""The client's connection state (used and watched tubes) across reconnects, closing, and threads."""

from __future__ import annotations

import threading
import time

import pytest

from beanstalkm import (
    DEFAULT_TUBE,
    Client,
    CommandFailed,
    Connection,
    SocketError,
)
from beanstalkm.testing import BeanstalkdServer

from ._client_support import PATIENCE
from ._flavours import ClientFactory

# -- connection state --------------------------------------------------------------------------


def test_watch_ignore_and_use_survive_reconnect(client: Client, observer: Connection) -> None:
    assert client.watch("alpha") == 2
    assert client.watch("beta") == 3
    assert client.ignore("default") == 2
    client.queue.use("used-tube")
    watching = client.queue.watching()
    assert sorted(watching) == ["alpha", "beta"]
    connections = observer.queue.stats().total_connections

    client.reconnect()
    assert observer.queue.stats().total_connections == connections + 1
    assert client.queue.watching() == watching
    assert client.queue.using() == "used-tube"

    # and they are in force: reserve takes from alpha, not from default
    observer.queue.put(b"in default")
    assert client.reserve(timeout=0) is None
    sent = client.put("in alpha", tube="alpha")
    got = client.reserve(timeout=0)
    assert got is not None and got.body == "in alpha" and sent.uid > 0
    assert client.queue.using() == "used-tube"


def test_watch_list_after_reconnect_is_the_same_set(client: Client) -> None:
    # beanstalkd reorders its watch list on ignore; the set of tubes is what must survive
    client.watch("a")
    client.ignore("default")
    client.watch("default")
    client.watch("b")
    client.ignore("a")
    before = client.queue.watching()
    client.reconnect()
    assert sorted(client.queue.watching()) == sorted(before) == ["b", "default"]


def test_state_restored_after_server_restart(server: BeanstalkdServer, make_client: ClientFactory) -> None:
    with make_client(server.host, server.port, timeout=5) as c:
        c.watch("kept")
        c.ignore("default")
        c.queue.use("used")
        server.kill()
        server.start()
        with pytest.raises(SocketError) as info:
            c.queue.stats()  # the old connection is gone: its end was there to read, so nothing was sent
        assert info.value.maybe_executed is False
        assert isinstance(info.value, OSError)
        assert c.queue.watching() == ["kept"]
        assert c.queue.using() == "used"
        c.put("after restart", tube="kept")
        got = c.reserve(timeout=0)
        assert got is not None and got.body == "after restart"


def test_reply_timeout_then_recovery(server: BeanstalkdServer, make_client: ClientFactory) -> None:
    with make_client(server.host, server.port, timeout=0.3) as c:
        c.watch("kept")
        c.queue.use("used")
        server.pause()
        try:
            with pytest.raises(SocketError, match="timed out"):
                c.queue.stats()
            assert not c.connected
        finally:
            server.resume()
        assert sorted(c.queue.watching()) == ["default", "kept"]
        assert c.queue.using() == "used"


def test_watch_list_survives_close_and_later_use(client: Client) -> None:
    client.watch("gamma")
    client.queue.ignore("default")
    client.close()
    assert not client.connected
    assert client.queue.watching() == ["gamma"]


def test_ignore_last_tube(client: Client) -> None:
    with pytest.raises(CommandFailed) as info:
        client.ignore("default")
    assert info.value.args[1] == "NOT_IGNORED"
    assert client.queue.watching() == ["default"]


def test_close_cuts_short_a_reserve_waiting_in_another_thread(client: Client, observer: Connection) -> None:
    client.watch(DEFAULT_TUBE)
    outcome: list[object] = []

    def consume() -> None:
        try:
            outcome.append(client.reserve())
        except BaseException as exc:
            outcome.append(exc)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    _until_waiting(observer, 1)
    time.sleep(0.1)  # the consumer is reading by now

    closer = threading.Thread(target=client.close, daemon=True)
    start = time.monotonic()
    closer.start()
    closer.join(2)
    stuck = closer.is_alive()
    if stuck:  # let both threads go before failing
        observer.queue.put(b'"unblock"')
        closer.join(PATIENCE)
    consumer.join(PATIENCE)
    assert not stuck, "close() waited for the blocking reserve"
    assert time.monotonic() - start < 2
    assert not consumer.is_alive()
    [error] = outcome
    assert isinstance(error, SocketError)
    assert not client.connected
    _until_waiting(observer, 0)
    # the client works again, on a new connection
    sent = client.put("after close")
    assert sent.uid > 0
    got = client.reserve(timeout=0)
    assert got is not None and got.uid == sent.uid


def _until_waiting(conn: Connection, n: int) -> None:
    deadline = time.monotonic() + PATIENCE
    while conn.queue.stats().current_waiting != n:
        assert time.monotonic() < deadline, f"never {n} connection(s) waiting in reserve"
        time.sleep(0.01)


def test_context_manager_closes(server: BeanstalkdServer, observer: Connection, make_client: ClientFactory) -> None:
    with make_client(server.host, server.port, timeout=10) as c:
        assert c.connected
        c.put("x")
        assert observer.queue.stats().current_connections == 2
    assert not c.connected
    deadline = time.monotonic() + 5
    while observer.queue.stats().current_connections != 1:
        assert time.monotonic() < deadline, "the server still sees the client's connection"
        time.sleep(0.01)


def test_one_client_shared_by_threads(client: Client, observer: Connection) -> None:
    uids: list[int] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        for i in range(25):
            uid = client.put({"worker": worker, "i": i}, tube="threads").uid
            with lock:
                uids.append(uid)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(uids)) == 100
    assert observer.queue.stats_tube("threads").current_jobs_ready == 100
    assert client.queue.using() == "default"
