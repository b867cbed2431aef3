"""Byte-exact tests of the generated encoders, one table row (or more) per encoder.

Every command of spec/api.json and every raw ``*_yaml`` variant must appear in
``CASES``: a new command without a test makes ``test_every_encoder_has_a_case``
fail.
"""

from __future__ import annotations

import enum
import inspect
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import beanstalkm
from beanstalkm import ArgumentTypeError, InvalidArgument
from beanstalkm._core.requests import Request
from beanstalkm._generated import commands
from beanstalkm._generated.effects import Effect

from ._support import SPEC, all_encoder_names, raw_variants, spec_command, spec_commands

U32 = 2**32 - 1
U64 = 2**64 - 1
I31 = 2**31 - 1
TUBE_200 = "t" * 200


@dataclass(frozen=True)
class EncodeCase:
    """One encoder call and everything the Request it returns must carry."""

    id: str
    encoder: str
    make: Callable[[], Request[Any]]
    data: bytes
    command: str
    uses_tube: bool = False
    effect: str | None = None
    tube: str | None = None
    wait: float | None = 0.0
    expects_reply: bool = True


C = commands

CASES: list[EncodeCase] = [
    # put
    EncodeCase("put", "put", lambda: C.put(b"hi", 5, 0, 10), b"put 5 0 10 2\r\nhi\r\n", "put", uses_tube=True),
    EncodeCase("put-defaults", "put", lambda: C.put(b"x"), b"put 2147483648 0 120 1\r\nx\r\n", "put", uses_tube=True),
    EncodeCase(
        "put-keywords",
        "put",
        lambda: C.put(body=b"x", ttr=1, delay=2),
        b"put 2147483648 2 1 1\r\nx\r\n",
        "put",
        uses_tube=True,
    ),
    EncodeCase(
        "put-utf8-str", "put", lambda: C.put("é", 1, 2, 3), b"put 1 2 3 2\r\n\xc3\xa9\r\n", "put", uses_tube=True
    ),
    EncodeCase(
        "put-utf8-str-long",
        "put",
        lambda: C.put("日本 €", 0, 0, 0),
        b"put 0 0 0 10\r\n" + "日本 €".encode() + b"\r\n",
        "put",
        uses_tube=True,
    ),
    EncodeCase("put-empty", "put", lambda: C.put(b"", 0, 0, 0), b"put 0 0 0 0\r\n\r\n", "put", uses_tube=True),
    EncodeCase(
        "put-binary-with-crlf",
        "put",
        lambda: C.put(b"a\r\nb\x00\xff\r\n", 0, 0, 0),
        b"put 0 0 0 8\r\na\r\nb\x00\xff\r\n\r\n",
        "put",
        uses_tube=True,
    ),
    EncodeCase(
        "put-max",
        "put",
        lambda: C.put(b"z", U32, U32, U32),
        b"put 4294967295 4294967295 4294967295 1\r\nz\r\n",
        "put",
        uses_tube=True,
    ),
    EncodeCase(
        "put-bytearray",
        "put",
        lambda: C.put(bytearray(b"ab"), 1, 1, 1),  # type: ignore[arg-type]
        b"put 1 1 1 2\r\nab\r\n",
        "put",
        uses_tube=True,
    ),
    EncodeCase(
        "put-memoryview",
        "put",
        lambda: C.put(memoryview(b"abc"), 1, 1, 1),  # type: ignore[arg-type]
        b"put 1 1 1 3\r\nabc\r\n",
        "put",
        uses_tube=True,
    ),
    # use
    EncodeCase("use", "use", lambda: C.use("foo"), b"use foo\r\n", "use", effect="use", tube="foo"),
    EncodeCase(
        "use-all-chars",
        "use",
        lambda: C.use("Az09-+/;.$_()"),
        b"use Az09-+/;.$_()\r\n",
        "use",
        effect="use",
        tube="Az09-+/;.$_()",
    ),
    EncodeCase(
        "use-max-len",
        "use",
        lambda: C.use(TUBE_200),
        b"use " + b"t" * 200 + b"\r\n",
        "use",
        effect="use",
        tube=TUBE_200,
    ),
    EncodeCase("use-digits", "use", lambda: C.use("0123"), b"use 0123\r\n", "use", effect="use", tube="0123"),
    # reserve
    EncodeCase("reserve", "reserve", lambda: C.reserve(), b"reserve\r\n", "reserve", effect="reserve", wait=None),
    EncodeCase(
        "reserve_with_timeout",
        "reserve_with_timeout",
        lambda: C.reserve_with_timeout(5),
        b"reserve-with-timeout 5\r\n",
        "reserve-with-timeout",
        effect="reserve",
        wait=5.0,
    ),
    EncodeCase(
        "reserve_with_timeout-poll",
        "reserve_with_timeout",
        lambda: C.reserve_with_timeout(0),
        b"reserve-with-timeout 0\r\n",
        "reserve-with-timeout",
        effect="reserve",
        wait=0.0,
    ),
    EncodeCase(
        "reserve_with_timeout-max",
        "reserve_with_timeout",
        lambda: C.reserve_with_timeout(I31),
        b"reserve-with-timeout 2147483647\r\n",
        "reserve-with-timeout",
        effect="reserve",
        wait=float(I31),
    ),
    EncodeCase(
        "reserve_job", "reserve_job", lambda: C.reserve_job(7), b"reserve-job 7\r\n", "reserve-job", effect="reserve"
    ),
    EncodeCase(
        "reserve_job-max",
        "reserve_job",
        lambda: C.reserve_job(U64),
        b"reserve-job 18446744073709551615\r\n",
        "reserve-job",
        effect="reserve",
    ),
    # job commands
    EncodeCase("delete", "delete", lambda: C.delete(1), b"delete 1\r\n", "delete"),
    EncodeCase("delete-max", "delete", lambda: C.delete(U64), b"delete 18446744073709551615\r\n", "delete"),
    EncodeCase("release", "release", lambda: C.release(7, 10, 20), b"release 7 10 20\r\n", "release"),
    EncodeCase("release-defaults", "release", lambda: C.release(7), b"release 7 2147483648 0\r\n", "release"),
    EncodeCase(
        "release-max",
        "release",
        lambda: C.release(U64, U32, U32),
        b"release 18446744073709551615 4294967295 4294967295\r\n",
        "release",
    ),
    EncodeCase("bury", "bury", lambda: C.bury(7, 0), b"bury 7 0\r\n", "bury"),
    EncodeCase("bury-defaults", "bury", lambda: C.bury(7), b"bury 7 2147483648\r\n", "bury"),
    EncodeCase("touch", "touch", lambda: C.touch(42), b"touch 42\r\n", "touch"),
    # watch list
    EncodeCase("watch", "watch", lambda: C.watch("foo"), b"watch foo\r\n", "watch", effect="watch", tube="foo"),
    EncodeCase(
        "ignore",
        "ignore",
        lambda: C.ignore("default"),
        b"ignore default\r\n",
        "ignore",
        effect="ignore",
        tube="default",
    ),
    # peeks
    EncodeCase("peek", "peek", lambda: C.peek(3), b"peek 3\r\n", "peek"),
    EncodeCase("peek_ready", "peek_ready", lambda: C.peek_ready(), b"peek-ready\r\n", "peek-ready", uses_tube=True),
    EncodeCase(
        "peek_delayed", "peek_delayed", lambda: C.peek_delayed(), b"peek-delayed\r\n", "peek-delayed", uses_tube=True
    ),
    EncodeCase(
        "peek_buried", "peek_buried", lambda: C.peek_buried(), b"peek-buried\r\n", "peek-buried", uses_tube=True
    ),
    # kicks
    EncodeCase("kick", "kick", lambda: C.kick(100), b"kick 100\r\n", "kick", uses_tube=True),
    EncodeCase("kick-zero", "kick", lambda: C.kick(0), b"kick 0\r\n", "kick", uses_tube=True),
    EncodeCase("kick-max", "kick", lambda: C.kick(U32), b"kick 4294967295\r\n", "kick", uses_tube=True),
    EncodeCase("kick_job", "kick_job", lambda: C.kick_job(9), b"kick-job 9\r\n", "kick-job"),
    # stats
    EncodeCase("stats_job", "stats_job", lambda: C.stats_job(9), b"stats-job 9\r\n", "stats-job"),
    EncodeCase("stats_tube", "stats_tube", lambda: C.stats_tube("0123"), b"stats-tube 0123\r\n", "stats-tube"),
    EncodeCase("stats", "stats", lambda: C.stats(), b"stats\r\n", "stats"),
    # tube lists
    EncodeCase("list_tubes", "list_tubes", lambda: C.list_tubes(), b"list-tubes\r\n", "list-tubes"),
    EncodeCase("using", "using", lambda: C.using(), b"list-tube-used\r\n", "list-tube-used", uses_tube=True),
    EncodeCase("watching", "watching", lambda: C.watching(), b"list-tubes-watched\r\n", "list-tubes-watched"),
    # pause
    EncodeCase("pause_tube", "pause_tube", lambda: C.pause_tube("foo", 0), b"pause-tube foo 0\r\n", "pause-tube"),
    EncodeCase(
        "pause_tube-max",
        "pause_tube",
        lambda: C.pause_tube(TUBE_200, U32),
        b"pause-tube " + b"t" * 200 + b" 4294967295\r\n",
        "pause-tube",
    ),
    # quit
    EncodeCase("quit", "quit", lambda: C.quit(), b"quit\r\n", "quit", effect="close", expects_reply=False),
    # raw YAML variants: same bytes as the command they mirror
    EncodeCase("stats_job_yaml", "stats_job_yaml", lambda: C.stats_job_yaml(9), b"stats-job 9\r\n", "stats-job"),
    EncodeCase(
        "stats_tube_yaml", "stats_tube_yaml", lambda: C.stats_tube_yaml("foo"), b"stats-tube foo\r\n", "stats-tube"
    ),
    EncodeCase("stats_yaml", "stats_yaml", lambda: C.stats_yaml(), b"stats\r\n", "stats"),
    EncodeCase("list_tubes_yaml", "list_tubes_yaml", lambda: C.list_tubes_yaml(), b"list-tubes\r\n", "list-tubes"),
    EncodeCase(
        "watching_yaml", "watching_yaml", lambda: C.watching_yaml(), b"list-tubes-watched\r\n", "list-tubes-watched"
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_encoder_bytes_and_flags(case: EncodeCase) -> None:
    req = case.make()
    assert isinstance(req, Request)
    assert req.data == case.data
    assert type(req.data) is bytes
    assert req.command == case.command
    assert req.uses_tube is case.uses_tube
    assert req.effect is (None if case.effect is None else Effect(case.effect))
    assert req.tube == case.tube
    assert req.expects_reply is case.expects_reply
    if case.wait is None:
        assert req.wait is None
    else:
        assert type(req.wait) is float
        assert req.wait == case.wait


def _encoders_in_module() -> set[str]:
    """Public functions defined in the generated commands module that return a Request."""
    names: set[str] = set()
    for name, obj in vars(commands).items():
        if name.startswith("_") or not inspect.isfunction(obj) or obj.__module__ != commands.__name__:
            continue
        if name == "new_reader":
            continue
        names.add(name)
    return names


def test_every_encoder_has_a_case() -> None:
    """Each spec command (and raw variant) has an encoder and at least one row in CASES."""
    tested = {case.encoder for case in CASES}
    expected = all_encoder_names()
    missing_encoders = sorted(name for name in expected if not callable(getattr(commands, name, None)))
    assert missing_encoders == [], f"spec commands without an encoder: {missing_encoders}"
    assert sorted(expected - tested) == [], "encoders without a test case"
    assert sorted(_encoders_in_module() - expected) == [], "encoders the spec does not define"
    assert sorted(tested - expected) == []


def test_commands_tuple_matches_spec() -> None:
    assert tuple(cmd["wire"] for cmd in spec_commands()) == commands.COMMANDS
    assert len(commands.COMMANDS) == 25


def test_defaults_match_spec() -> None:
    defaults: dict[str, int] = {}
    for cmd in spec_commands():
        for arg in cmd["args"]:
            if "default" in arg:
                defaults[arg["default"]["constant"]] = arg["default"]["value"]
    assert defaults == {"DEFAULT_PRIORITY": 2**31, "DEFAULT_DELAY": 0, "DEFAULT_TTR": 120}
    assert (commands.DEFAULT_PRIORITY, commands.DEFAULT_DELAY, commands.DEFAULT_TTR) == (2**31, 0, 120)
    assert (beanstalkm.DEFAULT_PRIORITY, beanstalkm.DEFAULT_DELAY, beanstalkm.DEFAULT_TTR) == (2**31, 0, 120)


def test_limits_match_spec() -> None:
    limits = SPEC["limits"]
    assert (limits["command_line_max"], limits["reply_line_max"], limits["body_max"]) == (224, 224, 2**30)
    assert limits["command_line_max"] == commands.COMMAND_LINE_MAX
    assert limits["reply_line_max"] == commands.REPLY_LINE_MAX
    assert limits["body_max"] == commands.BODY_MAX
    assert frozenset({"RESERVED", "FOUND", "OK"}) == commands.BODY_STATUSES


# --- spec-driven checks -------------------------------------------------------------

# One valid value per argument type, all distinct so a swapped argument shows.
SAMPLE: dict[str, object] = {
    "priority": 11,
    "seconds": 22,
    "ttr": 33,
    "timeout": 44,
    "job_id": 55,
    "count": 66,
    "tube": "tb",
    "body": b"xyz",
}


def _sample_kwargs(cmd: dict[str, Any]) -> dict[str, object]:
    return {arg["name"]: SAMPLE[arg["type"]] for arg in cmd["args"]}


@pytest.mark.parametrize("name", sorted(all_encoder_names()))
def test_encoder_follows_spec_line(name: str) -> None:
    """The bytes are the spec's ``line`` with the arguments filled in (and the body after it)."""
    cmd = spec_command(raw_variants().get(name, name))
    kwargs = _sample_kwargs(cmd)
    req: Request[Any] = getattr(commands, name)(**kwargs)
    line = cmd["line"].format(**kwargs)
    if "body" in kwargs:
        body = kwargs["body"]
        assert isinstance(body, bytes)
        expected = f"{line} {len(body)}\r\n".encode("ascii") + body + b"\r\n"
    else:
        expected = f"{line}\r\n".encode("ascii")
    assert req.data == expected
    assert req.command == cmd["wire"]
    assert req.data.startswith(cmd["wire"].encode("ascii"))
    assert req.uses_tube is cmd.get("uses_tube", False)
    assert req.effect is (None if cmd.get("effect") is None else Effect(cmd["effect"]))
    assert req.expects_reply is not cmd.get("no_reply", False)
    tube_effect = cmd.get("effect") in {"use", "watch", "ignore"}
    assert req.tube == (kwargs["tube"] if tube_effect else None)
    blocks = cmd.get("blocks")
    if blocks == "forever":
        assert req.wait is None
    elif blocks == "timeout":
        assert req.wait == float(SAMPLE["timeout"])  # type: ignore[arg-type]
    else:
        assert req.wait == 0.0


def _max_kwargs(cmd: dict[str, Any]) -> dict[str, object]:
    kwargs: dict[str, object] = {}
    for arg in cmd["args"]:
        typ = SPEC["types"][arg["type"]]
        if typ["kind"] == "uint":
            kwargs[arg["name"]] = typ["max"]
        elif typ["kind"] == "tube":
            kwargs[arg["name"]] = "x" * SPEC["limits"]["tube_name_max"]
        else:
            kwargs[arg["name"]] = b""
    return kwargs


@pytest.mark.parametrize("name", sorted(all_encoder_names()))
def test_longest_command_line_fits(name: str) -> None:
    """With every argument at its largest, the command line stays within command_line_max."""
    cmd = spec_command(raw_variants().get(name, name))
    req: Request[Any] = getattr(commands, name)(**_max_kwargs(cmd))
    line, sep, _ = req.data.partition(b"\r\n")
    assert sep
    assert len(line) + 2 <= SPEC["limits"]["command_line_max"]


@pytest.mark.parametrize("name", sorted(all_encoder_names()))
def test_min_values_accepted(name: str) -> None:
    cmd = spec_command(raw_variants().get(name, name))
    kwargs: dict[str, object] = {}
    for arg in cmd["args"]:
        typ = SPEC["types"][arg["type"]]
        kwargs[arg["name"]] = {"uint": typ.get("min"), "tube": "a", "body": b""}[typ["kind"]]
    req: Request[Any] = getattr(commands, name)(**kwargs)
    assert req.data.endswith(b"\r\n")


# --- bad arguments ---------------------------------------------------------------------

BAD_TYPES_UINT: list[object] = [True, False, 1.0, 0.5, "1", b"1", None, [1], 10**3 * 1.0]
BAD_TYPES_TUBE: list[object] = [b"foo", None, 5, ["foo"], bytearray(b"foo")]
BAD_TUBES: list[str] = [
    "",
    "-foo",
    "-",
    "x" * 201,
    "tübe",
    "a b",
    " a",
    "a\r\nb",
    "a\n",
    "a*b",
    "a:b",
    "a#b",
    "a~",
    "a\x00",
    "é",
    "a,b",
    'a"b',
]
BAD_TYPES_BODY: list[object] = [5, None, 1.5, ["x"], object()]


@dataclass(frozen=True)
class BadArg:
    encoder: str
    param: str
    value: object
    error: type[InvalidArgument]

    def __str__(self) -> str:
        return f"{self.encoder}-{self.param}-{self.value!r:.30}"


def _bad_args() -> list[BadArg]:
    """For every encoder and every argument: out-of-range values and wrong types, from the spec's types."""
    cases: list[BadArg] = []
    for name in sorted(all_encoder_names()):
        cmd = spec_command(raw_variants().get(name, name))
        for arg in cmd["args"]:
            typ = SPEC["types"][arg["type"]]
            param = arg["name"]
            if typ["kind"] == "uint":
                for value in (typ["min"] - 1, typ["max"] + 1, -(2**64), 2**64 + 5):
                    cases.append(BadArg(name, param, value, InvalidArgument))
                for bad in BAD_TYPES_UINT:
                    cases.append(BadArg(name, param, bad, ArgumentTypeError))
            elif typ["kind"] == "tube":
                for tube in BAD_TUBES:
                    cases.append(BadArg(name, param, tube, InvalidArgument))
                for bad in BAD_TYPES_TUBE:
                    cases.append(BadArg(name, param, bad, ArgumentTypeError))
            else:
                for bad in BAD_TYPES_BODY:
                    cases.append(BadArg(name, param, bad, ArgumentTypeError))
    return cases


BAD_ARGS = _bad_args()


@pytest.mark.parametrize("case", BAD_ARGS, ids=str)
def test_bad_argument_rejected(case: BadArg) -> None:
    cmd = spec_command(raw_variants().get(case.encoder, case.encoder))
    kwargs = _sample_kwargs(cmd)
    kwargs[case.param] = case.value
    with pytest.raises(InvalidArgument) as info:
        getattr(commands, case.encoder)(**kwargs)
    exc = info.value
    if case.error is ArgumentTypeError:
        assert type(exc) is ArgumentTypeError
        assert isinstance(exc, TypeError)
    else:
        assert type(exc) is InvalidArgument, f"{type(exc).__name__}: {exc}"
    assert isinstance(exc, ValueError)
    assert isinstance(exc, beanstalkm.BeanstalkmException)
    assert exc.name == case.param
    assert exc.value is case.value
    assert exc.reason
    message = str(exc)
    assert case.param in message
    shown = repr(case.value)
    assert (shown if len(shown) <= 80 else shown[:77]) in message


def test_bad_args_cover_every_argument() -> None:
    covered = {(case.encoder, case.param) for case in BAD_ARGS}
    for name in all_encoder_names():
        cmd = spec_command(raw_variants().get(name, name))
        for arg in cmd["args"]:
            assert (name, arg["name"]) in covered


@pytest.mark.parametrize(
    ("make", "param", "fragment"),
    [
        (lambda: C.put(b"x", priority=-1), "priority", "-1"),
        (lambda: C.put(b"x", priority=2**32), "priority", "4294967296"),
        (lambda: C.put(b"x", delay=2**32), "delay", "4294967296"),
        (lambda: C.put(b"x", ttr=-5), "ttr", "-5"),
        (lambda: C.delete(0), "job_id", "0"),
        (lambda: C.delete(2**64), "job_id", "18446744073709551616"),
        (lambda: C.reserve_with_timeout(2**31), "timeout", "2147483648"),
        (lambda: C.kick(-1), "bound", "-1"),
        (lambda: C.pause_tube("t", 2**32), "delay", "4294967296"),
        (lambda: C.use("-x"), "tube", "'-x'"),
        (lambda: C.watch("a b"), "tube", "'a b'"),
        (lambda: C.ignore(""), "tube", "''"),
        (lambda: C.stats_tube("x" * 201), "tube", "'xxxx"),
    ],
)
def test_invalid_argument_message(make: Callable[[], object], param: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        make()
    assert type(info.value) is InvalidArgument
    message = str(info.value)
    assert message.startswith(f"invalid {param} {fragment}")


@pytest.mark.parametrize(
    ("make", "param", "typename"),
    [
        (lambda: C.put(b"x", priority=True), "priority", "bool"),
        (lambda: C.put(b"x", delay=1.0), "delay", "float"),  # type: ignore[arg-type]
        (lambda: C.put(b"x", ttr="120"), "ttr", "str"),  # type: ignore[arg-type]
        (lambda: C.delete(True), "job_id", "bool"),
        (lambda: C.reserve_with_timeout(1.5), "timeout", "float"),  # type: ignore[arg-type]
        (lambda: C.put(123), "body", "int"),  # type: ignore[arg-type]
        (lambda: C.put(None), "body", "NoneType"),  # type: ignore[arg-type]
        (lambda: C.use(b"foo"), "tube", "bytes"),  # type: ignore[arg-type]
        (lambda: C.pause_tube("t", False), "delay", "bool"),
    ],
)
def test_argument_type_error_message(make: Callable[[], object], param: str, typename: str) -> None:
    with pytest.raises(ArgumentTypeError) as info:
        make()
    message = str(info.value)
    assert message.startswith(f"invalid {param} ")
    assert typename in message


def test_tube_error_reasons() -> None:
    def reason(value: str) -> str:
        with pytest.raises(InvalidArgument) as info:
            C.use(value)
        return info.value.reason

    assert "empty" in reason("")
    assert "'-'" in reason("-a")
    assert "ASCII" in reason("ü")
    assert "201" in reason("x" * 201)
    assert "'*'" in reason("ab*")
    assert "' '" in reason("a b")


def test_tube_name_check_is_not_fooled_by_the_cache() -> None:
    """A valid name is cached; the same text then still passes and a different invalid one still fails."""
    assert C.use("cached").data == b"use cached\r\n"
    assert C.use("cached").data == b"use cached\r\n"
    with pytest.raises(InvalidArgument):
        C.use("cached ")
    for i in range(1100):  # more than the cache bound
        C.watch(f"t{i}")
    assert C.watch("t0").data == b"watch t0\r\n"
    with pytest.raises(InvalidArgument):
        C.watch("t0*")


class Pri(enum.IntEnum):
    HIGH = 0
    LOW = 5000


def test_int_subclass_accepted_and_printed_as_int() -> None:
    assert C.put(b"x", Pri.LOW, 0, 1).data == b"put 5000 0 1 1\r\nx\r\n"
    assert C.release(1, Pri.HIGH).data == b"release 1 0 0\r\n"
    with pytest.raises(InvalidArgument) as info:
        C.delete(Pri.HIGH)
    assert type(info.value) is InvalidArgument


def test_str_body_and_bytes_body_encode_alike() -> None:
    text = "héllo wörld ✓"
    assert C.put(text, 1, 2, 3).data == C.put(text.encode("utf-8"), 1, 2, 3).data
    assert b" %d\r\n" % len(text.encode("utf-8")) in C.put(text, 1, 2, 3).data
    assert len(text) != len(text.encode("utf-8"))


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 1 << 20])
def test_a_large_body_is_kept_apart_from_its_command_line(size: int) -> None:
    """From BODY_APART bytes on, ``put`` does not copy its body: it is written after ``head``, then CRLF."""
    body = b"x" * size
    req = C.put(body, 1, 2, 3)
    line = b"put 1 2 3 %d\r\n" % size
    assert req.data == line + body + b"\r\n"
    assert type(req.data) is bytes
    assert b"".join(req.pieces) == req.data
    if size < 65536:
        assert (req.body, req.head, req.pieces) == (None, req.data, (req.data,))
    else:
        assert req.body is body
        assert req.pieces == (line, body, b"\r\n")


class _NoSendmsg:
    """A socket without ``sendmsg`` (as on Windows)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sendall = sock.sendall


@pytest.mark.parametrize("scatter", [True, False])
def test_pieces_are_written_whole_and_in_order(scatter: bool) -> None:
    """The sync driver writes a large body apart from its command line; the peer reads what ``data`` says,
    however many partial writes that takes."""
    from beanstalkm._transport.sockets import _send_pieces

    req = C.put(bytes(range(256)) * 12289, 1, 2, 3)  # ~3 MiB: more than a socket buffer takes at once
    assert req.body is not None
    left, right = socket.socketpair()
    received = bytearray()

    def drain() -> None:
        while chunk := right.recv(100_000):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        left.settimeout(10)
        _send_pieces(left if scatter else _NoSendmsg(left), req.pieces)  # type: ignore[arg-type]
        left.shutdown(socket.SHUT_WR)
        reader.join(10)
    finally:
        left.close()
        right.close()
    assert received == req.data
