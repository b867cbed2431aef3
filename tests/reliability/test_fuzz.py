"""Fuzzing the two decoders that see bytes from the outside world.

* The reply reader (``commands.new_reader()``) on random bytes, random splits,
  truncated bodies, lying and huge lengths: it returns only well-formed
  replies or raises ``ProtocolError``, its buffer stays bounded, every call
  returns, and how the bytes are split never changes the outcome.
* The envelope decoder (``_envelope.decode`` and ``MessageBase._from_job``) on
  arbitrary JSON, envelope look-alikes and arbitrary bytes: it never raises,
  the message keeps the raw bytes, and the generated envelope check agrees
  with jsonschema. A large string body, which it decodes straight from the
  bytes, decodes exactly as ``json.loads`` of the whole text would.

Every test runs ``EXAMPLES`` examples (``settings(max_examples=...)``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from beanstalkm import ProtocolError
from beanstalkm._core import envelope as _envelope
from beanstalkm._core.envelope import SCHEMA, decode
from beanstalkm._core.message import MessageBase
from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Reply
from beanstalkm._generated import commands
from beanstalkm._generated.envelope_check import is_valid

EXAMPLES = 2000
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RAN: Counter[str] = Counter()  # examples actually run, per test

LINE_MAX = commands.REPLY_LINE_MAX
BODY_MAX = 512  # a small body limit, so that the memory bound is tested, not just stated
CHUNK_MAX = 700
COMPACT_AT = 65536  # the reader drops consumed bytes once this many accumulate


@pytest.fixture(scope="module", autouse=True)
def _report() -> Any:
    yield
    print(f"\nfuzz examples run: {dict(RAN)} (total {sum(RAN.values())})", flush=True)


# -- the reply reader --------------------------------------------------------------------------

STATUS_CHARS = st.sampled_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ_")
ARG_CHARS = st.sampled_from(b"abcdefghijklmnopqrstuvwxyz0123456789-+/;.$_()")
WORD = st.binary(min_size=1, max_size=12).map(lambda b: bytes(c % 26 + 65 for c in b))
ARG = st.lists(ARG_CHARS, min_size=1, max_size=20).map(bytes)


@st.composite
def plain_reply(draw: st.DrawFn) -> tuple[bytes, Reply]:
    status = draw(st.sampled_from([b"INSERTED", b"USING", b"DELETED", b"WATCHING", b"NOT_FOUND", b"TIMED_OUT"]) | WORD)
    if status.decode() in commands.BODY_STATUSES:
        status += b"X"
    args = draw(st.lists(ARG, max_size=3))
    line = b" ".join([status, *args])
    return line + b"\r\n", Reply(status.decode(), tuple(a.decode() for a in args), None)


@st.composite
def body_reply(draw: st.DrawFn) -> tuple[bytes, Reply]:
    status = draw(st.sampled_from(sorted(commands.BODY_STATUSES)))
    body = draw(st.binary(max_size=BODY_MAX))
    args = [str(draw(st.integers(1, 2**64 - 1)))] if status != "OK" else []
    args.append(str(len(body)))
    data = f"{status} {' '.join(args)}\r\n".encode() + body + b"\r\n"
    return data, Reply(status, tuple(args), body)


VALID = st.one_of(plain_reply(), body_reply())


@st.composite
def bad_piece(draw: st.DrawFn) -> bytes:
    """Something a server must never send."""
    kind = draw(st.sampled_from(["lying", "huge", "long", "garbage", "malformed", "nonascii", "nolength"]))
    status = draw(st.sampled_from(sorted(commands.BODY_STATUSES))).encode()
    if kind == "lying":
        body = draw(st.binary(max_size=64))
        told = draw(st.integers(0, 80).filter(lambda n: n != len(body)))
        return status + b" 1 %d\r\n" % told + body + b"\r\n"
    if kind == "huge":
        size = draw(st.sampled_from([BODY_MAX + 1, 2**31, 2**64, 10**40]) | st.integers(BODY_MAX + 1, 2**70))
        return status + b" 7 %d\r\n" % size + draw(st.binary(max_size=32))
    if kind == "long":
        return draw(WORD) + b"X" * draw(st.integers(LINE_MAX - 16, LINE_MAX + 64)) + b"\r\n"
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=400))
    if kind == "nonascii":
        return b"FOUND \xff\xfe 3\r\nabc\r\n"
    if kind == "nolength":
        return (
            status + draw(st.sampled_from([b"", b" ", b" 1 ", b" 1 -3", b" 1 +3", b" 1 3x", b" 1 \xd9\xa3"])) + b"\r\n"
        )
    return draw(st.sampled_from([b" OK 1\r\n", b"OK  1\r\n", b"INSERTED 1 \r\n", b"\r\n", b"A\r\n\r\n", b" \r\n"]))


@st.composite
def cut_points(draw: st.DrawFn, size: int) -> list[int]:
    """Where to split a stream of ``size`` bytes; no chunk longer than ``CHUNK_MAX`` (one recv)."""
    cuts = draw(st.lists(st.integers(0, size), max_size=30))
    points = sorted({*cuts, 0, size})
    out = [points[0]]
    for p in points[1:]:
        while p - out[-1] > CHUNK_MAX:
            out.append(out[-1] + CHUNK_MAX)
        out.append(p)
    return out


def even_points(size: int) -> list[int]:
    return sorted({0, *range(CHUNK_MAX, size, CHUNK_MAX), size})


class Outcome:
    """What a reader made of a stream: its replies, and whether (and after how many) it raised."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.error: ProtocolError | None = None

    def key(self) -> tuple[list[Reply], bool]:
        return self.replies, self.error is not None


