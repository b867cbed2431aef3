"""Server faults: killed between commands, during a blocking reserve, between a put and its
reply; restarted with a binlog; an exchange interrupted by an exception in the caller."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import pytest

from beanstalkm import Client, Connection, Message, SocketError
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._support import SLACK, Background, sent_commands, wait_until

C = TypeVar("C", bound=Connection)


def _connect(server: BeanstalkdServer, cls: type[C], timeout: float = 10) -> C:
    if server.unix_path is not None:
        return cls(unix_socket=server.unix_path, timeout=timeout, validate=False)
    return cls(server.host, server.port, timeout=timeout, validate=False)


@pytest.fixture(params=["tcp", "unix"])
def any_server(
    request: pytest.FixtureRequest, server_factory: ServerFactory, unix_socket_path: str
) -> BeanstalkdServer:
    if request.param == "unix":
        return server_factory(unix_path=unix_socket_path)
    return server_factory()


def _settle(client: Client) -> None:
    """Give the client a non-default used tube and watch list."""
    client.watch("w1")
    client.watch("w2")
    client.ignore("default")
    client.queue.use("used")


def _assert_restored(client: Client, observer: Connection) -> None:
    """The server itself sees the client's watch list and used tube again."""
    observer.queue.put(b"in default, not watched")
    observer.queue.use("w2")
    observer.queue.put(b"in w2")
    observer.queue.use("default")
    got = client.reserve(timeout=0, drop=True)
    assert got is not None and got.raw == b"in w2"
    assert client.reserve(timeout=0) is None  # default is not watched
    for tube in ("w1", "w2"):
        assert observer.queue.stats_tube(tube).current_watching == 1
    assert observer.queue.stats_tube("default").current_watching == 1  # the observer only
    job_id = client.queue.put(b"to the used tube")
    job = observer.queue.stats_job(job_id)
    assert job.tube == "used"
    assert sorted(client.queue.watching()) == ["w1", "w2"]
    assert client.queue.using() == "used"


# -- killed between commands -------------------------------------------------------------------


def test_killed_between_commands(any_server: BeanstalkdServer) -> None:
    client = _connect(any_server, Client)
    _settle(client)
    any_server.kill()

    with pytest.raises(SocketError) as info:
        client.queue.stats()
    assert not client.connected, "a failed connection must be marked broken"
    # the end of the stream reached the client before the command (TCP and UNIX alike): it was not
    # written, so it cannot have run
    assert info.value.maybe_executed is False

    with pytest.raises(SocketError) as down:  # still down: the reconnect fails, nothing was sent
        client.queue.stats()
    assert down.value.maybe_executed is False
    assert not client.connected

    any_server.start()
    observer = _connect(any_server, Connection)
    assert client.queue.stats().current_connections == 2  # reconnected on the next call
    assert client.connected
    _assert_restored(client, observer)


def test_killed_between_commands_with_an_idle_gap(server: BeanstalkdServer) -> None:
    """Killed and restarted while the client sits idle: one SocketError, then it carries on."""
    client = _connect(server, Client)
    _settle(client)
    server.kill()
    server.start()
    with pytest.raises(SocketError):
        client.put("lost?", tube="t")
    client.put("kept", tube="t")
    observer = _connect(server, Connection)
    # the put whose connection was gone was not re-sent, and the next one went through
    assert observer.queue.stats_tube("t").total_jobs == 1
    _assert_restored(client, observer)


# -- killed during a blocking reserve ----------------------------------------------------------


def _reserve_forever(c: Client) -> object:
    return c.queue.reserve()


def _reserve_client(c: Client) -> object:
    return c.reserve(timeout=None, drop=False)


def _reserve_with_timeout(c: Client) -> object:
    return c.queue.reserve_with_timeout(60)


def _reserve_many(c: Client) -> object:
    return c.reserve_many(5, timeout=60)


@pytest.mark.parametrize("reserve", [_reserve_forever, _reserve_client, _reserve_with_timeout, _reserve_many])
def test_killed_during_a_blocking_reserve(server: BeanstalkdServer, reserve: Callable[[Client], object]) -> None:
    client = _connect(server, Client, timeout=0.5)
    _settle(client)
    observer = _connect(server, Connection)
    call = Background(lambda: reserve(client))
    wait_until(lambda: observer.queue.stats().current_waiting == 1, what="the client waiting in reserve")
    observer.close()
    killed = time.monotonic()
    server.kill()
    error = call.error(SLACK + 5)
    assert isinstance(error, SocketError), repr(error)
    assert error.maybe_executed is True
    assert (call.finished_at or 0) - killed < SLACK
    assert not client.connected

    server.start()
    observer = _connect(server, Connection)
    _assert_restored(client, observer)


# -- killed between a put's write and its reply ------------------------------------------------


def _put_queue(c: Client) -> object:
    return c.queue.put(b"unknown outcome")


def _put_client(c: Client) -> object:
    return c.put({"outcome": "unknown"}, tube="used")


def _put_many(c: Client) -> object:
    return c.put_many([{"n": n} for n in range(50)], tube="used")


def _put_pipeline(c: Client) -> object:
    with c.pipeline() as p:
        p.put(b"one").put(b"two").stats()
    return p.results


