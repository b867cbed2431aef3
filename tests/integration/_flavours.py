"""Both flavours of beanstalkm behind one synchronous face, so every integration test runs against each.

The sync flavour is ``beanstalkm.Client``/``Connection`` themselves. The async
flavour is ``beanstalkm.aio`` driven from the test's thread: an event loop runs
in a background thread, and proxies make ``AsyncClient``, ``AsyncConnection``,
``AsyncMessage``, ``AsyncQueue`` and ``AsyncPipeline`` look synchronous. Every
method call runs on the loop (``asyncio.run_coroutine_threadsafe(...).result()``),
awaiting its result when it is awaitable; messages, queues, pipelines and
connections that come back are wrapped in proxies, plain values are passed
through, and exceptions propagate unchanged (the messages an
``InvalidEnvelope`` or a ``BatchFailed`` carries are wrapped in place).

Where the async API legitimately differs, the facade irons it out:

* ``AsyncConnection(...)`` does not connect; the facade connects at once, as
  the sync constructor does, so "connection refused" is raised by the factory.
* ``AsyncMessage.priority``/``delay``/``ttr`` are ``None`` until known; the
  proxy asks the server then, as the sync ``Message`` does.
* ``with``/``close()``/``reconnect()`` map to ``async with``/``await close()``/
  ``await reconnect()``.

The proxies present themselves to mypy as ``Client``/``Connection``/``Message``
(``typing.cast``); tests use :func:`is_message` instead of ``isinstance(x, Message)``.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Protocol, Self, TypeGuard, TypeVar, cast

from beanstalkm import BatchFailed, Client, Connection, InvalidEnvelope, Message
from beanstalkm._core.base import _UNSET, DEFAULT_HOST, DEFAULT_PORT
from beanstalkm._generated.aqueue import AsyncQueue
from beanstalkm._generated.commands import BODY_MAX
from beanstalkm.aio import AsyncClient, AsyncConnection, AsyncMessage, AsyncPipeline

__all__ = ["FLAVOURS", "ClientFactory", "ConnectionFactory", "Flavour", "LoopThread", "is_message"]

T = TypeVar("T")

FLAVOURS = ("sync", "async")

#: Longest a single call through the facade may take before the test is called hung.
CALL_TIMEOUT = 120.0


class LoopThread:
    """An asyncio event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="async-flavour-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result (its exception is raised here, unchanged)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("the facade was called from its own event loop")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(CALL_TIMEOUT)
        except TimeoutError:
            if future.done():
                raise
            future.cancel()
            raise RuntimeError(f"a call through the async facade took more than {CALL_TIMEOUT} s") from None

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


# -- wrapping ----------------------------------------------------------------------------------------


def _wrap(loop: LoopThread, value: Any) -> Any:
    """An async object as its sync-looking proxy; lists and tuples element by element; anything else as is."""
    if isinstance(value, AsyncMessage):
        return _MessageProxy(loop, value)
    if isinstance(value, AsyncQueue):
        return _Proxy(loop, value)
    if isinstance(value, AsyncPipeline):
        return _PipelineProxy(loop, value)
    if isinstance(value, AsyncConnection):
        return _ConnectionProxy(loop, value)
    if type(value) is list:
        return [_wrap(loop, v) for v in value]
    if type(value) is tuple:
        return tuple(_wrap(loop, v) for v in value)
    return value


def _unwrap(value: Any) -> Any:
    """What a proxy stands for (so ``delete_many([message, ...])`` gets the async messages)."""
    if isinstance(value, _Proxy):
        return value._target
    if type(value) is list:
        return [_unwrap(v) for v in value]
    if type(value) is tuple:
        return tuple(_unwrap(v) for v in value)
    return value


def _adopt(loop: LoopThread, exc: BaseException) -> None:
    """Wrap, in place, the async messages an exception carries (the exception itself is kept)."""
    if isinstance(exc, InvalidEnvelope):
        exc.message = _wrap(loop, exc.message)
    elif isinstance(exc, BatchFailed):
        for item in exc.results:
            if isinstance(item, BaseException):
                _adopt(loop, item)
        exc.results = _wrap(loop, exc.results)


