"""Bad arguments, beyond test_bad_input.py: each is a typed error (``InvalidArgument``, or
``ArgumentTypeError`` for a wrong type) naming the parameter and the value, raised before
anything is sent (or, for a constructor, before connecting), identically in the sync and the
asyncio flavour; the connection is usable afterwards.

Covered here: bodies that cannot be encoded (a str with a lone surrogate), sender fields that
are not JSON (objects, NaN and infinities, integers too long to print), batches given something
that is not a collection of items (``None``, an int, a str, bytes, a dict), bool parameters given
something else (``drop="no"`` used to delete), ``reserve_many`` with an unbounded ``n``, every
constructor argument, and the priority/delay of a message's ``release``/``bury``.
"""

from __future__ import annotations

import asyncio
import math
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from beanstalkm import ArgumentTypeError, Client, Connection, InvalidArgument, Message
from beanstalkm._core.base import MAX_TIMEOUT
from beanstalkm._core.batches import MAX_RESERVE_MANY
from beanstalkm._generated.commands import BODY_MAX
from beanstalkm.aio import AsyncClient, AsyncConnection, AsyncMessage, AsyncPool
from beanstalkm.testing import BeanstalkdServer

from ._support import sent_commands

TIMEOUT = 10


@pytest.fixture
def observer(server: BeanstalkdServer) -> Iterator[Connection]:
    with Connection(server.host, server.port, timeout=TIMEOUT) as c:
        yield c


def _diff(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int | None]]:
    return {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}


def _assert_names(error: BaseException, param: str, value: object) -> None:
    """``error`` is the project's typed error, naming ``param`` and showing ``value``."""
    assert isinstance(error, InvalidArgument), f"{type(error).__name__}: {error}"
    assert error.name == param, str(error)
    assert f"invalid {param} " in str(error)
    same = error.value is value or (type(error.value) is type(value) and _shown(error.value) == _shown(value))
    assert same, f"the error carries {error.value!r}, not {value!r}"
    assert _shown(value)[:40] in str(error), f"the message does not show the value: {error}"


def _shown(value: object) -> str:
    """How an error shows ``value``: its repr, or for an int too long to write out, its size."""
    try:
        return repr(value)
    except ValueError:
        return f"<int of {value.bit_length()} bits>" if isinstance(value, int) else f"<{type(value).__name__}>"


