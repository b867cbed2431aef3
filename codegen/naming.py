"""The one mapping from beanstalkd wire names to Python names."""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable

# Names a stats field may not take as an attribute: they are Mapping methods or
# members the generated dataclasses define themselves.
RESERVED_ATTRIBUTES = frozenset({"extra", "from_yaml", "get", "items", "keys", "values"})


def python_name(wire: str) -> str:
    """``current-jobs-urgent`` -> ``current_jobs_urgent``; keywords and
    reserved attribute names get a trailing underscore."""
    name = wire.replace("-", "_")
    if not name.isidentifier():
        raise ValueError(f"{wire!r} does not map to a Python identifier")
    if keyword.iskeyword(name) or name in RESERVED_ATTRIBUTES:
        name += "_"
    return name


def class_name(wire: str) -> str:
    """``NOT_FOUND`` or ``not-found`` -> ``NotFound``."""
    parts = wire.replace("-", "_").lower().split("_")
    return "".join(part.capitalize() for part in parts if part)


def export_order(names: Iterable[str]) -> list[str]:
    """``names`` in the order ruff's RUF022 wants an ``__all__`` in (isort style): SCREAMING_CASE
    constants, then CapWords classes, then the rest, each group in natural order (digits as numbers)."""

    def key(name: str) -> tuple[int, list[tuple[int, int | str]]]:
        group = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
        return group, [(1, int(part)) if part.isdigit() else (0, part) for part in re.split(r"(\d+)", name) if part]

    return sorted(names, key=key)