def _check_reply(reply: Reply) -> None:
    assert reply.status and " " not in reply.status and reply.status.isascii()
    assert all(arg and " " not in arg and arg.isascii() for arg in reply.args)
    if reply.status in commands.BODY_STATUSES:
        assert reply.body is not None and reply.args and reply.args[-1].isdigit()
        assert len(reply.body) == int(reply.args[-1]) <= BODY_MAX
    else:
        assert reply.body is None


def _read(stream: bytes, points: list[int]) -> Outcome:
    reader = commands.new_reader(BODY_MAX)
    outcome = Outcome()
    calls = 0
    for start, end in itertools.pairwise(points):
        chunk = stream[start:end]
        reader.feed(chunk)
        assert reader.buffered <= LINE_MAX + BODY_MAX + 2 + len(chunk)
        assert len(reader._buf) <= COMPACT_AT + LINE_MAX + BODY_MAX + 2 + len(chunk)
        while True:
            calls += 1
            assert calls <= len(stream) + len(points) + 1, "the reader keeps returning without consuming"
            try:
                reply = reader.next_reply()
            except ProtocolError as exc:
                outcome.error = exc
                return outcome
            if reply is None:
                break
            _check_reply(reply)
            outcome.replies.append(reply)
        assert reader.buffered < LINE_MAX + BODY_MAX + 2
        assert 0 <= reader.missing() <= BODY_MAX + 2
    return outcome


@FUZZ
@given(data=st.data(), stream=st.binary(max_size=3000))
def test_reader_on_random_bytes(data: st.DataObject, stream: bytes) -> None:
    RAN["reader: random bytes"] += 1
    whole = _read(stream, even_points(len(stream)))
    split = _read(stream, data.draw(cut_points(len(stream))))
    assert split.key() == whole.key()


@FUZZ
@given(data=st.data(), pieces=st.lists(VALID, min_size=1, max_size=12))
def test_reader_valid_streams_at_any_split(data: st.DataObject, pieces: list[tuple[bytes, Reply]]) -> None:
    RAN["reader: valid streams, random splits"] += 1
    stream = b"".join(p for p, _ in pieces)
    outcome = _read(stream, data.draw(cut_points(len(stream))))
    assert outcome.error is None
    assert outcome.replies == [r for _, r in pieces]


@FUZZ
@given(
    data=st.data(),
    before=st.lists(VALID, max_size=5),
    bad=bad_piece(),
    after=st.lists(VALID, max_size=3),
)
def test_reader_stops_at_the_first_bad_reply(
    data: st.DataObject, before: list[tuple[bytes, Reply]], bad: bytes, after: list[tuple[bytes, Reply]]
) -> None:
    """Good replies before a bad one come out intact; the bad one raises or (garbage that happens
    to frame) yields well-formed replies; the outcome does not depend on the split."""
    RAN["reader: bad replies (lying/huge/long/garbage)"] += 1
    stream = b"".join(p for p, _ in before) + bad + b"".join(p for p, _ in after)
    whole = _read(stream, even_points(len(stream)))
    split = _read(stream, data.draw(cut_points(len(stream))))
    assert split.key() == whole.key()
    assert whole.replies[: len(before)] == [r for _, r in before]