# -- calls on a client, both flavours ----------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A bad call (the same for either flavour: an async client's returns an awaitable), the error it
    must raise, and the parameter and value it must name."""

    id: str
    call: Callable[[Any], Any]
    error: type[InvalidArgument]
    value: object
    param: str


OBJ = object()
NAN = float("nan")
INF = float("inf")
HUGE = 10**5000  # more digits than int() will turn into text
SURROGATE = "\ud800"  # a lone surrogate: no UTF-8 for it
CIRCULAR: dict[str, Any] = {}
CIRCULAR["self"] = CIRCULAR
SENDER_OBJ = {"x": OBJ}
SENDER_NAN = {"x": NAN}
SENDER_INF = {"x": -INF}
SENDER_HUGE = {"x": HUGE}
SENDER_DEEP_NAN = {"x": [1, {"y": NAN}]}
SENDER_TUPLE_KEY: dict[Any, Any] = {(1, 2): "x"}
DICT_BODIES = {"a": 1, "b": 2}
NESTED_INF = {"a": [INF]}


def _sync_pipeline_put(c: Client) -> object:
    with c.pipeline() as p:
        p.put(b"queued, never sent")
        p.put(SURROGATE)
    return p.results


async def _async_pipeline_put(c: AsyncClient) -> object:
    async with c.pipeline() as p:
        p.put(b"queued, never sent")
        p.put(SURROGATE)
    return p.results


def _pipeline_put(c: Any) -> Any:
    return _async_pipeline_put(c) if isinstance(c, AsyncClient) else _sync_pipeline_put(c)


def _bad_sender(id: str, sender: dict[Any, Any]) -> Bad:
    return Bad(id, lambda c: c.put(1, sender=sender), ArgumentTypeError, sender, "sender")


BAD: list[Bad] = [
    # a str body with no UTF-8
    Bad("put-surrogate", lambda c: c.queue.put(SURROGATE), InvalidArgument, SURROGATE, "body"),
    Bad("put-surrogate-mid", lambda c: c.queue.put("ok" + SURROGATE), InvalidArgument, "ok" + SURROGATE, "body"),
    Bad("pipeline-put-surrogate", _pipeline_put, InvalidArgument, SURROGATE, "body"),
    # sender fields that are not JSON
    _bad_sender("sender-object", SENDER_OBJ),
    _bad_sender("sender-nan", SENDER_NAN),
    _bad_sender("sender-infinity", SENDER_INF),
    _bad_sender("sender-huge-int", SENDER_HUGE),
    _bad_sender("sender-nested-nan", SENDER_DEEP_NAN),
    _bad_sender("sender-circular", CIRCULAR),
    _bad_sender("sender-tuple-key", SENDER_TUPLE_KEY),
    Bad("message-sender-nan", lambda c: c(1, sender=SENDER_NAN).send("t"), ArgumentTypeError, SENDER_NAN, "sender"),
    # a body with NaN or infinity anywhere: not JSON
    Bad("body-nan", lambda c: c.put(NAN), ArgumentTypeError, NAN, "body"),
    Bad("body-nested-infinity", lambda c: c.put(NESTED_INF), ArgumentTypeError, NESTED_INF, "body"),
    Bad("put-many-nan", lambda c: c.put_many([1, NAN]), ArgumentTypeError, NAN, "body"),
    # batches given something that is not a collection of items
    Bad("put-many-none", lambda c: c.put_many(None), ArgumentTypeError, None, "bodies"),
    Bad("put-many-int", lambda c: c.put_many(5), ArgumentTypeError, 5, "bodies"),
    Bad("put-many-str", lambda c: c.put_many("abc"), ArgumentTypeError, "abc", "bodies"),
    Bad("put-many-bytes", lambda c: c.put_many(b"abc"), ArgumentTypeError, b"abc", "bodies"),
    Bad("put-many-dict", lambda c: c.put_many(DICT_BODIES), ArgumentTypeError, DICT_BODIES, "bodies"),
    Bad("delete-many-int", lambda c: c.delete_many(5), ArgumentTypeError, 5, "messages"),
    Bad("delete-many-none", lambda c: c.delete_many(None), ArgumentTypeError, None, "messages"),
    Bad("delete-many-str", lambda c: c.delete_many("12"), ArgumentTypeError, "12", "messages"),
    Bad("put-many-empty-bad-tube", lambda c: c.put_many([], tube="a b"), InvalidArgument, "a b", "tube"),
    # tube=None is no tube: it used to put the job into the used tube, silently (put_many refused it)
    Bad("put-tube-none", lambda c: c.put(1, tube=None), ArgumentTypeError, None, "tube"),
    Bad("put-tube-none-sender", lambda c: c.put(1, tube=None, sender={"a": 1}), ArgumentTypeError, None, "tube"),
    Bad("message-send-tube-none", lambda c: c(1).send(None), ArgumentTypeError, None, "tube"),
    Bad("put-many-tube-none", lambda c: c.put_many([1], tube=None), ArgumentTypeError, None, "tube"),
    # bool parameters
    Bad("reserve-drop-str", lambda c: c.reserve(timeout=0, drop="no"), ArgumentTypeError, "no", "drop"),
    Bad("reserve-drop-int", lambda c: c.reserve(drop=1), ArgumentTypeError, 1, "drop"),
    Bad("reserve-drop-none", lambda c: c.reserve(timeout=5, drop=None), ArgumentTypeError, None, "drop"),
    Bad("reserve-many-drop-str", lambda c: c.reserve_many(2, drop="no"), ArgumentTypeError, "no", "drop"),
    # reserve_many's n: bounded, an int
    Bad("reserve-many-2**40", lambda c: c.reserve_many(2**40), InvalidArgument, 2**40, "n"),
    Bad(
        "reserve-many-over-max",
        lambda c: c.reserve_many(MAX_RESERVE_MANY + 1),
        InvalidArgument,
        MAX_RESERVE_MANY + 1,
        "n",
    ),
    Bad("reserve-many-bool", lambda c: c.reserve_many(True), ArgumentTypeError, True, "n"),
    Bad("reserve-many-float", lambda c: c.reserve_many(2.0), ArgumentTypeError, 2.0, "n"),
    Bad("reserve-many-str", lambda c: c.reserve_many("2"), ArgumentTypeError, "2", "n"),
    Bad("reserve-many-zero-bad-timeout", lambda c: c.reserve_many(0, timeout=-1), InvalidArgument, -1, "timeout"),
]


def _check_sent_nothing(observer: Connection, before: dict[str, int]) -> None:
    after = sent_commands(observer)
    assert after == before, f"something was sent: {_diff(before, after)}"


def _ready(observer: Connection) -> int:
    """A job ready in ``default`` (which the clients watch), so a reserve that ran would take it."""
    observer.queue.use("default")
    return observer.queue.put(b"must stay ready")


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_sync(server: BeanstalkdServer, observer: Connection, bad: Bad) -> None:
    client = Client(server.host, server.port, timeout=TIMEOUT)
    client.queue.use("settled")
    job = _ready(observer)
    before = sent_commands(observer)

    with pytest.raises(bad.error) as info:
        bad.call(client)

    _check_sent_nothing(observer, before)
    _assert_names(info.value, bad.param, bad.value)
    assert client.connected
    assert client.queue.using() == "settled"
    assert observer.queue.stats_job(job).state == "ready"
    job_id = client.queue.put(b"still fine")
    peeked = client.queue.peek(job_id)
    assert peeked is not None and peeked.raw == b"still fine"


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_async(server: BeanstalkdServer, observer: Connection, bad: Bad) -> None:
    async def main() -> str:
        async with AsyncClient(server.host, server.port, timeout=TIMEOUT) as client:
            await client.queue.use("settled")
            job = _ready(observer)
            before = sent_commands(observer)

            with pytest.raises(bad.error) as info:
                await bad.call(client)

            _check_sent_nothing(observer, before)
            _assert_names(info.value, bad.param, bad.value)
            assert client.connected
            assert await client.queue.using() == "settled"
            assert observer.queue.stats_job(job).state == "ready"
            job_id = await client.queue.put(b"still fine")
            peeked = await client.queue.peek(job_id)
            assert peeked is not None and peeked.raw == b"still fine"
            return str(info.value)

    async_text = asyncio.run(main())
    with Client(server.host, server.port, timeout=TIMEOUT) as client, pytest.raises(bad.error) as info:
        bad.call(client)
    assert _without_ids(str(info.value)) == _without_ids(async_text), "the flavours differ"


def _without_ids(text: str) -> str:
    """An error message without the addresses ``repr(object())`` shows (different objects in each run)."""
    return text.split(" at 0x")[0]


def test_reserve_many_refuses_a_huge_n_before_building_anything(server: BeanstalkdServer) -> None:
    with Client(server.host, server.port, timeout=TIMEOUT) as client:
        tracemalloc.start()
        try:
            with pytest.raises(InvalidArgument) as info:
                client.reserve_many(2**40)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20, f"{peak} bytes allocated before refusing"
        assert str(MAX_RESERVE_MANY) in str(info.value)
        assert client.reserve_many(3) == []


@pytest.mark.slow
def test_reserve_many_up_to_its_bound_is_accepted(server: BeanstalkdServer, observer: Connection) -> None:
    """The bound is the documented one: ``MAX_RESERVE_MANY`` reserves go out (one write) and each is answered."""
    observer.queue.use("default")
    ids = [observer.queue.put(b"%d" % i) for i in range(3)]
    with Client(server.host, server.port, timeout=60) as client:
        got = client.reserve_many(MAX_RESERVE_MANY, drop=False)
        assert [m.uid for m in got] == ids
        stats = observer.queue.stats()
        assert stats.cmd_reserve_with_timeout == MAX_RESERVE_MANY
        assert client.queue.using() == "default"  # in step


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_message_sender_changed_after_it_was_made(
    server: BeanstalkdServer, observer: Connection, flavour: str
) -> None:
    """Checked when it is sent (by ``send`` or in a ``put_many``), before anything goes out."""

    def check(error: BaseException, message: Any) -> None:
        assert isinstance(error, ArgumentTypeError), repr(error)
        assert error.name == "sender" and error.value == message.sender  # (a copy, in a put_many)
        assert "not JSON" in str(error) and "NaN" in str(error)

    before = sent_commands(observer)
    if flavour == "sync":
        with Client(server.host, server.port, timeout=TIMEOUT) as client:
            message = client(1)
            message.sender["x"] = NAN
            with pytest.raises(ArgumentTypeError) as info:
                client.put_many([2, message])
            check(info.value, message)
            with pytest.raises(ArgumentTypeError) as info:
                message.send("t")
            check(info.value, message)
    else:

        async def main() -> None:
            async with AsyncClient(server.host, server.port, timeout=TIMEOUT) as client:
                message = client(1)
                message.sender["x"] = NAN
                with pytest.raises(ArgumentTypeError) as info:
                    await client.put_many([2, message])
                check(info.value, message)
                with pytest.raises(ArgumentTypeError) as info:
                    await message.send("t")
                check(info.value, message)

        asyncio.run(main())
    _check_sent_nothing(observer, before)


# -- a message's release and bury ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "param", "value"),
    [
        (lambda m: m.release(delay="5"), "delay", "5"),
        (lambda m: m.release(delay=False), "delay", False),
        (lambda m: m.release(delay=0.0), "delay", 0.0),
        (lambda m: m.release(delay=-1), "delay", -1),
        (lambda m: m.release(priority="1"), "priority", "1"),
        (lambda m: m.release(priority=2**32), "priority", 2**32),
        (lambda m: m.bury(priority=1.5), "priority", 1.5),
        (lambda m: m.bury(priority=-1), "priority", -1),
    ],
    ids=[
        "release-delay-str",
        "release-delay-false",
        "release-delay-float",
        "release-delay-negative",
        "release-priority-str",
        "release-priority-2**32",
        "bury-priority-float",
        "bury-priority-negative",
    ],
)
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_message_settling_arguments(
    server: BeanstalkdServer, observer: Connection, flavour: str, call: Callable[[Any], Any], param: str, value: object
) -> None:
    """Refused before anything is sent: not even the ``stats-job`` that would learn the job's own priority."""
    observer.queue.use("default")
    job = observer.queue.put(b"a job from another client", priority=7)

    def check(message: Any, before: dict[str, int], error: BaseException) -> None:
        _check_sent_nothing(observer, before)
        _assert_names(error, param, value)
        assert message.reserved
        assert observer.queue.stats_job(job).state == "reserved"

    if flavour == "sync":
        with Client(server.host, server.port, timeout=TIMEOUT) as client:
            message = client.reserve(timeout=0, drop=False)
            assert message is not None and message.uid == job
            before = sent_commands(observer)
            with pytest.raises(InvalidArgument) as info:
                call(message)
            check(message, before, info.value)
            message.release()
            assert observer.queue.stats_job(job).pri == 7
        return

    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=TIMEOUT) as client:
            message = await client.reserve(timeout=0, drop=False)
            assert message is not None and message.uid == job
            before = sent_commands(observer)
            with pytest.raises(InvalidArgument) as info:
                await call(message)
            check(message, before, info.value)
            await message.release()
            assert observer.queue.stats_job(job).pri == 7

    asyncio.run(main())


