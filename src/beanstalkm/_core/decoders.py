"""Reply decoders: a reply's arguments and body as typed values, or the typed error."""

from __future__ import annotations

__all__ = [
    "check_arity",
    "fail",
    "quick_bare",
    "quick_int",
    "quick_job",
    "reply_body",
    "reply_int",
    "reply_job",
    "reply_str",
    "reply_text",
]

from collections.abc import Mapping
from typing import Literal

from beanstalkm._core.requests import MISS, Job, Miss, Quick, Reply
from beanstalkm._errors import CommandFailed, CorruptJob, ProtocolError, UnexpectedResponse


def fail(command: str, reply: Reply, failures: Mapping[str, type[CommandFailed]]) -> Exception:
    """The exception for a reply that is not the command's success.

    A status the command lists (or a general error) gives its generated
    :class:`CommandFailed` subclass; anything else :class:`UnexpectedResponse`.
    """
    cls = failures.get(reply.status)
    if cls is None:
        return UnexpectedResponse(command, reply.status, reply.args)
    return cls(command, reply.status, reply.args)


def check_arity(reply: Reply, count: int) -> None:
    """Raise :class:`ProtocolError` unless ``reply`` has exactly the ``count`` arguments the spec lists."""
    if len(reply.args) != count:
        raise ProtocolError(f"reply {reply.status} has {len(reply.args)} arguments, not {count}: {reply.args!r}")


def reply_int(reply: Reply, index: int) -> int:
    """Argument ``index`` of ``reply`` as a non-negative decimal integer."""
    text = reply_str(reply, index)
    if not text.isdigit():
        raise ProtocolError(f"reply {reply.status}: {text!r} is not a decimal integer")
    return int(text)


def reply_str(reply: Reply, index: int) -> str:
    """Argument ``index`` of ``reply`` as text."""
    try:
        return reply.args[index]
    except IndexError:
        raise ProtocolError(f"reply {reply.status} {list(reply.args)!r} lacks argument {index + 1}") from None


def reply_body(reply: Reply) -> bytes:
    """The body of ``reply`` (the reader guarantees one for body statuses)."""
    if reply.body is None:
        raise ProtocolError(f"reply {reply.status} has no body")
    if reply.trailer is not None:
        raise ProtocolError(f"reply {reply.status}: body not followed by CRLF after {len(reply.body)} bytes")
    return reply.body


def reply_job(reply: Reply) -> Job:
    """A ``RESERVED``/``FOUND`` reply as a :class:`Job` (:class:`CorruptJob` if the server's copy is damaged)."""
    if reply.trailer is not None and reply.body is not None:
        raise CorruptJob(reply_int(reply, 0), reply.body, reply.trailer)
    return Job(reply_int(reply, 0), reply_body(reply))


def reply_text(reply: Reply) -> str:
    """A YAML body, unparsed, as text."""
    return reply_body(reply).decode("utf-8", "surrogateescape")


# -- quick decoders (``beanstalkm._core.requests.Quick``): the usual success reply from its bytes ---------
#
# Each accepts only what ``ReplyReader.one`` (its line limit ``max_line``, CRLF once at the end of the
# line, a body within ``max_body`` and CRLF after it) and the command's decoder accept unchanged, and
# gives the same value; anything else is ``MISS``, for them to decide (tests/unit/test_quick_decode.py).


def quick_bare(status: str) -> Quick[None]:
    """For a usual reply that is ``status`` alone (``DELETED``): None for exactly its bytes."""
    line = status.encode("ascii") + b"\r\n"

    def quick(data: bytes, max_body: int) -> Literal[Miss.MISS] | None:
        return None if data == line else MISS

    return quick


def quick_int(status: str, max_line: int) -> Quick[int]:
    """For a usual reply that is ``status`` and a decimal integer (``INSERTED <id>``): the integer."""
    prefix = status.encode("ascii") + b" "
    start = len(prefix)

    def quick(data: bytes, max_body: int) -> Literal[Miss.MISS] | int:
        if data[:start] == prefix and data[-2:] == b"\r\n" and len(data) <= max_line:
            number = data[start:-2]
            if number.isdigit():
                return int(number)
        return MISS

    return quick


def quick_job(status: str, max_line: int) -> Quick[Job]:
    """For a usual reply that is ``status <id> <bytes>`` and the job's body (``RESERVED``, ``FOUND``): the job."""
    prefix = status.encode("ascii") + b" "
    start = len(prefix)

    def quick(data: bytes, max_body: int) -> Literal[Miss.MISS] | Job:
        end = data.find(b"\r\n", 0, max_line)
        if end > start and data[:start] == prefix:
            parts = data[start:end].split(b" ")
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                size = int(parts[1])
                if size <= max_body and len(data) == end + size + 4 and data[-2:] == b"\r\n":
                    return tuple.__new__(Job, (int(parts[0]), data[end + 2 : -2]))
        return MISS

    return quick
