"""The asyncio concurrency primitives of the worker: tasks, events, signals.

``threads`` offers the same verbs for the sync flavour (``codegen/unasync.py``
maps this module to that one), so the derived worker names neither asyncio
nor threading.
"""

from __future__ import annotations

__all__ = [
    "Task",
    "abandon",
    "cancelling",
    "install_signals",
    "join",
    "new_event",
    "new_mutex",
    "spawn",
    "wait_event",
    "within",
]

import asyncio
import contextlib
import signal as _signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

Task = asyncio.Task[None]


def cancelling() -> bool:
    """Whether the running task was asked to stop (``Task.cancelling()``): a ``CancelledError`` then is its
    owner's, not one that the awaited code raised of its own (an inner future that was cancelled)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def new_event() -> asyncio.Event:
    """An event one side sets and others wait for."""
    return asyncio.Event()


def new_mutex() -> contextlib.nullcontext[None]:
    """A guard around a few statements with no wait inside: nothing to do in one event loop."""
    return contextlib.nullcontext()


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass (``None``: no limit); whether it is set."""
    if event.is_set():
        return True
    if timeout is not None and timeout <= 0:
        return False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """``await awaitable``, cut short (cancelled) after ``timeout`` seconds with ``TimeoutError``. (asyncio
    only: the sync flavour has no such bound, a blocking call ends at its socket's timeout.)"""
    async with asyncio.timeout(max(0.0, timeout)):
        return await awaitable


def spawn(target: Callable[[], Coroutine[Any, Any, None]], name: str) -> asyncio.Task[None]:
    """Run ``target()`` concurrently, as a task of the running loop."""
    return asyncio.get_running_loop().create_task(target(), name=name)


async def join(task: asyncio.Task[None], timeout: float | None) -> bool:
    """Wait up to ``timeout`` seconds for ``task`` to end; whether it has (its exception is not raised here)."""
    if not task.done():
        await asyncio.wait({task}, timeout=timeout)
    return task.done()


def abandon(task: asyncio.Task[None]) -> None:
    """Give up on a task still running: it is cancelled."""
    task.cancel()


def install_signals(
    signals: Sequence[_signal.Signals], callback: Callable[[_signal.Signals], None]
) -> Callable[[], None]:
    """Call ``callback(signum)`` in the loop on each of ``signals``; returns what undoes it.

    Where the loop cannot take signal handlers (not the main thread, Windows), nothing is installed.
    """
    loop = asyncio.get_running_loop()
    installed: list[_signal.Signals] = []
    for signum in signals:
        try:
            loop.add_signal_handler(signum, callback, signum)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append(signum)

    def restore() -> None:
        for signum in installed:
            loop.remove_signal_handler(signum)

    return restore
