"""The YAML traps of protocol-notes §5-§6, through the real decoders.

Bodies are fed to the reply reader as the server frames them and decoded by
the generated ``Request.decode``; the stats dataclasses' ``from_yaml`` and the
``_yaml`` helpers are also tested directly.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import yaml

from beanstalkm import JobStats, ProtocolError, ServerStats, TubeStats
from beanstalkm._core.requests import Reply, Request
from beanstalkm._core.yaml import parse_list, parse_mapping
from beanstalkm._generated import commands

from ._support import (
    SERVER_TEXT_112,
    expected_stats,
    ok_reply,
    server_stats_body_112,
    server_stats_body_113,
    stats_body,
    stats_fields,
)

C = commands

TRAP_NAMES = [
    "on",
    "yes",
    "no",
    "off",
    "null",
    "Null",
    "0123",
    "1.5",
    "1e3",
    "~",
    "true",
    "False",
    "0x1F",
    "0o17",
    "1_000",
]
"""Names a resolving YAML loader turns into bool/None/int/float. (``~`` is not a valid tube name but
must survive the list parser all the same.)"""


def decode(req: Request[Any], body: bytes) -> Any:
    """Frame ``body`` as ``OK <bytes>``, read it with a fresh reader, decode it with ``req``."""
    reader = commands.new_reader()
    reader.feed(ok_reply(body))
    reply = reader.next_reply()
    assert reply is not None
    assert reply.status == "OK"
    assert reply.body == body
    assert reader.next_reply() is None
    return req.decode(reply)


def server_112() -> ServerStats:
    stats = decode(C.stats(), server_stats_body_112())
    assert isinstance(stats, ServerStats)
    return stats


# --- the fixture itself ------------------------------------------------------------------


def test_captured_body_is_built_as_the_server_prints_it() -> None:
    body = server_stats_body_112()
    assert body.startswith(b"---\ncurrent-jobs-urgent: 0\ncurrent-jobs-ready: 1\n")
    assert b'\nversion: "1.12"\nrusage-utime: 0.003541\nrusage-stime: 0.000000\n' in body
    assert body.endswith(
        b"\ndraining: false\nid: 2475343b827f853a\nhostname: vm\nos: #1 SMP PREEMPT_DYNAMIC @0\nplatform: x86_64\n"
    )
    assert body.count(b"\n") == 1 + 51
    assert len(stats_fields("ServerStats")) == 51
    assert len(stats_fields("TubeStats")) == 14
    assert len(stats_fields("JobStats")) == 14
    body113 = server_stats_body_113()
    assert b'\nhostname: "vm"\nos: "#1 SMP PREEMPT_DYNAMIC @0"\nplatform: "x86_64"\n' in body113


def test_plain_yaml_gets_the_captured_body_wrong() -> None:
    """Sanity check that the traps are real: a resolving YAML loader mangles this body."""
    loaded = yaml.safe_load(server_stats_body_112())
    assert loaded["os"] is None  # '#...' is a comment
    assert loaded["draining"] is False
    assert isinstance(loaded["rusage-utime"], float)
    names = yaml.safe_load("---\n" + "".join(f"- {n}\n" for n in TRAP_NAMES))
    assert names != TRAP_NAMES


# --- list-tubes ------------------------------------------------------------------------


@pytest.mark.parametrize("make", [C.list_tubes, C.watching], ids=["list_tubes", "watching"])
def test_tube_lists_keep_names_as_strings(make: Any) -> None:
    names = ["default", *TRAP_NAMES, "$x", "(a)", "a;b", "+1", "/", ".", "_", "A-Z"]
    body = ("---\n" + "".join(f"- {n}\n" for n in names)).encode("ascii")
    result = decode(make(), body)
    assert result == names
    assert all(type(n) is str for n in result)


@pytest.mark.parametrize("name", TRAP_NAMES)
def test_single_trap_name_in_list(name: str) -> None:
    result = decode(C.list_tubes(), f"---\n- {name}\n".encode())
    assert result == [name]
    assert type(result[0]) is str


def test_empty_tube_list() -> None:
    assert decode(C.list_tubes(), b"---\n") == []
    assert parse_list(b"") == []


def test_tube_list_raw_variant_is_the_text() -> None:
    body = b"---\n- on\n- 0123\n"
    assert decode(C.list_tubes_yaml(), body) == "---\n- on\n- 0123\n"
    assert decode(C.watching_yaml(), body) == "---\n- on\n- 0123\n"


# --- server stats --------------------------------------------------------------------------

EXPECTED_SERVER_VALUES: dict[str, object] = {
    "version": "1.12",
    "rusage-utime": Decimal("0.003541"),
    "rusage-stime": Decimal("0.000000"),
    "draining": False,
    "id": "2475343b827f853a",
    "hostname": "vm",
    "os": "#1 SMP PREEMPT_DYNAMIC @0",
    "platform": "x86_64",
}


def test_server_stats_112_decodes_exactly() -> None:
    stats = server_112()
    assert stats == ServerStats(**expected_stats("ServerStats", EXPECTED_SERVER_VALUES))
    assert stats.os == "#1 SMP PREEMPT_DYNAMIC @0"
    assert stats.version == "1.12"
    assert stats.hostname == "vm"
    assert stats.platform == "x86_64"
    assert stats.id == "2475343b827f853a"
    assert stats.current_jobs_urgent == 0
    assert stats.current_jobs_ready == 1
    assert stats.pid == 36
    assert stats.binlog_max_size == 45
    assert stats.extra == {}


def test_rusage_is_an_exact_decimal() -> None:
    stats = server_112()
    assert type(stats.rusage_utime) is Decimal
    assert type(stats.rusage_stime) is Decimal
    assert str(stats.rusage_utime) == "0.003541"
    assert str(stats.rusage_stime) == "0.000000"
    assert stats.rusage_utime == Decimal("0.003541")
    assert stats.rusage_utime != Decimal(float("0.003541"))  # not routed through a float
    big = stats_body("ServerStats", {**SERVER_TEXT_112, "rusage-utime": "123456789.123456"})
    assert ServerStats.from_yaml(big).rusage_utime == Decimal("123456789.123456")


@pytest.mark.parametrize(("text", "value"), [("false", False), ("true", True)])
def test_draining_is_a_bool(text: str, value: bool) -> None:
    stats = ServerStats.from_yaml(stats_body("ServerStats", {**SERVER_TEXT_112, "draining": text}))
    assert stats.draining is value


@pytest.mark.parametrize("text", ["False", "True", "yes", "no", "1", "0", '"true"x', ""])
def test_draining_rejects_other_text(text: str) -> None:
    body = stats_body("ServerStats", {**SERVER_TEXT_112, "draining": text})
    with pytest.raises(ProtocolError, match="'draining'"):
        ServerStats.from_yaml(body)


@pytest.mark.parametrize("server_id", ["0123456701234567", "1234567890123456", "000000000000000e", "ffffffffffffffff"])
def test_server_id_stays_a_string(server_id: str) -> None:
    stats = decode(C.stats(), stats_body("ServerStats", {**SERVER_TEXT_112, "id": server_id}))
    assert stats.id == server_id
    assert type(stats.id) is str
    assert stats["id"] == server_id


def test_112_and_113_quoting_give_equal_values() -> None:
    s112 = decode(C.stats(), server_stats_body_112())
    s113 = decode(C.stats(), server_stats_body_113())
    assert server_stats_body_112() != server_stats_body_113()
    assert s112 == s113
    for attr in ("hostname", "os", "platform", "version"):
        assert getattr(s112, attr) == getattr(s113, attr)
        assert '"' not in getattr(s113, attr)


@pytest.mark.parametrize(
    "os_text", ["Linux: 6.1 #1 SMP", "#1 SMP PREEMPT_DYNAMIC @0 : x", "a: b: c", "- [x]", "{a}", ""]
)
def test_os_text_kept_verbatim(os_text: str) -> None:
    for text in (os_text, f'"{os_text}"'):
        stats = decode(C.stats(), stats_body("ServerStats", {**SERVER_TEXT_112, "os": text}))
        assert stats.os == os_text


@pytest.mark.parametrize("version", ["1.12", "1.13", "1.10+24+g5a8f4b7"])
def test_version_quoted_or_not(version: str) -> None:
    for text in (version, f'"{version}"'):
        stats = ServerStats.from_yaml(stats_body("ServerStats", {**SERVER_TEXT_112, "version": text}))
        assert stats.version == version


def test_server_stats_raw_variant_is_the_text() -> None:
    body = server_stats_body_112()
    text = decode(C.stats_yaml(), body)
    assert text == body.decode("ascii")
    assert "os: #1 SMP PREEMPT_DYNAMIC @0\n" in text


# --- stats-tube and stats-job -----------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in TRAP_NAMES if n != "~"] + ["default", "a-b", "(x)"])
@pytest.mark.parametrize("quoted", [False, True], ids=["1.12", "1.13"])
def test_tube_stats_name_is_the_string(name: str, quoted: bool) -> None:
    text = f'"{name}"' if quoted else name
    stats = decode(C.stats_tube(name), stats_body("TubeStats", {"name": text}))
    assert stats == TubeStats(**expected_stats("TubeStats", {"name": name}))
    assert type(stats.name) is str
    assert stats["name"] == name


@pytest.mark.parametrize("tube", [n for n in TRAP_NAMES if n != "~"] + ["default"])
@pytest.mark.parametrize("quoted", [False, True], ids=["1.12", "1.13"])
def test_job_stats_tube_is_the_string(tube: str, quoted: bool) -> None:
    text = f'"{tube}"' if quoted else tube
    stats = decode(C.stats_job(1), stats_body("JobStats", {"tube": text, "state": "ready"}))
    assert stats == JobStats(**expected_stats("JobStats", {"tube": tube, "state": "ready"}))
    assert type(stats.tube) is str


def test_tube_and_job_stats_112_vs_113_equal() -> None:
    tube112 = TubeStats.from_yaml(stats_body("TubeStats", {"name": "0123"}))
    tube113 = TubeStats.from_yaml(stats_body("TubeStats", {"name": '"0123"'}))
    assert tube112 == tube113
    job112 = JobStats.from_yaml(stats_body("JobStats", {"tube": "on", "state": "buried"}))
    job113 = JobStats.from_yaml(stats_body("JobStats", {"tube": '"on"', "state": "buried"}))
    assert job112 == job113
    assert job112.tube == "on"


@pytest.mark.parametrize("state", ["ready", "delayed", "reserved", "buried"])
def test_job_state_is_one_of_the_literals(state: str) -> None:
    stats = decode(C.stats_job(1), stats_body("JobStats", {"tube": "default", "state": state}))
    assert stats.state == state
    assert stats["state"] == state
    field = next(f for f in stats_fields("JobStats") if f["key"] == "state")
    assert field["values"] == ["ready", "delayed", "reserved", "buried"]


@pytest.mark.parametrize("state", ["invalid", "Ready", "READY", '"ready', "", "0"])
def test_job_state_outside_the_literals(state: str) -> None:
    with pytest.raises(ProtocolError, match="'state'"):
        JobStats.from_yaml(stats_body("JobStats", {"tube": "default", "state": state}))


def test_signed_integers() -> None:
    stats = JobStats.from_yaml(stats_body("JobStats", {"tube": "t", "state": "ready", "time-left": "-1"}))
    assert stats.time_left == -1
    tube = TubeStats.from_yaml(stats_body("TubeStats", {"name": "t", "pause-time-left": "-3"}))
    assert tube.pause_time_left == -3


def test_large_u64_counter() -> None:
    stats = ServerStats.from_yaml(stats_body("ServerStats", {**SERVER_TEXT_112, "cmd-put": str(2**64 - 1)}))
    assert stats.cmd_put == 2**64 - 1


# --- extra and missing fields --------------------------------------------------------------


def test_unknown_fields_land_in_extra_and_mapping() -> None:
    extra = {"new-counter": "42", "some-label": '"quoted text"', "flag": "true"}
    stats = decode(C.stats(), stats_body("ServerStats", SERVER_TEXT_112, extra=extra))
    assert stats.extra == {"new-counter": "42", "some-label": "quoted text", "flag": "true"}
    assert stats["new-counter"] == "42"
    assert "new-counter" in stats
    keys = list(stats)
    assert keys[:51] == [f["key"] for f in stats_fields("ServerStats")]
    assert keys[51:] == ["new-counter", "some-label", "flag"]
    assert len(stats) == 54
    assert dict(stats)["flag"] == "true"
    # the known fields are unaffected
    assert stats == ServerStats(**expected_stats("ServerStats", EXPECTED_SERVER_VALUES), extra=stats.extra)


def test_extra_fields_on_tube_and_job_stats() -> None:
    tube = TubeStats.from_yaml(stats_body("TubeStats", {"name": "t"}, extra={"x-new": "1"}))
    assert tube.extra == {"x-new": "1"}
    assert list(tube)[-1] == "x-new"
    assert len(tube) == 15
    job = JobStats.from_yaml(stats_body("JobStats", {"tube": "t", "state": "ready"}, extra={"priority-class": "hi"}))
    assert job["priority-class"] == "hi"
    assert len(job) == 15


def _without(body: bytes, key: str) -> bytes:
    lines = body.split(b"\n")
    kept = [line for line in lines if not line.startswith(key.encode() + b":")]
    assert len(kept) == len(lines) - 1
    return b"\n".join(kept)


FIXTURES: dict[str, tuple[type[ServerStats] | type[TubeStats] | type[JobStats], bytes]] = {
    "ServerStats": (ServerStats, server_stats_body_112()),
    "TubeStats": (TubeStats, stats_body("TubeStats", {"name": "t"})),
    "JobStats": (JobStats, stats_body("JobStats", {"tube": "t", "state": "ready"})),
}


def _all_fields() -> list[tuple[str, str, str]]:
    return [(name, f["key"], f["type"]) for name in FIXTURES for f in stats_fields(name)]


@pytest.mark.parametrize(("stats_type", "key", "kind"), _all_fields())
def test_missing_field_is_a_protocol_error_naming_it(stats_type: str, key: str, kind: str) -> None:
    cls, body = FIXTURES[stats_type]
    with pytest.raises(ProtocolError) as info:
        cls.from_yaml(_without(body, key))
    assert repr(key) in str(info.value)


def _int_fields() -> list[tuple[str, str]]:
    return [(name, key) for name, key, kind in _all_fields() if kind == "int"]


@pytest.mark.parametrize(("stats_type", "key"), _int_fields())
@pytest.mark.parametrize("bad", ["abc", "1.5", "", "+1", "0x10", "1_000", "--1", "١٢", '"5"x'])
def test_bad_int_is_a_protocol_error_naming_the_field(stats_type: str, key: str, bad: str) -> None:
    cls, _ = FIXTURES[stats_type]
    text = {"ServerStats": SERVER_TEXT_112, "TubeStats": {"name": "t"}, "JobStats": {"tube": "t", "state": "ready"}}
    body = stats_body(stats_type, {**text[stats_type], key: bad})
    with pytest.raises(ProtocolError) as info:
        cls.from_yaml(body)
    message = str(info.value)
    assert repr(key) in message
    assert repr(bad) in message


@pytest.mark.parametrize("bad", ["abc", "", "NaN", "Infinity", "-inf", "1,5"])
def test_bad_decimal_is_a_protocol_error(bad: str) -> None:
    body = stats_body("ServerStats", {**SERVER_TEXT_112, "rusage-stime": bad})
    with pytest.raises(ProtocolError, match="'rusage-stime'"):
        ServerStats.from_yaml(body)


def test_not_a_mapping_is_a_protocol_error() -> None:
    for body in (b"---\n- a\n- b\n", b"just text\n", b"", b"{a: {b: c}}\n", b"---\na: [1, 2]\nb: c\n  d\n"):
        with pytest.raises(ProtocolError):
            ServerStats.from_yaml(body)


# --- Mapping access ------------------------------------------------------------------


def test_mapping_access_by_server_keys() -> None:
    stats = server_112()
    assert stats["current-jobs-ready"] == 1
    assert stats["current-jobs-ready"] == stats.current_jobs_ready
    assert stats["rusage-utime"] == Decimal("0.003541")
    assert stats["draining"] is False
    assert stats["os"] == "#1 SMP PREEMPT_DYNAMIC @0"
    assert len(stats) == 51
    as_dict = dict(stats)
    assert list(as_dict) == [f["key"] for f in stats_fields("ServerStats")]
    for index, fld in enumerate(stats_fields("ServerStats")):
        if fld["type"] == "int":
            assert as_dict[fld["key"]] == index
            assert type(as_dict[fld["key"]]) is int
    with pytest.raises(KeyError):
        stats["current_jobs_ready"]
    with pytest.raises(KeyError):
        stats["nope"]
    assert stats.get("nope") is None
    assert "current-jobs-ready" in stats
    assert "current_jobs_ready" not in stats
    assert set(stats.keys()) == set(as_dict)
    assert dict(stats.items()) == as_dict


def test_mapping_access_on_tube_and_job_stats() -> None:
    tube = TubeStats.from_yaml(stats_body("TubeStats", {"name": "0123"}))
    assert tube["name"] == "0123"
    assert tube["pause-time-left"] == 13
    assert len(tube) == 14
    assert list(dict(tube)) == [f["key"] for f in stats_fields("TubeStats")]
    job = JobStats.from_yaml(stats_body("JobStats", {"id": "99", "tube": "t", "state": "delayed"}))
    assert job["id"] == 99
    assert job["time-left"] == 7
    assert dict(job)["state"] == "delayed"


def test_stats_are_frozen() -> None:
    stats = server_112()
    with pytest.raises(AttributeError):
        stats.pid = 5  # type: ignore[misc]


# --- fallback: bodies outside the flat form ------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{a: b, c: 0123, d: on}",
        b"---\n{a: b, c: 0123, d: on}\n",
        b"a: b\nc: 0123\nd: on\n",
        b"---\n  a: b\n  c: 0123\n  d: on\n",
        b"--- \na: b\nc: '0123'\nd: \"on\"\n",
        b"---\r\na: b\r\nc: 0123\r\nd: on\r\n",
    ],
)
def test_mapping_outside_the_flat_form_parses_without_type_resolution(body: bytes) -> None:
    assert parse_mapping(body) == {"a": "b", "c": "0123", "d": "on"}


def test_job_stats_in_flow_form() -> None:
    flat = stats_body("JobStats", {"tube": "0123", "state": "ready"}).decode()
    pairs = [line.split(": ", 1) for line in flat.splitlines()[1:]]
    flow = ("{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}").encode()
    stats = decode(C.stats_job(1), flow)
    assert stats == JobStats(**expected_stats("JobStats", {"tube": "0123", "state": "ready"}))
    assert stats.tube == "0123"


@pytest.mark.parametrize(
    "body",
    [b"[a, on, 0123]", b"---\n[a, on, 0123]\n", b'---\n- "a"\n- on\n- 0123\n', b"---\n-   a\n- on\n- 0123\n"],
)
def test_list_outside_the_flat_form_parses_without_type_resolution(body: bytes) -> None:
    assert parse_list(body) == ["a", "on", "0123"]


def test_unparseable_yaml_is_a_protocol_error() -> None:
    for body in (b"{a: [", b"---\n- [\n"):
        with pytest.raises(ProtocolError):
            parse_mapping(body)
        with pytest.raises(ProtocolError):
            parse_list(body)


def test_reply_with_non_utf8_stats_text() -> None:
    """Text fields that are not UTF-8 survive (surrogateescape) instead of failing the whole reply."""
    body = stats_body("ServerStats", {**SERVER_TEXT_112, "hostname": "hXst"}).replace(b"hXst", b"h\xffst")
    assert b"\nhostname: h\xffst\n" in body
    reply = Reply("OK", (str(len(body)),), body)
    stats = C.stats().decode(reply)
    assert stats.hostname == "h\udcffst"
