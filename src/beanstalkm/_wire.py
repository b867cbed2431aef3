"""The I/O-free core: command requests, the reply reader, argument checks.

Nothing here touches a socket. A driver (sync or asyncio) writes
``Request.data``, feeds whatever bytes arrive to :class:`ReplyReader`, and
hands each complete :class:`Reply` to ``Request.decode``. beanstalkd answers
a connection's commands strictly in order, so a FIFO of pending requests is
all that pipelining needs.
"""

from __future__ import annotations

__all__ = [
    "BODY_APART",
    "Job",
    "Reply",
    "ReplyReader",
    "Request",
    "TubeRule",
    "check_arity",
    "check_body",
    "check_bool",
    "check_host",
    "check_items",
    "check_path",
    "check_seconds",
    "check_uint",
    "fail",
    "reply_int",
    "with_body",
]

import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from beanstalkm._errors import (
    ArgumentTypeError,
    CommandFailed,
    CorruptJob,
    InvalidArgument,
    ProtocolError,
    UnexpectedResponse,
)

if TYPE_CHECKING:
    from beanstalkm._generated.effects import Effect

T = TypeVar("T")

BODY_APART = 65536
"""A command body from this size on is written apart from its command line (scatter-gather), and a
reply body from this size on is gathered in a buffer of its own, not in the read buffer."""

DAMAGED = b"\x00\x00"
"""What follows a body instead of CRLF when beanstalkd restored the job from a binlog a crash damaged:
the job's record was written but not its bytes, which come back as zeros, CRLF included."""

YAML_BODY_MAX = 16 * 1024 * 1024
"""The largest YAML body (stats, tube lists) a reply may announce, whatever ``max_body`` allows jobs:
beanstalkd's stats are a few KiB, and 16 MiB lists some 80,000 tubes of the longest names. A reply
line announcing more is a ``ProtocolError`` before any of the body is read."""

RECEIVE_MAX = 1024 * 1024
"""The most ``ReplyReader.missing()`` reports: a driver that receives that many bytes at once
allocates for them before they arrive, so a reply announcing a huge body must not set the size."""


class Reply(NamedTuple):
    """One complete reply: the status word, its arguments, and the body for
    statuses that carry one (``None`` otherwise). ``trailer`` is what followed
    the body where that was not CRLF (a job damaged on the server), else None."""

    status: str
    args: tuple[str, ...]
    body: bytes | None
    trailer: bytes | None = None


class Job(NamedTuple):
    """A job as the server returned it: id and raw body bytes."""

    id: int
    body: bytes


class Request(Generic[T]):
    """One encoded command and how to decode its reply.

    ``data`` is everything the command writes. A large body (``put``'s, from
    ``BODY_APART`` bytes on) is kept apart from its command line so that it
    is never copied into one buffer with it: ``head`` is written first, then
    ``body`` and CRLF when ``body`` is not None (``data`` joins them only when
    asked). Otherwise ``body`` is None and ``head`` is everything.

    ``wait`` is how long, beyond the connection's own timeout, the server may
    legitimately take to answer (the reserve timeout); ``None`` means it may
    block forever (``reserve``). ``effect`` names a change of connection state
    (an :class:`~beanstalkm._generated.effects.Effect`) and ``tube`` the tube it concerns.
    """

    __slots__ = ("body", "command", "decode", "effect", "expects_reply", "head", "tube", "uses_tube", "wait")

    def __init__(
        self,
        command: str,
        head: bytes,
        decode: Callable[[Reply], T],
        *,
        body: bytes | None = None,
        uses_tube: bool = False,
        effect: Effect | None = None,
        tube: str | None = None,
        wait: float | None = 0.0,
        expects_reply: bool = True,
    ) -> None:
        self.command = command
        self.head = head
        self.body = body
        self.decode = decode
        self.uses_tube = uses_tube
        self.effect = effect
        self.tube = tube
        self.wait = wait
        self.expects_reply = expects_reply

    @property
    def data(self) -> bytes:
        """All the bytes this request writes (a large body is copied into them: write ``pieces`` instead)."""
        return self.head if self.body is None else b"".join(self.pieces)

    @property
    def pieces(self) -> tuple[bytes, ...]:
        """What this request writes, in order, without joining a large body to its command line."""
        return (self.head,) if self.body is None else (self.head, self.body, b"\r\n")

    def __repr__(self) -> str:
        return f"Request({self.command!r}, {self.head[:60]!r})"


