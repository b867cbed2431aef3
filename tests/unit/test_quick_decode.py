"""The quick decoders (``Command.quick``): the usual success reply decoded from its bytes in one step.

Each must give exactly what the direct path's general way gives (``ReplyReader.one`` then the
command's decoder): the same value for the usual reply, and ``MISS`` for anything the general way
might decide otherwise (another status, a malformed or over-long line, a reply in pieces, two
replies, bytes after the reply), so the general way decides (the same value, or the same error).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beanstalkm._core.requests import MISS, Command, Request
from beanstalkm._errors import BeanstalkmException
from beanstalkm._generated import commands

from .test_reader import CASES
from .test_reader_one import MALFORMED

DIRECT: dict[str, Command[Any]] = {
    name: value for name, value in vars(commands).items() if isinstance(value, Command) and name.endswith("_COMMAND")
}
QUICK = {name: command for name, command in DIRECT.items() if command.quick is not None}


QUICK_REQUESTS: dict[str, Request[Any]] = {  # the reserves: they change no state, and are no Command
    "reserve": commands.reserve(),
    "reserve-with-timeout": commands.reserve_with_timeout(0),
    "reserve-job": commands.reserve_job(1),
}
QUICK.update({f"REQUEST_{name}": request for name, request in QUICK_REQUESTS.items()})
JOB_STATUS = {"peek": b"FOUND", "peek-ready": b"FOUND", "peek-delayed": b"FOUND", "peek-buried": b"FOUND"}
JOB_STATUS.update(dict.fromkeys(QUICK_REQUESTS, b"RESERVED"))


def _usual(command: Command[Any]) -> list[bytes]:
    """The usual success replies of ``command``: its status, with an id where it carries one, a job's body."""
    if command.command in JOB_STATUS:
        status = JOB_STATUS[command.command]
        return [
            b"%b %d %d\r\n%b\r\n" % (status, job_id, len(body), body)
            for job_id, body in ((1, b""), (7, b"x"), (2**63, b"a\r\nb"), (5, bytes(range(256)) * 300))
        ]
    status = {
        "put": b"INSERTED",
        "delete": b"DELETED",
        "release": b"RELEASED",
        "bury": b"BURIED",
        "touch": b"TOUCHED",
        "kick": b"KICKED",
        "kick-job": b"KICKED",
        "pause-tube": b"PAUSED",
    }[command.command]
    if command.command in ("put", "kick"):
        return [status + b" " + n + b"\r\n" for n in (b"0", b"5", b"007", b"4294967295", b"9" * 200)]
    return [status + b"\r\n"]


def _general(command: Command[Any], data: bytes, max_body: int = commands.BODY_MAX) -> tuple[bool, object]:
    """What the direct path's general way makes of ``data`` received whole: (True, the value) if
    ``ReplyReader.one`` takes it and the decoder returns a value; (False, ...) otherwise."""
    reply = commands.new_reader(max_body).one(data)
    if reply is None:
        return False, None
    try:
        return True, command.decode(reply)
    except BeanstalkmException as exc:
        return False, exc


def _quick(command: Command[Any], data: bytes, max_body: int = commands.BODY_MAX) -> object:
    assert command.quick is not None
    return command.quick(data, max_body)


def _agrees(command: Command[Any], data: bytes, max_body: int = commands.BODY_MAX) -> None:
    value = _quick(command, data, max_body)
    if value is MISS:
        return
    taken, expected = _general(command, data, max_body)
    assert taken, f"{command.command}: quick took {data!r}, the general way does not"
    assert value == expected and type(value) is type(expected)


def test_the_commands_with_a_quick_decoder() -> None:
    """Every command that changes nothing and answers at once has a ``Command``; those whose usual
    reply is a bare status or one integer have a quick decoder (the list is the spec's)."""
    assert sorted(c.command for name, c in QUICK.items() if name.endswith("_COMMAND")) == [
        "bury",
        "delete",
        "kick",
        "kick-job",
        "pause-tube",
        "peek",
        "peek-buried",
        "peek-delayed",
        "peek-ready",
        "put",
        "release",
        "touch",
    ]
    for request in QUICK_REQUESTS.values():
        assert request.quick is not None
    assert {"peek", "stats", "stats-job", "list-tubes", "put", "delete"} <= {c.command for c in DIRECT.values()}
    for command in DIRECT.values():
        assert command.effect is None and command.wait == 0.0 and command.expects_reply


@pytest.mark.parametrize("name", sorted(QUICK))
def test_the_usual_reply_is_decoded_at_once_as_the_general_way_decodes_it(name: str) -> None:
    command = QUICK[name]
    for data in _usual(command):
        value = _quick(command, data)
        assert value is not MISS, data
        assert _general(command, data) == (True, value)
    if command.command in JOB_STATUS:  # a body over the connection's max_body: the general way refuses it
        data = _usual(command)[1]  # a 1-byte body
        assert _quick(command, data, 1) is not MISS and _general(command, data, 1)[0]
        assert _quick(command, data, 0) is MISS and not _general(command, data, 0)[0]


