"""``Client.put`` and ``Client(...)`` messages, and the tube a put goes to, against a real beanstalkd."""

from __future__ import annotations

import json
from typing import Any

import pytest

import beanstalkm
from beanstalkm import (
    DEFAULT_TUBE,
    ArgumentTypeError,
    Client,
    Connection,
    InvalidArgument,
)
from beanstalkm._core import envelope as _envelope
from beanstalkm.testing import BeanstalkdServer

from ._client_support import _raw, _token
from ._flavours import ClientFactory, is_message

# -- put and the used tube -----------------------------------------------------------------------


def test_put_returns_sent_message(client: Client, observer: Connection) -> None:
    m = client.put("hey!")
    assert is_message(m)
    assert m.uid > 0
    assert m.body == "hey!"
    stats = observer.queue.stats_job(m.uid)
    assert (stats.tube, stats.state, stats.pri, stats.delay, stats.ttr) == (
        DEFAULT_TUBE,
        "ready",
        beanstalkm.DEFAULT_PRIORITY,
        beanstalkm.DEFAULT_DELAY,
        beanstalkm.DEFAULT_TTR,
    )
    m2 = client.put({"v": 1}, tube="elsewhere", priority=42, delay=3600, ttr=7)
    stats = observer.queue.stats_job(m2.uid)
    assert (stats.tube, stats.state, stats.pri, stats.delay, stats.ttr) == ("elsewhere", "delayed", 42, 3600, 7)
    assert (m2.priority, m2.delay, m2.ttr) == (42, 3600, 7)


def test_put_does_not_change_the_used_tube(client: Client, observer: Connection) -> None:
    q = client.queue
    m = client.put("x")
    assert q.using() == "default"
    assert q.use("foo") == "foo"
    m2 = client.put("y")
    assert q.using() == "foo"
    m3 = client.put("z", tube="bar")
    assert q.using() == "foo"
    assert [observer.queue.stats_job(j.uid).tube for j in (m, m2, m3)] == [DEFAULT_TUBE, DEFAULT_TUBE, "bar"]
    # the low-level put still goes to the used tube
    job_id = q.put(b"raw")
    assert observer.queue.stats_job(job_id).tube == "foo"
    # ... and so do the peek commands
    peeked = q.peek_ready()
    assert peeked is not None and peeked.uid == job_id


def test_repeated_put_to_one_tube_sends_one_use(client: Client, observer: Connection) -> None:
    before = observer.queue.stats()
    for i in range(5):
        client.put(i)
    middle = observer.queue.stats()
    assert middle.cmd_put - before.cmd_put == 5
    assert middle.cmd_use - before.cmd_use <= 1
    for i in range(5):
        client.put(i)
    client.put_many(range(3))
    after = observer.queue.stats()
    assert after.cmd_put - middle.cmd_put == 8
    assert after.cmd_use == middle.cmd_use
    # the same holds for a tube chosen with queue.use
    client.queue.use("chosen")
    chosen = observer.queue.stats()
    for i in range(3):
        client.put(i, tube="chosen")
        client.queue.put(b"raw")
    assert observer.queue.stats().cmd_use == chosen.cmd_use
    assert observer.queue.stats_tube("chosen").current_jobs_ready == 6


def test_put_unserializable_sends_nothing(client: Client, observer: Connection) -> None:
    client.put("warm up")  # the connection and its used tube are settled
    before = observer.queue.stats()
    with pytest.raises(TypeError, match="not JSON serializable"):
        client.put(object())
    with pytest.raises(TypeError):
        client.put({"a": {1, 2}})
    with pytest.raises(TypeError):
        client.put_many(["fine", object()])
    after = observer.queue.stats()
    assert after.cmd_put == before.cmd_put
    assert after.cmd_use == before.cmd_use
    assert after.total_jobs == before.total_jobs
    assert client.put("after").uid > 0  # still usable


