"""Timeouts: connect, read, write, and the reserve timeout that extends the read deadline."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from beanstalkm import Client, Connection, Message, SocketError
from beanstalkm.testing import BeanstalkdServer

from ._support import SLACK, Background, black_hole, sent_commands, wait_until

TIMEOUT = 0.5


@pytest.fixture
def observer(server: BeanstalkdServer) -> Iterator[Connection]:
    with Connection(server.host, server.port, timeout=10) as c:
        yield c


# -- connect timeout ---------------------------------------------------------------------------


def test_connect_timeout_on_a_listener_that_never_accepts() -> None:
    with black_hole() as (host, port):
        start = time.monotonic()
        with pytest.raises(SocketError) as info:
            Connection(host, port, timeout=TIMEOUT)
        elapsed = time.monotonic() - start
    assert elapsed < TIMEOUT + SLACK, f"connect took {elapsed:.2f} s with timeout={TIMEOUT}"
    assert isinstance(info.value.__cause__, TimeoutError), "it must be the connect timeout, not a refusal"
    assert f"{host}:{port}" in str(info.value)
    assert info.value.maybe_executed is False


def test_reconnect_times_out_too(server: BeanstalkdServer) -> None:
    """The automatic reconnect of a later call obeys the same connect timeout, and sends nothing."""
    with black_hole() as (host, port):
        conn = Connection(server.host, server.port, timeout=TIMEOUT)
        conn.close()
        conn.host, conn.port = host, port
        start = time.monotonic()
        with pytest.raises(SocketError) as info:
            conn.queue.stats()
        elapsed = time.monotonic() - start
    assert elapsed < TIMEOUT + SLACK
    assert info.value.maybe_executed is False
    assert not conn.connected
    conn.host, conn.port = server.host, server.port
    assert conn.queue.list_tubes() == ["default"]


def test_unix_connect_to_a_full_backlog_does_not_hang() -> None:
    directory = tempfile.mkdtemp(prefix="bsm-")
    path = os.path.join(directory, "hole.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(path)
        listener.listen(0)
        for _ in range(4):
            filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            fillers.append(filler)
            filler.setblocking(False)
            try:
                filler.connect(path)
            except BlockingIOError:
                break
        start = time.monotonic()
        with pytest.raises(SocketError, match=r"hole\.sock"):
            Connection(unix_socket=path, timeout=TIMEOUT)
        assert time.monotonic() - start < TIMEOUT + SLACK
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
        os.unlink(path)
        os.rmdir(directory)


# -- read timeout ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["stats", "put", "peek", "watch"])
def test_read_timeout_on_a_stopped_server(server: BeanstalkdServer, command: str) -> None:
    conn = Connection(server.host, server.port, timeout=TIMEOUT)
    calls: dict[str, Callable[[], object]] = {
        "stats": conn.queue.stats,
        "put": lambda: conn.queue.put(b"frozen"),
        "peek": lambda: conn.queue.peek(1),
        "watch": lambda: conn.queue.watch("frozen"),
    }
    conn.queue.list_tubes()  # connected and settled
    server.pause()
    try:
        start = time.monotonic()
        with pytest.raises(SocketError, match="timed out") as info:
            calls[command]()
        elapsed = time.monotonic() - start
        assert info.value.maybe_executed is True  # it was written: the server may run it when it wakes
        assert not conn.connected
    finally:
        server.resume()
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK, f"{command} raised after {elapsed:.2f} s"
    assert conn.queue.list_tubes()  # the next call reconnects
    assert conn.queue.watching() == ["default"]  # a watch whose reply was lost is not recorded


def test_write_timeout_after_a_blocking_reserve(server: BeanstalkdServer, observer: Connection) -> None:
    """A plain ``reserve`` waits forever; the command after it must get its timeout back,
    also while it is still writing (a large body to a server that reads nothing)."""
    conn = Connection(server.host, server.port, timeout=TIMEOUT)
    timer = threading.Timer(0.2, lambda: observer.queue.put(b"wake up"))
    timer.start()
    try:
        job = conn.queue.reserve()
    finally:
        timer.join()
    assert job.raw == b"wake up"
    server.pause()
    try:
        start = time.monotonic()
        call = Background(lambda: conn.queue.put(b"x" * (32 * 1024 * 1024)))
        error = call.error(TIMEOUT + SLACK + 5)
        elapsed = (call.finished_at or 0) - start
    finally:
        server.resume()
    assert isinstance(error, SocketError), error
    assert elapsed < TIMEOUT + SLACK, f"the write hung for {elapsed:.2f} s"
    assert not conn.connected


def test_a_partly_written_batch_may_have_been_executed(server: BeanstalkdServer, observer: Connection) -> None:
    """A batch whose write times out half-way has complete commands in the server's
    buffer: the error must not claim that nothing was carried out."""
    client = Client(server.host, server.port, timeout=TIMEOUT, validate=False)
    client.queue.list_tubes()
    server.pause()
    try:
        with pytest.raises(SocketError) as info:
            client.put_many([{"i": i, "pad": "x" * 1000} for i in range(30000)], tube="half")
    finally:
        server.resume()
    stored = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the server now reads what reached it
        stored = observer.queue.stats().total_jobs
        if stored and observer.queue.stats().current_connections == 1:
            break
        time.sleep(0.05)
    assert info.value.maybe_executed is True, f"maybe_executed=False, but {stored} job(s) were stored"


def test_reserve_with_timeout_on_a_stopped_server_is_not_cut_short(server: BeanstalkdServer) -> None:
    """The read deadline of reserve-with-timeout t is t + timeout: never before t, not much after."""
    conn = Connection(server.host, server.port, timeout=TIMEOUT)
    conn.queue.list_tubes()
    server.pause()
    try:
        start = time.monotonic()
        with pytest.raises(SocketError):
            conn.queue.reserve_with_timeout(1)
        elapsed = time.monotonic() - start
    finally:
        server.resume()
    assert 1.0 <= elapsed < 1.0 + TIMEOUT + SLACK, f"raised after {elapsed:.2f} s"


# -- the reserve timeout extends the read deadline ---------------------------------------------


def _reserve_queue(c: Client) -> bytes | None:
    return c.queue.reserve_with_timeout(2).raw


def _reserve_client(c: Client) -> bytes | None:
    message = c.reserve(timeout=2)
    return None if message is None else message.raw


def _reserve_many(c: Client) -> bytes | None:
    messages = c.reserve_many(3, timeout=2)
    assert len(messages) == 1
    return messages[0].raw


def _reserve_pipeline(c: Client) -> bytes | None:
    with c.pipeline() as p:
        p.list_tubes().reserve_with_timeout(2)
    assert p.results is not None
    message = p.results[1]
    assert isinstance(message, Message)
    return message.raw


@pytest.mark.parametrize("reserve", [_reserve_queue, _reserve_client, _reserve_many, _reserve_pipeline])
def test_reserve_timeout_extends_the_read_deadline(
    server: BeanstalkdServer, observer: Connection, reserve: Callable[[Client], bytes | None]
) -> None:
    client = Client(server.host, server.port, timeout=TIMEOUT)
    timer = threading.Timer(1.2, lambda: observer.queue.put(b"late job"))
    start = time.monotonic()
    timer.start()
    try:
        raw = reserve(client)
    finally:
        timer.join()
    assert raw == b"late job"
    assert time.monotonic() - start >= 1.2
    assert client.connected
    assert client.queue.stats_tube("default").current_jobs_ready == 0


# -- timeout=None and the default --------------------------------------------------------------


def test_timeout_none_waits_for_as_long_as_it_takes(server: BeanstalkdServer) -> None:
    conn = Connection(server.host, server.port, timeout=None)
    assert conn.timeout is None
    conn.queue.list_tubes()
    server.pause()
    try:
        call = Background(conn.queue.stats)
        time.sleep(1.5)
        assert call.alive(), "timeout=None gave up on a slow server"
    finally:
        server.resume()
    assert call.result(10).total_connections >= 1
    assert conn.connected


def test_timeout_defaults_to_the_socket_default(server: BeanstalkdServer) -> None:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(0.7)
    try:
        conn = Connection(server.host, server.port)
    finally:
        socket.setdefaulttimeout(previous)
    assert conn.timeout == 0.7
    server.pause()
    try:
        start = time.monotonic()
        with pytest.raises(SocketError, match="timed out"):
            conn.queue.stats()
        assert time.monotonic() - start < 0.7 + SLACK
    finally:
        server.resume()


def test_a_timed_out_command_sends_nothing_more(server: BeanstalkdServer, observer: Connection) -> None:
    """After a read timeout the client does not re-send the command on the next call."""
    conn = Connection(server.host, server.port, timeout=TIMEOUT)
    conn.queue.list_tubes()
    server.pause()
    try:
        with pytest.raises(SocketError) as info:
            conn.queue.put(b"once")
    finally:
        server.resume()
    assert info.value.maybe_executed is True
    # the server wakes, may carry out what it had received, and sees the old connection close
    wait_until(lambda: observer.queue.stats().current_connections == 1, what="the old connection closed")
    before = sent_commands(observer)
    assert conn.queue.list_tubes() == ["default"]
    after = sent_commands(observer)
    assert after["cmd-put"] == before["cmd-put"], "the timed-out put was sent again"
    assert observer.queue.stats_tube("default").total_jobs <= 1
