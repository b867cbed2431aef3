"""The per-message fast paths of the envelope (docs/sync-cpu.md, "The envelope and the message") give
what the general way gives.

- The envelope's bytes are pinned: the same inputs give the bytes beanstalkm wrote before this work.
- The canonical JSON's pooled C encoders: the same text as ``json.dumps``; an encoder that raised is
  never used again (its circular-reference markers may be dirty); a call made while another is
  under way, in the same thread or another, gets an encoder of its own.
- ``envelope.ours``: whatever it accepts, ``message.json`` accepts (the generated check and
  jsonschema), and its fields are the general way's.
- ``AsyncMessage._of_job`` (a client's received jobs) against ``ConnectionBase._message`` (the
  general way) on every kind of job: the same slots, the same ``InvalidEnvelope``.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beanstalkm import InvalidEnvelope, Message
from beanstalkm._async.message import AsyncMessage
from beanstalkm._core import envelope
from beanstalkm._core import message as message_module
from beanstalkm._core.base import ConnectionBase
from beanstalkm._core.message import MessageBase
from beanstalkm._core.requests import Job
from beanstalkm._errors import ArgumentTypeError
from beanstalkm._generated.envelope_check import is_valid

SENDER = {"host": "h\u00e9", "pid": 7, "time": 1.5, "version": "2.0.0"}
SENDER_JSON = json.dumps(SENDER, separators=(",", ":"))

# what beanstalkm wrote for these inputs before the per-message work (its main branch at 0188196)
PINNED = [
    (
        ({"n": 1, "to": "user@example.org"}, 1700000000000, SENDER_JSON),
        "a1f3231bd94f4d3d6437035b5b46ed1f",
        b'{"@context":"message","body":{"n":1,"to":"user@example.org"},"created":{"$data":1700000000000},'
        b'"sender":{"host":"h\\u00e9","pid":7,"time":1.5,"version":"2.0.0"},'
        b'"token":"a1f3231bd94f4d3d6437035b5b46ed1f","errors":[]}',
    ),
    (
        ("\u00e9\U0001f600", 0, SENDER_JSON),
        "6748e94489ad1aaf6e12ea1cf253315b",
        b'{"@context":"message","body":"\\u00e9\\ud83d\\ude00","created":{"$data":0},'
        b'"sender":{"host":"h\\u00e9","pid":7,"time":1.5,"version":"2.0.0"},'
        b'"token":"6748e94489ad1aaf6e12ea1cf253315b","errors":[]}',
    ),
    (
        ([1, 2.5, None, True, {"b": 1, "a": []}], -5, SENDER_JSON, "sub://x", "chan", ["e1", "\u00e9"]),
        "b68c5ce6eb2aab5028efc20655224838",
        b'{"@context":"message","body":[1,2.5,null,true,{"a":[],"b":1}],"created":{"$data":-5},'
        b'"sender":{"host":"h\\u00e9","pid":7,"time":1.5,"version":"2.0.0"},'
        b'"token":"b68c5ce6eb2aab5028efc20655224838","errors":["e1","\\u00e9"],"subscribe":"sub://x","channel":"chan"}',
    ),
]


@pytest.mark.parametrize(("args", "token", "data"), PINNED)
def test_the_envelope_s_bytes_are_what_beanstalkm_wrote_before(args: tuple[Any, ...], token: str, data: bytes) -> None:
    assert envelope.encode(*args) == (token, data)


class _Conn:
    """What a message asks of its connection here: the link it is reserved on, ``validate``, and the
    general way's ``_new_message`` (``AsyncConnection``'s)."""

    def __init__(self, validate: bool | None) -> None:
        self._link = object()
        self.validate = validate
        self._sender = SENDER
        self._sender_wire = (SENDER, SENDER_JSON)

    def _new_message(self, body: Any, kwargs: dict[str, Any]) -> AsyncMessage:
        conn: Any = self
        return AsyncMessage._made(conn, body, kwargs)


@pytest.mark.parametrize("cls", [Message, AsyncMessage])
def test_client_put_s_envelope_is_the_general_one(cls: Any) -> None:
    conn = _Conn(True)
    quick = cls._new(conn, {"n": 1}, dict(SENDER), 7, 8, 9)
    general = cls(conn, {"n": 1}, created=dict(quick.created), sender=dict(SENDER), priority=7, delay=8, ttr=9)
    plain = quick._plain_put(SENDER_JSON, 7, 8, 9)
    usual = general._put_request(conn._sender_wire)
    assert plain.pieces == usual.pieces and plain.command == usual.command == "put"
    assert quick.token == general.token  # set by the encoding, as the general way sets it


# -- the canonical JSON: pooled encoders ---------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_canonical_is_sorted_compact_json(value: object) -> None:
    assert envelope.canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


@pytest.mark.parametrize("bad", ["circular", "nan", "object"])
def test_an_encoder_that_raised_is_not_used_again(bad: str) -> None:
    inner: dict[str, Any] = {}
    outer: list[Any] = [inner]
    if bad == "circular":
        inner["x"] = outer  # the markers hold outer and inner when it raises
    elif bad == "nan":
        inner["x"] = [float("nan")]
    else:
        inner["x"] = [object()]
    for _ in range(3):  # whichever encoder of the pool is taken
        with pytest.raises(ArgumentTypeError):
            envelope.canonical(outer)
    inner.clear()
    for _ in range(3):
        assert envelope.canonical(outer) == "[{}]"  # a dirty encoder would call this circular


class _Hook(dict[str, Any]):
    """A dict whose ``items()`` (the C encoder calls it for a dict subclass) runs ``hook`` once, in
    the middle of the encoding of a list holding it."""

    def __init__(self, hook: Any) -> None:
        super().__init__(k=1)
        self.hook = hook
        self.lock = threading.Lock()

    def items(self) -> Any:
        with self.lock:
            hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return super().items()


def test_a_call_during_another_gets_an_encoder_of_its_own() -> None:
    inside: list[str] = []
    holder: list[Any] = []
    holder.append(_Hook(lambda: inside.append(envelope.canonical(holder))))  # re-entered, the same list
    assert envelope.canonical(holder) == '[{"k":1}]'
    assert inside == ['[{"k":1}]']  # an encoder shared with the outer call would call this circular


def test_threads_encoding_the_same_value_at_once_share_no_encoder() -> None:
    threads = 4
    barrier = threading.Barrier(threads, timeout=10)
    shared: list[Any] = [_Hook(barrier.wait) for _ in range(threads)]  # each thread waits inside one
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(envelope.canonical(shared))  # a shared encoder would find ``shared`` in its markers
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
    assert not errors
    assert results == ['[{"k":1},{"k":1},{"k":1},{"k":1}]'] * threads


# -- received jobs: the envelope beanstalkm writes, in one pass ----------------------------------


def _ours(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "@context": "message",
        "body": {"n": 1},
        "created": {"$data": 1700000000000},
        "sender": dict(SENDER),
        "token": "t",
        "errors": [],
    }
    value.update(changes)
    return {k: v for k, v in value.items() if v is not _GONE}


_GONE: Any = object()

NOT_OURS = {
    "subscribe": _ours(subscribe="s"),
    "channel": _ours(channel="c"),
    "no errors key": _ours(errors=_GONE),
    "errors": _ours(errors=["e"]),
    "errors not a list": _ours(errors="e"),
    "context": _ours(**{"@context": "other"}),
    "created in seconds": _ours(created=1700000000),
    "created a float": _ours(created={"$data": 1700000000000.0}),
    "created a bool": _ours(created={"$data": True}),
    "created beyond a datetime": _ours(created={"$data": 10**16}),
    "created with more keys": _ours(created={"$data": 1, "x": 2}),
    "sender with more keys": _ours(sender={**SENDER, "ip": "1.2.3.4"}),
    "sender pid a bool": _ours(sender={**SENDER, "pid": True}),
    "sender pid a float": _ours(sender={**SENDER, "pid": 7.0}),
    "sender time an int": _ours(sender={**SENDER, "time": 1}),
    "sender host not a str": _ours(sender={**SENDER, "host": 1}),
    "sender without version": _ours(sender={"host": "h", "pid": 1, "time": 1.5, "other": "x"}),
    "token not a str": _ours(token=1),
    "not an object": [1, 2],
}


def test_ours_takes_the_envelope_beanstalkm_writes() -> None:
    value = _ours()
    assert envelope.ours(value) == ({"n": 1}, {"$data": 1700000000000}, SENDER, "t")
    assert envelope.ours(json.loads(envelope.encode("x", 5, SENDER_JSON)[1])) == (
        "x",
        {"$data": 5},
        SENDER,
        _token("x"),
    )


def _token(body: object) -> str:
    return envelope.token_of(envelope.canonical(body))


@pytest.mark.parametrize("name", sorted(NOT_OURS))
def test_ours_leaves_anything_else_to_the_general_way(name: str) -> None:
    assert envelope.ours(NOT_OURS[name]) is None


_VALIDATOR = jsonschema.Draft7Validator(envelope.SCHEMA)

near_ours = st.fixed_dictionaries(
    {},
    optional={
        "@context": st.sampled_from(["message", "other", 1]),
        "body": json_values,
        "created": st.sampled_from([{"$data": 5}, {"$data": 5.0}, {"$data": True}, 5, {"$data": 10**16}, {}]),
        "sender": st.fixed_dictionaries(
            {},
            optional={
                "host": st.sampled_from(["h", 1, None]),
                "pid": st.sampled_from([1, True, 1.0, "1"]),
                "time": st.sampled_from([1.5, 1, True, "t"]),
                "version": st.sampled_from(["v", 2]),
                "ip": st.sampled_from(["i", 1]),
                "extra": json_values,
            },
        ),
        "token": st.sampled_from(["t", 1, None]),
        "errors": st.sampled_from([[], ["e"], [1], "e"]),
        "subscribe": st.sampled_from(["s", 1]),
        "x": json_values,
    },
)


@settings(max_examples=1500, deadline=None)
@given(near_ours)
def test_what_ours_takes_is_valid_and_read_as_the_general_way_reads_it(value: dict[str, Any]) -> None:
    fields = envelope.ours(value)
    if fields is None:
        return
    assert is_valid(value) and _VALIDATOR.is_valid(value)
    raw = json.dumps(value).encode()
    kwargs, problem = MessageBase._from_job(1, raw, True)
    assert problem is None
    assert (kwargs["body"], kwargs["created"], kwargs["sender"], kwargs["token"]) == fields
    assert (kwargs["subscribe"], kwargs["channel"], kwargs["errors"], kwargs["envelope"]) == (None, None, [], True)


SLOTS = [s for cls in (MessageBase, AsyncMessage) for s in cls.__slots__]


def _slots(message: MessageBase) -> dict[str, Any]:
    return {slot: getattr(message, slot) for slot in SLOTS if slot not in {"created", "_held", "_conn"}}


JOBS = {
    "ours": envelope.encode({"n": 1}, 1700000000000, SENDER_JSON)[1],
    "ours, a large string body": envelope.encode("x" * 70000, 5, SENDER_JSON)[1],
    **{name: json.dumps(value).encode() for name, value in NOT_OURS.items()},
    "invalid": b'{"@context":"message","body":1}',
    "invalid, a large string body": b'{"@context":"message","body":"' + b"y" * 70000 + b'"}',
    "not JSON": b"plain text",
    "not UTF-8": b"\xff\xfe",
    "trailing space": envelope.encode(1, 5, SENDER_JSON)[1] + b" ",
}


@pytest.mark.parametrize("validate", [True, False, None])
@pytest.mark.parametrize("reserved", [True, False])
@pytest.mark.parametrize("name", sorted(JOBS))
def test_a_client_s_received_job_is_the_general_way_s_message(
    name: str, reserved: bool, validate: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(message_module, "_time", lambda: 1_700_000_000.5)  # one receipt time for both ways
    conn: Any = _Conn(validate)
    job = Job(42, JOBS[name])
    try:
        general = ConnectionBase._message(conn, job, reserved)
    except InvalidEnvelope as exc:
        with pytest.raises(InvalidEnvelope) as info:
            AsyncMessage._of_job(conn, job, reserved)
        assert info.value.reason == exc.reason and str(info.value) == str(exc)
        quick, general = info.value.message, exc.message
    else:
        quick = AsyncMessage._of_job(conn, job, reserved)
    assert isinstance(quick, AsyncMessage) and isinstance(general, AsyncMessage)
    assert _slots(quick) == _slots(general)
    assert quick._conn is conn and quick._held is general._held and quick.reserved is general.reserved
    assert quick.created == general.created  # the envelope's, or else the (one) receipt time
    assert quick.raw is job.body


# -- the batches' own per-item work -------------------------------------------------------------


@pytest.mark.parametrize("cls", [Message, AsyncMessage])
def test_a_put_many_message_is_the_constructor_s(cls: Any) -> None:
    conn: Any = _Conn(True)
    quick = cls._new(conn, [1], dict(SENDER), 7, 8, 9, {"$data": 5}, "tok")
    general = cls(conn, [1], created={"$data": 5}, sender=dict(SENDER), token="tok", priority=7, delay=8, ttr=9)
    assert {s: getattr(quick, s) for s in SLOTS if s != "_conn"} == {
        s: getattr(general, s) for s in SLOTS if s != "_conn"
    }
    assert quick.token == "tok" and quick.created == {"$data": 5}


@settings(max_examples=200, deadline=None)
@given(st.lists(json_values, max_size=8), st.integers(0, 9))
def test_canonical_all_is_canonical_of_each(bodies: list[Any], bad_at: int) -> None:
    assert envelope.canonical_all(bodies) == [envelope.canonical(body) for body in bodies]
    if bad_at < len(bodies):
        bodies[bad_at] = {"x": float("nan")}
        bodies.append(object())  # a later bad body: the first is the one named
        with pytest.raises(ArgumentTypeError) as info:
            envelope.canonical_all(bodies)
        with pytest.raises(ArgumentTypeError) as expected:
            envelope.canonical(bodies[bad_at])
        assert str(info.value) == str(expected.value)
