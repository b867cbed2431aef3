"""Decoding beanstalkd's YAML bodies, exactly and by the spec's types.

beanstalkd prints flat YAML: ``---`` then ``key: value`` lines (stats) or
``- name`` lines (tube lists). A YAML parser gets that text wrong in places:
1.12 prints ``os: #1 SMP ...`` unquoted (a YAML comment), tube names such as
``on``, ``null`` or ``0123`` resolve to other types, and 1.12 quotes fewer
strings than 1.13. So the flat form is read line by line here, every value
kept as the server's text, and converted by the type the spec declares; its
exact layout at once by one regular expression, the general path behind it,
PyYAML's events only outside the flat form (docs/stats.md, :func:`_load_yaml`).
"""

from __future__ import annotations

__all__ = [
    "flat_form",
    "flat_values",
    "parse_list",
    "parse_mapping",
    "to_bool",
    "to_decimal",
    "to_enum",
    "to_int",
    "to_str",
    "unquote",
]

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from types import ModuleType
from typing import Any, TypeVar

from beanstalkm._errors import ProtocolError, cut, shown

E = TypeVar("E")

# What the flat form allows: a plain key, and a list item that YAML would read as
# a plain scalar (no whitespace, no leading indicator such as a quote, '[' or '{').
_FLAT_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_ITEM = r"[^\s\"'\[\]{}#&*!|>%@`]\S*"
_FLAT_ITEM = re.compile(_ITEM)
_FLAT_LIST = re.compile(rf"---\n(?:- {_ITEM}\n)*")
"""A whole flat list, every line ``- item`` with an item as ``_FLAT_ITEM`` allows (the common case at once)."""
_FLAT_LINE = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*): (.*)$", re.MULTILINE)
"""A ``key: value`` line of the flat form (the common case: a whole body's lines found at once)."""


def _text(body: bytes) -> str:
    return body.decode("utf-8", "surrogateescape")


