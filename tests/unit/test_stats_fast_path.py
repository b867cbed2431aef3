"""The stats decoders' fast path: the one layout beanstalkd prints, read in one pass.

``from_yaml`` reads a body in beanstalkd's exact layout (every field of the
spec, in its order, each value of its type) at once, and hands anything else
to the general path (``parse_mapping`` and the spec's converters). These tests
check both halves of that promise against the general path's own answer:
a body in the layout takes the fast path and gives exactly what the general
path gives; a body outside it (a field missing, extra or reordered, a value
not of its type, a YAML feature, bytes that are not ASCII) falls back and
gives the general path's answer, or its very ``ProtocolError``. The same is
checked for ``parse_list``'s fast path, and for random bodies near the layout.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beanstalkm import JobStats, ProtocolError, ServerStats, TubeStats
from beanstalkm._core.requests import Request
from beanstalkm._core.stats import StatsMapping, slots_builder
from beanstalkm._core.yaml import _parse_list_general, flat_form, flat_values, parse_list, parse_mapping
from beanstalkm._generated import commands

from ._support import SERVER_TEXT_112, SERVER_TEXT_113, ok_reply, stats_body, stats_fields

StatsClass = type[ServerStats] | type[TubeStats] | type[JobStats]

TEXT: dict[str, dict[str, str]] = {
    "ServerStats": SERVER_TEXT_112,
    "TubeStats": {"name": "default"},
    "JobStats": {"tube": "emails", "state": "reserved"},
}
"""The non-integer fields of each type as beanstalkd 1.12 prints them."""
TEXT_113: dict[str, dict[str, str]] = {
    "ServerStats": SERVER_TEXT_113,
    "TubeStats": {"name": '"default"'},
    "JobStats": {"tube": '"emails"', "state": "reserved"},
}
CLASSES: dict[str, StatsClass] = {"ServerStats": ServerStats, "TubeStats": TubeStats, "JobStats": JobStats}
NAMES = list(CLASSES)


def body_of(stats_type: str, /, **text: str) -> bytes:
    """``stats_type``'s body as beanstalkd prints it, with ``text`` (by attribute) replacing fields' text."""
    return stats_body(stats_type, {**TEXT[stats_type], **{key.replace("_", "-"): value for key, value in text.items()}})


def lines_of(body: bytes) -> list[bytes]:
    """The ``key: value`` lines of a body (without ``---`` and the final newline)."""
    assert body.startswith(b"---\n") and body.endswith(b"\n")
    return body[4:-1].split(b"\n")


def joined(lines: list[bytes]) -> bytes:
    return b"---\n" + b"".join(line + b"\n" for line in lines)


def outcome(fn: Callable[[], object]) -> tuple[str, object]:
    """``("value", result)``, or ``("error", message)`` for a ``ProtocolError`` (anything else raises)."""
    try:
        return "value", fn()
    except ProtocolError as exc:
        return "error", str(exc)


def general(cls: StatsClass, body: bytes) -> StatsMapping:
    """The general path's answer: the flat mapping, converted field by field."""
    return cls._from_mapping(parse_mapping(body))


def fast_path_taken(cls: StatsClass, body: bytes) -> bool:
    return flat_values(cls._FLAT, body) is not None


def check(cls: StatsClass, body: bytes, *, fast: bool) -> tuple[str, object]:
    """``cls.from_yaml(body)`` takes the fast path iff ``fast``, and answers as the general path does
    (the same value, ``extra`` included, or the same error); that answer."""
    assert fast_path_taken(cls, body) is fast
    got = outcome(lambda: cls.from_yaml(body))
    want = outcome(lambda: general(cls, body))
    assert got == want
    if got[0] == "value":
        assert isinstance(got[1], StatsMapping) and isinstance(want[1], StatsMapping)
        assert dict(got[1]) == dict(want[1])
        assert got[1].extra == want[1].extra
        for attr in cls.KEYS.values():  # the same types too (1 == True == Decimal(1))
            assert type(getattr(got[1], attr)) is type(getattr(want[1], attr))
    return got


# -- the layout beanstalkd prints takes the fast path --------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("texts", [TEXT, TEXT_113], ids=["1.12", "1.13"])
def test_the_servers_layout_takes_the_fast_path(name: str, texts: dict[str, dict[str, str]]) -> None:
    cls = CLASSES[name]
    body = stats_body(name, texts[name])
    kind, stats = check(cls, body, fast=True)
    assert kind == "value" and isinstance(stats, cls)
    assert stats.extra == {}
    for index, fld in enumerate(stats_fields(name)):
        if fld["type"] == "int":
            assert stats[fld["key"]] == index  # each field read from its own line


