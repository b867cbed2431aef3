"""The generated queue's direct entry (``Connection._direct``, docs/hot-path.md): a command that
changes no connection state hands the connection its checked bytes and its ``Command``; the general
path, whenever it is needed, gets the same request the encoder builds. Both flavours."""

from __future__ import annotations

from typing import Any

import pytest

from beanstalkm import ArgumentTypeError, InvalidArgument, NotFound
from beanstalkm._core.requests import BODY_APART
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._fake import FakeServer
from ._flavours import ClientFactory, ConnectionFactory


@pytest.mark.parametrize("size", [BODY_APART - 1, BODY_APART, 3 * BODY_APART + 7])
def test_a_put_of_any_size_stores_its_body_whole(
    server_factory: ServerFactory, make_connection: ConnectionFactory, size: int
) -> None:
    """Under ``BODY_APART`` the body joins its line (the direct entry); from it on it goes apart
    (the general path): either way the job holds exactly the body."""
    server = server_factory(max_job_size=4 * BODY_APART)
    conn = make_connection(server.host, server.port, timeout=10)
    body = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    job_id = conn.queue.put(body)
    peeked = conn.queue.peek(job_id)
    assert peeked is not None and peeked.raw == body


def test_a_put_after_a_routed_put_puts_the_used_tube_back_first(
    server: BeanstalkdServer, make_client: ClientFactory
) -> None:
    """``Client.put(tube=...)`` leaves another tube in force on the server; the next ``queue.put``
    (a command on the used tube) goes the general path, which sends the ``use`` first."""
    client = make_client(server.host, server.port, timeout=10, validate=False)
    client.queue.use("direct.used")
    client.put({"n": 1}, tube="direct.elsewhere")
    job_id = client.queue.put(b"mine")
    assert client.queue.stats_job(job_id).tube == "direct.used"
    assert client.queue.stats_tube("direct.elsewhere").current_jobs_ready == 1
    assert client.queue.using() == "direct.used"


def test_a_failure_reply_on_the_direct_entry_raises_its_error_and_keeps_the_connection(
    server: BeanstalkdServer, make_connection: ConnectionFactory
) -> None:
    """Not the usual reply (``NOT_FOUND``): the quick decoder misses and the decoder raises, as before."""
    conn = make_connection(server.host, server.port, timeout=10)
    with pytest.raises(NotFound):
        conn.queue.delete(2**31)
    assert conn.connected
    assert conn.queue.peek(2**31) is None
    conn.queue.delete(conn.queue.put(b"x"))
    assert conn.queue.stats_tube("default").current_jobs_ready == 0


def test_bad_arguments_on_the_direct_entry_are_refused_before_anything_is_sent(
    make_connection: ConnectionFactory,
) -> None:
    """The generated queue checks its arguments itself now: the same typed errors, nothing written."""
    fake = FakeServer()
    try:
        conn = make_connection(fake.host, fake.port, timeout=5)
        sent = len(fake.log)
        not_a_body: Any = 1.5
        with pytest.raises(InvalidArgument, match="priority"):
            conn.queue.put(b"x", priority=2**32)
        with pytest.raises(ArgumentTypeError, match="body"):
            conn.queue.put(not_a_body)
        with pytest.raises(InvalidArgument, match="id"):
            conn.queue.delete(-1)
        with pytest.raises(InvalidArgument, match="tube"):
            conn.queue.stats_tube("-bad")
        assert len(fake.log) == sent
        assert conn.connected
    finally:
        fake.close()


class _Recording:
    """A mixin that sees every command a connection executes (as a user's instrumentation might)."""

    seen: list[str]

    def _execute(self: Any, request: Any, tube: str | None = None) -> Any:
        from beanstalkm import Client

        self.seen.append(request.command)
        return Client._execute(self, request, tube)


def test_an_execute_from_a_mixin_sees_the_direct_entry_s_commands(server: BeanstalkdServer) -> None:
    """``_execute`` inherited from a mixin before ``Client`` is the class's own too: ``_direct`` hands it
    every command (it saw none when only the class's own dict was looked at)."""
    from beanstalkm import Client

    class RecordingClient(_Recording, Client):
        pass

    client = RecordingClient(server.host, server.port, timeout=10)
    client.seen = []
    try:
        job = client.queue.put(b"x")
        client.queue.stats_job(job)
        client.queue.delete(job)
    finally:
        client.close()
    assert client.seen == ["put", "stats-job", "delete"]