def unquote(value: str) -> str:
    """``value`` without the double quotes around it, if it has them (1.13 quotes some strings)."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


FALLBACK_MAX = 1024 * 1024
"""The longest body read outside beanstalkd's flat form (PyYAML's parser costs about a second a MiB
in events; the flat form, which is all beanstalkd sends, is read line by line at any size)."""


def _load_yaml(text: str) -> object:
    """Fallback: PyYAML's parser (its C one where present), every scalar kept a str, and only the
    shapes beanstalkd prints: one document, a scalar, or a list or mapping of scalars.

    The value is built from the parser's events here, not by PyYAML's constructor: anything nested
    and any anchor or alias (beanstalkd sends none) is refused at the first such event. So a hostile
    body costs at most one pass over its text: no alias is ever expanded, nothing recurses.
    """
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a declared dependency
        raise ProtocolError("this YAML body is outside beanstalkd's flat form and PyYAML is not installed") from None
    if len(text) > FALLBACK_MAX:
        raise ProtocolError(
            f"a {len(text)}-character YAML body outside beanstalkd's flat form; the limit is {FALLBACK_MAX}"
        )
    try:
        loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)(text)  # the C loader encodes the text here
    except UnicodeError as exc:  # text that was not UTF-8 (surrogateescape)
        raise ProtocolError(f"unparseable YAML body: {cut(str(exc))}") from None
    try:
        return _flat_document(loader, yaml)
    except (yaml.YAMLError, UnicodeError) as exc:  # UnicodeError: text that was not UTF-8 (surrogateescape)
        raise ProtocolError(f"unparseable YAML body: {cut(str(exc))}") from None
    finally:
        loader.dispose()


def _flat_document(loader: Any, yaml: ModuleType) -> object:
    """The one document of the stream ``loader`` parses (None if there is none), built from its events."""
    loader.get_event()  # StreamStart
    if loader.check_event(yaml.StreamEndEvent):
        return None
    loader.get_event()  # DocumentStart
    value = _flat_node(loader, yaml)
    loader.get_event()  # DocumentEnd
    if not loader.check_event(yaml.StreamEndEvent):
        event = loader.get_event()
        raise ProtocolError(f"YAML body holds more than one document (another at {event.start_mark})")
    return value


def _flat_node(loader: Any, yaml: ModuleType) -> str | list[str] | dict[str, str]:
    """A scalar, or a list or mapping of scalars (``ProtocolError`` for anything else)."""
    event = _plain(loader.get_event(), yaml)
    if isinstance(event, yaml.ScalarEvent):
        return str(event.value)
    if isinstance(event, yaml.SequenceStartEvent):
        items: list[str] = []
        while not loader.check_event(yaml.SequenceEndEvent):
            items.append(_scalar(loader, yaml, "a YAML list"))
        loader.get_event()
        return items
    if isinstance(event, yaml.MappingStartEvent):
        mapping: dict[str, str] = {}
        while not loader.check_event(yaml.MappingEndEvent):
            key = _scalar(loader, yaml, "a YAML mapping key")
            mapping[key] = _scalar(loader, yaml, f"YAML mapping entry {shown(key)}")
        loader.get_event()
        return mapping
    raise ProtocolError(f"unexpected YAML event {type(event).__name__} at {event.start_mark}")  # pragma: no cover


def _scalar(loader: Any, yaml: ModuleType, where: str) -> str:
    event = _plain(loader.get_event(), yaml)
    if not isinstance(event, yaml.ScalarEvent):
        kind = "list" if isinstance(event, yaml.SequenceStartEvent) else "mapping"
        raise ProtocolError(f"{where} holds a {kind} (at {event.start_mark}), not flat text")
    return str(event.value)


def _plain(event: Any, yaml: ModuleType) -> Any:
    """``event``, unless it is an alias or carries an anchor: ``ProtocolError`` then."""
    if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
        raise ProtocolError(
            f"YAML anchors and aliases are refused (beanstalkd sends none): {event.anchor!r} at {event.start_mark}"
        )
    return event


def parse_mapping(body: bytes) -> dict[str, str]:
    """A flat YAML mapping as ``{key: text}``, every value the server's text."""
    text = _text(body)
    lines = text.split("\n")
    result: dict[str, str] = {}
    if lines and lines[0] == "---":
        pairs = _FLAT_LINE.findall(text, 4)  # the common case at once: every line ``key: value``, no key twice
        result = dict(pairs)
        if len(result) == len(pairs) == len(lines) - 1 - lines.count(""):
            at = text.find(': "')
            while at >= 0:  # the few quoted values (``version: "1.12"``)
                key = text[text.rfind("\n", 0, at) + 1 : at]
                value = result.get(key)
                if value is not None:
                    result[key] = unquote(value)
                at = text.find(': "', at + 3)
            return result
        result = {}
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
            result[key] = unquote(value)
        else:
            return result
    loaded = _load_yaml(text)
    if not isinstance(loaded, dict):
        raise ProtocolError(f"expected a YAML mapping, got {type(loaded).__name__} {shown(loaded)}")
    return loaded


def parse_list(body: bytes) -> list[str]:
    """A flat YAML list of names as ``[text, ...]``."""
    text = _text(body)
    if _FLAT_LIST.fullmatch(text) is not None:  # no item holds whitespace, so none holds "\n- "
        return text[6:-1].split("\n- ") if len(text) > 4 else []
    return _parse_list_general(text)


def _parse_list_general(text: str) -> list[str]:
    """The general path of :func:`parse_list`: blank lines, a last line without its newline, and
    anything outside the flat form (to PyYAML's parser, bounded)."""
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
    if not isinstance(loaded, list):
        raise ProtocolError(f"expected a YAML list of names, got {type(loaded).__name__} {shown(loaded)}")
    return loaded


def to_str(raw: Mapping[str, str], key: str) -> str:
    """Field ``key`` as the server's text."""
    try:
        return raw[key]
    except KeyError:
        raise ProtocolError(f"stats reply lacks field {key!r}") from None


INT_DIGITS_MAX = 20
"""The most digits a stats integer may have: beanstalkd's counters are 64-bit (``2**64 - 1`` has 20).
A longer one is a ``ProtocolError``, before ``int()`` (whose cost grows with the length) sees it."""


