"""Argument checks: a typed error naming the parameter and the value, before anything is sent."""

from __future__ import annotations

__all__ = [
    "TubeRule",
    "check_body",
    "check_bool",
    "check_host",
    "check_items",
    "check_path",
    "check_seconds",
    "check_uint",
]

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from beanstalkm._errors import ArgumentTypeError, InvalidArgument


def check_uint(name: str, value: object, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool) in ``low..high``, else a typed error naming it."""
    if type(value) is int:
        if low <= value <= high:
            return value
    elif not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(name, value, f"must be an int, not {type(value).__name__}")
    elif low <= value <= high:
        return int(value)
    raise InvalidArgument(name, value, f"must be an integer from {low} to {high}")


def check_body(name: str, value: object) -> bytes:
    """A job body as bytes: ``bytes``-like as is, ``str`` as UTF-8 (``InvalidArgument`` for a
    str that has none: one with a lone surrogate)."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgument(
                name, value, f"a str body is sent as UTF-8, and {value[exc.start]!r} at {exc.start} has none"
            ) from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise ArgumentTypeError(name, value, f"must be bytes or str, not {type(value).__name__}")


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is ``True`` or ``False``; anything else (``"no"``, ``1``, ``None``) is refused."""
    if value is True or value is False:
        return value
    raise ArgumentTypeError(name, value, f"must be a bool (True or False), not {type(value).__name__}")


def check_items(name: str, value: object) -> list[Any]:
    """The items of an iterable, as a new list. A str, bytes or mapping is refused: it is iterable,
    but as one item (a str is not a batch of one-letter bodies)."""
    if isinstance(value, (str, bytes, bytearray, memoryview, Mapping)):
        raise ArgumentTypeError(
            name, value, f"must be an iterable of items (a list, say), not a {type(value).__name__}"
        )
    if not isinstance(value, Iterable):
        raise ArgumentTypeError(name, value, f"must be an iterable of items, not {type(value).__name__}")
    return list(value)


def check_seconds(name: str, value: object, high: int) -> float | None:
    """``value`` if it is None or a number of seconds (int or float, not bool) above 0 and at most ``high``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(
            name, value, f"must be a number of seconds (int or float) or None, not {type(value).__name__}"
        )
    if not 0 < value <= high:  # NaN is refused too: it compares false
        raise InvalidArgument(name, value, f"must be more than 0 and at most {high} seconds (None: no limit)")
    return float(value) if isinstance(value, float) else int(value)


def check_host(name: str, value: object) -> str:
    """``value`` if it is a host name or address the socket layer can encode (as IDNA: what it does)."""
    if not isinstance(value, str):
        raise ArgumentTypeError(name, value, f"must be a str (a host name or address), not {type(value).__name__}")
    if not value:
        raise InvalidArgument(name, value, "a host name cannot be empty")
    if "\x00" in value:
        raise InvalidArgument(name, value, "a host name cannot contain NUL")
    try:
        value.encode("idna")
    except UnicodeError as exc:
        raise InvalidArgument(name, value, f"not a host name: {exc}") from None
    return value


def check_path(name: str, value: object) -> str:
    """``value`` (a str, or an ``os.PathLike`` of one) as a str path the file system can encode."""
    path = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(path, str):
        raise ArgumentTypeError(name, value, f"must be a str path, not {type(path).__name__}")
    if not path:
        raise InvalidArgument(name, value, "a path cannot be empty")
    if "\x00" in path:
        raise InvalidArgument(name, value, "a path cannot contain NUL")
    try:
        os.fsencode(path)
    except UnicodeEncodeError as exc:
        raise InvalidArgument(name, value, f"{path[exc.start]!r} at {exc.start} has no file-system encoding") from None
    return path


class TubeRule:
    """The tube-name rule of the spec: length in bytes, allowed characters,
    no leading ``-``. Valid names are cached (bounded), so checking a name a
    client uses again and again costs one dict lookup."""

    __slots__ = ("_cache", "_max_len", "_pattern", "chars")

    def __init__(self, max_len: int, chars: str) -> None:
        self._max_len = max_len
        self.chars = chars
        self._pattern = re.compile("[A-Za-z0-9" + re.escape(chars) + "]+")
        self._cache: dict[str, str] = {}

    def check(self, name: str, value: object) -> str:
        """``value`` if it is a valid tube name, else a typed error saying why."""
        if type(value) is str and value in self._cache:
            return value
        if not isinstance(value, str):
            raise ArgumentTypeError(name, value, f"tube names are str, not {type(value).__name__}")
        if not value:
            raise InvalidArgument(name, value, "a tube name cannot be empty")
        if not value.isascii():
            raise InvalidArgument(name, value, "tube names are ASCII only")
        if len(value) > self._max_len:
            raise InvalidArgument(name, value, f"{len(value)} bytes long; the limit is {self._max_len}")
        if value[0] == "-":
            raise InvalidArgument(name, value, "a tube name cannot start with '-'")
        if self._pattern.fullmatch(value) is None:
            bad = next(c for c in value if self._pattern.fullmatch(c) is None)
            raise InvalidArgument(
                name, value, f"character {bad!r} is not allowed (A-Z a-z 0-9 and {' '.join(self.chars)})"
            )
        if len(self._cache) >= 1024:
            self._cache.clear()
        self._cache[value] = value
        return value
