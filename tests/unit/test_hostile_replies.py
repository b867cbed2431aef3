"""Hostile data, without a socket: replies a hostile server sends, jobs a hostile producer put.

* A reply line announcing a huge body costs only the bytes that arrived; a
  YAML body (stats, lists) announced over ``YAML_BODY_MAX`` is refused before
  any of it is read.
* YAML a hostile server sends (anchors and aliases, deep nesting, huge
  numbers) is a ``ProtocolError`` with a bounded message, at bounded cost.
* A job nested close to the recursion limit, wherever the decoding runs in
  the stack, is a message or an invalid envelope carrying its job id, and
  the message's own views of itself (``str``, ``repr``, ``as_dict``,
  ``token``) never raise what is not the project's.

The depth at which Python's JSON decoder, ``repr`` and jsonschema give up
depends on how deep in the stack they run, so the tests near the limit run
at every stack depth over a range (``_deeper``) instead of at one.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import pytest

from beanstalkm import ProtocolError, ServerStats
from beanstalkm._core import decoders
from beanstalkm._core.envelope import decode
from beanstalkm._core.message import MessageBase
from beanstalkm._core.reader import YAML_BODY_MAX as READER_YAML_BODY_MAX
from beanstalkm._core.requests import Reply
from beanstalkm._core.yaml import parse_list, parse_mapping, to_int
from beanstalkm._generated import commands

from ._support import SERVER_TEXT_112, stats_body

PeakMemory = Callable[[], AbstractContextManager[list[int]]]
"""The ``peak_memory`` fixture (tests/conftest.py)."""

T = TypeVar("T")

MIB = 1 << 20
YAML_MAX = 16 * MIB  # the documented bound on a YAML body (stats, lists)
MESSAGE_MAX = 1000  # no error message may be longer than this


def _deeper(frames: int, fn: Callable[[], T]) -> T:
    """``fn()``, called ``frames`` Python frames deeper in the stack than this call."""
    if frames <= 0:
        return fn()
    return _deeper(frames - 1, fn)


def deepest_decodable() -> int:
    """The deepest JSON nesting ``json.loads`` decodes when called from here."""
    low, high = 1, sys.getrecursionlimit() + 10
    while low < high:
        mid = (low + high + 1) // 2
        try:
            json.loads("[" * mid + "]" * mid)
        except RecursionError:
            high = mid - 1
        else:
            low = mid
    return low


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# -- the reader: announced sizes -------------------------------------------------------------------


@pytest.mark.parametrize("header", [b"RESERVED 1 1073741824\r\n", b"FOUND 9 1073741824\r\n"])
def test_a_huge_announced_job_costs_only_the_bytes_that_arrived(header: bytes, peak_memory: PeakMemory) -> None:
    reader = commands.new_reader()
    arrived = b"x" * (300 * 1024)
    with peak_memory() as peak:
        reader.feed(header)
        assert reader.next_reply() is None
        for start in range(0, len(arrived), 65536):  # as recv hands it over
            reader.feed(arrived[start : start + 65536])
            assert reader.next_reply() is None
        assert reader.buffered == len(arrived)
    assert peak[0] < 2 * MIB, f"{peak[0]} bytes allocated for {len(arrived)} that arrived"
    # what a driver asks for in one receive: not the whole announced size
    assert 0 < reader.missing() <= MIB


def test_a_huge_announced_job_still_assembles_when_it_all_arrives() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    reader = commands.new_reader()
    reader.feed(b"RESERVED 5 %d\r\n" % len(body))
    for start in range(0, len(body), 7000):
        assert reader.next_reply() is None
        reader.feed(body[start : start + 7000])
    assert reader.next_reply() is None
    reader.feed(b"\r\nDELETED\r\n")
    assert reader.next_reply() == Reply("RESERVED", ("5", str(len(body))), body)
    assert reader.next_reply() == Reply("DELETED", (), None)


@pytest.mark.parametrize("size", [YAML_MAX + 1, 1073741824])
def test_a_yaml_body_announced_over_its_bound_is_refused_before_reading_it(size: int) -> None:
    reader = commands.new_reader()
    reader.feed(b"OK %d\r\n" % size)
    with pytest.raises(ProtocolError, match="YAML") as info:
        reader.next_reply()
    assert str(size) in str(info.value)


def test_a_yaml_body_at_its_bound_and_a_job_over_it_are_read() -> None:
    assert READER_YAML_BODY_MAX == YAML_MAX
    reader = commands.new_reader()
    reader.feed(b"OK %d\r\n" % YAML_MAX)
    assert reader.next_reply() is None  # waiting for the body
    reader = commands.new_reader()
    reader.feed(b"RESERVED 1 %d\r\n" % (YAML_MAX + 1))
    assert reader.next_reply() is None  # a job may be up to max_body


def test_a_smaller_max_body_bounds_yaml_bodies_too() -> None:
    reader = commands.new_reader(max_body=1000)
    reader.feed(b"OK 1001\r\n")
    with pytest.raises(ProtocolError):
        reader.next_reply()


# -- YAML ------------------------------------------------------------------------------------------


def alias_bomb(levels: int, *, mapping: bool = False) -> bytes:
    """A YAML document of ``levels`` lines, each an anchored flow list of nine aliases of the line
    before: tiny, yet ``9 ** levels`` scalars once the aliases are expanded. (The mapping has no
    ``---``, which would make it beanstalkd's flat form, whose values are kept as text.)"""
    lead = [f"a{i}: " if mapping else "- " for i in range(levels)]
    lines = [] if mapping else ["---"]
    lines.append(lead[0] + "&a0 [x,x,x,x,x,x,x,x,x]")
    lines += [lead[i] + f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("mapping", [False, True], ids=["list", "mapping"])
def test_an_alias_bomb_is_refused_at_bounded_cost(mapping: bool, peak_memory: PeakMemory) -> None:
    body = alias_bomb(6, mapping=mapping)  # 531441 scalars, expanded
    parse: Callable[[bytes], object] = parse_mapping if mapping else parse_list
    with peak_memory() as peak, pytest.raises(ProtocolError) as info:
        parse(body)
    assert len(str(info.value)) <= MESSAGE_MAX
    assert "alias" in str(info.value) or "anchor" in str(info.value)
    assert peak[0] < 2 * MIB


def test_the_alias_bomb_of_the_review_is_refused(peak_memory: PeakMemory) -> None:
    body = alias_bomb(9)
    assert len(body) < 400
    with peak_memory() as peak, pytest.raises(ProtocolError) as info:
        parse_list(body)
    assert len(str(info.value)) <= MESSAGE_MAX
    assert peak[0] < 2 * MIB


@pytest.mark.parametrize(
    "body",
    [b"---\n- &a x\n- b\n", b"---\n- *a\n", b"{a: &x b, c: d}", b"--- &top\n- a\n", b"[!!str &a x]"],
    ids=["anchor", "alias", "in-mapping", "on-document", "tagged"],
)
def test_anchors_and_aliases_are_refused(body: bytes) -> None:
    with pytest.raises(ProtocolError, match=r"anchor|alias"):
        parse_mapping(body) if body.startswith(b"{") else parse_list(body)


@pytest.mark.parametrize("depth", [2, 600, 999, 5000])
def test_deeply_nested_yaml_is_a_protocol_error(depth: int) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_list(nested(depth))
    assert len(str(info.value)) <= MESSAGE_MAX
    with pytest.raises(ProtocolError) as info:
        parse_mapping(b"{a: " + nested(depth) + b"}")
    assert len(str(info.value)) <= MESSAGE_MAX


def test_deeply_nested_yaml_at_any_stack_depth() -> None:
    for frames in range(0, 400, 7):
        with pytest.raises(ProtocolError):
            _deeper(frames, lambda: parse_list(nested(600)))


@pytest.mark.parametrize("digits", [21, 4301, 5000, 100_000])
def test_a_stats_integer_of_thousands_of_digits_is_a_protocol_error(digits: int) -> None:
    body = stats_body("ServerStats", {**SERVER_TEXT_112, "cmd-put": "9" * digits})
    with pytest.raises(ProtocolError, match="'cmd-put'") as info:
        ServerStats.from_yaml(body)
    assert len(str(info.value)) <= MESSAGE_MAX


def test_a_64_bit_stats_integer_is_still_read() -> None:
    assert to_int({"k": str(2**64 - 1)}, "k") == 2**64 - 1
    assert to_int({"k": str(-(2**63))}, "k") == -(2**63)


@pytest.mark.parametrize(
    ("body", "mapping"),
    [
        (b"{hostname: " + b"h" * 100_000 + b", bad: [" + b"x," * 50_000 + b"x]}", True),  # a huge key and value
        (b"{x: [" + b"y," * 50_000 + b"y]}", True),  # a mapping, its value not text
        (b"[" + b"'a'," * 10_000 + b"[b]]", False),  # a list, one item not a name
    ],
    ids=["huge-entry", "huge-value", "huge-list"],
)
def test_error_messages_about_a_huge_yaml_body_are_bounded(body: bytes, mapping: bool) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_mapping(body) if mapping else parse_list(body)
    assert len(str(info.value)) <= MESSAGE_MAX


def test_a_huge_stats_value_is_named_with_a_bounded_message() -> None:
    body = stats_body("ServerStats", {**SERVER_TEXT_112, "cmd-put": "x" * 1_000_000})
    with pytest.raises(ProtocolError, match="'cmd-put'") as info:
        ServerStats.from_yaml(body)
    assert len(str(info.value)) <= MESSAGE_MAX


# -- jobs nested close to the recursion limit -------------------------------------------------------

FRAMES = range(0, 160)  # stack depths (extra frames) at which each decoding runs


def envelope(created: bytes = b"1", body: bytes = b"1", extra: bytes = b"") -> bytes:
    return b'{"@context":"message","body":%b,"created":%b,"sender":{"host":"h"},"token":"t"%b}' % (
        body,
        created,
        extra,
    )


@pytest.mark.parametrize("validate", [True, None])
@pytest.mark.parametrize("where", ["created", "sender"])
def test_an_envelope_too_deep_for_jsonschema_to_explain_is_an_invalid_envelope(
    validate: bool | None, where: str
) -> None:
    """Validation on: jsonschema's message ``repr``s the bad value, which fails nested this deep."""
    deep = nested(deepest_decodable() - 5)
    raw = envelope(created=deep) if where == "created" else envelope(extra=b',"sender":{"host":' + deep + b"}")
    problems = 0
    for frames in FRAMES:
        kwargs, problem = _deeper(frames, lambda: MessageBase._from_job(7, raw, validate))
        assert kwargs["uid"] == 7 and kwargs["raw"] is raw
        if problem is not None:
            problems += 1
            assert len(problem) <= MESSAGE_MAX
        else:  # too deep to decode at that depth: the text, as any body that is not JSON
            assert kwargs["body"] == raw.decode()
    assert problems > 0  # it was decoded, and explained, at some depths


def test_an_invalid_envelope_with_a_huge_value_has_a_bounded_reason() -> None:
    raw = envelope(created=b"[" + b'"x",' * 100_000 + b'"x"]')
    _, problem = MessageBase._from_job(7, raw, True)
    assert problem is not None and problem.startswith("$.created")
    assert len(problem) <= MESSAGE_MAX


def _views(message: MessageBase) -> None:
    """What a consumer asks of a message: none of it may raise."""
    assert isinstance(str(message), str)
    assert isinstance(repr(message), str)
    assert message.as_dict()["token"] == message.token
    assert math.isfinite(message.timestamp)
    message.utc  # noqa: B018


@pytest.mark.parametrize("kind", ["body", "sender", "errors"])
def test_a_deep_job_decoded_high_in_the_stack_is_usable_lower_down(kind: str) -> None:
    """Decoded where the stack is shallow, re-encoded (``str``) or shown (``repr``) where it is deeper."""
    deep = nested(deepest_decodable() - 5)
    if kind == "body":
        raw = envelope(body=deep)
    elif kind == "sender":
        raw = envelope(extra=b',"sender":{"host":"h","x":' + deep + b"}")
    else:
        raw = envelope(extra=b',"errors":[' + deep + b"]")
    kwargs, problem = _deeper(0, lambda: MessageBase._from_job(7, raw, False))
    assert problem is None
    message = MessageBase(**kwargs)
    assert message.envelope is True
    for frames in FRAMES:
        _deeper(frames, lambda: _views(message))


@pytest.mark.parametrize("validate", [True, False])
def test_deep_jobs_decode_at_any_stack_depth(validate: bool) -> None:
    depth = deepest_decodable() - 5
    raws = [nested(depth), envelope(body=nested(depth)), envelope(extra=b',"errors":[' + nested(depth) + b"]")]
    for raw in raws:
        for frames in FRAMES:

            def check(raw: bytes = raw) -> None:
                kwargs, _ = MessageBase._from_job(7, raw, validate)
                _views(MessageBase(**kwargs))

            _deeper(frames, check)


@pytest.mark.parametrize(
    "created",
    [b'{"$data":' + b"9" * 400 + b"}", b'{"$data":-' + b"9" * 400 + b"}", b"9" * 300, b'{"$data":1e300}', b"1e300"],
    ids=["huge-ms", "huge-negative-ms", "huge-seconds", "float-ms", "float-seconds"],
)
def test_a_created_time_no_datetime_can_hold_gets_the_receipt_time(created: bytes) -> None:
    before = int(time.time() * 1000) / 1000
    kwargs, problem = MessageBase._from_job(7, envelope(created=created), True)
    assert problem is None  # a valid envelope: an integer, or a number of seconds
    message = MessageBase(**kwargs)
    assert before <= message.timestamp <= time.time()
    _views(message)


def test_a_created_time_in_range_is_kept() -> None:
    kwargs, _ = MessageBase._from_job(7, envelope(created=b'{"$data":253402300799000}'), True)
    assert MessageBase(**kwargs).utc.year == 9999


@pytest.mark.parametrize("validate", [True, False, None])
def test_decode_of_a_body_nested_far_past_the_limit(validate: bool | None) -> None:
    for raw in (nested(100_000), envelope(created=nested(100_000)), envelope(body=nested(100_000))):
        decoded = decode(raw, validate)
        assert decoded.body == raw.decode()


def test_a_reply_with_a_huge_body_is_named_with_a_bounded_message() -> None:
    reply = Reply("OK", (), b"x" * 1_000_000)
    with pytest.raises(ProtocolError) as info:
        decoders.reply_int(reply, 0)
    assert len(str(info.value)) <= MESSAGE_MAX


def test_a_body_outside_the_flat_form_is_bounded() -> None:
    """PyYAML's parser costs about a second a MiB of events: a larger body outside the flat form is refused."""
    with pytest.raises(ProtocolError, match="flat form"):
        parse_list(b"[" + b"a," * MIB + b"a]")
    assert len(parse_list(b"---\n" + b"- a\n" * MIB)) == MIB  # the flat form, at any size
    assert len(parse_list(b"[" + b"a," * 1000 + b"a]")) == 1001


def test_a_yaml_body_outside_the_flat_form_that_is_not_utf8_is_a_protocol_error() -> None:
    """Found by the fuzzing: PyYAML's C loader encodes its text when it is built, before parsing."""
    from beanstalkm._generated.stats import ServerStats

    with pytest.raises(ProtocolError, match="unparseable YAML body"):
        ServerStats.from_yaml(b"\x80\r\n")
