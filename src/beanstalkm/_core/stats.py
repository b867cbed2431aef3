"""The ``Mapping`` face the generated stats dataclasses share."""

from __future__ import annotations

__all__ = ["StatValue", "StatsMapping"]

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import ClassVar, TypeAlias

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
