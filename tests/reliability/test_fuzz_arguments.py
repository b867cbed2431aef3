"""Property-based fuzzing of every public function's arguments, against a real beanstalkd.

Each example calls one public method (of ``Connection.queue``, a pipeline, ``Client``, a
``Message``, or a constructor), in the sync or the asyncio flavour, with one parameter set to an
arbitrary Python value (None, bools, ints huge and negative, floats with NaN and infinities, str
with lone surrogates, bytes, lists, dicts, objects, int and str subclasses...) or a nearly valid
one, the others valid. The targets are found by introspection, and a test checks that every
public method with parameters is among them.

The call must succeed or raise only the project's typed errors: ``InvalidArgument`` (or
``ArgumentTypeError``) naming that parameter, with nothing sent; a ``CommandFailed`` from the
server (or a ``BatchFailed`` made of them); ``SocketError`` only where a constructor's host,
socket path or timeout cannot connect. Afterwards the connection is in step: the next normal
command gets its own reply. Every call is bounded in time by the connection's timeout (a hang
is a ``SocketError``, which fails the test) and in memory (``tracemalloc``'s peak).

Every value that would make a valid call slow or reach outside is kept out: a host name other
than loopback's (no DNS lookups), another TCP port than the server's, ``reserve_many`` of more
than ``MANY`` jobs. A job is ready in a watched tube before each call, so a reserve with a valid
timeout returns at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beanstalkm import (
    BatchFailed,
    Client,
    CommandFailed,
    Connection,
    InvalidArgument,
    InvalidEnvelope,
    Message,
    SocketError,
)
from beanstalkm._generated.pipeline import PipelineCommands
from beanstalkm._generated.queue import Queue
from beanstalkm.aio import AsyncClient, AsyncConnection, AsyncMessage, AsyncPool
from beanstalkm.testing import BeanstalkdServer

from ._support import sent_commands

TIMEOUT = 5
MANY = 64  # reserve_many(n) for a valid n above this is kept out (up to 2**20 is valid, and slow)
MEMORY = 32 << 20  # the most one call may allocate (tracemalloc's peak), in bytes
FUZZ = {"sync": 900, "async": 600, "constructors": 400}  # examples per test: about 10 s in all
RAN: Counter[str] = Counter()  # examples run, per target


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


# -- values ---------------------------------------------------------------------------------------


class _IntSub(int):
    pass


class _StrSub(str):
    __slots__ = ()


class _Index:
    """Has ``__index__`` (so ``range`` would take it), but is no int."""

    def __index__(self) -> int:
        return 3


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


HUGE = 10**5000
CHARS = st.characters(exclude_categories=[]) | st.characters(categories=["Cs"])  # surrogates too
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**64, 2**20, 2**20 + 1]),
    st.just(0).map(lambda _: HUGE),  # (a strategy's repr shows its values, and this one has none)
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.5, 1e-300, 5e-324, 1e300]),
    st.text(CHARS, max_size=20),
    st.sampled_from(["", "\ud800", "a\x00b", "a b", "-x", "a\r\nput 0 0 0 1", "a" * 201, "tübe"]),
    st.binary(max_size=20),
    st.builds(bytearray, st.binary(max_size=8)),
    st.binary(max_size=8).map(lambda b: memoryview(b)),
    st.builds(object),
    st.builds(_IntSub, st.integers(0, 10)),
    st.builds(_StrSub, st.text(max_size=5)),
    st.builds(_Index),
    st.builds(_BadRepr),
    st.sampled_from([1j, Decimal("1.5"), Decimal("NaN"), Fraction(1, 3), Ellipsis, type, len, range(3)]),
    st.builds(iter, st.lists(st.integers(), max_size=3)),
)
ANY = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(CHARS, max_size=4), children, max_size=3),
        st.dictionaries(st.integers() | st.none() | st.floats() | st.booleans(), children, max_size=2),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=8,
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(CHARS, max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(CHARS, max_size=5), children, max_size=3),
    max_leaves=6,
)
TUBE = st.from_regex(r"\A[A-Za-z0-9+/;.$_()][A-Za-z0-9+/;.$_()-]{0,15}\Z")
NUMBER = st.integers(-3, 2**33) | st.floats(-1, 1e10)

#: A nearly valid value for each parameter (as well as any value at all).
NEAR: dict[str, st.SearchStrategy[Any]] = {
    "body": st.binary(max_size=40) | st.text(CHARS, max_size=40) | JSON,
    "tube": TUBE,
    "watch": st.lists(TUBE | ANY, max_size=3),
    "bodies": st.lists(JSON | ANY, max_size=4),
    "messages": st.lists(st.integers(-1, 2**64) | ANY, max_size=4),
    "sender": st.dictionaries(st.text(CHARS, max_size=5), JSON | ANY, max_size=3),
    "drop": st.booleans(),
    "validate": st.booleans(),
    "host": st.sampled_from(["127.0.0.1", "::1", "", "\x00", "a\x00b", "\ud800", "a" * 64, "a..b"]),
    "unix_socket": st.text(CHARS, max_size=30) | st.sampled_from(["/nonexistent/socket", "/", "."]),
}


def _values(param: str) -> st.SearchStrategy[Any]:
    near = NEAR.get(param, NUMBER)
    if param == "host":  # any str would be looked up in the DNS: only loopback and ill-formed ones
        return near | ANY.filter(lambda v: not isinstance(v, str))
    return near | ANY


# -- the targets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One public method: where it lives, its name, its parameters (those required, those not)."""

    owner: str  # "queue", "pipeline", "client", "message", or a constructor's class name
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def params(self) -> tuple[str, ...]:
        return self.required + self.optional

    def __str__(self) -> str:
        return f"{self.owner}.{self.name}"