async def _invoke(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
    if inspect.isawaitable(result):
        result = await result
    return result


class _Proxy:
    """Any async object: attributes read through, every method call runs on the loop."""

    __slots__ = ("_loop", "_target")

    _loop: LoopThread
    _target: Any

    def __init__(self, loop: LoopThread, target: Any) -> None:
        object.__setattr__(self, "_loop", loop)
        object.__setattr__(self, "_target", target)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = self._loop
        try:
            return _wrap(loop, loop.run(_invoke(fn, args, kwargs)))
        except BaseException as exc:
            _adopt(loop, exc)
            raise

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if inspect.ismethod(value):
            return lambda *args, **kwargs: self._call(value, *args, **kwargs)
        return _wrap(self._loop, value)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, _unwrap(value))

    def __repr__(self) -> str:
        return repr(self._target)

    def __str__(self) -> str:
        return str(self._target)


class _ConnectionProxy(_Proxy):
    """An ``AsyncConnection``/``AsyncClient`` as a ``Connection``/``Client``."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # AsyncClient(body, ...): a new message
        return self._call(self._target, *args, **kwargs)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._call(self._target.close)


class _PipelineProxy(_Proxy):
    """An ``AsyncPipeline`` as a ``Pipeline``."""

    __slots__ = ()

    def __len__(self) -> int:
        return len(self._target)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._call(self._target.__aexit__, exc_type, exc, tb)


class _MessageProxy(_Proxy):
    """An ``AsyncMessage`` as a ``Message``: ``priority``/``delay``/``ttr`` are asked of the server when unknown."""

    __slots__ = ()

    def _setting(self, name: str) -> Any:
        value = getattr(self._target, name)
        if value is None:  # as the sync Message does: one stats-job (NotFound once the job is gone)
            self._call(self._target._job_stats)
            value = getattr(self._target, name)
        return value

    @property
    def priority(self) -> int:
        return cast(int, self._setting("priority"))

    @property
    def delay(self) -> int:
        return cast(int, self._setting("delay"))

    @property
    def ttr(self) -> int:
        return cast(int, self._setting("ttr"))


def is_message(value: object) -> TypeGuard[Message]:
    """``isinstance(value, Message)``, or, for the async flavour, a proxy of an ``AsyncMessage``."""
    return isinstance(value, Message | _MessageProxy)


# -- the flavours ------------------------------------------------------------------------------------


class ClientFactory(Protocol):
    """``Client(...)``'s signature."""

    def __call__(
        self,
        host: str = ...,
        port: int = ...,
        timeout: float | None = ...,
        *,
        unix_socket: str | None = ...,
        validate: bool | None = ...,
        max_body: int = ...,
    ) -> Client: ...


class ConnectionFactory(Protocol):
    """``Connection(...)``'s signature."""

    def __call__(
        self,
        host: str = ...,
        port: int = ...,
        timeout: float | None = ...,
        *,
        unix_socket: str | None = ...,
        validate: bool | None = ...,
        max_body: int = ...,
    ) -> Connection: ...


class Flavour:
    """Makes clients and connections of one flavour, connected (as the sync constructors are)."""

    def __init__(self, name: str) -> None:
        if name not in FLAVOURS:
            raise ValueError(name)
        self.name = name
        self._loop = LoopThread() if name == "async" else None

    def __repr__(self) -> str:
        return f"<Flavour {self.name}>"

    def client(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        timeout: float | None = _UNSET,
        *,
        unix_socket: str | None = None,
        validate: bool | None = None,
        max_body: int = BODY_MAX,
    ) -> Client:
        kwargs: dict[str, Any] = {"unix_socket": unix_socket, "validate": validate, "max_body": max_body}
        if self._loop is None:
            return Client(host, port, timeout, **kwargs)
        return cast(Client, self._open(AsyncClient, (host, port, timeout), kwargs))

    def connection(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        timeout: float | None = _UNSET,
        *,
        unix_socket: str | None = None,
        validate: bool | None = None,
        max_body: int = BODY_MAX,
    ) -> Connection:
        kwargs: dict[str, Any] = {"unix_socket": unix_socket, "validate": validate, "max_body": max_body}
        if self._loop is None:
            return Connection(host, port, timeout, **kwargs)
        return cast(Connection, self._open(AsyncConnection, (host, port, timeout), kwargs))

    def _open(self, cls: type[AsyncConnection], args: tuple[Any, ...], kwargs: dict[str, Any]) -> _ConnectionProxy:
        assert self._loop is not None

        async def open_() -> AsyncConnection:
            conn = cls(*args, **kwargs)
            await conn.connect()  # the sync constructor connects: so does the facade
            return conn

        return _ConnectionProxy(self._loop, self._loop.run(open_()))

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
