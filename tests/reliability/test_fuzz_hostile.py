"""Fuzzing with hostile data, beyond ``test_fuzz.py`` (which fuzzes the reader's framing and the
envelope decoder on ordinary JSON):

* Reply streams a hostile server sends, to every kind of command: YAML with
  anchors and aliases (alias bombs), nested deep, with numbers of thousands of
  digits, random YAML-ish text and bytes; framed right, with a lying or huge
  length, truncated, with stray bytes around. Fed to the reader in random
  pieces and decoded by the command's own decoder (and a job made into a
  message): only the project's exceptions come out, at a bounded cost in
  memory (``tracemalloc``).
* Envelopes a hostile producer puts: nested at any depth in any field, NaN
  and infinities, integers of thousands of digits, lone surrogates, duplicate
  keys, other top-level values, invalid UTF-8. Turned into a message the way a
  reserve does (``_reserved_message``, sync and async connections), with and
  without validation, at a random depth in the stack: a message, or an
  ``InvalidEnvelope`` carrying the job, reserved; and what a consumer asks of
  the message (``str``, ``repr``, ``as_dict``, ``token``, ``utc``) never raises.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beanstalkm import BeanstalkmException, Connection, InvalidEnvelope, ServerStats
from beanstalkm._core.base import ConnectionBase
from beanstalkm._core.message import MessageBase
from beanstalkm._core.requests import Job, Reply, Request
from beanstalkm._generated import commands as C
from beanstalkm.aio import AsyncConnection
from beanstalkm.testing import BeanstalkdServer

PeakMemory = Callable[[], AbstractContextManager[list[int]]]
"""The ``peak_memory`` fixture (tests/conftest.py)."""

T = TypeVar("T")

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MIB = 1 << 20
MESSAGE_MAX = 1000  # no error message may be longer than this


def _deeper(frames: int, fn: Callable[[], T]) -> T:
    """``fn()``, called ``frames`` Python frames deeper in the stack than this call."""
    return fn() if frames <= 0 else _deeper(frames - 1, fn)


# -- hostile replies -----------------------------------------------------------------------------------

REQUESTS: list[Callable[[], Request[Any]]] = [
    C.stats,
    lambda: C.stats_tube("t"),
    lambda: C.stats_job(1),
    C.list_tubes,
    C.watching,
    C.using,
    C.stats_yaml,
    C.reserve,
    lambda: C.peek(1),
    lambda: C.reserve_with_timeout(0),
    lambda: C.put(b"x"),
    lambda: C.delete(1),
]
STATS_KEYS = list(ServerStats.KEYS)


@st.composite
def alias_bomb(draw: st.DrawFn) -> bytes:
    levels, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    mapping = draw(st.booleans())
    lead = [f"a{i}: " if mapping else "- " for i in range(levels)]
    lines = [lead[0] + "&a0 [" + ",".join(["x"] * width) + "]"]
    lines += [lead[i] + f"&a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return ("\n".join(lines) + "\n").encode()


@st.composite
def nested_yaml(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 3000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b"{a: ", b"}"), (b"- ", b"")]))
    head = draw(st.sampled_from([b"", b"---\n", b"k: "]))
    if opener == b"- ":
        return head + b"".join(b"  " * i + b"- " + (b"\n" if i < depth - 1 else b"x\n") for i in range(min(depth, 400)))
    return head + opener * depth + b"x" + closer * depth + b"\n"


@st.composite
def stats_yaml(draw: st.DrawFn) -> bytes:
    """A flat stats body, its values numbers of any length, or odd text."""
    value = st.one_of(
        st.integers(0, 6000).map(lambda n: "9" * n),
        st.integers(0, 2**70).map(str),
        st.sampled_from(["-1", "1e999", "NaN", "0.5", "true", "", '"x"', "&a x", "*a", "[1, 2]", "{a: b}"]),
        st.text(max_size=20).filter(lambda t: "\n" not in t),
    )
    keys = draw(st.lists(st.sampled_from(STATS_KEYS) | st.text("abcdef-", min_size=1, max_size=8), max_size=60))
    head = draw(st.sampled_from(["---\n", "", "--- \n"]))
    return (head + "".join(f"{k}: {draw(value)}\n" for k in keys)).encode("utf-8", "surrogatepass")


YAML_BODIES = st.one_of(
    alias_bomb(),
    nested_yaml(),
    stats_yaml(),
    st.text(alphabet="-:[]{}&*!|>'\"#%@` \nab01,?", max_size=300).map(str.encode),
    st.binary(max_size=300),
)


@st.composite
def hostile_stream(draw: st.DrawFn) -> bytes:
    body = draw(YAML_BODIES)
    status = draw(st.sampled_from([b"OK", b"RESERVED 7", b"FOUND 7", b"INSERTED", b"DELETED", b"NOT_FOUND", b"OK 1"]))
    framing = draw(st.sampled_from(["right", "lying", "huge", "truncated", "no-length"]))
    if framing == "right":
        reply = b"%b %d\r\n%b\r\n" % (status, len(body), body)
    elif framing == "lying":
        told = max(0, len(body) + draw(st.integers(-50, 50)))
        reply = b"%b %d\r\n%b\r\n" % (status, told, body)
    elif framing == "huge":
        reply = b"%b %d\r\n%b" % (status, draw(st.sampled_from([2**24 + 1, 2**30, 2**30 + 1, 10**30])), body)
    elif framing == "truncated":
        whole = b"%b %d\r\n%b\r\n" % (status, len(body), body)
        reply = whole[: draw(st.integers(0, len(whole)))]
    else:
        reply = status + b"\r\n" + body
    before = draw(st.sampled_from([b"", b"\r\n", b" ", b"\x00", b"USING x\r\n"]))
    after = draw(st.sampled_from([b"", b"\r\n", b"junk", b"OK 2\r\nab\r\n"]))
    return before + reply + after


def _decode_stream(request: Request[Any], stream: bytes, cuts: list[int]) -> list[object]:
    """Feed ``stream`` in pieces, decode each reply with ``request`` (a job made into a message): the
    outcomes, ending at the first ``ProtocolError``. Anything not the project's propagates."""
    reader = C.new_reader()
    outcomes: list[object] = []
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    for start, end in itertools.pairwise(points):
        try:
            reader.feed(stream[start:end])
            while (reply := reader.next_reply()) is not None:
                outcomes.append(_outcome(request, reply))
        except BeanstalkmException as exc:
            outcomes.append(exc)
            return outcomes
    return outcomes


