"""Shared fixtures for the unit tests: the spec as data and stats bodies built from it.

The stats bodies are written the way beanstalkd prints them (``---`` then one
``key: value`` line per field, in the server's order, the body ending in a
newline). Integer fields get their index in the spec's field list as value,
so a decoder that swaps two fields gives a different result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).resolve().parents[2] / "spec" / "api.json"


def load_spec() -> dict[str, Any]:
    """spec/api.json as plain JSON data."""
    with SPEC_PATH.open(encoding="utf-8") as fh:
        data = json.load(fh)
    assert isinstance(data, dict)
    return data


SPEC: dict[str, Any] = load_spec()

GENERAL_ERRORS: tuple[str, ...] = tuple(SPEC["general_errors"])


def spec_commands() -> list[dict[str, Any]]:
    """The spec's commands, in order."""
    commands = SPEC["commands"]
    assert isinstance(commands, list)
    return commands


def spec_command(name: str) -> dict[str, Any]:
    """The spec command whose Python name is ``name``."""
    for cmd in spec_commands():
        if cmd["name"] == name:
            return cmd
    raise KeyError(name)


def raw_variants() -> dict[str, str]:
    """``{raw encoder name: base encoder name}`` for the commands returning YAML (list or stats)."""
    return {
        cmd["name"] + "_yaml": cmd["name"]
        for cmd in spec_commands()
        if "success" in cmd and cmd["success"]["returns"] in {"list", "stats"}
    }


def all_encoder_names() -> set[str]:
    """Every encoder the generator must emit: one per command plus the raw YAML variants."""
    return {cmd["name"] for cmd in spec_commands()} | set(raw_variants())


def stats_fields(stats_type: str) -> list[dict[str, Any]]:
    """The spec's fields of ``stats_type`` (``ServerStats``, ``TubeStats``, ``JobStats``), in server order."""
    fields = SPEC["stats"][stats_type]["fields"]
    assert isinstance(fields, list)
    return fields


def attr_name(key: str) -> str:
    """The dataclass attribute of a stats key (``current-jobs-ready`` -> ``current_jobs_ready``)."""
    return key.replace("-", "_")


def stats_body(stats_type: str, text: Mapping[str, str], *, extra: Mapping[str, str] | None = None) -> bytes:
    """A stats body as beanstalkd prints it.

    ``text`` gives the exact text after ``key: `` for fields that are not
    integers (and may override integer fields); every other integer field is
    printed as its index. A non-integer field missing from ``text`` is a bug in
    the test, so it raises.
    """
    lines = ["---"]
    for index, fld in enumerate(stats_fields(stats_type)):
        key = fld["key"]
        if key in text:
            value = text[key]
        elif fld["type"] == "int":
            value = str(index)
        else:
            raise AssertionError(f"test fixture lacks a value for {stats_type} field {key!r}")
        lines.append(f"{key}: {value}")
    for key, value in (extra or {}).items():
        lines.append(f"{key}: {value}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def expected_stats(stats_type: str, values: Mapping[str, object]) -> dict[str, Any]:
    """Constructor keywords for the stats dataclass: each integer field its index, ``values`` (by key) for the rest."""
    kwargs: dict[str, Any] = {}
    for index, fld in enumerate(stats_fields(stats_type)):
        key = fld["key"]
        if key in values:
            kwargs[attr_name(key)] = values[key]
        elif fld["type"] == "int":
            kwargs[attr_name(key)] = index
        else:
            raise AssertionError(f"test fixture lacks a value for {stats_type} field {key!r}")
    return kwargs


# beanstalkd 1.12 (Debian's package, on this machine) printed these non-integer
# fields exactly so: only ``version`` quoted, ``os`` a YAML comment to a parser.
SERVER_TEXT_112: dict[str, str] = {
    "version": '"1.12"',
    "rusage-utime": "0.003541",
    "rusage-stime": "0.000000",
    "draining": "false",
    "id": "2475343b827f853a",
    "hostname": "vm",
    "os": "#1 SMP PREEMPT_DYNAMIC @0",
    "platform": "x86_64",
}

# The same values as 1.13 prints them: hostname, os and platform quoted too.
SERVER_TEXT_113: dict[str, str] = {
    **SERVER_TEXT_112,
    "hostname": '"vm"',
    "os": '"#1 SMP PREEMPT_DYNAMIC @0"',
    "platform": '"x86_64"',
}


def server_stats_body_112() -> bytes:
    """The captured 1.12 ``stats`` body (integers replaced by their index)."""
    return stats_body("ServerStats", SERVER_TEXT_112)


def server_stats_body_113() -> bytes:
    """The same statistics in 1.13 quoting."""
    return stats_body("ServerStats", SERVER_TEXT_113)


def ok_reply(body: bytes) -> bytes:
    """``OK <bytes>\\r\\n<body>\\r\\n``."""
    return b"OK %d\r\n%b\r\n" % (len(body), body)
