"""Messages: a job's body with its envelope fields and lifecycle methods."""

from __future__ import annotations

__all__ = ["DEFAULT_TUBE", "AskedSetting", "KnownSetting", "MessageBase", "MessageFields"]

import hashlib
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from time import time as _time
from typing import Any, Protocol, Self, TypedDict, overload

from beanstalkm._core import envelope as _envelope
from beanstalkm._core.requests import Request
from beanstalkm._errors import ArgumentTypeError, shown
from beanstalkm._generated import commands as _c
from beanstalkm._generated.errors import NotFound
from beanstalkm._generated.stats import JobStats

DEFAULT_TUBE = "receive"
"""The tube ``Client.put`` sends to by default."""

_STANDALONE = object()
"""The link of a message bound to no connection: ``reserved`` is what it was set to."""

_CREATED_MIN, _CREATED_MAX = _envelope.CREATED_MIN, _envelope.CREATED_MAX
"""The ``created`` times (ms since the epoch) a datetime can hold; a received one outside is impossible."""


class _ReservationEnded(NotFound):
    """``NotFound``, raised without asking the server: the connection that reserved the job closed, so
    beanstalkd released it, and the command was not sent (it could act on a reservation made since,
    by another message of the same connection)."""

    __module__ = "beanstalkm"
    __qualname__ = __name__ = "NotFound"  # what the caller catches and sees in a traceback

    def __init__(self, command: str, job_id: int) -> None:
        super().__init__(command, "NOT_FOUND")
        self.job_id = job_id

    def __str__(self) -> str:
        return (
            f"{self.command}: job {self.job_id} is not reserved by this message any more: the connection that"
            " reserved it closed and beanstalkd released the job (not sent)"
        )

    def __reduce__(self) -> tuple[Callable[[str, int], NotFound], tuple[str, int], dict[str, object]]:
        # picklable and copyable: it may cross processes. Pickle finds the class by its name, which is
        # NotFound's (another class), and its arguments are not those of CommandFailed's ``args``.
        return (_reservation_ended, (self.command, self.job_id), self.__dict__)


def _reservation_ended(command: str, job_id: int) -> NotFound:
    """A :class:`_ReservationEnded` again (what unpickling and copying call)."""
    return _ReservationEnded(command, job_id)


def _text(value: object) -> str:
    """``str(value)`` of a decoded JSON value; shown cut short where it is nested too deep to convert."""
    try:
        return str(value)
    except RecursionError:
        return shown(value)


class MessageFields(TypedDict, total=False):
    """Keyword arguments of a message's constructor (the envelope fields and job settings)."""

    uid: int
    created: dict[str, int] | None
    sender: dict[str, Any] | None
    subscribe: str | None
    channel: str | None
    errors: list[str] | None
    token: str | None
    priority: int | None
    delay: int | None
    ttr: int | None
    reserved: bool
    raw: bytes | None
    envelope: bool


class _Setting:
    """A job setting of a message (priority, delay or time to run), kept in its slot; None until known."""

    def __init__(self, name: str, doc: str) -> None:
        self._slot = "_" + name
        self._stat = name[:3] if name == "priority" else name  # its stats-job field
        self.__doc__ = doc

    def _known(self, message: object) -> int | None:
        value: int | None = getattr(message, self._slot)
        return value


class KnownSetting(_Setting):
    """The setting as known so far (the asyncio flavour's: a property cannot await the server)."""

    @overload
    def __get__(self, message: None, owner: type) -> Self: ...
    @overload
    def __get__(self, message: MessageBase, owner: type) -> int | None: ...
    def __get__(self, message: MessageBase | None, owner: type) -> Self | int | None:
        return self if message is None else self._known(message)


class _AsksServer(Protocol):
    def _job_stats(self) -> JobStats: ...


class AskedSetting(_Setting):
    """The setting, asked of the server (``stats-job``) on the first read where it is not known yet."""

    @overload
    def __get__(self, message: None, owner: type) -> Self: ...
    @overload
    def __get__(self, message: _AsksServer, owner: type) -> int: ...
    def __get__(self, message: _AsksServer | None, owner: type) -> Self | int:
        if message is None:
            return self
        value = self._known(message)
        if value is None:
            asked: int = getattr(message._job_stats(), self._stat)
            return asked
        return value

    def __set__(self, message: MessageBase, value: int) -> None:
        setattr(message, self._slot, value)


