"""The JSON message envelope (``message.json``): encode, decode, validate.

Wire-compatible with beanstalkm 1.0: ``{"@context": "message", "body": ...,
"created": {"$data": ms}, "sender": {...}, "token": md5, ...}``. Envelopes are
checked by the generated ``is_valid``; jsonschema is imported only to explain
an envelope that check rejects.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import md5
from importlib import resources
from typing import Any, Protocol

from beanstalkm._errors import ArgumentTypeError, cut
from beanstalkm._generated.envelope_check import is_valid

CONTEXT = "message"

SCHEMA: dict[str, Any] = json.loads(resources.files("beanstalkm._generated").joinpath("message.json").read_text())
"""The envelope's JSON Schema, loaded at import."""


_COMPACT = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _unserializable(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _canonical_encoders() -> tuple[Callable[[object], str], Callable[[list[Any]], list[str]]]:
    """``json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False).encode``, of a body
    and of a list of bodies: the same bytes, through the C encoder it uses without its Python layers
    where CPython has it. The first raises ``ArgumentTypeError`` naming a body that is not JSON (it is
    :func:`canonical`); the second the encoder's own error (:func:`canonical_all` names the body).

    The C encoders are kept in a pool: setting one up (and its circular-reference markers) costs
    about as much as encoding a small body. Each call takes one out of the pool for itself and puts
    it back once it has finished, so calls from several threads, or a call made while another is
    under way (a finalizer run by the garbage collector), never share one. An encoder that raised
    is never put back: its markers may still hold the objects it was inside of.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    quote = getattr(json.encoder, "c_encode_basestring_ascii", None)
    if make is None or quote is None:  # pragma: no cover - other Pythons
        one = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False).encode

        def encode_one(body: object) -> str:
            try:
                return one(body)
            except (TypeError, ValueError, RecursionError) as exc:
                raise ArgumentTypeError("body", body, _not_json(exc)) from exc

        return encode_one, lambda bodies: [one(body) for body in bodies]
    join = "".join
    free: list[Callable[[object, int], Iterable[str]]] = []
    take, give = free.pop, free.append

    def encode(body: object) -> str:
        try:
            encoder = take()
        except IndexError:  # all in use (or none made yet)
            encoder = make({}, _unserializable, quote, None, ":", ",", True, False, False)
        try:
            chunks = encoder(body, 0)
        except (TypeError, ValueError, RecursionError) as exc:  # the encoder is left out of the pool
            raise ArgumentTypeError("body", body, _not_json(exc)) from exc
        give(encoder)
        return join(chunks)

    def encode_all(bodies: list[Any]) -> list[str]:  # one encoder for them all, one after the other
        try:
            encoder = take()
        except IndexError:
            encoder = make({}, _unserializable, quote, None, ":", ",", True, False, False)
        texts = [join(encoder(body, 0)) for body in bodies]
        give(encoder)
        return texts

    return encode, encode_all


canonical, _CANONICAL_ALL = _canonical_encoders()
canonical.__doc__ = """The canonical JSON of a body (sorted keys, compact).

Raises ``ArgumentTypeError`` (a ``TypeError``) naming the body if it is
not serializable: an unsupported type, NaN or infinity (not JSON), a
circular reference, too deep.
"""


def canonical_all(bodies: list[Any]) -> list[str]:
    """``[canonical(body) for body in bodies]``, with one encoder: ``ArgumentTypeError`` naming the
    first body that is not serializable, as that would raise."""
    try:
        return _CANONICAL_ALL(bodies)
    except (TypeError, ValueError, RecursionError):
        for body in bodies:
            canonical(body)  # raises, naming the first one refused
        raise  # pragma: no cover - a body refused once is refused again


def sender_json(sender: object) -> str:
    """The compact JSON of a sender's fields (``ArgumentTypeError`` naming the sender if they are not
    JSON, as for :func:`canonical`, or hold an int too long to write out)."""
    try:
        return _COMPACT(sender)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ArgumentTypeError("sender", sender, _not_json(exc)) from exc


def _not_json(exc: BaseException) -> str:
    """Why the JSON encoder refused a value, in words."""
    text = str(exc)
    if isinstance(exc, ValueError) and text.startswith("Out of range float values"):
        text = "it holds NaN or an infinity, which JSON has no notation for"
    return f"not JSON serializable: {text}"


class _Digest(Protocol):
    def copy(self) -> _Digest: ...
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def _token_start() -> _Digest | None:
    """md5 of the token's first bytes, ``{"body":``, from CPython's own md5 (``_md5``; None where it
    is not built): a copy of it is half the cost of setting up OpenSSL's md5 for a small body."""
    try:
        builtin = importlib.import_module("_md5")
    except ImportError:  # pragma: no cover - a build without it
        return None
    start: _Digest = builtin.md5(b'{"body":')
    return start