@pytest.mark.parametrize("name", sorted(QUICK))
def test_anything_else_is_left_to_the_general_way(name: str) -> None:
    """Every variant of the usual reply that is not exactly it, every reply of ``test_reader.py``
    and every malformed line it refuses: the quick decoder misses, or agrees with the general way."""
    command = QUICK[name]
    variants: list[bytes] = []
    for usual in _usual(command):
        line = usual[:-2]
        if command.command in JOB_STATUS:  # the body's framing, and the line before it
            head, _, body = usual.partition(b"\r\n")
            variants += [
                usual[:-1],
                usual[:-2] + b"\x00\x00",  # damaged: the general way frames it, the decoder raises
                usual + b"x",
                usual + usual,
                head + b"\r\n" + body[:-3] + b"\r\n",
                head + b" \r\n" + body,
                head.replace(b" ", b"  ", 1) + b"\r\n" + body,
                head + b" 1\r\n" + body,
                head.replace(b" ", b" +", 1) + b"\r\n" + body,
                head.replace(b" ", b" \xd9\xa1", 1) + b"\r\n" + body,
                head.lower() + b"\r\n" + body,
                head[: head.rindex(b" ")] + b"\r\n" + body,
            ]
            continue
        variants += [
            line,  # no CRLF yet: in pieces
            line + b"\r",
            line + b"\n",
            usual + usual,  # two replies
            usual + b"x",
            usual[:-1],
            b" " + usual,
            line + b" \r\n",
            line + b"  \r\n",
            line + b" x\r\n",
            line + b" -1\r\n",
            line + b" +1\r\n",
            line + b" 1 2\r\n",
            line + b"\r\n\r\n",
            line.lower() + b"\r\n",
            line + " \u0661".encode() + b"\r\n",  # an Arabic-Indic digit
            line + b" " + b"1" * 230 + b"\r\n",  # over the line limit
        ]
    if command.command in ("put", "kick"):  # the line limit: taken at it, left to the general way past it
        status = _usual(command)[0].split(b" ")[0]
        at = status + b" " + b"1" * (commands.REPLY_LINE_MAX - len(status) - 3) + b"\r\n"
        over = status + b" " + b"1" * (commands.REPLY_LINE_MAX - len(status) - 2) + b"\r\n"
        assert len(at) == commands.REPLY_LINE_MAX and _quick(command, at) is not MISS
        assert _quick(command, over) is MISS and _general(command, over)[0] is False
        variants += [at, over]
    variants += [case.reply for case in CASES] + list(MALFORMED)
    missed = 0
    for data in variants:
        _agrees(command, data)
        _agrees(command, data, 3)
        missed += _quick(command, data) is MISS
    assert missed > 0


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(QUICK)),
    data=st.one_of(
        st.binary(max_size=40),
        st.builds(
            lambda status, rest: status + rest,
            st.sampled_from(
                [
                    b"INSERTED",
                    b"DELETED",
                    b"KICKED",
                    b"BURIED",
                    b"TOUCHED",
                    b"RELEASED",
                    b"PAUSED",
                    b"RESERVED",
                    b"FOUND",
                ]
            ),
            st.binary(max_size=30),
        ),
        st.builds(lambda n: b"INSERTED %d\r\n" % n, st.integers(min_value=0)),
        st.builds(
            lambda status, n, size, body, end: b"%b %d %d\r\n%b%b" % (status, n, size, body, end),
            st.sampled_from([b"RESERVED", b"FOUND"]),
            st.integers(min_value=0),
            st.integers(min_value=0, max_value=12),
            st.binary(max_size=12),
            st.sampled_from([b"\r\n", b"\x00\x00", b"", b"\r\nDELETED\r\n"]),
        ),
    ),
    max_body=st.sampled_from([commands.BODY_MAX, 4, 0]),
)
def test_random_bytes_are_decoded_only_as_the_general_way_decodes_them(name: str, data: bytes, max_body: int) -> None:
    _agrees(QUICK[name], data, max_body)


def test_a_request_built_from_a_command_is_the_encoder_s() -> None:
    """``Command.request(head)`` (the general path's request, built only when needed) carries what the
    command's encoder builds: the same bytes, decoders and options."""
    pairs: list[tuple[Command[Any], Request[Any]]] = [
        (commands.PUT_COMMAND, commands.put(b"body")),
        (commands.DELETE_COMMAND, commands.delete(5)),
        (commands.STATS_JOB_COMMAND, commands.stats_job(5)),
        (commands.PEEK_READY_COMMAND, commands.peek_ready()),
        (commands.LIST_TUBES_COMMAND, commands.list_tubes()),
    ]
    for command, request in pairs:
        built = command.request(request.head)
        for attr in ("command", "head", "decode", "quick", "uses_tube", "effect", "tube", "wait", "body"):
            assert getattr(built, attr) == getattr(request, attr), (command.command, attr)
        assert built.expects_reply == request.expects_reply
        assert request.request(request.head) is request
