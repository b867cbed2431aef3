"""No ``Any`` in the public API's signatures, except the JSON body itself.

Walks every public class and function exported by ``beanstalkm`` and
``beanstalkm.aio``: each public method's parameters and return type, each
property and each annotated attribute. ``Any`` is allowed only where the value
is the user's JSON: a message ``body``, the envelope's ``sender`` and what
``as_dict()`` returns.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator
from typing import Any

import pytest

import beanstalkm
import beanstalkm.aio

JSON_PLACES = {"body", "bodies", "sender", "as_dict"}  # parameter, attribute or method names holding user JSON


def _mentions_any(hint: object) -> bool:
    if hint is Any:
        return True
    return any(_mentions_any(arg) for arg in typing.get_args(hint))


def _public_objects() -> Iterator[tuple[str, object]]:
    for module in (beanstalkm, beanstalkm.aio):
        for name in module.__all__:
            yield f"{module.__name__}.{name}", getattr(module, name)


def _hints(obj: Any) -> dict[str, object]:
    """Type hints, resolving names the modules import only for type checking."""
    namespace = {**vars(beanstalkm), **vars(beanstalkm.aio), **vars(inspect.getmodule(obj))}
    return typing.get_type_hints(obj, globalns=namespace)


def _places() -> Iterator[tuple[str, str, object]]:
    """(where, name, type hint) for every public signature element."""
    for where, obj in _public_objects():
        if inspect.isclass(obj):
            for klass in inspect.getmro(obj):
                if klass.__module__.split(".")[0] != "beanstalkm":
                    continue
                for attr, hint in _hints(klass).items():
                    if not attr.startswith("_"):
                        yield f"{where}.{attr}", attr, hint
            for attr, member in inspect.getmembers(obj):
                if attr.startswith("_") and attr not in ("__init__", "__call__"):
                    continue
                if isinstance(inspect.getattr_static(obj, attr), property):
                    getter = inspect.getattr_static(obj, attr).fget
                    hints = _hints(getter)
                    yield f"{where}.{attr}", attr, hints.get("return")
                elif inspect.isfunction(member) or inspect.iscoroutinefunction(member):
                    if member.__module__.split(".")[0] != "beanstalkm":
                        continue
                    for param, hint in _hints(member).items():
                        yield f"{where}.{attr}({param})", attr if param == "return" else param, hint
        elif inspect.isfunction(obj):
            for param, hint in _hints(obj).items():
                yield f"{where}({param})", param, hint


def test_the_walk_finds_the_api() -> None:
    places = {where for where, _, _ in _places()}
    assert "beanstalkm.Client.put(priority)" in places
    assert "beanstalkm.aio.AsyncClient.reserve(return)" in places
    assert "beanstalkm.Message.body" in places
    assert len(places) > 300


@pytest.mark.parametrize("where,name,hint", list(_places()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_any_outside_the_json_body(where: str, name: str, hint: object) -> None:
    if name in JSON_PLACES:
        return
    assert not _mentions_any(hint), f"{where} is typed {hint!r}: Any is allowed only for the JSON body"
