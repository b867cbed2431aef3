"""What the sync hot path builds more quickly must be what the general way builds.

``AsyncMessage._new`` / ``Message._new`` (``Client.put``'s common case) against the constructor with
the same fields; ``AsyncMessage._made`` (received jobs) against ``cls(conn, body, **kwargs)``; the
token of a small body (CPython's md5, a copy of its prefix's) against OpenSSL's, on both sides of
the size where the token changes hands.
"""

from __future__ import annotations

import hashlib
import importlib.util
from typing import Any

import pytest

from beanstalkm import Message
from beanstalkm._async.message import AsyncMessage
from beanstalkm._core import envelope
from beanstalkm._core.message import MessageBase

SLOTS = [s for cls in (MessageBase, Message) for s in cls.__slots__]


def _fields(message: MessageBase) -> dict[str, Any]:
    return {slot: getattr(message, slot) for slot in SLOTS if slot != "created"}


@pytest.mark.parametrize("cls", [Message, AsyncMessage])
def test_new_is_the_constructor_with_the_same_fields(cls: Any) -> None:
    conn: Any = object()
    sender = {"host": "h", "pid": 1}
    quick = cls._new(conn, {"n": 1}, sender, 7, 8, 9)
    general = cls(conn, {"n": 1}, sender=sender, priority=7, delay=8, ttr=9)
    assert _fields(quick) == _fields(general)
    assert quick._conn is conn and quick._lease is None
    assert quick.sender is sender  # the caller's copy, as the constructor keeps it
    assert set(quick.created) == {"$data"} and abs(quick.created["$data"] - general.created["$data"]) < 5000
    assert quick.errors == [] and quick.errors is not general.errors  # a list of its own
    assert type(quick) is cls


@pytest.mark.parametrize("cls", [Message, AsyncMessage])
def test_made_is_the_constructor_with_the_same_keywords(cls: Any) -> None:
    conn: Any = object()
    raw = b'{"@context":"message","body":[1],"created":{"$data":5},"sender":{"host":"h"},"token":"t","errors":["e"]}'
    kwargs, problem = MessageBase._from_job(42, raw, True)
    assert problem is None
    body = kwargs.pop("body")
    made = cls._made(conn, body, dict(kwargs))
    assert _fields(made) == _fields(cls(conn, body, **kwargs))
    assert made.created == {"$data": 5} and made.errors == ["e"] and made.uid == 42 and made.raw is raw
    assert made._conn is conn and made._lease is None


@pytest.mark.parametrize("errors", [None, [], ["a", 1, {"b": 2}], "not a list"])
def test_a_received_envelope_s_errors_are_read_as_before(errors: object) -> None:
    value: dict[str, Any] = {"@context": "message", "body": 1, "created": {"$data": 5}, "sender": {"host": "h"}}
    value["token"] = "t"
    if errors is not None:
        value["errors"] = errors
    raw = envelope._COMPACT(value).encode()
    kwargs, _ = MessageBase._from_job(1, raw, False)
    expected = [e if isinstance(e, str) else str(e) for e in errors] if isinstance(errors, list) else []
    assert kwargs["errors"] == expected
    assert (kwargs["subscribe"], kwargs["channel"], kwargs["token"]) == (None, None, "t")


@pytest.mark.parametrize(
    "size", [0, 1, envelope._SMALL_BODY - 1, envelope._SMALL_BODY, envelope._SMALL_BODY + 1, 100_000]
)
@pytest.mark.parametrize("char", ["x", "\u00e9", "\U0001f600"])
def test_the_token_is_md5_of_the_body_whatever_its_size(size: int, char: str) -> None:
    body = char * size
    canonical = envelope.canonical(body)
    expected = hashlib.md5(('{"body":' + canonical + "}").encode()).hexdigest()
    assert envelope.token_of(canonical) == expected
    assert envelope.token_of(canonical) == expected  # the prefix's digest is copied, never changed


def test_the_token_start_is_cpython_s_md5_where_it_is_built() -> None:
    start = envelope._TOKEN_START
    assert (start is None) == (importlib.util.find_spec("_md5") is None)  # None only where it is not built
    if start is not None:
        assert start.copy().hexdigest() == hashlib.md5(b'{"body":').hexdigest()