def with_body(request: Request[T], body: bytes) -> Request[T]:
    """``request``, whose ``head`` is its command line, with ``body`` to follow it.

    A body under ``BODY_APART`` bytes joins the command line in ``head`` (one buffer, one write);
    a larger one is kept apart in ``body``, never copied into one buffer with the line.
    """
    if len(body) < BODY_APART:
        request.head = b"".join((request.head, body, b"\r\n"))
    else:
        request.body = body
    return request


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
    try:
        text = reply.args[index]
    except IndexError:
        raise ProtocolError(f"reply {reply.status} {list(reply.args)!r} lacks argument {index + 1}") from None
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


def check_uint(name: str, value: object, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool) in ``low..high``, else a typed error naming it."""
    if type(value) is int:
        if low <= value <= high:
            return value
    elif not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(name, value, f"must be an int, not {type(value).__name__}")
    elif low <= value <= high:
        return int(value)
    raise InvalidArgument(name, value, f"must be an integer from {low} to {high}")


def check_body(name: str, value: object) -> bytes:
    """A job body as bytes: ``bytes``-like as is, ``str`` as UTF-8 (``InvalidArgument`` for a
    str that has none: one with a lone surrogate)."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgument(
                name, value, f"a str body is sent as UTF-8, and {value[exc.start]!r} at {exc.start} has none"
            ) from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise ArgumentTypeError(name, value, f"must be bytes or str, not {type(value).__name__}")


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is ``True`` or ``False``; anything else (``"no"``, ``1``, ``None``) is refused."""
    if value is True or value is False:
        return value
    raise ArgumentTypeError(name, value, f"must be a bool (True or False), not {type(value).__name__}")


def check_items(name: str, value: object) -> list[Any]:
    """The items of an iterable, as a new list. A str, bytes or mapping is refused: it is iterable,
    but as one item (a str is not a batch of one-letter bodies)."""
    if isinstance(value, (str, bytes, bytearray, memoryview, Mapping)):
        raise ArgumentTypeError(
            name, value, f"must be an iterable of items (a list, say), not a {type(value).__name__}"
        )
    if not isinstance(value, Iterable):
        raise ArgumentTypeError(name, value, f"must be an iterable of items, not {type(value).__name__}")
    return list(value)


def check_seconds(name: str, value: object, high: int) -> float | None:
    """``value`` if it is None or a number of seconds (int or float, not bool) above 0 and at most ``high``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(
            name, value, f"must be a number of seconds (int or float) or None, not {type(value).__name__}"
        )
    if not 0 < value <= high:  # NaN is refused too: it compares false
        raise InvalidArgument(name, value, f"must be more than 0 and at most {high} seconds (None: no limit)")
    return float(value) if isinstance(value, float) else int(value)


def check_host(name: str, value: object) -> str:
    """``value`` if it is a host name or address the socket layer can encode (as IDNA: what it does)."""
    if not isinstance(value, str):
        raise ArgumentTypeError(name, value, f"must be a str (a host name or address), not {type(value).__name__}")
    if not value:
        raise InvalidArgument(name, value, "a host name cannot be empty")
    if "\x00" in value:
        raise InvalidArgument(name, value, "a host name cannot contain NUL")
    try:
        value.encode("idna")
    except UnicodeError as exc:
        raise InvalidArgument(name, value, f"not a host name: {exc}") from None
    return value


def check_path(name: str, value: object) -> str:
    """``value`` (a str, or an ``os.PathLike`` of one) as a str path the file system can encode."""
    path = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(path, str):
        raise ArgumentTypeError(name, value, f"must be a str path, not {type(path).__name__}")
    if not path:
        raise InvalidArgument(name, value, "a path cannot be empty")
    if "\x00" in path:
        raise InvalidArgument(name, value, "a path cannot contain NUL")
    try:
        os.fsencode(path)
    except UnicodeEncodeError as exc:
        raise InvalidArgument(name, value, f"{path[exc.start]!r} at {exc.start} has no file-system encoding") from None
    return path


