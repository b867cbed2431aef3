"""jsonschema's equality for ``enum`` and ``const``, for the generated envelope check.

``_generated/envelope_check.py`` is compiled from spec/message.json; when the schema uses
``enum`` or ``const`` it compares values with :func:`json_equal`, which says what jsonschema's
own ``equal`` says, so that the compiled check agrees with ``Draft7Validator`` exactly.
"""

from __future__ import annotations

__all__ = ["json_equal"]

from collections.abc import Mapping, Sequence

_TRUE = object()
_FALSE = object()


def _unbool(element: object) -> object:
    if element is True:
        return _TRUE
    if element is False:
        return _FALSE
    return element


def json_equal(one: object, two: object) -> bool:
    """jsonschema's ``equal`` (enum, const): ``True`` is not ``1``, recursively."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return one == two
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(json_equal(i, j) for i, j in zip(one, two, strict=False))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(key in two and json_equal(value, two[key]) for key, value in one.items())
    return _unbool(one) == _unbool(two)
