"""``Client`` and ``Message`` against a real beanstalkd, per docs API.md."""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import beanstalkm
from beanstalkm import (
    DEFAULT_TUBE,
    ArgumentTypeError,
    BatchFailed,
    BeanstalkmException,
    Client,
    CommandFailed,
    Connection,
    CorruptJob,
    DeadlineSoon,
    Draining,
    InvalidArgument,
    InvalidEnvelope,
    NotFound,
    OutOfMemory,
    ProtocolError,
    SocketError,
    TubeStats,
    _envelope,
)
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._flavours import ClientFactory, ConnectionFactory, Flavour, is_message

MISSING_ID = 987654321

#: Longest a test waits for the server (or another thread) to get somewhere.
PATIENCE = 5.0

BODIES: list[Any] = [
    "hey!",
    "",
    {"a": 1, "nested": {"list": [1, 2.5, None, True]}},
    [1, "two", {"three": 3}],
    [],
    {},
    0,
    -17,
    2**70,
    1.5,
    True,
    False,
    None,
    "日本語 ☃",
    {"日本語": "☃"},
    "\x00\x01\xfe\xff",
    {"data": "\x00\x01\xfe\xff"},
    '{"@context": "message"}',
    "123",
]


@pytest.fixture
def client(server: BeanstalkdServer, make_client: ClientFactory) -> Iterator[Client]:
    with make_client(server.host, server.port, timeout=10) as c:
        yield c


@pytest.fixture
def observer(server: BeanstalkdServer, make_connection: ConnectionFactory) -> Iterator[Connection]:
    """A second connection, to look at the server without touching the client's state."""
    with make_connection(server.host, server.port, timeout=10) as c:
        yield c