_TOKEN_START = _token_start()
_SMALL_BODY = 4096  # from this size on OpenSSL's md5, quicker per byte, hashes the body


def token_of(canonical_body: str) -> str:
    """beanstalkm 1.0's token: md5 hex of the canonical JSON ``{"body": body}``.

    Hashed in pieces, so a large body is not copied once more into a concatenation.
    """
    start = _TOKEN_START
    if start is not None and len(canonical_body) < _SMALL_BODY:
        digest = start.copy()
    else:
        digest = md5(b'{"body":', usedforsecurity=False)
    digest.update(canonical_body.encode())
    digest.update(b"}")
    return digest.hexdigest()


def encode(
    body: object,
    created_ms: int,
    sender_json: str,
    subscribe: str | None = None,
    channel: str | None = None,
    errors: list[str] | None = None,
    token: str | None = None,
    canon: str | None = None,
) -> tuple[str, bytes]:
    """The token (``token``, or the body's own) and the bytes of ``body``'s envelope.

    ``ArgumentTypeError`` (a ``TypeError``) if the body is not JSON-serializable.
    The envelope's text is built around the body's canonical JSON (``canon``, if
    the caller made it already), which is let go of before the text is encoded:
    a large body is held twice at most (text and bytes), never three times.
    """
    if canon is None:
        canon = canonical(body)
    if token is None:
        token = token_of(canon)
    extra = ""
    if subscribe is not None:
        extra += ',"subscribe":' + _COMPACT(subscribe)
    if channel is not None:
        extra += ',"channel":' + _COMPACT(channel)
    errors_json = _COMPACT(errors) if errors else "[]"
    text = (
        f'{{"@context":"message","body":{canon},"created":{{"$data":{created_ms}}},'
        f'"sender":{sender_json},"token":"{token}","errors":{errors_json}{extra}}}'
    )
    del canon
    return token, text.encode()


@dataclass(slots=True)
class Decoded:
    """What a job's bytes turned out to be."""

    body: Any
    envelope: Mapping[str, Any] | None = None
    problem: str | None = None  # why a would-be envelope failed validation
    fields: Mapping[str, Any] = field(default_factory=dict)  # a valid envelope's fields


# JSONDecoder's own scanner (the C one in CPython); typeshed does not declare the attribute
_SCAN: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009


def _loads(text: str) -> Any:
    """``json.loads(text)``: the C scanner straight on a document that is one JSON value and nothing
    else (what a client writes); ``json.loads`` itself for anything else, which decides."""
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:  # leading whitespace, or not JSON
        return json.loads(text)
    if end != len(text):  # trailing whitespace, or extra data
        return json.loads(text)
    return value


class _Validation:
    """Whether jsonschema is installed (looked up once, not imported), and the
    jsonschema validator that explains a rejected envelope (imported and built once, on first need)."""

    GENERIC = "$: not a valid message envelope (install jsonschema, beanstalkm[validation], for the details)"
    TOO_DEEP = "$: not a valid message envelope (nested too deep for jsonschema to explain where)"

    def __init__(self) -> None:
        self._installed: bool | None = None
        self._validator: Any = None

    def available(self) -> bool:
        """Whether jsonschema is installed."""
        if self._installed is None:
            try:
                self._installed = importlib.util.find_spec("jsonschema") is not None
            except ValueError:  # in sys.modules without a spec
                self._installed = True
        return self._installed

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not a valid envelope; None if it is (the generated check decides).

        The reason is cut to a bounded length (jsonschema shows the bad value,
        which may be huge), and is ``TOO_DEEP`` where jsonschema cannot show it
        for its nesting (its ``repr`` or its own recursion reaching the limit).
        """
        if is_valid(value):
            return None
        try:
            return cut(self._explain(value))
        except RecursionError:
            return self.TOO_DEEP

    def _explain(self, value: object) -> str:
        if self._validator is None and self.available():
            try:
                import jsonschema
            except ImportError:
                self._installed = False
            else:
                cls = jsonschema.validators.validator_for(SCHEMA)
                self._validator = cls(SCHEMA, format_checker=cls.FORMAT_CHECKER)
        if self._validator is not None:
            error = next(iter(self._validator.iter_errors(value)), None)
            if error is not None:
                return f"{error.json_path}: {error.message}"
        return self.GENERIC


VALIDATION = _Validation()


def decode(raw: bytes, validate: bool | None) -> Decoded:
    """Decode a job body. Never raises and never loses the raw bytes.

    An envelope (a JSON object whose ``@context`` is ``"message"``) gives its
    fields; an invalid one reports ``problem`` when ``validate`` is True, or
    None (the default) and jsonschema is installed. Anything else is the
    decoded JSON, else the text, else the bytes.
    """
    value = loads_job(raw)
    return value if isinstance(value, Decoded) else decided(value, validate)


def loads_job(raw: bytes) -> Any:
    """The first half of :func:`decode`: the JSON value of a job's bytes, or the ``Decoded`` text or
    bytes where they are not JSON (a JSON value is never a ``Decoded``). Never raises."""
    value = _loads_string_body(raw) if len(raw) >= _LARGE and raw.startswith(_STRING_BODY) else _NOTHING
    if value is _NOTHING:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Decoded(raw)
        try:
            value = _loads(text)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to decode
            return Decoded(text)
    return value


def decided(value: Any, validate: bool | None) -> Decoded:
    """The second half of :func:`decode`, for a job whose bytes were the JSON ``value``: an envelope's
    fields, or its validation problem; anything else is the body itself."""
    if not (isinstance(value, dict) and value.get("@context") == CONTEXT):
        return Decoded(value)
    if validate or (validate is None and VALIDATION.available()):
        problem = VALIDATION.problem(value)
        if problem is not None:
            return Decoded(value, value, problem)
    return Decoded(value.get("body"), value, None, value)


_OURS = frozenset(("@context", "body", "created", "sender", "token", "errors"))
"""The keys of the envelope beanstalkm writes for a message with no ``subscribe`` or ``channel``."""
_OUR_SENDER = frozenset(("host", "pid", "time", "version"))
"""The keys of a connection's own sender."""
_CREATED = frozenset(("$data",))


