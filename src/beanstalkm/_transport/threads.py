"""The threading concurrency primitives of the worker: threads, events, signals.

The sync twin of ``tasks`` (same verbs): the worker derived from the asyncio
source calls these, so it names neither asyncio nor threading.
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
]

import signal as _signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType

Task = threading.Thread


def cancelling() -> bool:
    """Whether the running thread was asked to stop: never (a thread cannot be cancelled)."""
    return False


def new_event() -> threading.Event:
    """An event one side sets and others wait for."""
    return threading.Event()


def new_mutex() -> threading.Lock:
    """A guard around a few statements with no wait inside."""
    return threading.Lock()


def wait_event(event: threading.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass (``None``: no limit); whether it is set."""
    if timeout is not None and timeout <= 0:
        return event.is_set()
    return event.wait(timeout)


def spawn(target: Callable[[], None], name: str) -> threading.Thread:
    """Run ``target()`` concurrently, in a daemon thread (one left running does not hold the process)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def join(task: threading.Thread, timeout: float | None) -> bool:
    """Wait up to ``timeout`` seconds for ``task`` to end; whether it has."""
    task.join(timeout)
    return not task.is_alive()


def abandon(task: threading.Thread) -> None:
    """Give up on a thread still running: a thread cannot be stopped, it is left to end (it is a daemon)."""


def install_signals(
    signals: Sequence[_signal.Signals], callback: Callable[[_signal.Signals], None]
) -> Callable[[], None]:
    """Call ``callback(signum)`` on each of ``signals``; returns what undoes it.

    Python runs signal handlers in the main thread only: from another thread nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[_signal.Signals, object] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        callback(_signal.Signals(signum))

    for signum in signals:
        previous[signum] = _signal.signal(signum, handler)

    def restore() -> None:
        for signum, old in previous.items():
            _signal.signal(signum, old if callable(old) or isinstance(old, int) else _signal.SIG_DFL)

    return restore