class MessageBase:
    """The data of a message, shared by the sync and async flavours.

    ``body`` is the body that was put (never the envelope). ``uid`` is the job
    id (0 before it is sent); it is kept after the job is deleted, when
    ``deleted`` turns True. ``raw`` holds the job's bytes exactly as sent or
    received.
    """

    __slots__ = (
        "_delay",
        "_held",
        "_priority",
        "_token",
        "_ttr",
        "body",
        "channel",
        "context",
        "created",
        "deleted",
        "envelope",
        "errors",
        "lease_lost",
        "raw",
        "sender",
        "subscribe",
        "uid",
    )

    uid: int
    body: Any
    created: dict[str, int]
    sender: dict[str, Any]
    subscribe: str | None
    channel: str | None
    errors: list[str]
    lease_lost: bool
    """True once the job was found no longer reserved by this message's connection while it held it: a
    touch, delete, release or bury got ``NOT_FOUND`` (its time to run ran out), or a worker saw the
    connection that reserved it lost. beanstalkm's worker never settles such a job."""
    _held: object | None  # the connection's link it was reserved on (``_link()``), or None
    deleted: bool
    raw: bytes | None
    envelope: bool
    context: str

    def __init__(
        self,
        body: Any,
        *,
        uid: int = 0,
        created: dict[str, int] | None = None,
        sender: dict[str, Any] | None = None,
        subscribe: str | None = None,
        channel: str | None = None,
        errors: list[str] | None = None,
        token: str | None = None,
        priority: int | None = None,
        delay: int | None = None,
        ttr: int | None = None,
        reserved: bool = False,
        raw: bytes | None = None,
        envelope: bool = True,
    ) -> None:
        held = self._link() if reserved else None  # ``reserved``, without its setter's call
        self._fill(
            body, uid, created, sender, subscribe, channel, errors, token, priority, delay, ttr, held, raw, envelope
        )

    def _fill(
        self,
        body: Any,
        uid: int,
        created: dict[str, int] | None,
        sender: dict[str, Any] | None,
        subscribe: str | None,
        channel: str | None,
        errors: list[str] | None,
        token: str | None,
        priority: int | None,
        delay: int | None,
        ttr: int | None,
        held: object | None,
        raw: bytes | None,
        envelope: bool,
    ) -> None:
        """The constructor's work, its arguments positional (a hot path's message skips the keywords)."""
        self.uid = uid
        self.body = body
        self.created = created if created is not None else {"$data": int(_time() * 1000)}
        self.sender = sender if sender is not None else {}
        self.subscribe = subscribe
        self.channel = channel
        self.errors = errors if errors is not None else []
        self._token = token
        self._priority = priority
        self._delay = delay
        self._ttr = ttr
        self._held = held
        self.deleted = False
        self.lease_lost = False
        self.raw = raw
        self.envelope = envelope
        self.context = _envelope.CONTEXT

    @property
    def reserved(self) -> bool:
        """Whether the job is reserved by this message's connection: False once it is deleted,
        released or buried, once the server answered ``NOT_FOUND`` for it (its time to run ran
        out), and once the connection that reserved it closed (beanstalkd released the job)."""
        held = self._held
        return held is not None and held is self._link()

    @reserved.setter
    def reserved(self, value: bool) -> None:
        self._held = self._link() if value else None

    def _link(self) -> object | None:
        """What stands for the connection's open socket (see ``ConnectionBase._link``)."""
        return _STANDALONE

    def _still_held(self, command: str) -> None:
        """Before a release, bury or touch: ``NotFound`` (nothing sent, the message marked lost) if
        the job was reserved on a connection that has closed since; beanstalkd released it then."""
        held = self._held
        if held is not None and held is not self._link():
            self._gone()
            raise _ReservationEnded(command, self.uid)

    def _gone(self) -> None:
        """The server said the job is not reserved by us (``NOT_FOUND``)."""
        if self._held is not None:
            self.lease_lost = True
        self._held = None

    @property
    def token(self) -> str:
        """md5 hex of the canonical JSON ``{"body": body}`` (as beanstalkm 1.0 computes it).

        A received job whose body has no canonical JSON (raw bytes, or NaN and
        Infinity from another client) gets the md5 hex of its raw bytes instead.
        """
        if self._token is None:
            try:
                self._token = _envelope.token_of(_envelope.canonical(self.body))
            except ArgumentTypeError:
                if self.raw is None:
                    raise
                self._token = hashlib.md5(self.raw, usedforsecurity=False).hexdigest()
        return self._token

    @property
    def timestamp(self) -> float:
        """``created`` in seconds since the epoch."""
        return self.created["$data"] / 1000.0

    @property
    def utc(self) -> datetime:
        """``created`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp, tz=UTC)

    def as_dict(self) -> dict[str, Any]:
        """The envelope as a dict (what goes on the wire)."""
        result: dict[str, Any] = {"@context": self.context, "body": self.body, "created": self.created}
        if self.subscribe is not None:
            result["subscribe"] = self.subscribe
        if self.channel is not None:
            result["channel"] = self.channel
        result["sender"] = self.sender
        result["token"] = self.token
        result["errors"] = self.errors
        return result

    def __str__(self) -> str:
        """The envelope as JSON; for a received job nested too deep to encode again, its raw bytes as text."""
        as_dict = self.as_dict()
        try:
            return json.dumps(as_dict, ensure_ascii=False, sort_keys=True, default=repr)
        except RecursionError:
            if self.raw is None:
                return repr(self)
            return self.raw.decode("utf-8", "replace")

    def __repr__(self) -> str:
        state = "deleted" if self.deleted else "reserved" if self.reserved else "sent" if self.uid else "unsent"
        return f"<{type(self).__name__} uid={self.uid} {state} body={shown(self.body, 60)}>"

    def _encode(self, default_sender: tuple[dict[str, Any], str]) -> bytes:
        """The envelope's bytes (``ArgumentTypeError``, a ``TypeError``, for a body or sender that is not JSON).

        ``default_sender`` is the connection's sender and its JSON, reused when
        this message's sender is that one.
        """
        sender, sender_json = default_sender
        if self.sender != sender:
            sender_json = _envelope.sender_json(self.sender)
        self._token, data = _envelope.encode(
            self.body, self.created["$data"], sender_json, self.subscribe, self.channel, self.errors, self._token
        )
        return data

    def _plain_put(self, sender_json: str, priority: int, delay: int, ttr: int) -> Request[int]:
        """The ``put`` of a new message made with these settings, whose sender is the connection's own
        (its JSON ``sender_json``) and that has no ``subscribe``, ``channel`` or ``errors``:
        ``Client.put``'s common case, the envelope :meth:`_put_request` writes for it, with no
        comparison of senders (``ArgumentTypeError`` first for a body that is not JSON)."""
        self._token, data = _envelope.encode(self.body, self.created["$data"], sender_json)
        return _c.put(data, priority, delay, ttr)

    # -- bookkeeping shared by the sync and async lifecycle methods ------------

    def _put_request(self, default_sender: tuple[dict[str, Any], str]) -> Request[int]:
        """The ``put`` of this message (``TypeError`` first if the body is not JSON-serializable)."""
        data = self._encode(default_sender)
        priority, delay, ttr = self._priority, self._delay, self._ttr
        return _c.put(
            data,
            _c.DEFAULT_PRIORITY if priority is None else priority,
            _c.DEFAULT_DELAY if delay is None else delay,
            _c.DEFAULT_TTR if ttr is None else ttr,
        )

    def _sent(self, uid: int) -> int:
        self.uid = uid
        self._held = None
        self.deleted = False
        return uid

    def _on_server(self) -> bool:
        """Whether the job was sent and not deleted (so it can be deleted, or its stats asked)."""
        return bool(self.uid) and not self.deleted

    def _deleted(self) -> None:
        self.deleted = bool(self.uid)
        self._held = None

    def _check_settling(self, priority: int | None, delay: int | None = None) -> int:
        """The delay of a release or bury (0 for None), its settings checked before anything is sent:
        before the ``stats-job`` that learns the job's own priority, if that is to come."""
        delay = _c.DEFAULT_DELAY if delay is None else delay
        if priority is None and self._priority is None:
            _c.release(1, _c.DEFAULT_PRIORITY, delay)
        return delay

    def _settled(self, priority: int | None) -> None:
        """After a release or bury: no longer reserved, with the priority it was given."""
        if priority is not None:
            self._priority = priority
        self._held = None

    def _learn(self, stats: JobStats) -> None:
        """Remember what the server told about the job's settings."""
        self._priority, self._delay, self._ttr = stats.pri, stats.delay, stats.ttr

    def _receive(self, job_id: int, raw: bytes, held: object | None, validate: bool | None) -> str | None:
        """Fill this message, made with ``__new__``, from a received job (``held``: the link it is
        reserved on, or None); the validation problem, if any. The envelope ``Client.put`` writes is
        read in one pass (``_envelope.ours``); anything else as ``_from_job`` reads it, from the same
        decoded JSON (a large body is decoded once)."""
        value = _envelope.loads_job(raw)
        fields = _envelope.ours(value)
        if fields is not None:
            body, created, sender, token = fields
            self._fill(body, job_id, created, sender, None, None, [], token, None, None, None, held, raw, True)
            return None
        decoded = value if isinstance(value, _envelope.Decoded) else _envelope.decided(value, validate)
        del value
        kwargs, problem = self._from_decoded(job_id, raw, decoded)
        MessageBase.__init__(self, kwargs.pop("body"), **kwargs)
        self._held = held
        return problem

    @classmethod
    def _from_job(cls, job_id: int, raw: bytes, validate: bool | None) -> tuple[dict[str, Any], str | None]:
        """Keyword arguments for a received job, and the validation problem if any."""
        return cls._from_decoded(job_id, raw, _envelope.decode(raw, validate))

    @staticmethod
    def _from_decoded(job_id: int, raw: bytes, decoded: _envelope.Decoded) -> tuple[dict[str, Any], str | None]:
        """``_from_job`` of a job whose bytes were decoded already."""
        kwargs: dict[str, Any] = {"uid": job_id, "raw": raw, "reserved": False, "envelope": False, "body": decoded.body}
        if decoded.problem is not None:
            return kwargs, decoded.problem
        if decoded.envelope is None:
            kwargs["created"] = None
            return kwargs, None
        f = decoded.fields
        kwargs["envelope"] = True
        created = f.get("created")
        data = created.get("$data") if isinstance(created, dict) else None
        if isinstance(data, int) and not isinstance(data, bool):
            ms = data
        elif isinstance(data, float) and data.is_integer():  # 1.6e12: an integer by the schema
            ms = int(data)
        elif isinstance(created, int) and not isinstance(created, bool):  # seconds
            ms = created * 1000
        elif isinstance(created, float) and math.isfinite(created * 1000):  # seconds (not 1e308 of them, inf, NaN)
            ms = int(created * 1000)
        else:
            ms = None
        if ms is not None and _CREATED_MIN <= ms <= _CREATED_MAX:  # else impossible: the receipt time
            kwargs["created"] = {"$data": ms}
        sender = f.get("sender")
        kwargs["sender"] = dict(sender) if isinstance(sender, dict) else {}
        subscribe, channel, token = f.get("subscribe"), f.get("channel"), f.get("token")
        kwargs["subscribe"] = subscribe if isinstance(subscribe, str) else None
        kwargs["channel"] = channel if isinstance(channel, str) else None
        kwargs["token"] = token if isinstance(token, str) else None
        errors = f.get("errors")
        if isinstance(errors, list) and errors:
            kwargs["errors"] = [e if isinstance(e, str) else _text(e) for e in errors]
        else:  # none (the usual case): no comprehension to run
            kwargs["errors"] = []
        return kwargs, None