def _token(body: Any) -> str:
    return hashlib.md5(json.dumps({"body": body}, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _state(conn: Connection, job_id: int) -> str:
    return conn.queue.stats_job(job_id).state


def _raw(conn: Connection, job_id: int) -> bytes:
    """The job's bytes as the server holds them."""
    peeked = conn.queue.peek(job_id)
    assert peeked is not None and peeked.raw is not None
    return peeked.raw


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


# -- the message lifecycle -----------------------------------------------------------------------


def test_message_lifecycle(client: Client, observer: Connection) -> None:
    sent = client.put("cycle", ttr=60)
    assert sent.stats() is not None
    client.watch(DEFAULT_TUBE)

    m = client.reserve(timeout=0, drop=False)
    assert m is not None and m.uid == sent.uid
    m.release()
    stats = m.stats()
    assert stats is not None and stats.state == "ready" and stats["state"] == "ready"
    assert m.reserved is False

    m = client.reserve(timeout=0, drop=False)
    assert m is not None
    m.bury()
    assert _state(observer, m.uid) == "buried"
    assert client.reserve(timeout=0) is None
    m.kick()
    assert _state(observer, m.uid) == "ready"

    m = client.reserve(timeout=0, drop=False)
    assert m is not None
    time.sleep(1.1)
    before = observer.queue.stats_job(m.uid).time_left
    m.touch()
    after = observer.queue.stats_job(m.uid)
    assert after.state == "reserved"
    assert after.time_left > before

    m.release(delay=3600)
    stats = m.stats()
    assert stats is not None and (stats.state, stats.delay) == ("delayed", 3600)
    m.kick()
    assert _state(observer, m.uid) == "ready"

    m = client.reserve(timeout=0, drop=False)
    assert m is not None
    uid = m.uid
    m.delete()
    assert m.deleted is True
    assert m.uid == uid  # the id is kept
    assert m.stats() is None
    with pytest.raises(NotFound):
        observer.queue.stats_job(uid)


def test_release_and_bury_keep_priority(client: Client, observer: Connection) -> None:
    client.put("p", priority=42)
    client.watch(DEFAULT_TUBE)
    m = client.reserve(drop=False)
    assert m is not None
    assert m.priority == 42
    m.release()
    assert observer.queue.stats_job(m.uid).pri == 42

    m = client.reserve(drop=False)
    assert m is not None
    m.bury()
    stats = observer.queue.stats_job(m.uid)
    assert (stats.state, stats.pri) == ("buried", 42)
    m.kick()

    m = client.reserve(drop=False)
    assert m is not None
    m.release(priority=7)
    assert observer.queue.stats_job(m.uid).pri == 7
    m = client.reserve(drop=False)
    assert m is not None
    m.bury(priority=3)
    assert observer.queue.stats_job(m.uid).pri == 3


def test_lifecycle_errors_are_raised(client: Client) -> None:
    sent = client.put("x")
    # not reserved: release/bury/touch fail with NotFound, nothing swallowed
    with pytest.raises(NotFound):
        sent.release()
    with pytest.raises(NotFound):
        sent.bury()
    with pytest.raises(NotFound):
        sent.touch()
    with pytest.raises(NotFound):
        sent.kick()  # it is ready, neither buried nor delayed
    sent.delete()
    assert sent.stats() is None


# -- bodies --------------------------------------------------------------------------------------


@pytest.mark.parametrize("validate", [None, True, False])
def test_body_round_trips(server: BeanstalkdServer, make_client: ClientFactory, validate: bool | None) -> None:
    with make_client(server.host, server.port, timeout=10, validate=validate) as c:
        c.watch(DEFAULT_TUBE)
        for body in BODIES:
            sent = c.put(body)
            assert sent.body == body
            got = c.reserve(timeout=0)
            assert got is not None
            assert got.body == body
            assert type(got.body) is type(body)
            assert got.envelope is True
            assert got.token == sent.token == _token(body)
            assert got.raw is not None and json.loads(got.raw)["body"] == body


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def shared_client(beanstalkd: BeanstalkdServer, flavour: Flavour) -> Iterator[Client]:
    with flavour.client(beanstalkd.host, beanstalkd.port, timeout=10) as c:
        c.watch("hypothesis-bodies")
        c.ignore("default")
        yield c


@settings(max_examples=60, deadline=None)
@given(body=JSON_VALUES)
def test_any_json_body_round_trips(shared_client: Client, body: Any) -> None:
    sent = shared_client.put(body, tube="hypothesis-bodies")
    got = shared_client.reserve(timeout=0)
    assert got is not None
    assert got.deleted and got.uid == sent.uid and got.body == body
    assert json.dumps(got.body, sort_keys=True) == json.dumps(body, sort_keys=True)  # same types too
    assert got.token == sent.token == _token(body)


def test_body_without_jsonschema_in_a_subprocess(server: BeanstalkdServer) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        sys.modules["jsonschema"] = None  # import jsonschema now raises ImportError
        import beanstalkm
        from beanstalkm import _envelope

        bodies = json.loads(sys.argv[3])
        out = []
        with beanstalkm.Client(sys.argv[1], int(sys.argv[2]), timeout=10) as c:
            c.watch(beanstalkm.DEFAULT_TUBE)
            for body in bodies:
                c.put(body)
                m = c.reserve(timeout=0)
                out.append([type(m.body).__name__, m.body])
            # an invalid envelope is not checked without jsonschema: it reads as its body
            c.queue.use(beanstalkm.DEFAULT_TUBE)
            c.queue.put('{"@context": "message", "body": 1}')
            m = c.reserve(timeout=0)
            out.append([type(m.body).__name__, m.body])
        assert "jsonschema" not in sys.modules or sys.modules["jsonschema"] is None
        print(json.dumps({"validation": _envelope.VALIDATION.available(), "bodies": out}))
        """
    )
    bodies: list[Any] = ["hey!", "日本語 ☃", "\x00\x01\xfe\xff", {"a": [1]}, 1.5, None, True, [1, 2]]
    proc = subprocess.run(
        [sys.executable, "-c", script, server.host, str(server.port), json.dumps(bodies)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["validation"] is False
    assert result["bodies"] == [[type(b).__name__, b] for b in bodies] + [["int", 1]]


def test_non_envelope_jobs(client: Client) -> None:
    q = client.queue  # the low-level put sends raw bytes into the used tube ('default', watched)
    cases: list[tuple[bytes, Any]] = [
        (b"plain text", "plain text"),
        ("日本語".encode(), "日本語"),
        (b'{"a": [1, 2]}', {"a": [1, 2]}),
        (b"[1, 2]", [1, 2]),
        (b"42", 42),
        (b'"quoted"', "quoted"),
        (b'{"@context": "other", "body": 1}', {"@context": "other", "body": 1}),
        (b"\xff\xfe", b"\xff\xfe"),
        (b"\x00\x01 not utf-8 \xc3", b"\x00\x01 not utf-8 \xc3"),
        (b"", ""),
    ]
    for raw, expected in cases:
        job_id = q.put(raw)
        m = client.reserve(timeout=0, drop=False)
        assert m is not None
        assert m.uid == job_id
        assert m.raw == raw
        assert m.body == expected
        assert type(m.body) is type(expected)
        assert m.envelope is False
        m.delete()
    # and through peek
    job_id = q.put(b"\xff\xfe")
    peeked = q.peek(job_id)
    assert peeked is not None and peeked.body == b"\xff\xfe" and peeked.raw == b"\xff\xfe"


def test_envelope_written_by_beanstalkm_1_0(client: Client) -> None:
    body = {"user": "ünï", "n": [1, 2]}
    envelope = {
        "@context": "message",
        "body": body,
        "created": {"$data": 1700000000123},
        "sender": {"host": "h", "pid": 1, "time": 1.5, "version": "1.0.0"},
        "token": _token(body),
        "errors": [],
        "subscribe": "x",
    }
    raw = json.dumps(envelope).encode()
    job_id = client.queue.put(raw)
    m = client.reserve(timeout=0, drop=False)
    assert m is not None
    assert m.uid == job_id
    assert m.raw == raw
    assert m.envelope is True
    assert m.body == body
    assert m.created == {"$data": 1700000000123}
    assert m.timestamp == 1700000000.123
    assert m.utc == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert m.sender == {"host": "h", "pid": 1, "time": 1.5, "version": "1.0.0"}
    assert m.token == _token(body)
    assert m.subscribe == "x"
    assert m.channel is None
    assert m.errors == []
    as_dict = m.as_dict()
    assert as_dict["@context"] == "message"
    assert as_dict["body"] == body and as_dict["subscribe"] == "x"
    assert json.loads(str(m))["token"] == _token(body)


def test_envelope_with_created_in_seconds_and_extra_sender_fields(client: Client) -> None:
    envelope = {
        "@context": "message",
        "body": {"a": 1},
        "created": 1700000000.5,
        "sender": {"host": "h", "ip": "1.2.3.4", "ua": "agent", "custom": [1]},
        "token": "not-checked",
        "errors": ["boom"],
        "channel": "chan",
    }
    client.queue.put(json.dumps(envelope))
    m = client.reserve(timeout=0)
    assert m is not None
    assert m.body == {"a": 1}
    assert m.created == {"$data": 1700000000500}
    assert m.sender == envelope["sender"]
    assert (m.errors, m.channel, m.subscribe, m.token) == (["boom"], "chan", None, "not-checked")


def test_envelope_with_an_integer_valued_float_created(client: Client) -> None:
    envelope = {
        "@context": "message",
        "body": 1,
        "created": {"$data": 1.6e12},  # an integer by the schema, though written as a float
        "sender": {"host": "h"},
        "token": "x",
    }
    raw = json.dumps(envelope)
    assert '"$data": 1600000000000.0' in raw
    client.queue.put(raw)
    m = client.reserve(timeout=0)
    assert m is not None
    assert (m.envelope, m.body) == (True, 1)
    assert m.created == {"$data": 1600000000000}
    assert type(m.created["$data"]) is int
    assert m.as_dict()["created"] == {"$data": 1600000000000}


def test_our_envelope_is_what_beanstalkm_1_0_reads(client: Client) -> None:
    body = {"b": [1, "two", {"z": None, "a": 1.5}], "ü": "☃"}
    sent = client.put(body, subscribe="sub://x", channel="chan://y")
    assert sent.token == _token(body)
    client.watch(DEFAULT_TUBE)
    got = client.reserve(timeout=0)
    assert got is not None and got.raw is not None
    wire = json.loads(got.raw)
    assert wire["@context"] == "message"
    assert wire["body"] == body
    assert wire["token"] == _token(body)
    assert isinstance(wire["created"]["$data"], int)
    assert abs(wire["created"]["$data"] / 1000 - time.time()) < 60
    assert wire["sender"]["host"] and isinstance(wire["sender"]["pid"], int)
    assert isinstance(wire["sender"]["time"], float) and isinstance(wire["sender"]["version"], str)
    assert wire["subscribe"] == "sub://x" and wire["channel"] == "chan://y"
    assert wire["errors"] == []
    assert got.token == sent.token
    assert got.created == sent.created
    assert got.sender == wire["sender"]
    assert (got.subscribe, got.channel) == ("sub://x", "chan://y")


@pytest.mark.parametrize("drop", [True, False])
def test_invalid_envelope_is_signalled_and_kept(client: Client, observer: Connection, drop: bool) -> None:
    job_id = client.queue.put(b'{"@context": "message", "body": 1}')
    with pytest.raises(InvalidEnvelope) as info:
        client.reserve(timeout=0, drop=drop)
    error = info.value
    assert isinstance(error, BeanstalkmException)
    assert error.message.uid == job_id
    assert error.message.raw == b'{"@context": "message", "body": 1}'
    assert error.message.reserved is True
    assert str(job_id) in str(error)
    # never deleted unseen, whatever drop said
    assert _state(observer, job_id) == "reserved"
    assert observer.queue.stats().cmd_delete == 0
    error.message.bury()
    assert _state(observer, job_id) == "buried"
    # the connection is still in sync
    assert client.reserve(timeout=0) is None


def test_invalid_envelope_from_low_level_reserve(client: Client, observer: Connection) -> None:
    job_id = client.queue.put(b'{"@context": "message", "body": {}, "created": "yesterday"}')
    with pytest.raises(InvalidEnvelope) as info:
        client.queue.reserve_with_timeout(0)
    assert info.value.message.uid == job_id
    info.value.message.release()
    assert _state(observer, job_id) == "ready"
    info.value.message.delete()
    assert observer.queue.peek(job_id) is None


def test_invalid_envelope_without_validation_reads_its_body(
    server: BeanstalkdServer, make_client: ClientFactory
) -> None:
    with make_client(server.host, server.port, timeout=10, validate=False) as c:
        c.queue.put(b'{"@context": "message", "body": 1}')
        m = c.reserve(timeout=0)
        assert m is not None and m.body == 1


def test_reserve_many_with_an_invalid_envelope(client: Client, observer: Connection) -> None:
    good = client.put("good")
    bad_id = client.queue.put(b'{"@context": "message", "body": 1}')
    also_good = client.put("also good")
    client.watch(DEFAULT_TUBE)
    with pytest.raises(BatchFailed) as info:
        client.reserve_many(5)
    results = info.value.results
    assert [m.body for m in results if is_message(m)] == ["good", "also good"]
    [error] = info.value.errors
    assert isinstance(error, InvalidEnvelope)
    assert error.message.uid == bad_id and error.message.reserved is True
    # the good ones were dropped, the bad one is still reserved
    for m in (good, also_good):
        assert observer.queue.peek(m.uid) is None
    assert _state(observer, bad_id) == "reserved"


def test_reserve_many_failure_results_are_in_server_order(client: Client, observer: Connection) -> None:
    client.watch(DEFAULT_TUBE)
    client.queue.use(DEFAULT_TUBE)  # the raw put goes where Client.put does
    first = client.put("one")
    bad_id = client.queue.put(b'{"@context":"message","body":1}')  # not a valid envelope
    third = client.put("three")
    with pytest.raises(BatchFailed) as info:
        client.reserve_many(4, timeout=0)
    results = info.value.results
    assert len(results) == 4
    one, bad, three, timed_out = results
    assert is_message(one) and (one.uid, one.body) == (first.uid, "one")
    assert isinstance(bad, InvalidEnvelope) and bad.message.uid == bad_id and bad.message.reserved
    assert is_message(three) and (three.uid, three.body) == (third.uid, "three")
    assert timed_out is None  # the fourth reserve found nothing: a timeout, not an error
    assert info.value.errors == [bad]
    # the good ones were dropped, the bad one is still reserved
    assert one.deleted and three.deleted
    assert observer.queue.peek(first.uid) is None and observer.queue.peek(third.uid) is None
    assert _state(observer, bad_id) == "reserved"
    bad.message.delete()


def test_reserve_many_drop_false_failure_results_are_in_server_order(client: Client, observer: Connection) -> None:
    client.watch(DEFAULT_TUBE)
    client.queue.use(DEFAULT_TUBE)
    bad_id = client.queue.put(b'{"@context":"message","body":1}')
    good = client.put("good")
    with pytest.raises(BatchFailed) as info:
        client.reserve_many(3, timeout=0, drop=False)
    bad, message, timed_out = info.value.results
    assert isinstance(bad, InvalidEnvelope) and bad.message.uid == bad_id
    assert is_message(message) and message.uid == good.uid and message.reserved
    assert timed_out is None
    assert [_state(observer, uid) for uid in (bad_id, good.uid)] == ["reserved", "reserved"]


def test_delete_many_marks_the_messages_it_deleted(client: Client, observer: Connection) -> None:
    client.put("to reserve")
    client.watch(DEFAULT_TUBE)
    reserved = client.reserve(timeout=0, drop=False)
    assert reserved is not None and reserved.reserved
    ready = client.put("ready")
    with pytest.raises(BatchFailed) as info:
        client.delete_many([ready, 999999, reserved])
    results = info.value.results
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], NotFound)
    for m in (ready, reserved):
        assert m.deleted is True
        assert m.reserved is False
        assert m.stats() is None
        assert observer.queue.peek(m.uid) is None
    stats = observer.queue.stats()
    assert (stats.current_jobs_ready, stats.current_jobs_reserved) == (0, 0)


def test_large_bodies(server_factory: ServerFactory, make_client: ClientFactory) -> None:
    big = server_factory(max_job_size=2_000_000)
    with make_client(big.host, big.port, timeout=10) as c:
        c.watch(DEFAULT_TUBE)
        body = {"blob": "☃" * 300_000, "n": list(range(1000))}  # > 900 kB on the wire
        sent = c.put(body)
        got = c.reserve(timeout=0)
        assert got is not None and got.body == body and got.token == sent.token
        raw = bytes(range(256)) * 4000
        job_id = c.queue.put(raw)
        peeked = c.queue.peek(job_id)
        assert peeked is not None and peeked.raw == raw and peeked.body == raw
        assert c.queue.using() == "default"


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
            c.queue.stats()  # the old connection is gone; the command may have been lost
        assert info.value.maybe_executed is True
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


# -- batches -----------------------------------------------------------------------------------


def test_put_many(client: Client, observer: Connection) -> None:
    bodies: list[Any] = ["a", {"b": 2}, [3], None]
    messages = client.put_many(bodies, tube="batch", priority=11, ttr=33)
    assert [m.body for m in messages] == bodies
    uids = [m.uid for m in messages]
    assert all(uid > 0 for uid in uids)
    assert uids == sorted(uids) and len(set(uids)) == len(uids)
    for m in messages:
        stats = observer.queue.stats_job(m.uid)
        assert (stats.tube, stats.pri, stats.ttr) == ("batch", 11, 33)
    assert client.queue.using() == "default"
    assert client.put_many([]) == []
    observer.queue.watch("batch")
    got = [observer.queue.reserve_with_timeout(0) for _ in bodies]
    assert [(m.uid, m.body) for m in got] == [(m.uid, m.body) for m in messages]


def test_reserve_many(client: Client, observer: Connection) -> None:
    sent = client.put_many(["one", "two", "three"])
    client.watch(DEFAULT_TUBE)
    got = client.reserve_many(5)
    assert [m.body for m in got] == ["one", "two", "three"]
    assert [m.uid for m in got] == [m.uid for m in sent]
    assert all(m.deleted and not m.reserved for m in got)  # dropped: deleted
    for m in sent:
        with pytest.raises(NotFound):
            observer.queue.stats_job(m.uid)
    assert client.reserve_many(3) == []

    sent = client.put_many([1, 2, 3])
    got = client.reserve_many(2, drop=False)
    assert [(m.uid, m.body) for m in got] == [(m.uid, m.body) for m in sent[:2]]
    assert all(m.reserved for m in got)
    assert [_state(observer, m.uid) for m in sent] == ["reserved", "reserved", "ready"]
    client.delete_many(got)
    assert all(m.deleted and m.stats() is None for m in got)
    client.delete_many([sent[2].uid])
    assert observer.queue.stats().current_jobs_ready == 0
    assert observer.queue.stats().current_jobs_reserved == 0


def test_reserve_many_waits_at_most_timeout_in_all(client: Client) -> None:
    client.watch(DEFAULT_TUBE)
    start = time.monotonic()
    assert client.reserve_many(3, timeout=1) == []
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 1.8  # not one timeout per reserve
    client.put("only one")
    start = time.monotonic()
    got = client.reserve_many(3, timeout=1)
    assert [m.body for m in got] == ["only one"]
    assert time.monotonic() - start < 0.8


def test_delete_many_failure(client: Client, observer: Connection) -> None:
    a = client.put("a")
    b = client.put("b")
    with pytest.raises(BatchFailed) as info:
        client.delete_many([a.uid, MISSING_ID, b])
    results = info.value.results
    assert len(results) == 3
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], NotFound)
    assert info.value.errors == [results[1]]
    assert observer.queue.stats().current_jobs_ready == 0
    assert client.queue.using() == "default"


def test_pipeline_results_in_order(client: Client) -> None:
    with client.pipeline() as p:
        p.use("piped").put(b"first").put(b"second", priority=1)
        p.peek_ready()
        p.stats_tube("piped")
        p.using()
        p.watch("piped")
        p.reserve_with_timeout(0)
        assert len(p) == 8
        results = p.execute()
    assert results[0] == "piped"
    first, second = results[1], results[2]
    assert isinstance(first, int) and isinstance(second, int) and second == first + 1
    peeked = results[3]
    assert is_message(peeked) and peeked.uid == second  # priority 1 comes first
    tube = results[4]
    assert isinstance(tube, TubeStats) and tube.name == "piped" and tube.current_jobs_ready == 2
    assert results[5:7] == ["piped", 2]
    reserved = results[7]
    assert is_message(reserved) and (reserved.uid, reserved.raw) == (second, b"second")
    assert client.queue.using() == "piped"


def test_pipeline_uses_the_callers_tube_after_client_put(client: Client, observer: Connection) -> None:
    client.queue.use("mine")
    client.put("routed elsewhere")  # the server now uses 'receive'
    with client.pipeline() as p:
        p.put(b"raw").peek_ready().using().kick(5)
    assert p.results is not None
    job_id, peeked, using, kicked = p.results
    assert isinstance(job_id, int)
    assert observer.queue.stats_job(job_id).tube == "mine"
    assert is_message(peeked) and peeked.uid == job_id
    assert (using, kicked) == ("mine", 0)


def test_pipeline_executes_on_exit(client: Client, observer: Connection) -> None:
    with client.pipeline() as p:
        p.put(b"x").put(b"y")
    assert p.results is not None and len(p.results) == 2
    assert observer.queue.stats().cmd_put == 2


def test_pipeline_failure_mid_batch(client: Client, observer: Connection) -> None:
    with client.pipeline() as p:
        p.put(b"before")
        p.delete(MISSING_ID)
        p.put(b"after")
        with pytest.raises(BatchFailed) as info:
            p.execute()
    results = info.value.results
    assert len(results) == 3
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert isinstance(results[1], NotFound)
    assert results[1].args[1] == "NOT_FOUND"
    # both puts happened, and the connection is in sync
    assert observer.queue.stats_job(results[0]).state == "ready"
    assert observer.queue.stats_job(results[2]).state == "ready"
    assert client.queue.using() == "default"
    assert client.queue.put(b"next") == results[2] + 1


# -- a server that refuses the routing use ---------------------------------------------------


class _FakeServer:
    """A loopback server that answers ``use`` with ``OUT_OF_MEMORY`` and stores every ``put`` as job 7.

    ``reserve-with-timeout`` hands out ``jobs`` (id and body) in order, then
    ``TIMED_OUT``; ``delete`` answers ``NOT_FOUND`` for an id in ``lost``
    (as beanstalkd does once a job's time to run ran out and another took it).
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.log: list[str] = []
        self.jobs: list[tuple[int, bytes]] = []
        self.lost: set[int] = set()
        self.damaged: set[int] = set()  # sent as beanstalkd sends a job from a damaged binlog: zeros, no CRLF
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed: stop serving
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as f:
            while line := f.readline():
                parts = line.split()
                if not parts:
                    continue
                self.log.append(parts[0].decode() + "".join(f" {p.decode()}" for p in parts[1:2]))
                command = parts[0]
                if command == b"quit":
                    return
                if command == b"use":
                    conn.sendall(b"OUT_OF_MEMORY\r\n")
                elif command == b"put":
                    f.read(int(parts[4]) + 2)
                    conn.sendall(b"INSERTED 7\r\n")
                elif command == b"watch":
                    conn.sendall(b"WATCHING 2\r\n")
                elif command == b"ignore":
                    conn.sendall(b"WATCHING 1\r\n")
                elif command == b"reserve-with-timeout":
                    if self.jobs:
                        uid, body = self.jobs.pop(0)
                        if uid in self.damaged:
                            conn.sendall(b"RESERVED %d %d\r\n%b\x00\x00" % (uid, len(body), bytes(len(body))))
                        else:
                            conn.sendall(b"RESERVED %d %d\r\n%b\r\n" % (uid, len(body), body))
                    else:
                        conn.sendall(b"TIMED_OUT\r\n")
                elif command == b"delete":
                    conn.sendall(b"NOT_FOUND\r\n" if int(parts[1]) in self.lost else b"DELETED\r\n")
                else:
                    conn.sendall(b"UNKNOWN_COMMAND\r\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not, on Linux)
        self.listener.close()
        self._thread.join(PATIENCE)
        assert not self._thread.is_alive()


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
    assert refusing_use.log == ["use jobs", "put 2147483648"]
    # the failed use was not taken for the tube in force: the next put to 'jobs' asks for it again
    with pytest.raises(OutOfMemory) as info:
        client.put({"n": 2}, tube="jobs")
    assert info.value.outcome == 7
    assert refusing_use.log == ["use jobs", "put 2147483648"] * 2


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
    assert refusing_use.log == ["use jobs"] + ["put 2147483648"] * 3


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
    reserves = refusing_use.log[: refusing_use.log.index("delete 100")]
    assert reserves == ["reserve-with-timeout 0"] * 45  # every reserve went out in the first write
    assert sorted(refusing_use.log[45:]) == sorted(f"delete {uid}" for uid in bodies)


def _envelope_bytes(body: Any) -> bytes:
    """A valid envelope around ``body``, as another beanstalkm would write it."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    token = hashlib.md5(b'{"body":' + canonical.encode() + b"}").hexdigest()
    envelope = {"@context": "message", "body": body, "created": {"$data": 1}, "sender": {"host": "h"}, "token": token}
    return json.dumps(envelope).encode()


def test_put_many_of_messages_keeps_their_envelope_fields(client: Client, observer: Connection) -> None:
    original = client({"n": 1}, subscribe="replies", channel="c1")
    sent = client.put_many([original, {"n": 2}], tube="forwarded")
    assert [m.body for m in sent] == [{"n": 1}, {"n": 2}]
    first = observer.queue.peek(sent[0].uid)
    assert first is not None
    assert (first.body, first.subscribe, first.channel, first.created) == (
        {"n": 1},
        "replies",
        "c1",
        original.created,
    )
    assert (sent[0].subscribe, sent[0].channel, sent[0].token) == ("replies", "c1", original.token)


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
    assert "delete 202" not in refusing_use.log and "delete 200" not in refusing_use.log  # left to the caller
    client.queue.delete(202)  # what a consumer does with it
    assert refusing_use.log[-1] == "delete 202"