@FUZZ
@given(piece=body_reply(), cut=st.integers(1, 10**6), data=st.data())
def test_reader_truncated_body_waits_without_error(piece: tuple[bytes, Reply], cut: int, data: st.DataObject) -> None:
    """A reply cut short is simply incomplete: no reply, no error, the missing byte count is right."""
    RAN["reader: truncated bodies"] += 1
    stream, _ = piece
    stream = stream[: cut % len(stream)]
    outcome = _read(stream, data.draw(cut_points(len(stream))))
    assert outcome.error is None and outcome.replies == []
    reader = commands.new_reader(BODY_MAX)
    reader.feed(stream)
    assert reader.next_reply() is None
    header_end = stream.find(b"\r\n")
    if header_end >= 0:
        assert reader.missing() == len(piece[0]) - len(stream)


def _read_via_read(stream: bytes, points: list[int]) -> Outcome:
    """Like ``_read``, but each chunk goes through ``reader.read`` (feed, then the next reply),
    the shortcut a driver may take, if the reader has it."""
    reader = commands.new_reader(BODY_MAX)
    read: Callable[[bytes], Reply | None] = getattr(reader, "read", None) or _feed_then_next(reader)
    outcome = Outcome()
    try:
        for start, end in itertools.pairwise(points):
            reply = read(stream[start:end])
            while reply is not None:
                _check_reply(reply)
                outcome.replies.append(reply)
                reply = reader.next_reply()
    except ProtocolError as exc:
        outcome.error = exc
    return outcome


def _feed_then_next(reader: ReplyReader) -> Callable[[bytes], Reply | None]:
    def read(data: bytes) -> Reply | None:
        reader.feed(data)
        return reader.next_reply()

    return read


@FUZZ
@given(
    data=st.data(),
    pieces=st.lists(st.one_of(VALID.map(lambda p: p[0]), bad_piece(), st.binary(max_size=40)), max_size=10),
)
def test_reader_read_shortcut_agrees_with_feed(data: st.DataObject, pieces: list[bytes]) -> None:
    RAN["reader: read() shortcut vs feed()"] += 1
    stream = b"".join(pieces)
    points = data.draw(cut_points(len(stream)))
    assert _read_via_read(stream, points).key() == _read(stream, points).key()


def test_reader_huge_length_is_refused_before_buffering_it() -> None:
    reader: ReplyReader = commands.new_reader()
    reader.feed(b"RESERVED 1 %d\r\n" % (commands.BODY_MAX + 1))
    with pytest.raises(ProtocolError, match="limit"):
        reader.next_reply()
    reader = commands.new_reader()
    reader.feed(b"OK 99999999999999999999999999999999\r\n")
    with pytest.raises(ProtocolError):
        reader.next_reply()


# -- the envelope decoder ----------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**80), 2**80),
    st.floats(),  # NaN and infinities too: Python's json reads and writes them
    st.sampled_from([1e308, -1e308, 1e300, 5e-324, 0.0, -0.0, 1.0, 2.0**63]),
    st.text(max_size=20),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
CREATED = st.one_of(
    JSON,
    st.fixed_dictionaries({"$data": SCALARS}),
    st.fixed_dictionaries({"$data": SCALARS}, optional={"x": SCALARS}),
    st.floats(),
    st.integers(-(10**30), 10**30),
)
SENDER = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"host": st.one_of(st.text(max_size=10), SCALARS)},
        optional=dict.fromkeys(("ip", "uid", "ua", "referer", "version", "pid", "time", "other"), SCALARS),
    ),
)
ENVELOPE = st.fixed_dictionaries(
    {"@context": st.just("message"), "body": JSON},
    optional={
        "created": CREATED,
        "sender": SENDER,
        "token": st.one_of(st.text(max_size=32), SCALARS),
        "errors": st.one_of(st.lists(st.one_of(st.text(max_size=8), SCALARS), max_size=3), SCALARS),
        "subscribe": st.one_of(st.text(max_size=8), SCALARS),
        "channel": st.one_of(st.text(max_size=8), SCALARS),
        "extra": JSON,
    },
)
VALIDATORS = [None, False, True]
JSONSCHEMA = jsonschema.Draft7Validator(SCHEMA)