def _signature(fn: Callable[..., Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    assert all(p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params), fn
    return (
        tuple(p.name for p in params if p.default is inspect.Parameter.empty),
        tuple(p.name for p in params if p.default is not inspect.Parameter.empty),
    )


def _methods(cls: type, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, Callable[..., Any]]]:
    """The public methods of ``cls`` that take arguments."""
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        if (not name.startswith("_") or name == "__call__") and name not in skip and _signature(fn) != ((), ()):
            yield name, fn


#: Methods not called: ``reserve`` (no arguments, and it would wait) and ``quit`` (closes).
NOT_CALLED = frozenset({"reserve", "quit"})
CONNECTION_METHODS = frozenset(name for name, _ in _methods(Connection))


def _targets() -> list[Target]:
    targets: list[Target] = []
    for owner, cls, skip in [
        ("queue", Queue, NOT_CALLED),
        ("pipeline", PipelineCommands, NOT_CALLED),
        ("client", Client, CONNECTION_METHODS),
        ("message", Message, frozenset()),
    ]:
        for name, fn in _methods(cls, skip):
            targets.append(Target(owner, name, *_signature(fn)))
    return targets


CALLS = _targets()
CONSTRUCTORS: dict[str, dict[str, Callable[..., Any]]] = {
    "sync": {"Connection": Connection, "Client": Client},
    "async": {"AsyncConnection": AsyncConnection, "AsyncClient": AsyncClient, "AsyncPool": AsyncPool},
}
BUILDS = [
    Target(kind, "__init__", *_signature(cls.__init__))
    for flavour in CONSTRUCTORS.values()
    for kind, cls in flavour.items()
]


def test_every_public_method_with_arguments_is_fuzzed() -> None:
    """The introspected targets are the whole public API that takes arguments, in both flavours."""
    called = {(t.owner, t.name) for t in CALLS}
    assert {name for owner, name in called if owner == "client"} >= {
        "__call__", "put", "reserve", "watch", "ignore", "put_many", "reserve_many", "delete_many",
    }  # fmt: skip
    assert {name for owner, name in called if owner == "message"} == {"send", "release", "bury"}
    assert {name for owner, name in called if owner == "queue"} == {
        "put", "use", "reserve_with_timeout", "reserve_job", "delete", "release", "bury", "touch", "watch",
        "ignore", "peek", "kick", "kick_job", "stats_job", "stats_tube", "pause_tube", "stats_job_yaml",
        "stats_tube_yaml",
    }  # fmt: skip
    assert {name for owner, name in called if owner == "pipeline"} == {
        name for owner, name in called if owner == "queue"
    }
    assert not CONNECTION_METHODS, f"Connection has public methods with arguments, not fuzzed: {CONNECTION_METHODS}"
    # the async flavour has the same methods with the same parameters
    for owner, sync_cls, async_cls in [("client", Client, AsyncClient), ("message", Message, AsyncMessage)]:
        for name in {n for o, n in called if o == owner}:
            assert _signature(getattr(sync_cls, name)) == _signature(getattr(async_cls, name)), name
    from beanstalkm._generated.aqueue import AsyncQueue

    assert {n for n, _ in _methods(Queue, NOT_CALLED)} == {n for n, _ in _methods(AsyncQueue, NOT_CALLED)}
    assert {t.owner for t in BUILDS} == {"Connection", "Client", "AsyncConnection", "AsyncClient", "AsyncPool"}
    assert all(t.params for t in BUILDS)


# -- valid arguments, and the errors each parameter may be named by -----------------------------------

VALID: dict[str, Any] = {
    "body": b"fuzz",
    "tube": "fuzz",
    "priority": 10,
    "delay": 0,
    "ttr": 60,
    "timeout": 0,
    "bound": 1,
    "n": 2,
    "bodies": [1, 2],
    "messages": [],
}

#: An error may name another parameter than the one fuzzed where it is about its items.
NAMED = {"bodies": {"bodies", "body"}, "messages": {"messages", "job_id"}}


def _arguments(target: Target, param: str, value: object, job: int) -> dict[str, Any]:
    kwargs = {name: (job if name == "job_id" else VALID[name]) for name in target.required}
    if target.owner in ("client", "message") and "body" in kwargs:
        kwargs["body"] = {"n": 1}
    if target.name == "pause_tube":
        kwargs["tube"] = "fuzz.paused"  # no one watches it: pausing it holds up no reserve
    kwargs[param] = value
    return kwargs


def _keep_out(target: Target, param: str, value: object) -> bool:
    """A valid value that would make the call slow (see the module's docstring)."""
    return param == "n" and isinstance(value, int) and not isinstance(value, bool) and MANY < value <= 2**20


def _check_outcome(target: Target, param: str, error: BaseException | None) -> bool:
    """Whether the call's outcome is allowed; True when it was refused (so nothing may have been sent)."""
    if error is None:
        return False
    if isinstance(error, InvalidArgument):
        assert error.name in NAMED.get(param, {param}), f"{target}({param}=...) named {error.name!r}: {error}"
        str(error)  # it can say what it is
        return True
    if isinstance(error, BatchFailed):
        bad = [e for e in error.errors if not isinstance(e, (CommandFailed, InvalidEnvelope))]
        assert not bad, f"{target}: a batch failed with {bad!r}"
        return False
    assert isinstance(error, (CommandFailed, InvalidEnvelope)), f"{target}({param}=...) raised {error!r}"
    return False


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[BeanstalkdServer]:
    with BeanstalkdServer() as server:
        yield server


@pytest.fixture(scope="module")
def observer(fuzz_server: BeanstalkdServer) -> Iterator[Connection]:
    with Connection(fuzz_server.host, fuzz_server.port, timeout=TIMEOUT) as c:
        yield c


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print(f"\nargument fuzz examples run: {sum(RAN.values())} over {len(RAN)} targets", flush=True)


@contextlib.contextmanager
def _memory_bound() -> Iterator[None]:
    """Asserts that what runs inside allocated at most ``MEMORY`` bytes at its peak (traced only there)."""
    tracemalloc.start()
    try:
        yield
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= MEMORY, f"one call allocated {peak} bytes"


def _jobs(observer: Connection) -> None:
    """Two ready jobs in ``default``: the fresh client reserves one; the other is ready for the call."""
    observer.queue.use("default")
    observer.queue.put(b"fuzz-held")
    observer.queue.put(b"fuzz-ready")


PAIRS = [(t, p) for t in CALLS for p in t.params]


@st.composite
def _call(draw: st.DrawFn) -> tuple[Target, str, Any]:
    target, param = draw(st.sampled_from(PAIRS))
    return target, param, draw(_values(param))


# -- the sync flavour -----------------------------------------------------------------------------


def _sync_call(client: Client, message: Message, target: Target, kwargs: dict[str, Any]) -> Any:
    if target.owner == "queue":
        return getattr(client.queue, target.name)(**kwargs)
    if target.owner == "pipeline":
        with client.pipeline() as p:
            getattr(p, target.name)(**kwargs)
        return p.results
    if target.owner == "client":
        if target.name == "__call__":
            return client(**kwargs).send()
        return getattr(client, target.name)(**kwargs)
    if target.name == "send":
        return client({"n": 1}).send(**kwargs)
    return getattr(message, target.name)(**kwargs)


@_settings(FUZZ["sync"])
@given(call=_call())
def test_sync_arguments(fuzz_server: BeanstalkdServer, observer: Connection, call: tuple[Target, str, Any]) -> None:
    target, param, value = call
    if _keep_out(target, param, value):
        return
    RAN[f"sync {target}"] += 1
    _jobs(observer)
    with Client(fuzz_server.host, fuzz_server.port, timeout=TIMEOUT) as client:
        message = client.reserve(timeout=0, drop=False)
        assert message is not None
        kwargs = _arguments(target, param, value, message.uid)
        before = sent_commands(observer)
        error: BaseException | None = None
        try:
            with _memory_bound():
                _sync_call(client, message, target, kwargs)
        except Exception as exc:
            error = exc
        if _check_outcome(target, param, error):
            after = sent_commands(observer)
            assert after == before, f"{target}({param}=...) sent something before refusing: {error}"
            assert client.connected
        # in step: the next command reads its own reply
        job_id = client.queue.put(b"probe")
        peeked = client.queue.peek(job_id)
        assert peeked is not None and peeked.raw == b"probe"
        client.queue.delete(job_id)


# -- the async flavour ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


async def _async_call(client: AsyncClient, message: AsyncMessage, target: Target, kwargs: dict[str, Any]) -> Any:
    if target.owner == "queue":
        return await getattr(client.queue, target.name)(**kwargs)
    if target.owner == "pipeline":
        async with client.pipeline() as p:
            getattr(p, target.name)(**kwargs)
        return p.results
    if target.owner == "client":
        if target.name == "__call__":
            return await client(**kwargs).send()
        return await getattr(client, target.name)(**kwargs)
    if target.name == "send":
        return await client({"n": 1}).send(**kwargs)
    return await getattr(message, target.name)(**kwargs)


@_settings(FUZZ["async"])
@given(call=_call())
def test_async_arguments(
    fuzz_server: BeanstalkdServer, observer: Connection, loop: asyncio.AbstractEventLoop, call: tuple[Target, str, Any]
) -> None:
    target, param, value = call
    if _keep_out(target, param, value):
        return
    RAN[f"async {target}"] += 1
    _jobs(observer)

    async def main() -> None:
        async with AsyncClient(fuzz_server.host, fuzz_server.port, timeout=TIMEOUT) as client:
            message = await client.reserve(timeout=0, drop=False)
            assert message is not None
            kwargs = _arguments(target, param, value, message.uid)
            before = sent_commands(observer)
            error: BaseException | None = None
            try:
                with _memory_bound():
                    await _async_call(client, message, target, kwargs)
            except Exception as exc:
                error = exc
            if _check_outcome(target, param, error):
                after = sent_commands(observer)
                assert after == before, f"{target}({param}=...) sent something before refusing: {error}"
                assert client.connected
            job_id = await client.queue.put(b"probe")
            peeked = await client.queue.peek(job_id)
            assert peeked is not None and peeked.raw == b"probe"
            await client.queue.delete(job_id)

    loop.run_until_complete(asyncio.wait_for(main(), 4 * TIMEOUT))


# -- constructors, both flavours --------------------------------------------------------------------

SETTINGS_VALID: dict[str, Any] = {"timeout": TIMEOUT, "size": 2, "watch": ()}
MAY_NOT_CONNECT = {"host", "unix_socket", "timeout"}  # a valid value that cannot reach the server


@st.composite
def _build(draw: st.DrawFn) -> tuple[Target, str, Any]:
    target = draw(st.sampled_from(BUILDS))
    param = draw(st.sampled_from(target.params))
    return target, param, draw(_values(param))


def _valid_port(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


@_settings(FUZZ["constructors"])
@given(build=_build())
def test_constructor_arguments(
    fuzz_server: BeanstalkdServer, observer: Connection, loop: asyncio.AbstractEventLoop, build: tuple[Target, str, Any]
) -> None:
    target, param, value = build
    if param == "port" and _valid_port(value) and value != fuzz_server.port:
        return  # another loopback port may be some other program's
    RAN[f"{target}"] += 1
    kwargs = {"host": fuzz_server.host, "port": fuzz_server.port, "timeout": TIMEOUT}
    if param in ("size", "watch"):
        kwargs[param] = SETTINGS_VALID[param]
    kwargs[param] = value
    connections = observer.queue.stats().total_connections

    async def use_async(cls: Callable[..., Any]) -> None:
        made = cls(**kwargs)  # refuses a bad argument here, before connecting
        if isinstance(made, AsyncPool):
            try:
                async with made.client() as client:
                    assert await client.queue.using() == "default"
            finally:
                await made.close()
            return
        async with made:
            assert await made.queue.using() == "default"

    def use() -> None:
        flavour = "sync" if target.owner in CONSTRUCTORS["sync"] else "async"
        cls = CONSTRUCTORS[flavour][target.owner]
        if flavour == "async":
            loop.run_until_complete(asyncio.wait_for(use_async(cls), 4 * TIMEOUT))
            return
        with cls(**kwargs) as made:
            assert made.queue.using() == "default"

    try:
        with _memory_bound():
            use()
    except InvalidArgument as exc:
        assert exc.name == param, f"{target}({param}=...) named {exc.name!r}: {exc}"
        assert observer.queue.stats().total_connections == connections, f"{target} connected before refusing"
    except SocketError as exc:
        assert param in MAY_NOT_CONNECT, f"{target}({param}={value!r:.60}) failed to connect: {exc}"