# -- constructors --------------------------------------------------------------------------------


BAD_SETTINGS: list[tuple[str, object, type[InvalidArgument]]] = [
    ("timeout", -1, InvalidArgument),
    ("timeout", 0, InvalidArgument),
    ("timeout", NAN, InvalidArgument),
    ("timeout", INF, InvalidArgument),
    ("timeout", MAX_TIMEOUT + 1, InvalidArgument),
    ("timeout", HUGE, InvalidArgument),
    ("timeout", "1", ArgumentTypeError),
    ("timeout", True, ArgumentTypeError),
    ("timeout", 1j, ArgumentTypeError),
    ("timeout", [1], ArgumentTypeError),
    ("host", 5, ArgumentTypeError),
    ("host", b"localhost", ArgumentTypeError),
    ("host", None, ArgumentTypeError),
    ("host", "", InvalidArgument),
    ("host", "local\x00host", InvalidArgument),
    ("host", SURROGATE, InvalidArgument),
    ("host", "a" * 64, InvalidArgument),  # a label longer than 63: no IDNA for it
    ("port", 70000, InvalidArgument),
    ("port", 0, InvalidArgument),
    ("port", -1, InvalidArgument),
    ("port", 2**64, InvalidArgument),
    ("port", "11300", ArgumentTypeError),
    ("port", True, ArgumentTypeError),
    ("port", 11300.0, ArgumentTypeError),
    ("port", None, ArgumentTypeError),
    ("max_body", "x", ArgumentTypeError),
    ("max_body", True, ArgumentTypeError),
    ("max_body", 1e6, ArgumentTypeError),
    ("max_body", -1, InvalidArgument),
    ("max_body", BODY_MAX + 1, InvalidArgument),
    ("validate", "yes", ArgumentTypeError),
    ("validate", 1, ArgumentTypeError),
    ("validate", 0, ArgumentTypeError),
    ("unix_socket", 5, ArgumentTypeError),
    ("unix_socket", b"/tmp/x", ArgumentTypeError),
    ("unix_socket", "", InvalidArgument),
    ("unix_socket", "/tmp/a\x00b", InvalidArgument),
    ("unix_socket", "/tmp/" + SURROGATE, InvalidArgument),
]