def _same(a: object, b: object) -> bool:
    """Equal as JSON (NaN equals NaN); bytes as bytes."""
    if isinstance(a, bytes) or isinstance(b, bytes):
        return a == b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _check_decoded(raw: bytes, validate: bool | None) -> MessageBase:
    decoded = decode(raw, validate)  # must not raise
    kwargs, problem = MessageBase._from_job(42, raw, validate)  # must not raise
    message = MessageBase(**kwargs)
    assert message.raw is raw, "the raw body was lost"
    assert message.uid == 42
    assert _same(message.body, decoded.body)
    assert (problem is None) == (decoded.problem is None)
    # the message's own views of itself do not raise either
    repr(message)
    assert math.isfinite(message.timestamp)
    if _strict_json(message.body):  # see test_str_of_a_job_that_is_not_strict_json
        message.as_dict()
        assert isinstance(message.token, str)
        str(message)
    return message


def _strict_json(value: object) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _expected_body(raw: bytes) -> object:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if isinstance(value, dict) and value.get("@context") == "message":
        return value.get("body")
    return value


DEEP = [b"[" * 100_000, b"[" * 50_000 + b"]" * 50_000, b'{"@context":"message","body":' + b"[" * 50_000 + b"}"]
"""Too deep for every supported interpreter's ``json`` (3.11 stops at its recursion limit of 1,000; 3.12 and
3.13 count the C decoder's recursion against a C limit of several thousand): kept as their text."""
MIDDLE = b"[" * 5000 + b"]" * 5000
"""Too deep for 3.11's ``json``, not for 3.13's: the body is what this interpreter's ``json.loads`` makes of it."""
HUGE_CREATED = [
    b'{"@context":"message","body":1,"created":1e308,"sender":{"host":"h"},"token":"t"}',
    b'{"@context":"message","body":1,"created":-1e308,"sender":{"host":"h"},"token":"t"}',
    b'{"@context":"message","body":1,"created":Infinity,"sender":{"host":"h"},"token":"t"}',
    b'{"@context":"message","body":1,"created":NaN,"sender":{"host":"h"},"token":"t"}',
    b'{"@context":"message","body":1,"created":{"$data":1e300},"sender":{"host":"h"},"token":"t"}',
]


@pytest.mark.parametrize(
    "raw",
    [*DEEP, MIDDLE, *HUGE_CREATED],
    ids=[f"deep{i}" for i in range(len(DEEP))] + ["middle"] + [f"created{i}" for i in range(len(HUGE_CREATED))],
)
@pytest.mark.parametrize("validate", VALIDATORS)
def test_decode_edge_cases(raw: bytes, validate: bool | None) -> None:
    message = _check_decoded(raw, validate)
    if raw in DEEP:
        assert message.body == raw.decode()  # too deep to decode: kept as its text
    if raw == MIDDLE:
        assert message.body == _expected_body(raw)  # decoded where this interpreter decodes it, else its text


@FUZZ
@given(raw=st.binary(max_size=600), validate=st.sampled_from(VALIDATORS))
def test_decode_arbitrary_bytes(raw: bytes, validate: bool | None) -> None:
    RAN["envelope: arbitrary bytes"] += 1
    message = _check_decoded(raw, validate)
    if message.envelope is False and not isinstance(message.body, bytes):
        assert _same(message.body, _expected_body(raw))


@FUZZ
@given(value=JSON, validate=st.sampled_from(VALIDATORS))
def test_decode_arbitrary_json(value: object, validate: bool | None) -> None:
    RAN["envelope: arbitrary JSON"] += 1
    raw = json.dumps(value).encode()
    message = _check_decoded(raw, validate)
    assert message.envelope is False
    assert _same(message.body, value)


@FUZZ
@given(value=ENVELOPE, validate=st.sampled_from(VALIDATORS), ascii_only=st.booleans())
@example(
    value={"@context": "message", "body": 1, "created": 1e308, "sender": {"host": "h"}, "token": "t"},
    validate=True,
    ascii_only=True,
)
@example(
    value={"@context": "message", "body": 1, "created": float("inf"), "sender": {"host": "h"}, "token": "t"},
    validate=None,
    ascii_only=True,
)
def test_decode_envelope_lookalikes(value: dict[str, Any], validate: bool | None, ascii_only: bool) -> None:
    RAN["envelope: look-alike envelopes"] += 1
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    parsed = json.loads(raw)
    valid = JSONSCHEMA.is_valid(parsed)
    assert is_valid(parsed) == valid, "the generated envelope check disagrees with jsonschema"
    message = _check_decoded(raw, validate)
    decoded = decode(raw, validate)
    if valid or validate is False:
        assert decoded.problem is None
        assert message.envelope is True
        assert _same(message.body, parsed["body"])
    elif validate is True:
        assert decoded.problem is not None


