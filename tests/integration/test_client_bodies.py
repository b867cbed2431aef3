"""Message bodies and envelopes: round trips, foreign jobs, beanstalkm 1.0 envelopes, invalid envelopes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beanstalkm import (
    DEFAULT_TUBE,
    BatchFailed,
    BeanstalkmException,
    Client,
    Connection,
    InvalidEnvelope,
    NotFound,
)
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._client_support import BODIES, _state, _token
from ._flavours import ClientFactory, Flavour, is_message

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
        from beanstalkm._core import envelope as _envelope

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
