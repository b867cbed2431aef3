"""Decoding beanstalkd's YAML bodies, exactly and by the spec's types.

beanstalkd prints flat YAML: ``---`` then ``key: value`` lines (stats) or
``- name`` lines (tube lists). A YAML parser gets that text wrong in places:
1.12 prints ``os: #1 SMP ...`` unquoted (a YAML comment), tube names such as
``on``, ``null`` or ``0123`` resolve to other types, and 1.12 quotes fewer
strings than 1.13. So the flat form is read line by line here, every value
kept as the server's text, and converted by the type the spec declares.
PyYAML (C loader where present, never type resolution) only serves a body
outside that flat form.
"""

from __future__ import annotations

__all__ = [
    "StatValue",
    "StatsMapping",
    "parse_list",
    "parse_mapping",
    "to_bool",
    "to_decimal",
    "to_enum",
    "to_int",
    "to_str",
]

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import ClassVar, TypeAlias, TypeVar

from beanstalkm._errors import ProtocolError

E = TypeVar("E")

# What the flat form allows: a plain key, and a list item that YAML would read as
# a plain scalar (no whitespace, no leading indicator such as a quote, '[' or '{').
_FLAT_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_FLAT_ITEM = re.compile(r"[^\s\"'\[\]{}#&*!|>%@`]\S*")


def _text(body: bytes) -> str:
    return body.decode("utf-8", "surrogateescape")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def _load_yaml(text: str) -> object:
    """Fallback: PyYAML without type resolution (every scalar stays a str)."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a declared dependency
        raise ProtocolError("this YAML body is outside beanstalkd's flat form and PyYAML is not installed") from None
    loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - BaseLoader builds only str/list/dict
    except yaml.YAMLError as exc:
        raise ProtocolError(f"unparseable YAML body: {exc}") from None


def parse_mapping(body: bytes) -> dict[str, str]:
    """A flat YAML mapping as ``{key: text}``, every value the server's text."""
    text = _text(body)
    lines = text.split("\n")
    result: dict[str, str] = {}
    if lines and lines[0] == "---":
        for line in lines[1:]:
            if not line:
                continue
            key, sep, value = line.partition(": ")
            if not sep:
                if line.endswith(":") and " " not in line:
                    key, value = line[:-1], ""
                else:
                    break
            if _FLAT_KEY.fullmatch(key) is None or key in result:
                break
            result[key] = _unquote(value)
        else:
            return result
    loaded = _load_yaml(text)
    if not isinstance(loaded, dict):
        raise ProtocolError(f"expected a YAML mapping, got {type(loaded).__name__}")
    out: dict[str, str] = {}
    for key, value in loaded.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ProtocolError(f"YAML mapping entry {key!r}: {value!r} is not flat text")
        out[key] = value
    return out


def parse_list(body: bytes) -> list[str]:
    """A flat YAML list of names as ``[text, ...]``."""
    text = _text(body)
    lines = text.split("\n")
    result: list[str] = []
    if lines and lines[0] == "---":
        for line in lines[1:]:
            if not line:
                continue
            if not line.startswith("- ") or _FLAT_ITEM.fullmatch(line, 2) is None:
                break
            result.append(line[2:])
        else:
            return result
    loaded = _load_yaml(text)
    if loaded is None:
        return []
    if not isinstance(loaded, list) or not all(isinstance(item, str) for item in loaded):
        raise ProtocolError(f"expected a YAML list of names, got {loaded!r}")
    return list(loaded)


def _field(raw: Mapping[str, str], key: str) -> str:
    try:
        return raw[key]
    except KeyError:
        raise ProtocolError(f"stats reply lacks field {key!r}") from None


def to_int(raw: Mapping[str, str], key: str) -> int:
    """Field ``key`` as an integer (optionally signed)."""
    text = _field(raw, key)
    digits = text[1:] if text[:1] == "-" else text
    if not digits.isdigit() or not digits.isascii():
        raise ProtocolError(f"stats field {key!r}: {text!r} is not an integer")
    return int(text)


def to_decimal(raw: Mapping[str, str], key: str) -> Decimal:
    """Field ``key`` as an exact decimal (``rusage-utime: 0.003541``)."""
    text = _field(raw, key)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ProtocolError(f"stats field {key!r}: {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise ProtocolError(f"stats field {key!r}: {text!r} is not a finite decimal number")
    return value


def to_bool(raw: Mapping[str, str], key: str) -> bool:
    """Field ``key`` as a bool: exactly ``true`` or ``false``."""
    text = _field(raw, key)
    if text == "true":
        return True
    if text == "false":
        return False
    raise ProtocolError(f"stats field {key!r}: {text!r} is neither true nor false")


def to_str(raw: Mapping[str, str], key: str) -> str:
    """Field ``key`` as the server's text."""
    return _field(raw, key)


def to_enum(raw: Mapping[str, str], key: str, values: Mapping[str, E]) -> E:
    """Field ``key`` as one of the spec's values."""
    text = _field(raw, key)
    try:
        return values[text]
    except KeyError:
        raise ProtocolError(f"stats field {key!r}: {text!r} is not one of {sorted(values)}") from None


StatValue: TypeAlias = int | str | bool | Decimal
"""Any value of a stats field."""


class StatsMapping(Mapping[str, StatValue]):
    """The read-only ``Mapping`` face of a generated stats dataclass.

    ``stats["current-jobs-ready"]`` reads the attribute the spec maps that
    server key to (``KEYS``); keys the spec does not know come from ``extra``.
    Iteration gives the spec's keys in the server's order, then the extra ones.
    """

    __slots__ = ()
    KEYS: ClassVar[Mapping[str, str]] = {}
    """The server's keys, in its order, and the attribute each is read into."""
    extra: Mapping[str, str]

    def __getitem__(self, key: str) -> StatValue:
        attr = self.KEYS.get(key)
        if attr is None:
            return self.extra[key]
        value: StatValue = getattr(self, attr)
        return value

    def __iter__(self) -> Iterator[str]:
        yield from self.KEYS
        yield from self.extra

    def __len__(self) -> int:
        return len(self.KEYS) + len(self.extra)
