"""The sync hot path (docs/hot-path.md): a single command's direct path, and ``reserve(drop=True)``
as two direct commands in one hold of the connection, keep every guarantee of the general path."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from beanstalkm import Client, Connection, InvalidEnvelope, Message, ProtocolError, SocketError
from beanstalkm.testing import BeanstalkdServer


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.01)


class Interrupted(Exception):
    """What a signal handler might raise in the caller's thread."""


def _client(server: BeanstalkdServer, timeout: float = 10) -> Client:
    return Client(server.host, server.port, timeout=timeout, validate=False)


def test_reserve_drop_interrupted_between_reserve_and_delete_hands_the_job_back(
    server: BeanstalkdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interruption after the job is reserved and before its delete is sent drops the connection,
    so beanstalkd releases the job: it is neither lost nor deleted unseen."""
    client, observer = _client(server), Connection(server.host, server.port, timeout=10)
    job_id = observer.queue.put(b'{"n": 1}')

    def interrupted(job: object) -> Message:
        raise Interrupted()

    monkeypatch.setattr(client, "_reserved_message", interrupted)
    with pytest.raises(Interrupted):
        client.reserve(timeout=0, drop=True)
    assert not client.connected, "a connection holding a job reserved by nobody was kept"
    wait_until(lambda: observer.queue.stats_job(job_id).state == "ready", what="the job released")
    monkeypatch.undo()
    message = client.reserve(timeout=0, drop=True)
    assert message is not None and message.uid == job_id and message.deleted
    assert observer.queue.stats_tube("default").current_jobs_ready == 0


def test_reserve_drop_with_an_invalid_envelope_keeps_the_job_reserved_and_the_connection(
    server: BeanstalkdServer,
) -> None:
    """A reply that decodes to an error is no interruption: the stream is in step and kept."""
    client = Client(server.host, server.port, timeout=10, validate=True)
    client.queue.put(b'{"@context": "message", "body": 1}')  # no created, sender, token: invalid
    with pytest.raises(InvalidEnvelope) as caught:
        client.reserve(timeout=0, drop=True)
    assert client.connected and caught.value.message.reserved
    assert client.queue.stats_job(caught.value.message.uid).state == "reserved"


def test_direct_path_after_a_blocking_reserve_restores_the_connection_timeout(server: BeanstalkdServer) -> None:
    """A reserve that waits sets its own socket timeout; the next command answered at once goes the
    direct path with the connection's own timeout again (a stopped server times it out, not hangs)."""
    client = _client(server, timeout=0.5)
    assert client.reserve(timeout=1, drop=True) is None  # waited 1 s + 0.5 s on the socket
    server.pause()
    try:
        with pytest.raises(SocketError) as caught:
            client.queue.stats()
    finally:
        server.resume()
    assert caught.value.maybe_executed and "timed out" in str(caught.value)
    assert not client.connected
    assert client.queue.using() == "default"


def test_direct_path_refuses_a_stray_reply_before_writing(unused_tcp_port_server: socket.socket) -> None:
    """Bytes waiting before a command (a reply to no command) are refused before anything is
    written, on the direct path as on the general one: ``ProtocolError``, the connection dropped."""
    listener = unused_tcp_port_server
    host, port = listener.getsockname()[:2]
    conn = Connection(host, port, timeout=5)
    peer, _ = listener.accept()
    with peer:
        peer.sendall(b"INSERTED 7\r\n")  # nobody asked
        wait_until(lambda: conn._transport is not None and conn._transport.readable(), what="the stray bytes")
        with pytest.raises(ProtocolError, match="waiting before it was written"):
            conn.queue.put(b"x")
        assert not conn.connected
        peer.settimeout(2)
        try:
            written = peer.recv(100)  # the end of the stream (or its reset), with nothing before it
        except ConnectionResetError:
            written = b""
        assert written == b"", f"written onto a stream out of step: {written!r}"


@pytest.fixture
def unused_tcp_port_server() -> Iterator[socket.socket]:
    """A listening socket on loopback playing a server that sends a reply nobody asked for."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(5)
        yield listener