def test_call_builds_unsent_message(client: Client, observer: Connection) -> None:
    m = client({"k": "v"}, subscribe="sub", channel="chan", priority=9)
    assert m.uid == 0
    assert m.stats() is None
    assert observer.queue.stats().cmd_put == 0
    uid = m.send("sent-here")
    assert uid == m.uid > 0
    assert observer.queue.stats_job(uid).tube == "sent-here"
    assert observer.queue.stats_job(uid).pri == 9
    observer.queue.watch("sent-here")
    got = observer.queue.reserve_with_timeout(0)
    assert (got.body, got.subscribe, got.channel, got.token) == ({"k": "v"}, "sub", "chan", _token({"k": "v"}))


def test_put_sender_fields_are_merged_into_the_connections(
    server: BeanstalkdServer, client: Client, observer: Connection, make_client: ClientFactory
) -> None:
    plain = client.put("plain")
    own = json.loads(_raw(observer, plain.uid))["sender"]  # the connection's sender, as written
    assert isinstance(own["host"], str) and own["host"]
    assert isinstance(own["pid"], int) and isinstance(own["version"], str)
    assert plain.sender == own
    assert plain.as_dict()["sender"] == own

    sent = client.put({"n": 1}, sender={"ua": "my-app"})
    assert sent.sender == {**own, "ua": "my-app"}  # host, pid, version (and time) kept
    wire = json.loads(_raw(observer, sent.uid))["sender"]
    assert sent.as_dict()["sender"] == wire == sent.sender
    unsent = client({"n": 2}, sender={"ua": "other-app", "ip": "10.0.0.1"})
    assert unsent.sender == {**own, "ua": "other-app", "ip": "10.0.0.1"}

    # what we write passes our own validation (jsonschema is installed, and asked for)
    assert _envelope.VALIDATION.available()
    with make_client(server.host, server.port, timeout=10, validate=True) as reader:
        reader.watch(DEFAULT_TUBE)
        got = [reader.reserve(timeout=0) for _ in range(2)]
    assert [(m.uid, m.envelope) for m in got if m is not None] == [(plain.uid, True), (sent.uid, True)]
    received = got[1]
    assert received is not None and received.raw is not None
    assert received.sender == json.loads(received.raw)["sender"] == sent.as_dict()["sender"]
    assert received.sender["ua"] == "my-app" and received.sender["pid"] == own["pid"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sender": {"pid": "12"}}, "sender"),  # message.json: pid is an integer
        ({"sender": {"host": 5}}, "sender"),
        ({"sender": "x"}, "sender"),
        ({"subscribe": 5}, "subscribe"),
        ({"channel": ["x"]}, "channel"),
    ],
)
def test_put_refuses_envelope_fields_message_json_rejects(
    client: Client, observer: Connection, kwargs: dict[str, Any], field: str
) -> None:
    client.put("warm up")  # the connection and its used tube are settled
    before = observer.queue.stats()
    with pytest.raises(ArgumentTypeError, match=field) as info:
        client.put({"n": 1}, **kwargs)
    assert info.value.name == field
    assert isinstance(info.value, TypeError) and isinstance(info.value, InvalidArgument)
    with pytest.raises(ArgumentTypeError, match=field):
        client({"n": 1}, **kwargs)
    with pytest.raises(ArgumentTypeError, match=field):
        client.put({"n": 1}, tube="elsewhere", **kwargs)
    after = observer.queue.stats()
    assert (after.cmd_put, after.cmd_use, after.total_jobs) == (before.cmd_put, before.cmd_use, before.total_jobs)
    assert client.put("after").uid > 0  # still usable


def test_forwarding_a_job_that_is_not_an_envelope(client: Client, observer: Connection) -> None:
    client.queue.put(b"plain text")
    m = client.reserve(timeout=0)
    assert m is not None and m.envelope is False and m.body == "plain text"
    forwarded = client.put(m, tube="forwarded")  # written with the connection's sender
    wire = json.loads(_raw(observer, forwarded.uid))
    assert wire["body"] == "plain text"
    assert isinstance(wire["sender"]["host"], str) and isinstance(wire["sender"]["pid"], int)
    assert forwarded.as_dict()["sender"] == wire["sender"]
    client.watch("forwarded")
    client.ignore(DEFAULT_TUBE)
    got = client.reserve(timeout=0)
    assert got is not None and got.envelope is True and got.body == "plain text"