class TubeRule:
    """The tube-name rule of the spec: length in bytes, allowed characters,
    no leading ``-``. Valid names are cached (bounded), so checking a name a
    client uses again and again costs one dict lookup."""

    __slots__ = ("_cache", "_max_len", "_pattern", "chars")

    def __init__(self, max_len: int, chars: str) -> None:
        self._max_len = max_len
        self.chars = chars
        self._pattern = re.compile("[A-Za-z0-9" + re.escape(chars) + "]+")
        self._cache: dict[str, str] = {}

    def check(self, name: str, value: object) -> str:
        """``value`` if it is a valid tube name, else a typed error saying why."""
        if type(value) is str and value in self._cache:
            return value
        if not isinstance(value, str):
            raise ArgumentTypeError(name, value, f"tube names are str, not {type(value).__name__}")
        if not value:
            raise InvalidArgument(name, value, "a tube name cannot be empty")
        if not value.isascii():
            raise InvalidArgument(name, value, "tube names are ASCII only")
        if len(value) > self._max_len:
            raise InvalidArgument(name, value, f"{len(value)} bytes long; the limit is {self._max_len}")
        if value[0] == "-":
            raise InvalidArgument(name, value, "a tube name cannot start with '-'")
        if self._pattern.fullmatch(value) is None:
            bad = next(c for c in value if self._pattern.fullmatch(c) is None)
            raise InvalidArgument(
                name, value, f"character {bad!r} is not allowed (A-Z a-z 0-9 and {' '.join(self.chars)})"
            )
        if len(self._cache) >= 1024:
            self._cache.clear()
        self._cache[value] = value
        return value