@pytest.mark.parametrize("raw", [b"\x80binary", b"NaN", b'{"x": Infinity}'])
def test_str_of_a_job_that_is_not_strict_json(raw: bytes) -> None:
    """A job another client put as raw bytes, or as JSON with NaN/Infinity, reserves fine
    (its body is the bytes, or what Python's json reads), and ``str()``, ``as_dict()`` and
    ``token`` work: the token is the md5 of the raw bytes, there being no canonical JSON."""
    kwargs, _ = MessageBase._from_job(1, raw, None)
    message = MessageBase(**kwargs)
    assert message.raw == raw
    assert message.token == hashlib.md5(raw).hexdigest()
    assert message.as_dict()["token"] == message.token
    assert message.token in str(message)


# -- a large string body, decoded straight from the bytes ----------------------------------------

LARGE_STRING = b"0123456789abcdef" * 4096  # 64 KiB: large enough for decode's straight path
LARGE_PIECES = st.one_of(
    st.binary(max_size=4),
    st.text(max_size=3).map(str.encode),
    st.sampled_from(
        [b'"', b"\\", b'\\"', b"\\u0041", b"\x00", b"\n", b"\x1f", b"\x7f", b"\xc3\xa9", b"\xff", b"\xed\xa0\x80"]
    ),
)
LARGE_EXTRAS = st.sampled_from(
    [
        b"",
        b',"body":5',  # a later "body" key wins
        b',"body":NaN',
        b',"b\\u006fdy":[1]',
        b',"@context":"other"',
        b',"x":[NaN,Infinity,-Infinity]',
        b',"created":NaN',
        b" ",
        b",",
        b"x",
        b"\xff",
        b',"x":' + b"[" * 5000 + b"]" * 5000,
    ]
)


def _decode_usual(raw: bytes, validate: bool | None) -> Any:
    large, _envelope._LARGE = _envelope._LARGE, len(raw) + 1
    try:
        return decode(raw, validate)
    finally:
        _envelope._LARGE = large


@FUZZ
@given(
    inserts=st.lists(st.tuples(st.integers(0, len(LARGE_STRING)), LARGE_PIECES), max_size=3),
    value=ENVELOPE,
    extra=LARGE_EXTRAS,
    tail=st.sampled_from([b"}", b"} ", b"}x", b"", b"}}", b"]"]),
    validate=st.sampled_from(VALIDATORS),
)
def test_decode_large_string_body_as_json_loads(
    inserts: list[tuple[int, bytes]], value: dict[str, Any], extra: bytes, tail: bytes, validate: bool | None
) -> None:
    string = bytearray(LARGE_STRING)
    for at, piece in sorted(inserts, reverse=True):
        string[at:at] = piece
    fields = json.dumps({k: v for k, v in value.items() if k not in ("@context", "body")}).encode()
    rest = b"," + fields[1:-1] if len(fields) > 2 else b""
    raw = b'{"@context":"message","body":"%b"%b%b%b' % (bytes(string), rest, extra, tail)
    straight = _envelope._loads_string_body(raw) is not _envelope._NOTHING
    RAN["envelope: large string body" + (", straight" if straight else "")] += 1
    got, usual = decode(raw, validate), _decode_usual(raw, validate)
    assert type(got.body) is type(usual.body) and _same(got.body, usual.body)
    assert _same(got.envelope, usual.envelope) and _same(got.fields, usual.fields)
    assert got.problem == usual.problem
    _check_decoded(raw, validate)


def test_a_large_string_body_beanstalkm_puts_is_decoded_straight_from_the_bytes() -> None:
    """What keeps a large body's reserve at twice its size: the envelope beanstalkm writes for a string
    body with nothing to escape (base64, say) takes the straight path."""
    sender = {"host": "h"}
    message = MessageBase("0123456789abcdef+/=" * 65536, sender=sender)
    raw = message._encode((sender, json.dumps(sender)))
    value = _envelope._loads_string_body(raw)
    assert value is not _envelope._NOTHING and value == json.loads(raw)
    assert decode(raw, True).body == message.body