def test_the_fast_path_gives_the_typed_values() -> None:
    stats = ServerStats.from_yaml(body_of("ServerStats"))
    assert stats.version == "1.12"  # unquoted
    assert stats.os == "#1 SMP PREEMPT_DYNAMIC @0"  # not a YAML comment
    assert stats.rusage_utime == Decimal("0.003541") and type(stats.rusage_utime) is Decimal
    assert stats.draining is False
    assert stats.id == "2475343b827f853a"
    assert ServerStats.from_yaml(body_of("ServerStats", draining="true")).draining is True
    job = JobStats.from_yaml(body_of("JobStats"))
    assert (job.tube, job.state) == ("emails", "reserved")


@pytest.mark.parametrize("name", NAMES)
def test_a_command_reply_decodes_through_the_fast_path(name: str) -> None:
    """Framed as the server sends it, read by the reply reader and decoded by the generated decoder."""
    cls = CLASSES[name]
    body = body_of(name)
    request: dict[str, Request[ServerStats] | Request[TubeStats] | Request[JobStats]] = {
        "ServerStats": commands.stats(),
        "TubeStats": commands.stats_tube("default"),
        "JobStats": commands.stats_job(1),
    }
    reader = commands.new_reader()
    reader.feed(ok_reply(body))
    reply = reader.next_reply()
    assert reply is not None
    assert fast_path_taken(cls, body)
    assert request[name].decode(reply) == general(cls, body)


@pytest.mark.parametrize(
    "value",
    ["0", "-5", "-0", "007", "18446744073709551615", "9" * 20, "-" + "9" * 20],
)
def test_every_integer_to_int_accepts_takes_the_fast_path(value: str) -> None:
    for name in NAMES:
        check(CLASSES[name], body_of(name, **{_first_int(name): value}), fast=True)


@pytest.mark.parametrize(
    "value", ["", '"', '""', '"x', 'x"', '"a"b"', "a: b", "#", "'q'", "\r", "\t", " lead", "trail "]
)
def test_any_ascii_text_of_a_string_field_takes_the_fast_path(value: str) -> None:
    check(ServerStats, body_of("ServerStats", os=value, hostname=value), fast=True)
    check(TubeStats, body_of("TubeStats", name=value), fast=True)
    check(JobStats, body_of("JobStats", tube=value), fast=True)


# -- anything else falls back, to the general path's answer --------------------------------------------


def _first_int(name: str) -> str:
    key: str = next(f["key"] for f in stats_fields(name) if f["type"] == "int")
    return key.replace("-", "_")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("index", [0, 1, -1])
def test_a_missing_field_falls_back_to_the_general_error(name: str, index: int) -> None:
    lines = lines_of(body_of(name))
    key = lines.pop(index).split(b": ")[0].decode()
    kind, message = check(CLASSES[name], joined(lines), fast=False)
    assert kind == "error" and message == f"stats reply lacks field {key!r}"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("index", [0, 3, None])
def test_an_extra_field_falls_back_and_is_kept(name: str, index: int | None) -> None:
    lines = lines_of(body_of(name))
    lines.insert(len(lines) if index is None else index, b"future-field: 1.5 x")
    kind, stats = check(CLASSES[name], joined(lines), fast=False)
    assert kind == "value" and isinstance(stats, StatsMapping)
    assert stats.extra == {"future-field": "1.5 x"}


@pytest.mark.parametrize("name", NAMES)
def test_reordered_fields_fall_back_to_the_same_values(name: str) -> None:
    cls = CLASSES[name]
    in_order = cls.from_yaml(body_of(name))
    lines = lines_of(body_of(name))
    for shuffled in (lines[::-1], lines[1:] + lines[:1], [lines[1], lines[0], *lines[2:]]):
        kind, stats = check(cls, joined(shuffled), fast=False)
        assert kind == "value" and stats == in_order


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "value",
    ["abc", "1.5", "", "+1", " 1", "1 ", "1\r", "0x1F", "1_000", "1e3", '"5"', "9" * 21, "-" + "9" * 21, "--1", "-"],
)
def test_a_non_integer_where_an_integer_is_expected_falls_back(name: str, value: str) -> None:
    check(CLASSES[name], body_of(name, **{_first_int(name): value}), fast=False)