class ReplyReader:
    """Turns bytes from the server into complete :class:`Reply` objects.

    ``feed(data)`` appends bytes; ``next_reply()`` returns the next complete
    reply or ``None`` when more data is needed. Which statuses carry a body
    (its length is their last argument) comes from the spec. Buffers are
    bounded: a reply line longer than ``max_line`` (CRLF included) or a body
    announced larger than ``max_body`` raises :class:`ProtocolError`, as does
    a YAML body (a status in ``yaml_statuses``: stats, lists) announced larger
    than ``YAML_BODY_MAX`` (or ``max_body``, if that is smaller), and so
    does a body not followed by CRLF (a length that lied), except where two
    zero bytes follow it: that is how beanstalkd sends a job it restored from a
    binlog damaged by a crash. That reply is returned with ``trailer`` set, and
    decoding it raises (:class:`CorruptJob` for a job) with the stream intact.

    A large body (``BODY_APART`` bytes or more) still incomplete is gathered
    apart (:class:`_Gathering`), not in the read buffer (compacted, so
    copied, as it goes): the pieces as they arrive, joined once at the end.
    Nothing is allocated ahead of the bytes, so a reply announcing a huge
    body costs only what was actually sent; a large body's peak memory is
    its pieces and its bytes.
    """

    __slots__ = ("_body", "_body_statuses", "_buf", "_max_body", "_max_line", "_max_yaml", "_pending", "_pos")

    def __init__(
        self, body_statuses: frozenset[str], max_line: int, max_body: int, yaml_statuses: frozenset[str] = frozenset()
    ) -> None:
        self._body_statuses = body_statuses
        self._max_line = max_line
        self._max_body = max_body
        self._max_yaml = {status: min(max_body, YAML_BODY_MAX) for status in yaml_statuses}
        self._buf = bytearray()
        self._pos = 0
        self._pending: tuple[str, tuple[str, ...], int] | None = None
        self._body: _Gathering | None = None  # the pending large body (and its CRLF) as far as it arrived

    def feed(self, data: bytes) -> None:
        """Append bytes received from the server."""
        if self._body is None:
            self._buf += data
        else:
            taken = self._body.add(data)
            if taken < len(data):  # the replies after this one
                with memoryview(data) as view:
                    self._buf += view[taken:]

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned in a reply."""
        return len(self._buf) - self._pos + (0 if self._body is None else self._body.received)

    def missing(self) -> int:
        """A lower bound on the bytes still needed for the pending body (0 if none pending), at most
        ``RECEIVE_MAX``: what a driver may receive at once, whatever size the reply announced."""
        if self._pending is None:
            return 0
        return min(RECEIVE_MAX, max(0, self._pending[2] + 2 - self.buffered))

    def clear(self) -> None:
        """Forget everything buffered (after the connection is dropped)."""
        self._buf = bytearray()
        self._pos = 0
        self._pending = None
        self._body = None

    def read(self, data: bytes) -> Reply | None:
        """``feed(data)`` then ``next_reply()``; quicker when ``data`` is exactly one short reply."""
        if (
            self._pos == len(self._buf)
            and self._pending is None
            and len(data) <= self._max_line
            and data.find(b"\r\n") == len(data) - 2
        ):
            try:
                parts = data[:-2].decode("ascii").split(" ")
            except UnicodeDecodeError:
                parts = [""]
            if parts[0] not in self._body_statuses and "" not in parts:
                return Reply(parts[0], tuple(parts[1:]), None)
        self.feed(data)
        return self.next_reply()

    def next_reply(self) -> Reply | None:
        """The next complete reply, or ``None`` if more bytes are needed."""
        buf = self._buf
        if self._pending is None:
            pos = self._pos
            end = buf.find(b"\r\n", pos, pos + self._max_line)
            if end < 0:
                if len(buf) - pos >= self._max_line:
                    raise ProtocolError(
                        f"reply line longer than {self._max_line} bytes: {bytes(buf[pos : pos + 40])!r}..."
                    )
                return None
            raw = bytes(buf[pos:end])
            self._pos = end + 2
            try:
                line = raw.decode("ascii")
            except UnicodeDecodeError:
                raise ProtocolError(f"reply line is not ASCII: {raw!r}") from None
            parts = line.split(" ")
            if "" in parts:
                raise ProtocolError(f"malformed reply line: {raw!r}")
            status = parts[0]
            args = tuple(parts[1:])
            if status not in self._body_statuses:
                self._compact()
                return Reply(status, args, None)
            if not args or not args[-1].isdigit():
                raise ProtocolError(f"reply {status} lacks a body length: {raw!r}")
            size = int(args[-1])
            if size > self._max_body:
                raise ProtocolError(f"reply {status} announces a {size}-byte body; the limit is {self._max_body}")
            limit = self._max_yaml.get(status)
            if limit is not None and size > limit:
                raise ProtocolError(f"reply {status} announces a {size}-byte YAML body; the limit is {limit}")
            self._pending = (status, args, size)
        status, args, size = self._pending
        if self._body is not None:
            return self._gathered(self._body, status, args, size)
        start = self._pos
        if len(buf) - start < size + 2:
            if size >= BODY_APART:  # gather it apart, starting with what is here
                self._body = _Gathering(size)
                with memoryview(buf) as view:
                    self._body.add(view[start:])
                buf.clear()
                self._pos = 0
            return None
        trailer = _trailer(status, size, buf[start + size : start + size + 2])
        if size < 65536:
            body = bytes(buf[start : start + size])
        else:  # one copy, not two (a bytearray slice, then bytes of it): a large body's peak memory
            with memoryview(buf) as view, view[start : start + size] as part:
                body = part.tobytes()
        self._pos = start + size + 2
        self._pending = None
        self._compact()
        return Reply(status, args, body, trailer)

    def _gathered(self, gathered: _Gathering, status: str, args: tuple[str, ...], size: int) -> Reply | None:
        """The pending large body, once it and its CRLF are all there."""
        if gathered.received < size + 2:
            return None
        trailer = _trailer(status, size, gathered.after)
        body = gathered.joined()
        self._body = None
        self._pending = None
        self._compact()
        return Reply(status, args, body, trailer)

    def _compact(self) -> None:
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos > 65536:
            del self._buf[: self._pos]
            self._pos = 0


class _Gathering:
    """A large body arriving: its pieces as they came (each kept as it is, or, a small one, added to
    the piece before), then the two bytes after it. Joined once, into the body's bytes, at the end."""

    __slots__ = ("after", "parts", "size", "taken")

    SMALL = 4096
    """A piece shorter than this is copied onto the last piece (up to ``BODY_APART`` bytes long) rather than
    kept on its own: a server trickling a byte at a time costs a few bytes per byte, not an object's worth."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.parts: list[bytes | bytearray] = []
        self.taken = 0  # of the body
        self.after = bytearray()  # what follows it: CRLF

    @property
    def received(self) -> int:
        return self.taken + len(self.after)

    def add(self, data: bytes | memoryview) -> int:
        """Take what of ``data`` belongs to the body and the two bytes after it; how many bytes that is."""
        take = min(len(data), self.size - self.taken)
        if take:
            if take == len(data) and type(data) is bytes and take >= self.SMALL:
                self.parts.append(data)  # kept, not copied
            else:
                with memoryview(data) as view, view[:take] as piece:
                    last = self.parts[-1] if self.parts else None
                    if take < self.SMALL and isinstance(last, bytearray) and len(last) < BODY_APART:
                        last += piece
                    else:
                        self.parts.append(bytearray(piece) if take < self.SMALL else piece.tobytes())
            self.taken += take
        rest = min(len(data) - take, 2 - len(self.after))
        if rest > 0:
            self.after += data[take : take + rest]
            take += rest
        return take

    def joined(self) -> bytes:
        """The body's bytes, the pieces let go of."""
        parts, self.parts = self.parts, []
        return b"".join(parts)


def _trailer(status: str, size: int, after: bytearray) -> bytes | None:
    """What followed a body: None for CRLF, ``DAMAGED`` kept; anything else, ``ProtocolError``."""
    if after == b"\r\n":
        return None
    if after != DAMAGED:
        raise ProtocolError(f"reply {status}: body not followed by CRLF after {size} bytes")
    return DAMAGED