@pytest.mark.parametrize("binlog", [False, True], ids=["no-binlog", "binlog"])
@pytest.mark.parametrize("put", [_put_queue, _put_client, _put_many, _put_pipeline])
def test_killed_between_put_and_reply(
    server_factory: ServerFactory, tmp_path: Path, put: Callable[[Client], object], binlog: bool
) -> None:
    server = server_factory(binlog_dir=str(tmp_path / "binlog") if binlog else None)
    client = _connect(server, Client)
    _settle(client)
    client.queue.list_tubes()
    server.pause()
    call = Background(lambda: put(client))
    time.sleep(0.5)  # the put is written and waits for its reply
    assert call.alive()
    server.kill()
    error = call.error(SLACK + 5)
    assert isinstance(error, SocketError), repr(error)
    assert error.maybe_executed is True, "the put was written: its outcome is unknown"
    assert not client.connected

    server.start()
    observer = _connect(server, Connection)
    before = sent_commands(observer)
    assert before["cmd-put"] == 0 and before["total-jobs"] == 0
    assert client.queue.stats().current_jobs_ready == 0  # reconnects; the put is not re-sent
    after = sent_commands(observer)
    assert after["cmd-put"] == 0, "a put whose outcome was unknown was sent again"
    assert after["total-jobs"] == 0
    # and the client carries on: exactly one new job
    client.queue.put(b"after")
    assert observer.queue.stats_tube("used").total_jobs == 1
    assert observer.queue.stats().current_jobs_ready == 1
    _assert_restored(client, observer)


# -- restarted with a binlog -------------------------------------------------------------------


def test_restart_with_binlog_keeps_jobs_and_the_client_carries_on(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory(binlog_dir=str(tmp_path / "binlog"))
    client = _connect(server, Client)
    _settle(client)
    put = client.put_many([{"n": n} for n in range(100)], tube="w1")
    ids = [m.uid for m in put]
    delayed = client.put({"n": "delayed"}, tube="w2", delay=3600)
    plain_id = client.queue.put(b"plain, in the used tube")
    held = client.reserve(drop=False)
    assert held is not None and held.body == {"n": 0}
    first = client.reserve(drop=False)
    assert first is not None
    first.bury()
    deleted = client.reserve(drop=True)  # deleted before the crash: must stay deleted
    assert deleted is not None and deleted.body == {"n": 2}

    for _ in range(3):
        server.kill()
        server.start()
        with pytest.raises(SocketError):  # the first call notices the lost connection
            client.queue.stats()
        stats = client.queue.stats()  # then it carries on
        assert stats.current_jobs_buried == 1
        assert stats.current_jobs_delayed == 1
        # the reserved job came back as ready; the deleted one did not (97 + n=0 + the plain one)
        assert stats.current_jobs_ready == 99

    assert client.queue.stats_job(plain_id).state == "ready"
    assert client.queue.stats_job(delayed.uid).state == "delayed"
    assert client.queue.stats_job(first.uid).state == "buried"
    bodies: list[Any] = []
    while (message := client.reserve(timeout=0)) is not None:
        bodies.append(message.body)
    assert bodies == [{"n": n} for n in range(100) if n not in (1, 2)]
    assert client.queue.put(b"new") > max(ids)  # ids carry on after the binlog's
    observer = _connect(server, Connection)
    _assert_restored(client, observer)


# -- an exchange interrupted by the caller -----------------------------------------------------


class Interrupted(Exception):
    pass


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted()


@pytest.fixture
def alarm() -> Iterator[Callable[[float], None]]:
    previous = signal.signal(signal.SIGALRM, _raise_interrupted)
    try:

        def arm(seconds: float) -> None:
            signal.setitimer(signal.ITIMER_REAL, seconds)

        yield arm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_exception_during_a_blocking_reserve_drops_the_connection(
    server: BeanstalkdServer, alarm: Callable[[float], None]
) -> None:
    """A signal handler (or KeyboardInterrupt) breaking out of a reserve leaves a reply in
    flight: the connection must be dropped, or the next command reads the reserve's reply."""
    client = _connect(server, Client)
    observer = _connect(server, Connection)
    alarm(0.3)
    with pytest.raises(Interrupted):
        client.queue.reserve()
    assert not client.connected, "a connection with a reply in flight was kept"
    wait_until(lambda: observer.queue.stats().current_connections == 1, what="the old connection closed")
    job_id = observer.queue.put(b"for whoever reserves next")
    assert client.queue.using() == "default"  # its own reply, not RESERVED
    message = client.reserve(timeout=0, drop=True)
    assert isinstance(message, Message) and message.uid == job_id


def test_exception_while_reading_a_reply_drops_the_connection(
    server: BeanstalkdServer, alarm: Callable[[float], None]
) -> None:
    client = _connect(server, Client)
    client.queue.put(b"one")
    server.pause()
    try:
        alarm(0.3)
        with pytest.raises(Interrupted):
            client.queue.peek_ready()
    finally:
        server.resume()
    assert not client.connected
    assert client.queue.stats_tube("default").current_jobs_ready == 1
    peeked = client.queue.peek_ready()
    assert peeked is not None and peeked.raw == b"one"