def ours(value: Any) -> tuple[Any, dict[str, int], dict[str, Any], str] | None:
    """The body, ``created``, ``sender`` and ``token`` of the decoded JSON ``value`` if it is exactly an
    envelope as beanstalkm writes one with the connection's own sender (``Client.put``'s): those six
    keys, ``"message"``, ``{"$data": <int of a datetime's range>}``, a sender of exactly ``host``,
    ``pid``, ``time`` and ``version`` (a str, an int, a float and a str), a str token and no errors.
    Every such value satisfies ``message.json`` (the generated ``is_valid`` says so: tested), so it
    needs no other check; and :func:`decided` and ``MessageBase._from_job`` would read these same
    fields from it. None for anything else, which the general way decides.
    """
    if type(value) is not dict or value.keys() != _OURS:
        return None
    created, sender, token = value["created"], value["sender"], value["token"]
    if (
        value["@context"] != CONTEXT
        or type(token) is not str
        or value["errors"] != []  # only an empty list is equal to one
        or type(created) is not dict
        or created.keys() != _CREATED
        or type(sender) is not dict
        or sender.keys() != _OUR_SENDER
        or type(sender["host"]) is not str
        or type(sender["pid"]) is not int
        or type(sender["time"]) is not float
        or type(sender["version"]) is not str
    ):
        return None
    ms = created["$data"]
    if type(ms) is not int or not CREATED_MIN <= ms <= CREATED_MAX:
        return None
    return value["body"], created, sender, token


CREATED_MIN = int(datetime(1, 1, 1, tzinfo=UTC).timestamp() * 1000)
CREATED_MAX = int(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)
"""The ``created`` times (ms since the epoch) a datetime can hold; a received one outside is impossible."""


_LARGE = 65536
_STRING_BODY = b'{"@context":"message","body":"'  # how beanstalkm starts an envelope whose body is a string
_CONTROLS = tuple(bytes((c,)) for c in range(32))  # not allowed in a JSON string
_CONSTANT = json.JSONDecoder().parse_constant  # NaN, Infinity, -Infinity as json.loads reads them
_NOTHING: Any = object()


def _loads_string_body(raw: bytes) -> Any:
    """``json.loads`` of a large job that starts as beanstalkm writes an envelope with a string body,
    that string having no escapes: it is decoded straight from ``raw`` (twice a large body's size at
    once, not three times: docs/memory.md), and the rest on its own. ``_NOTHING`` where it does not
    apply or anything fails: ``decode`` then goes the usual way, which decides."""
    start = len(_STRING_BODY)
    end = raw.find(b'"', start)  # where the string ends, unless there is an escape or a control character in it
    if end < 0 or raw.find(b"\\", start, end) >= 0 or any(raw.find(c, start, end) >= 0 for c in _CONTROLS):
        return _NOTHING
    placeholder = True

    def constant(name: str) -> Any:  # the first is the NaN standing for the body; the others are themselves
        nonlocal placeholder
        if placeholder:
            placeholder = False
            return _NOTHING
        return _CONSTANT(name)

    try:
        with memoryview(raw) as view, view[start:end] as string:
            body = str(string, "utf-8")
        value = json.loads((raw[: start - 1] + b"NaN" + raw[end + 1 :]).decode("utf-8"), parse_constant=constant)
    except (ValueError, RecursionError):
        return _NOTHING
    if value["body"] is _NOTHING:  # else a later "body" key won, as it does in json.loads
        value["body"] = body
    return value
