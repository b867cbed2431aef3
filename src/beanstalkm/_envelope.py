"""The JSON message envelope (``message.json``): encode, decode, validate.

Wire-compatible with beanstalkm 1.0: ``{"@context": "message", "body": ...,
"created": {"$data": ms}, "sender": {...}, "token": md5, ...}``. The schema
file ships in the package and is loaded at import; jsonschema, when
installed, is imported and compiled only when the first envelope is checked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import md5
from importlib import resources
from typing import Any

CONTEXT = "message"

SCHEMA: dict[str, Any] = json.loads(resources.files("beanstalkm._generated").joinpath("message.json").read_text())
"""The envelope's JSON Schema, loaded at import."""

_FIELDS = ("@context", "body", "created", "sender", "subscribe", "channel", "errors", "token")


def canonical(body: object) -> str:
    """The canonical JSON of a body (sorted keys, compact); ``TypeError`` if not serializable."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def token_of(canonical_body: str) -> str:
    """beanstalkm 1.0's token: md5 hex of the canonical JSON ``{"body": body}``."""
    return md5(b'{"body":' + canonical_body.encode() + b"}", usedforsecurity=False).hexdigest()


def encode(
    canonical_body: str,
    token: str,
    created_ms: int,
    sender_json: str,
    subscribe: str | None,
    channel: str | None,
    errors: list[str],
) -> bytes:
    """The envelope's bytes, built around the already-encoded body."""
    parts = [
        '{"@context":"message","body":',
        canonical_body,
        ',"created":{"$data":',
        str(created_ms),
        '},"sender":',
        sender_json,
        ',"token":"',
        token,
        '","errors":',
        json.dumps(errors, separators=(",", ":")),
    ]
    if subscribe is not None:
        parts += [',"subscribe":', json.dumps(subscribe)]
    if channel is not None:
        parts += [',"channel":', json.dumps(channel)]
    parts.append("}")
    return "".join(parts).encode()


@dataclass
class Decoded:
    """What a job's bytes turned out to be."""

    body: Any
    envelope: Mapping[str, Any] | None = None
    problem: str | None = None  # why a would-be envelope failed validation
    fields: dict[str, Any] = field(default_factory=dict)


class _Validation:
    """The cached, lazily built jsonschema validator (None when unavailable)."""

    def __init__(self) -> None:
        self._loaded = False
        self._validator: Any = None

    def available(self) -> bool:
        if not self._loaded:
            self._loaded = True
            try:
                import jsonschema
            except ImportError:
                self._validator = None
            else:
                cls = jsonschema.validators.validator_for(SCHEMA)
                self._validator = cls(SCHEMA, format_checker=cls.FORMAT_CHECKER)
        return self._validator is not None

    def problem(self, value: object) -> str | None:
        if not self.available():
            return None
        error = next(iter(self._validator.iter_errors(value)), None)
        if error is None:
            return None
        where = error.json_path
        return f"{where}: {error.message}"


VALIDATION = _Validation()


def decode(raw: bytes, validate: bool | None) -> Decoded:
    """Decode a job body. Never raises and never loses the raw bytes.

    An envelope (a JSON object whose ``@context`` is ``"message"``) gives its
    fields; unless ``validate`` is False, and when jsonschema is installed,
    an invalid one reports ``problem``. Anything else is the
    decoded JSON, else the text, else the bytes.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Decoded(raw)
    try:
        value = json.loads(text)
    except ValueError:
        return Decoded(text)
    if not (isinstance(value, dict) and value.get("@context") == CONTEXT):
        return Decoded(value)
    if validate is not False:
        problem = VALIDATION.problem(value)
        if problem is not None:
            return Decoded(value, value, problem)
    return Decoded(value.get("body"), value, None, {k: value[k] for k in _FIELDS if k in value})