def _outcome(request: Request[Any], reply: Reply) -> object:
    try:
        value = request.decode(reply)
    except BeanstalkmException as exc:
        assert len(str(exc)) <= MESSAGE_MAX, f"an unbounded message: {str(exc)[:200]}..."
        return exc
    if isinstance(value, Job):
        kwargs, problem = MessageBase._from_job(value.id, value.body, True)
        _views(MessageBase(**kwargs))
        assert problem is None or len(problem) <= MESSAGE_MAX
    return value


@FUZZ
@given(
    make=st.sampled_from(REQUESTS),
    stream=hostile_stream(),
    cuts=st.lists(st.integers(0, 10**6), max_size=8),
    frames=st.integers(0, 400),
)
def test_hostile_replies_give_only_typed_errors_at_bounded_cost(
    make: Callable[[], Request[Any]],
    stream: bytes,
    cuts: list[int],
    frames: int,
    peak_memory: PeakMemory,
) -> None:
    request = make()
    with peak_memory() as traced:
        _deeper(frames, lambda: _decode_stream(request, stream, cuts))
    peak = traced[0]
    assert peak <= 4 * MIB + 64 * len(stream), f"{peak} bytes allocated for a {len(stream)}-byte stream"


@FUZZ
@given(request=st.sampled_from(REQUESTS), size=st.integers(2**16, 2**30), sent=st.integers(0, 300_000))
def test_a_huge_announced_body_costs_what_arrived(
    request: Callable[[], Request[Any]],
    size: int,
    sent: int,
    peak_memory: PeakMemory,
) -> None:
    status = b"RESERVED 7" if request().command.startswith("reserve") else b"OK"
    stream = b"%b %d\r\n" % (status, size) + b"x" * min(sent, size)
    outcome: list[object] = []
    with peak_memory() as traced:
        outcome.extend(_decode_stream(request(), stream, list(range(0, len(stream), 65536))))
    assert traced[0] <= 2 * MIB + 2 * len(stream)
    if status == b"OK" and size > 16 * MIB:
        assert len(outcome) == 1 and "YAML" in str(outcome[0])  # refused before reading it
    else:
        assert outcome == []  # still waiting for the rest