def _setting_id(param: str, value: object) -> str:
    shown = _shown(value)
    return f"{param}-{shown[:20]}" if len(shown) < 40 else f"{param}-{type(value).__name__}-{len(shown)}"


CONSTRUCTORS: dict[str, Callable[..., object]] = {
    "Connection": Connection,
    "Client": Client,
    "AsyncConnection": AsyncConnection,
    "AsyncClient": AsyncClient,
}


def _construct(kind: str, server: BeanstalkdServer, kwargs: dict[str, Any]) -> object:
    args = {"host": server.host, "port": server.port, "timeout": TIMEOUT, **kwargs}
    if kind == "AsyncPool":

        async def pool() -> object:
            return AsyncPool(**args)

        return asyncio.run(pool())
    return CONSTRUCTORS[kind](**args)


CONSTRUCTOR_CASES = [
    (kind, param, value, error)
    for kind in [*CONSTRUCTORS, "AsyncPool"]
    for param, value, error in BAD_SETTINGS
    if not (kind == "AsyncPool" and param == "max_body")  # the pool has no max_body
]


@pytest.mark.parametrize(
    ("kind", "param", "value", "error"),
    CONSTRUCTOR_CASES,
    ids=[f"{kind}-{_setting_id(param, value)}" for kind, param, value, _ in CONSTRUCTOR_CASES],
)
def test_constructor_arguments(
    server: BeanstalkdServer,
    observer: Connection,
    kind: str,
    param: str,
    value: object,
    error: type[InvalidArgument],
) -> None:
    """Refused by the constructor, before connecting, with the same error in every flavour."""
    connections = observer.queue.stats().total_connections

    kwargs: dict[str, Any] = {param: value}
    with pytest.raises(error) as info:
        _construct(kind, server, kwargs)

    _assert_names(info.value, param, value)
    assert observer.queue.stats().total_connections == connections, "it connected first"
    with pytest.raises(error) as sync:
        Connection(**{"host": server.host, "port": server.port, "timeout": TIMEOUT, **kwargs})
    assert str(info.value) == str(sync.value), "the flavours differ"


