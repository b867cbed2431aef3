"""The reply reader: ``feed(bytes)`` in, complete replies out, every buffer bounded.

beanstalkd answers a connection's commands strictly in order, so each complete reply goes to the
oldest request waiting (``Request.decode``): a FIFO is all that pipelining needs.
"""

from __future__ import annotations

__all__ = ["DAMAGED", "RECEIVE_MAX", "YAML_BODY_MAX", "ReplyReader"]

from beanstalkm._core.requests import BODY_APART, Reply
from beanstalkm._errors import ProtocolError

DAMAGED = b"\x00\x00"
"""What follows a body instead of CRLF when beanstalkd restored the job from a binlog a crash damaged:
the job's record was written but not its bytes, which come back as zeros, CRLF included."""

YAML_BODY_MAX = 16 * 1024 * 1024
"""The largest YAML body (stats, tube lists) a reply may announce, whatever ``max_body`` allows jobs:
beanstalkd's stats are a few KiB, and 16 MiB lists some 80,000 tubes of the longest names. A reply
line announcing more is a ``ProtocolError`` before any of the body is read."""

RECEIVE_MAX = 1024 * 1024
"""The most ``ReplyReader.missing()`` reports: a reply announcing a huge body must not set a receive's
size (the drivers receive ``RECV`` at a time whatever is missing: docs/memory.md)."""


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
    apart (:class:`_Gathering`), so a reply announcing a huge body costs only
    about what was actually sent (docs/memory.md).
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
                # ``Reply(...)`` without the named tuple's Python-level ``__new__``: half the cost
                return tuple.__new__(Reply, (parts[0], tuple(parts[1:]), None, None))
        self.feed(data)
        return self.next_reply()

    def one(self, data: bytes) -> Reply | None:
        """The reply when nothing is buffered and ``data`` is exactly one whole reply, its body (if
        any) included: the direct path's common case, which leaves nothing buffered. None otherwise,
        with nothing taken: ``read(data)`` then decides (the same reply, or the same error)."""
        if self._buf or self._body is not None:  # (a reply under way holds bytes in one or the other)
            return None
        end = data.find(b"\r\n", 0, self._max_line)
        if end < 0:
            return None
        try:
            parts = data[:end].decode("ascii").split(" ")
        except UnicodeDecodeError:
            return None
        if "" in parts:
            return None
        status = parts[0]
        if status not in self._body_statuses:
            if end + 2 != len(data):
                return None
            return tuple.__new__(Reply, (status, tuple(parts[1:]), None, None))  # without Reply's Python __new__
        size = parts[-1]
        if len(parts) < 2 or not size.isdigit():
            return None
        length = int(size)  # a YAML body's limit is the lower:
        if len(data) != end + length + 4 or data[-2:] != b"\r\n" or length > self._max_yaml.get(status, self._max_body):
            return None
        return tuple.__new__(Reply, (status, tuple(parts[1:]), data[end + 2 : -2], None))

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

    def lines(self, data: bytes) -> list[Reply] | None:
        """The replies in ``data`` when nothing is buffered and ``data`` is whole reply lines with no
        body (many replies of pipelined commands, read at once): one split, no buffer. None otherwise
        (a body, a line cut short, anything the general way would refuse), with nothing taken:
        ``read(data)`` then decides (the same replies, or the same error)."""
        if self._pos != len(self._buf) or self._pending is not None or self._body is not None:
            return None
        if not data.endswith(b"\r\n"):
            return None
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            return None
        found = text.split("\r\n")
        found.pop()  # what follows the last CRLF: nothing
        body_statuses, longest = self._body_statuses, self._max_line - 2
        new = tuple.__new__
        replies: list[Reply] = []
        for line in found:
            parts = line.split(" ")
            if parts[0] in body_statuses or "" in parts or len(line) > longest:
                return None
            replies.append(new(Reply, (parts[0], tuple(parts[1:]), None, None)))  # without Reply's Python __new__
        return replies


class _Gathering:
    """A large body arriving: one buffer that grows with what arrived (each piece let go of once
    copied), then the two bytes after it. Why one growing buffer: docs/memory.md."""

    __slots__ = ("after", "buffer", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.buffer = bytearray()  # the body as far as it arrived
        self.after = bytearray()  # what follows it: CRLF

    @property
    def received(self) -> int:
        return len(self.buffer) + len(self.after)

    def add(self, data: bytes | memoryview) -> int:
        """Take what of ``data`` belongs to the body and the two bytes after it; how many bytes that is."""
        buffer = self.buffer
        take = min(len(data), self.size - len(buffer))
        if take == len(data):
            buffer += data
        elif take:
            with memoryview(data) as view, view[:take] as piece:
                buffer += piece
        rest = min(len(data) - take, 2 - len(self.after))
        if rest > 0:
            self.after += data[take : take + rest]
            take += rest
        return take

    def joined(self) -> bytes:
        """The body's bytes, the buffer let go of."""
        buffer, self.buffer = self.buffer, bytearray()
        return bytes(buffer)


def _trailer(status: str, size: int, after: bytearray) -> bytes | None:
    """What followed a body: None for CRLF, ``DAMAGED`` kept; anything else, ``ProtocolError``."""
    if after == b"\r\n":
        return None
    if after != DAMAGED:
        raise ProtocolError(f"reply {status}: body not followed by CRLF after {size} bytes")
    return DAMAGED