def test_a_non_ascii_digit_falls_back_to_the_general_error() -> None:
    kind, message = check(JobStats, body_of("JobStats", id="\u0663"), fast=False)  # ARABIC-INDIC DIGIT THREE
    assert kind == "error" and "is not an integer" in str(message)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rusage_utime", "1e3"),
        ("rusage_utime", "0.5e3"),
        ("rusage_utime", "-0.5"),
        ("rusage_utime", " 0.5"),
        ("rusage_utime", "NaN"),
        ("rusage_utime", "1"),
        ("rusage_utime", '"0.5"'),
        ("rusage_stime", "0." + "0" * 21),
        ("draining", "True"),
        ("draining", "yes"),
        ("draining", '"false"'),
    ],
)
def test_a_decimal_or_bool_not_as_beanstalkd_prints_it_falls_back(field: str, value: str) -> None:
    check(ServerStats, body_of("ServerStats", **{field: value}), fast=False)


@pytest.mark.parametrize("value", ["Ready", "sleeping", '"ready"', "ready ", ""])
def test_an_enum_value_not_as_beanstalkd_prints_it_falls_back(value: str) -> None:
    check(JobStats, body_of("JobStats", state=value), fast=False)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b.replace(b"---\n", b"--- \n", 1),  # a document start with a trailing space
        lambda b: b.replace(b"---\n", b"", 1),  # no document start
        lambda b: b.replace(b"\n", b"\r\n"),  # CRLF lines
        lambda b: b.replace(b"\n", b"\n\n", 2),  # a blank line
        lambda b: b[:-1],  # no final newline
        lambda b: b + b"...\n",  # a document end marker
        lambda b: b + b"# a comment\n",
        lambda b: b.replace(b": 3\n", b":  3\n", 1),  # two spaces before an integer (field 3)
        lambda b: b.replace(b"\n", b"\n  ", 1),  # an indented line
        lambda b: b"---\n{" + b", ".join(lines_of(b)) + b"}\n",  # a flow mapping
        lambda b: b + b"&anchor key: *alias\n",
        lambda b: b + lines_of(b)[0] + b"\n",  # a key twice
    ],
    ids=[
        "start-space",
        "no-start",
        "crlf",
        "blank-line",
        "no-final-newline",
        "document-end",
        "comment",
        "two-spaces",
        "indented",
        "flow-mapping",
        "anchor-alias",
        "key-twice",
    ],
)
def test_a_yaml_feature_falls_back(name: str, mangle: Callable[[bytes], bytes]) -> None:
    check(CLASSES[name], mangle(body_of(name)), fast=False)


def test_bytes_that_are_not_ascii_fall_back_and_keep_the_servers_text() -> None:
    body = body_of("ServerStats", hostname="caf\u00e9").replace("caf\u00e9".encode(), b"caf\xe9")  # Latin-1
    kind, stats = check(ServerStats, body, fast=False)
    assert kind == "value" and isinstance(stats, ServerStats)
    assert stats.hostname == "caf\udce9"  # surrogateescape: the server's byte, kept
    kind, stats = check(TubeStats, body_of("TubeStats", name="\u00e9t\u00e9"), fast=False)  # UTF-8
    assert kind == "value" and isinstance(stats, TubeStats) and stats.name == "\u00e9t\u00e9"


# -- random bodies near the layout ---------------------------------------------------------------------

_PIECES = [
    "0",
    "1",
    "9",
    "-",
    ".",
    ":",
    ": ",
    " ",
    '"',
    "'",
    "#",
    "\r",
    "\t",
    "x",
    "e",
    "true",
    "ready",
    "\u00e9",
    "\n",
]


@st.composite
def near_layout(draw: st.DrawFn) -> tuple[str, bytes]:
    """A body in beanstalkd's layout with a few lines' text replaced, dropped, repeated or moved."""
    name = draw(st.sampled_from(NAMES))
    lines = lines_of(body_of(name))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["value", "value", "value", "drop", "repeat", "move"]))
        at = rng.randrange(len(lines))
        key = lines[at].split(b": ")[0]
        if action == "value":
            text = "".join(draw(st.lists(st.sampled_from(_PIECES), max_size=6)))
            lines[at] = key + b": " + text.encode("utf-8")
        elif action == "drop" and len(lines) > 1:
            del lines[at]
        elif action == "repeat":
            lines.insert(rng.randrange(len(lines) + 1), lines[at])
        else:
            lines.insert(rng.randrange(len(lines) + 1), lines.pop(at))
    return name, joined(lines)


@settings(max_examples=400, deadline=None)
@given(near_layout())
def test_random_bodies_near_the_layout_answer_as_the_general_path(case: tuple[str, bytes]) -> None:
    name, body = case
    cls = CLASSES[name]
    check(cls, body, fast=fast_path_taken(cls, body))