@pytest.mark.parametrize(
    ("watch", "error"),
    [
        ("jobs", ArgumentTypeError),
        (b"jobs", ArgumentTypeError),
        ({"jobs": 1}, ArgumentTypeError),
        (5, ArgumentTypeError),
    ],
    ids=["str", "bytes", "dict", "int"],
)
def test_pool_watch_must_be_a_collection_of_tubes(
    server: BeanstalkdServer, watch: object, error: type[Exception]
) -> None:
    async def main() -> None:
        with pytest.raises(error) as info:
            AsyncPool(server.host, server.port, timeout=TIMEOUT, watch=watch)  # type: ignore[arg-type]
        _assert_names(info.value, "watch", watch)

    asyncio.run(main())


@pytest.mark.parametrize(
    "timeout", [None, 0.5, 1, 2.5, MAX_TIMEOUT], ids=["none", "half-second", "int", "float", "max"]
)
def test_good_timeouts_are_accepted(server: BeanstalkdServer, timeout: float | None) -> None:
    with Connection(server.host, server.port, timeout=timeout) as c:
        assert c.timeout == timeout
        if timeout is None or timeout >= 1:
            assert c.queue.put(b"x", priority=1) > 0
            assert c.queue.reserve_with_timeout(0).raw == b"x"

    async def main() -> None:
        async with AsyncConnection(server.host, server.port, timeout=timeout) as c:
            assert c.timeout == timeout
            if timeout is None or timeout >= 1:
                assert await c.queue.stats_tube("default")

    asyncio.run(main())
    assert math.isfinite(MAX_TIMEOUT)


