"""The hand-written roots of beanstalkm's exception hierarchy.

One class per failure status is generated from ``spec/api.json`` into
``beanstalkm._generated.errors``; every one of them derives from
:class:`CommandFailed` below.
"""

from __future__ import annotations

__all__ = [
    "ArgumentTypeError",
    "BatchFailed",
    "BeanstalkmException",
    "CommandFailed",
    "CorruptJob",
    "InvalidArgument",
    "InvalidEnvelope",
    "ProtocolError",
    "SocketError",
    "UnexpectedResponse",
]

import reprlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from beanstalkm._core.message import MessageBase

M = TypeVar("M", bound="MessageBase")

SHOWN_MAX = 200
"""The longest a value is shown in an error message (what a hostile server or producer sent can be huge)."""


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel = 4  # nesting is shown this deep, never recursing further
_SHOWN.maxdict = _SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxset = _SHOWN.maxfrozenset = _SHOWN.maxdeque = 8
_SHOWN.maxstring = _SHOWN.maxother = _SHOWN.maxlong = SHOWN_MAX


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """``repr(value)`` cut to ``limit`` characters, at a cost bounded whatever the value: nesting and
    long containers are elided (``reprlib``), and a value that cannot be shown is named by its type."""
    try:
        text = _SHOWN.repr(value)
    except Exception:  # a failing __repr__, an int too long to convert
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cut(text: str, limit: int = 2 * SHOWN_MAX) -> str:
    """``text`` cut to ``limit`` characters (a message built from what the other side sent)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BeanstalkmException(Exception):
    """Root of every exception beanstalkm raises."""


class CommandFailed(BeanstalkmException):
    """The server answered a command with a failure status the spec lists for it.

    ``e.args == (command, status, reply_args)``, so ``e.args[1]`` is the
    status word (``'NOT_FOUND'``, ``'NOT_IGNORED'``, ...). Each status has a
    generated subclass (``NotFound``, ``NotIgnored``, ...).
    """

    status: str = ""
    outcome: object = None
    """When this is the failure of a ``use`` beanstalkm sent to route the
    command that followed it (``Client.put(tube=...)``, ``put_many``) and that
    command ran all the same, in the tube that was in force: its result (the
    id of the job stored there). None otherwise."""

    def __init__(self, command: str, status: str, reply_args: Sequence[str] = ()) -> None:
        super().__init__(command, status, list(reply_args))
        self.command = command
        self.status = status
        self.reply_args: tuple[str, ...] = tuple(reply_args)

    def __str__(self) -> str:
        extra = " " + " ".join(self.reply_args) if self.reply_args else ""
        return f"{self.command}: server replied {self.status}{extra}"


class UnexpectedResponse(BeanstalkmException):
    """The server answered with a status the spec does not list for the command.

    ``e.args == (command, status, reply_args)``.
    """

    def __init__(self, command: str, status: str, reply_args: Sequence[str] = ()) -> None:
        super().__init__(command, status, list(reply_args))
        self.command = command
        self.status = status
        self.reply_args: tuple[str, ...] = tuple(reply_args)

    def __str__(self) -> str:
        return f"{self.command}: unexpected reply {self.status!r} {list(self.reply_args)!r}"


class ProtocolError(BeanstalkmException):
    """A reply broke the protocol: an over-long line, a body longer than
    announced, a malformed number or stats payload. The connection that read
    it is closed, since the stream can no longer be trusted."""


class CorruptJob(ProtocolError):
    """beanstalkd sent a job whose stored bytes are damaged: its announced length
    is followed by two zero bytes, not CRLF. beanstalkd does this for a job it
    restored from a binlog damaged by a crash (the body comes back as zeros).

    The reply was framed by its length, so the stream is intact and the
    connection stays open; a job being reserved stays reserved by it. ``job_id``
    and ``body`` (the bytes as sent, without the damaged trailer) let you bury or
    delete it; no other client can make sense of it either.
    """

    def __init__(self, job_id: int, body: bytes, trailer: bytes) -> None:
        super().__init__(
            f"job {job_id} is damaged on the server: its {len(body)} bytes are followed by {trailer!r}, not CRLF"
        )
        self.job_id = job_id
        self.body = body
        self.trailer = trailer

    def __reduce__(self) -> tuple[type[CorruptJob], tuple[int, bytes, bytes], dict[str, object]]:
        return (type(self), (self.job_id, self.body, self.trailer), self.__dict__)  # picklable: it may cross processes


class SocketError(BeanstalkmException, OSError):
    """The connection failed: refused, reset, closed by the server, or timed out.

    ``maybe_executed`` is True when the command had been written and its reply
    was lost: the server may or may not have carried it out (a ``put`` may
    have stored the job). beanstalkm never re-sends such a command by itself.
    """

    def __init__(self, message: str, *, maybe_executed: bool = False) -> None:
        super().__init__(message)
        self.maybe_executed = maybe_executed


class InvalidArgument(BeanstalkmException, ValueError):
    """An argument was rejected before anything was sent.

    ``name`` is the parameter, ``value`` the rejected value, ``reason`` why.
    """

    def __init__(self, name: str, value: object, reason: str) -> None:
        try:
            shown = repr(value)
        except Exception:  # nested too deep to show (RecursionError), too many digits, a failing __repr__
            shown = f"<{type(value).__name__}>"
            if isinstance(value, int):
                shown = f"<{type(value).__name__} of {value.bit_length()} bits>"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"invalid {name} {shown}: {reason}")
        self.name = name
        self.value = value
        self.reason = reason

    def __reduce__(self) -> tuple[type[InvalidArgument], tuple[str, object, str], dict[str, object]]:
        return (type(self), (self.name, self.value, self.reason), self.__dict__)  # picklable: it may cross processes


class ArgumentTypeError(InvalidArgument, TypeError):
    """An argument had the wrong Python type (also a ``TypeError``)."""


class InvalidEnvelope(BeanstalkmException, Generic[M]):
    """A reserved job looks like a beanstalkm envelope but fails validation
    against ``message.json``.

    The job was *not* deleted, whatever ``drop`` said: ``e.message`` is the
    reserved message (its ``raw`` bytes intact), so the caller can bury,
    release or delete it.
    """

    def __init__(self, message: M, reason: str) -> None:
        super().__init__(f"job {message.uid}: invalid envelope: {reason}")
        self.message = message
        self.reason = reason


class BatchFailed(BeanstalkmException):
    """At least one command of a batch failed.

    Every reply was read, so the connection stays in sync. ``results`` holds,
    in order, each item's result or the exception it raised.
    """

    def __init__(self, results: list[object]) -> None:
        failed = [r for r in results if isinstance(r, BaseException)]
        super().__init__(f"{len(failed)} of {len(results)} batch items failed; first: {failed[0]!r}")
        self.results = results

    def __reduce__(self) -> tuple[type[BatchFailed], tuple[list[object]], dict[str, object]]:
        return (type(self), (self.results,), self.__dict__)  # picklable: it may cross processes

    @property
    def errors(self) -> list[BaseException]:
        """The exceptions among ``results``, in order."""
        return [r for r in self.results if isinstance(r, BaseException)]


for _name in __all__:
    globals()[_name].__module__ = "beanstalkm"  # tracebacks name the public path: beanstalkm.NotFound, ...