def to_int(raw: Mapping[str, str], key: str) -> int:
    """Field ``key`` as an integer (optionally signed), of at most ``INT_DIGITS_MAX`` digits."""
    text = raw.get(key)
    if text is not None and len(text) <= INT_DIGITS_MAX and text.isdigit() and text.isascii():
        return int(text)  # the common case, at once
    text = to_str(raw, key)
    digits = text[1:] if text[:1] == "-" else text
    if not digits.isdigit() or not digits.isascii():
        raise ProtocolError(f"stats field {key!r}: {shown(text)} is not an integer")
    if len(digits) > INT_DIGITS_MAX:
        raise ProtocolError(f"stats field {key!r}: {shown(text)} has {len(digits)} digits, more than a 64-bit integer")
    return int(text)


def to_decimal(raw: Mapping[str, str], key: str) -> Decimal:
    """Field ``key`` as an exact decimal (``rusage-utime: 0.003541``)."""
    text = to_str(raw, key)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ProtocolError(f"stats field {key!r}: {shown(text)} is not a decimal number") from None
    if not value.is_finite():
        raise ProtocolError(f"stats field {key!r}: {shown(text)} is not a finite decimal number")
    return value


def to_bool(raw: Mapping[str, str], key: str) -> bool:
    """Field ``key`` as a bool: exactly ``true`` or ``false``."""
    text = to_str(raw, key)
    if text == "true":
        return True
    if text == "false":
        return False
    raise ProtocolError(f"stats field {key!r}: {shown(text)} is neither true nor false")


def to_enum(raw: Mapping[str, str], key: str, values: Mapping[str, E]) -> E:
    """Field ``key`` as one of the spec's values."""
    text = to_str(raw, key)
    try:
        return values[text]
    except KeyError:
        raise ProtocolError(f"stats field {key!r}: {shown(text)} is not one of {sorted(values)}") from None


# -- the layout beanstalkd prints, at once -----------------------------------------------------------

DECIMAL_DIGITS_MAX = 20
"""The most digits either side of the point a stats decimal may have on the fast path (beanstalkd
prints ``%d.%06d``); a longer one is left to the general path, which reads any finite decimal."""

_FLAT_VALUES: dict[str, str] = {
    "int": rf"(-?[0-9]{{1,{INT_DIGITS_MAX}}})",  # exactly what to_int accepts
    "decimal": rf"([0-9]{{1,{DECIMAL_DIGITS_MAX}}}\.[0-9]{{1,{DECIMAL_DIGITS_MAX}}})",  # a subset of to_decimal's
    "bool": "(true|false)",  # exactly to_bool's
    "str": r"([^\n]*)",  # any line, as the general path reads it (unquoted after)
}


def flat_form(*fields: tuple[str, str | Iterable[str]]) -> re.Pattern[str]:
    """The exact text beanstalkd prints for a stats type, as one pattern with one group per field.

    ``fields`` are the spec's ``(key, kind)`` pairs in the server's order, a kind being ``int``,
    ``decimal``, ``bool``, ``str``, or an enum's values. A body it matches reads the same through
    the general path; anything else does not match (what each kind accepts: docs/stats.md).
    """
    parts = ["---\n"]
    for key, kind in fields:
        if _FLAT_KEY.fullmatch(key) is None:
            raise ValueError(f"stats key {key!r} is not a plain flat-YAML key")
        if isinstance(kind, str):
            try:
                value = _FLAT_VALUES[kind]
            except KeyError:
                raise ValueError(f"stats field {key!r}: unknown kind {kind!r}") from None
        else:
            value = "(" + "|".join(re.escape(v) for v in kind) + ")"
        parts.append(f"{re.escape(key)}: {value}\n")
    return re.compile("".join(parts))


def flat_values(form: re.Pattern[str], body: bytes) -> tuple[str, ...] | None:
    """The server's text of each field if ``body`` is exactly ``form`` (:func:`flat_form`), else None.

    Only an ASCII body qualifies: its text is then the same however it is decoded.
    """
    if not body.isascii():
        return None
    match = form.fullmatch(body.decode("ascii"))
    return None if match is None else match.groups()