# -- hostile producers ---------------------------------------------------------------------------------

LEAVES = st.sampled_from(
    [
        b"1",
        b'"x"',
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"1e400",
        b"-0.0",
        b"null",
        b"true",
        b'"\\ud800"',
        b'"\\udfff\\ud800"',
        b'"\xed\xa0\x80"',
        b'"\xff"',
        b"{}",
        b"[]",
    ]
) | st.integers(1, 6000).map(lambda n: b"9" * n)


@st.composite
def nested_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(0, 3000) | st.integers(850, 1050))
    kind = draw(st.sampled_from(["list", "dict", "mixed"]))
    leaf = draw(LEAVES)
    if kind == "list":
        return b"[" * depth + leaf + b"]" * depth
    if kind == "dict":
        return b'{"k":' * depth + leaf + b"}" * depth
    return b'[{"k":' * (depth // 2) + leaf + b"}]" * (depth // 2)


FIELDS = ["body", "created", "created.$data", "sender", "sender.host", "token", "errors", "subscribe", "extra"]


@st.composite
def hostile_job(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["envelope", "envelope", "envelope", "top-level", "duplicate", "bytes"]))
    value = draw(nested_json())
    if shape == "top-level":
        return value
    if shape == "bytes":
        return draw(st.binary(max_size=200))
    fields: dict[str, bytes] = {
        "body": b"1",
        "created": b'{"$data":1700000000000}',
        "sender": b'{"host":"h"}',
        "token": b'"t"',
    }
    where = draw(st.sampled_from(FIELDS))
    if where == "created.$data":
        fields["created"] = b'{"$data":%b}' % value
    elif where == "sender.host":
        fields["sender"] = b'{"host":%b}' % value
    elif where == "errors":
        fields["errors"] = b"[%b]" % value
    else:
        fields[where] = value
    if shape == "duplicate":
        fields = {**fields, "body": fields["body"] + b',"body":' + draw(LEAVES)}
    items = [b'"@context":"message"'] + [b'"%b":%b' % (k.encode(), v) for k, v in fields.items()]
    return b"{" + b",".join(draw(st.permutations(items))) + b"}"


def _views(message: MessageBase) -> None:
    """What a consumer asks of a message: none of it may raise."""
    assert isinstance(str(message), str) and isinstance(repr(message), str)
    assert message.as_dict()["token"] == message.token
    assert math.isfinite(message.timestamp)
    message.utc  # noqa: B018


@pytest.fixture(scope="module")
def connections(beanstalkd: BeanstalkdServer) -> Iterator[list[ConnectionBase[Any]]]:
    """A sync connection (connected: its constructor connects) and an async one (never connected:
    turning a job into a message is no I/O)."""
    sync = Connection(beanstalkd.host, beanstalkd.port, timeout=10)
    try:
        yield [sync, AsyncConnection(beanstalkd.host, beanstalkd.port, timeout=10)]
    finally:
        sync.close()


@FUZZ
@given(
    raw=hostile_job(),
    validate=st.sampled_from([True, False, None]),
    which=st.integers(0, 1),
    frames=st.integers(0, 400),
    later=st.integers(0, 400),
)
def test_hostile_jobs_are_messages_or_invalid_envelopes(
    connections: list[ConnectionBase[Any]], raw: bytes, validate: bool | None, which: int, frames: int, later: int
) -> None:
    conn = connections[which]
    conn.validate = validate
    try:
        message = _deeper(frames, lambda: conn._reserved_message(Job(42, raw)))
    except InvalidEnvelope as exc:
        assert validate is not False
        assert len(str(exc)) <= MESSAGE_MAX
        message = exc.message
    # reserved on the connection that reserved it while that is open: the async one never connected
    assert message.uid == 42 and message.raw is raw and message.reserved is conn.connected
    _deeper(later, lambda: _views(message))


def test_a_lone_surrogate_and_duplicate_keys_decode_as_json_loads_does() -> None:
    raw = b'{"@context":"message","body":"\\ud800","body":"\\udfff","created":1,"sender":{"host":"h"},"token":"t"}'
    kwargs, problem = MessageBase._from_job(1, raw, True)
    assert problem is None and kwargs["body"] == json.loads(raw)["body"] == "\udfff"
    _views(MessageBase(**kwargs))
