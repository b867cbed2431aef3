"""What a real beanstalkd cannot do on demand, from a small fake server: a routing ``use`` that fails, a damaged job."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from beanstalkm import (
    BatchFailed,
    Client,
    CorruptJob,
    NotFound,
    OutOfMemory,
    ProtocolError,
)

from ._client_support import MISSING_ID
from ._fake import FakeServer
from ._flavours import ClientFactory, is_message

# -- a server that refuses the routing use ---------------------------------------------------


class _FakeServer(FakeServer):
    """Answers ``use`` with ``OUT_OF_MEMORY`` and stores every ``put`` as job 7.

    ``reserve-with-timeout`` hands out ``jobs`` (id and body) in order, then
    ``TIMED_OUT``; ``delete`` answers ``NOT_FOUND`` for an id in ``lost``
    (as beanstalkd does once a job's time to run ran out and another took it).
    """

    def __init__(self) -> None:
        self.jobs: list[tuple[int, bytes]] = []
        self.lost: set[int] = set()
        self.damaged: set[int] = set()  # sent as beanstalkd sends a job from a damaged binlog: zeros, no CRLF
        super().__init__()

    def default(self, parts: list[str]) -> bytes:
        command = parts[0] if parts else ""
        if command == "use":
            return b"OUT_OF_MEMORY\r\n"
        if command == "put":
            return b"INSERTED 7\r\n"
        if command == "watch":
            return b"WATCHING 2\r\n"
        if command == "reserve-with-timeout" and self.jobs:
            uid, body = self.jobs.pop(0)
            if uid in self.damaged:
                return b"RESERVED %d %d\r\n%b\x00\x00" % (uid, len(body), bytes(len(body)))
            return b"RESERVED %d %d\r\n%b\r\n" % (uid, len(body), body)
        if command == "delete":
            return b"NOT_FOUND\r\n" if int(parts[1]) in self.lost else b"DELETED\r\n"
        return super().default(parts)


@pytest.fixture
def refusing_use() -> Iterator[_FakeServer]:
    fake = _FakeServer()
    try:
        yield fake
    finally:
        fake.close()


def test_a_routing_use_that_fails_keeps_the_outcome_of_the_put(
    refusing_use: _FakeServer, make_client: ClientFactory
) -> None:
    client = make_client("127.0.0.1", refusing_use.port, timeout=5)
    with pytest.raises(OutOfMemory) as info:
        client.put({"n": 1}, tube="jobs")
    error = info.value
    assert (error.command, error.status) == ("use", "OUT_OF_MEMORY")
    assert error.outcome == 7  # the put ran all the same, in the tube in force ('default'): job 7
    assert refusing_use.short_log() == ["use jobs", "put 2147483648"]
    # the failed use was not taken for the tube in force: the next put to 'jobs' asks for it again
    with pytest.raises(OutOfMemory) as info:
        client.put({"n": 2}, tube="jobs")
    assert info.value.outcome == 7
    assert refusing_use.short_log() == ["use jobs", "put 2147483648"] * 2


def test_a_failed_command_has_no_outcome(client: Client) -> None:
    with pytest.raises(NotFound) as info:
        client.queue.delete(MISSING_ID)
    assert info.value.outcome is None


def test_put_many_after_a_failed_routing_use_reports_every_put(
    refusing_use: _FakeServer, make_client: ClientFactory
) -> None:
    client = make_client("127.0.0.1", refusing_use.port, timeout=5)
    with pytest.raises(BatchFailed) as info:
        client.put_many(["a", "b", "c"], tube="jobs")
    results = info.value.results
    assert len(results) == 3
    for result in results:  # each went to the tube in force, not 'jobs': none is reported stored
        assert isinstance(result, OutOfMemory)
        assert result.outcome == 7
    assert refusing_use.short_log() == ["use jobs"] + ["put 2147483648"] * 3


def test_reserve_many_drop_reports_a_delete_that_failed_for_its_item(
    refusing_use: _FakeServer, make_client: ClientFactory
) -> None:
    """More messages than one chunk of deletes; the server refuses the delete of job 105."""
    bodies = {uid: {"n": uid} for uid in range(100, 140)}
    client = make_client("127.0.0.1", refusing_use.port, timeout=5)
    refusing_use.jobs = [(uid, _envelope_bytes(body)) for uid, body in bodies.items()]
    refusing_use.lost = {105}
    with pytest.raises(BatchFailed) as info:
        client.reserve_many(45, timeout=0, drop=True)
    results = info.value.results
    assert len(results) == 45
    assert isinstance(results[5], NotFound) and results[5].command == "delete"
    messages = [r for r in results[:40] if is_message(r)]
    assert [m.uid for m in messages] == [uid for uid in bodies if uid != 105]
    assert [m.body for m in messages] == [bodies[m.uid] for m in messages]
    assert all(m.deleted and not m.reserved for m in messages)
    assert results[40:] == [None] * 5  # timed out: just fewer messages
    reserves = refusing_use.short_log()[: refusing_use.short_log().index("delete 100")]
    assert reserves == ["reserve-with-timeout 0"] * 45  # every reserve went out in the first write
    assert sorted(refusing_use.short_log()[45:]) == sorted(f"delete {uid}" for uid in bodies)


def _envelope_bytes(body: Any) -> bytes:
    """A valid envelope around ``body``, as another beanstalkm would write it."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    token = hashlib.md5(b'{"body":' + canonical.encode() + b"}").hexdigest()
    envelope = {"@context": "message", "body": body, "created": {"$data": 1}, "sender": {"host": "h"}, "token": token}
    return json.dumps(envelope).encode()


def test_a_job_damaged_on_the_server_is_a_corrupt_job_and_the_connection_stays(
    refusing_use: _FakeServer, make_client: ClientFactory
) -> None:
    """beanstalkd sends a job it restored from a binlog a crash cut short as zeros with no CRLF after them."""
    client = make_client("127.0.0.1", refusing_use.port, timeout=5)
    refusing_use.jobs = [(uid, _envelope_bytes({"n": uid})) for uid in (200, 201, 202, 203)]
    refusing_use.damaged = {200, 202}
    with pytest.raises(CorruptJob) as info:
        client.reserve(timeout=0)
    assert info.value.job_id == 200 and info.value.body == bytes(len(_envelope_bytes({"n": 200})))
    assert isinstance(info.value, ProtocolError)
    assert client.connected  # the reply was framed by its length: the stream is intact
    with pytest.raises(BatchFailed) as batch:
        client.reserve_many(3, timeout=0, drop=True)
    one, damaged, three = batch.value.results
    assert is_message(one) and one.body == {"n": 201} and one.deleted
    assert isinstance(damaged, CorruptJob) and damaged.job_id == 202
    assert is_message(three) and three.body == {"n": 203} and three.deleted
    assert (
        "delete 202" not in refusing_use.short_log() and "delete 200" not in refusing_use.short_log()
    )  # left to the caller
    client.queue.delete(202)  # what a consumer does with it
    assert refusing_use.short_log()[-1] == "delete 202"