def test_a_path_like_unix_socket_is_accepted(unix_server: BeanstalkdServer) -> None:
    import pathlib

    assert unix_server.unix_path is not None
    with Connection(unix_socket=pathlib.Path(unix_server.unix_path), timeout=TIMEOUT) as c:  # type: ignore[arg-type]
        assert c.unix_socket == unix_server.unix_path
        assert c.queue.using() == "default"


# -- the longest valid waits -------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_the_longest_reserve_timeout_in_a_pipeline_larger_than_the_buffers(
    server: BeanstalkdServer, flavour: str
) -> None:
    """``reserve_with_timeout(2**31 - 1)`` (the spec's longest) at the end of a batch written while
    reading replies: the wait for progress is that long, not an ``OverflowError`` of poll's milliseconds."""
    count, size = 3000, 2000  # 6 MB of puts: more than the socket buffers take while the server writes replies

    def check(results: list[object] | None) -> None:
        assert results is not None and len(results) == count + 1
        assert all(isinstance(r, int) for r in results[:count])
        reserved = results[-1]
        assert isinstance(reserved, (Message, AsyncMessage)) and reserved.raw == b"x" * size

    if flavour == "sync":
        with Client(server.host, server.port, timeout=TIMEOUT) as client:
            client.queue.use("t")
            client.watch("t")
            with client.pipeline() as p:
                for _ in range(count):
                    p.put(b"x" * size)
                p.reserve_with_timeout(2**31 - 1)
            check(p.results)
            assert client.queue.using() == "t"
        return

    async def main() -> None:
        async with AsyncClient(server.host, server.port, timeout=TIMEOUT) as client:
            await client.queue.use("t")
            await client.watch("t")
            async with client.pipeline() as p:
                for _ in range(count):
                    p.put(b"x" * size)
                p.reserve_with_timeout(2**31 - 1)
            check(p.results)
            assert await client.queue.using() == "t"

    asyncio.run(main())