# -- flat_form ------------------------------------------------------------------------------------------


def test_flat_form_matches_only_the_exact_layout() -> None:
    form = flat_form(("a", "int"), ("b-c", "str"), ("d", ("x", "y")), ("e", "bool"), ("f", "decimal"))
    assert flat_values(form, b'---\na: -1\nb-c: "q"\nd: y\ne: true\nf: 0.5\n') == ("-1", '"q"', "y", "true", "0.5")
    assert flat_values(form, b"---\na: 1\nb-c: q\nd: z\ne: true\nf: 0.5\n") is None  # not an enum value
    assert flat_values(form, b"---\na: 1\nb-c: q\nd: x\ne: true\nf: 0.5\ng: 1\n") is None
    assert flat_values(form, b"---\na: 1\nb-c: \xc3\xa9\nd: x\ne: true\nf: 0.5\n") is None  # not ASCII


def test_flat_form_refuses_what_the_flat_form_cannot_hold() -> None:
    with pytest.raises(ValueError, match="unknown kind 'float'"):
        flat_form(("a", "float"))
    with pytest.raises(ValueError, match="'a b' is not a plain flat-YAML key"):
        flat_form(("a b", "int"))


# -- slots_builder ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_a_fast_path_instance_is_what_the_dataclass_builds(name: str) -> None:
    """The builder sets every slot (nothing left unset), and the instance is as frozen, equal and
    hashable as one ``__init__`` built from the same values."""
    cls = CLASSES[name]
    built = cls.from_yaml(body_of(name))
    assert fast_path_taken(cls, body_of(name))
    by_init = cls(**{f.name: getattr(built, f.name) for f in dataclasses.fields(cls)})
    assert built == by_init and hash(built) == hash(by_init) and repr(built) == repr(by_init)
    assert type(built) is cls
    for attr in ("extra", dataclasses.fields(cls)[0].name):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(built, attr, {})
    assert built.extra == {} and built.extra is not cls.from_yaml(body_of(name)).extra  # one dict each


def test_slots_builder_refuses_a_tuple_of_another_length() -> None:
    build = slots_builder(TubeStats)
    values = dataclasses.astuple(TubeStats.from_yaml(body_of("TubeStats")))
    assert build(values) == TubeStats(*values)
    with pytest.raises(TypeError, match="TubeStats has 15 fields, not 14"):
        build(values[:-1])
    with pytest.raises(TypeError, match="not 16"):
        build((*values, 1))


def test_slots_builder_refuses_a_class_whose_init_does_more() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    class NotADataclass:
        __slots__ = ("a",)

    with pytest.raises(TypeError, match=r"NoSlots\.a is not a slot"):
        slots_builder(NoSlots)
    with pytest.raises(TypeError, match="PostInit is not a dataclass whose __init__ only sets its fields"):
        slots_builder(PostInit)
    with pytest.raises(TypeError, match="NotADataclass is not a dataclass"):
        slots_builder(NotADataclass)


# -- parse_list ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"---\n",
        b"---\n- default\n",
        b"---\n- default\n- on\n- 0123\n- a;b\n- (x)\n- $y\n",
        b"---\n- " + b"\n- ".join(b"t%d" % i for i in range(1000)) + b"\n",
        b"---\n- caf\xe9\n",  # not UTF-8: the server's bytes, kept
    ],
)
def test_a_flat_list_takes_the_fast_path_with_the_general_answer(body: bytes) -> None:
    text = body.decode("utf-8", "surrogateescape")
    assert parse_list(body) == _parse_list_general(text)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"---\n- a\n\n- b\n",  # a blank line
        b"---\n- a",  # no final newline
        b"---\n- a\r\n",  # CRLF
        b"---\n-  a\n",
        b"---\n- 'a'\n",
        b"---\n- [a]\n",
        b"---\n- &x a\n- *x\n",
        b"---\na: b\n",
        b"- a\n",
    ],
)
def test_a_list_outside_the_flat_form_falls_back_to_the_general_answer(body: bytes) -> None:
    text = body.decode("utf-8", "surrogateescape")
    assert outcome(lambda: parse_list(body)) == outcome(lambda: _parse_list_general(text))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(st.sampled_from(["a", "0", "-", " ", "'", "#", "[", "\r", "\n", "\u00e9", ":"]), max_size=4), max_size=6
    )
)
def test_random_lists_answer_as_the_general_path(items: list[str]) -> None:
    body = ("---\n" + "".join(f"- {item}\n" for item in items)).encode()
    text = body.decode()
    assert outcome(lambda: parse_list(body)) == outcome(lambda: _parse_list_general(text))
