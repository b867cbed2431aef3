"""The ``Mapping`` face the generated stats dataclasses share, and their fast path's builder."""

from __future__ import annotations

__all__ = ["StatValue", "StatsMapping", "slots_builder"]

import dataclasses
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from itertools import repeat
from types import MemberDescriptorType
from typing import ClassVar, TypeAlias, TypeVar

S = TypeVar("S")

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


def slots_builder(cls: type[S]) -> Callable[[tuple[object, ...]], S]:
    """A builder of ``cls``, a slots dataclass without ``__post_init__``, from every field's value in
    the fields' order: the slots set in one pass over their descriptors (docs/stats.md). A tuple of
    any other length is a ``TypeError``, so no slot is left unset.
    """
    if not dataclasses.is_dataclass(cls) or "__post_init__" in vars(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass whose __init__ only sets its fields")
    names = [f.name for f in dataclasses.fields(cls)]
    descriptors: list[MemberDescriptorType] = []
    for name in names:
        descriptor = vars(cls).get(name)
        if not isinstance(descriptor, MemberDescriptorType):
            raise TypeError(f"{cls.__name__}.{name} is not a slot")
        descriptors.append(descriptor)
    count = len(descriptors)
    set_slot = MemberDescriptorType.__set__
    new = object.__new__

    def build(values: tuple[object, ...]) -> S:
        if len(values) != count:
            raise TypeError(f"{cls.__name__} has {count} fields, not {len(values)}: {names}")
        obj: S = new(cls)
        deque(map(set_slot, descriptors, repeat(obj), values), 0)
        return obj

    return build
