"""The generated envelope check (``_generated/envelope_check.py``) against jsonschema.

``is_valid`` must say exactly what ``jsonschema.Draft7Validator(message.json)``
says, for any Python value: a differential test over thousands of generated
values (envelope-shaped ones and arbitrary ones, with floats such as ``1.0``,
bools, subclasses and numbers jsonschema also counts), hand-picked edge cases,
the compiler on schemas that use every supported keyword, its refusal of any
other keyword, and, in a subprocess, that a valid envelope never imports
jsonschema.
"""

from __future__ import annotations

import collections
import enum
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beanstalkm._core import envelope as _envelope
from beanstalkm._generated.envelope_check import is_valid
from codegen.render import environment, ruff_format
from codegen.schema_check import DRAFT7, SchemaError, compile_schema

ROOT = Path(__file__).resolve().parents[2]
MESSAGE_SCHEMA: dict[str, Any] = json.loads((ROOT / "spec" / "message.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft7Validator(_envelope.SCHEMA)
SENDER_KEYS = ["host", "ip", "uid", "ua", "referer", "version", "pid", "time"]
ENVELOPE_KEYS = ["@context", "body", "created", "sender", "subscribe", "channel", "token", "errors"]


def test_the_runtime_schema_is_spec_message_json_validated_as_draft7() -> None:
    assert {k: v for k, v in _envelope.SCHEMA.items() if k != "$comment"} == MESSAGE_SCHEMA
    assert jsonschema.validators.validator_for(_envelope.SCHEMA) is jsonschema.Draft7Validator


# -- values -----------------------------------------------------------------------------------------


class Str(str):
    pass


class Dict(dict[Any, Any]):
    pass


class List(list[Any]):
    pass


class Int(int):
    pass


class Float(float):
    pass


class Color(enum.IntEnum):
    RED = 1


# Numbers and near-numbers jsonschema classifies in its own way.
NUMBERISH: list[object] = [
    0,
    1,
    -1,
    2**64,
    0.0,
    -0.0,
    1.0,
    1.5,
    1e300,
    2.0**63,
    float("inf"),
    float("-inf"),
    float("nan"),
    True,
    False,
    Decimal("1"),
    Decimal("1.5"),
    Fraction(1, 2),
    complex(1, 0),
    Int(3),
    Float(2.0),
    Float(2.5),
    Color.RED,
]
ODD: list[object] = [b"ab", (1, 2), (), frozenset({1}), object(), Str("s"), Str("message"), "", "message"]

STRING_VALUES: list[object] = ["", "h", "message", "日本語", "0" * 32, Str("x")]
# Mostly sampled (cheap to draw), with hypothesis' own integers, floats and text mixed in.
SCALARS = st.one_of(
    st.sampled_from([None, *NUMBERISH, *ODD, *STRING_VALUES]),
    st.integers(),
    st.floats(),  # nan and infinities too
    st.text(max_size=3),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from([*ENVELOPE_KEYS, *SENDER_KEYS, "$data", "", "x", 0, 1]) | st.text(max_size=3)
    return st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(List),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=3),
        st.dictionaries(keys, children, max_size=3).map(Dict),
    )


VALUES = st.recursive(SCALARS, _containers, max_leaves=6)

STRINGS = st.sampled_from(STRING_VALUES)
INTEGERS = st.sampled_from([0, 1, -7, 2**70, 1.0, -3.0, 0.0, Int(7), Color.RED]) | st.integers()
NUMBERS = INTEGERS | st.sampled_from(NUMBERISH) | st.floats()


@st.composite
def _mutated(draw: st.DrawFn, base: dict[Any, Any], keys: list[str]) -> dict[Any, Any]:
    """``base`` with up to two keys dropped, retyped or added."""
    value = dict(base)
    for _ in range(draw(st.integers(0, 2))):
        action = draw(st.sampled_from(["drop", "retype", "add"]))
        key = draw(st.sampled_from(keys))
        if action == "drop":
            value.pop(key, None)
        elif action == "retype":
            value[key] = draw(VALUES)
        else:
            value[draw(st.sampled_from([*keys, "extra", "", 0]))] = draw(VALUES)
    return Dict(value) if draw(st.integers(0, 9)) == 0 else value


@st.composite
def senders(draw: st.DrawFn) -> object:
    sender: dict[str, object] = {"host": draw(STRINGS)}
    typed = {"ip": STRINGS, "uid": STRINGS, "ua": STRINGS, "referer": STRINGS, "version": STRINGS}
    typed |= {"pid": INTEGERS, "time": NUMBERS}
    for key, strategy in typed.items():
        if draw(st.booleans()):
            sender[key] = draw(strategy)
    return draw(_mutated(sender, SENDER_KEYS))


CREATED = st.one_of(
    NUMBERS,
    st.fixed_dictionaries({"$data": INTEGERS}),
    st.fixed_dictionaries({"$data": VALUES}),
    st.fixed_dictionaries({"$data": INTEGERS, "extra": VALUES}),
    st.fixed_dictionaries({}),
    VALUES,
)


@st.composite
def envelopes(draw: st.DrawFn) -> object:
    """Envelope-shaped values: mostly right, one or two things wrong about half the time."""
    envelope: dict[str, object] = {
        "@context": draw(st.just("message") | STRINGS),
        "body": draw(VALUES),
        "created": draw(CREATED),
        "sender": draw(senders()),
        "token": draw(STRINGS),
    }
    optional = {"subscribe": STRINGS, "channel": STRINGS, "errors": st.lists(STRINGS, max_size=3) | VALUES}
    for key, strategy in optional.items():
        if draw(st.booleans()):
            envelope[key] = draw(strategy)
    return draw(_mutated(envelope, ENVELOPE_KEYS))


# -- the differential test --------------------------------------------------------------------------


# `make check` runs the quick variants; the full run (`make test`, or pytest without -m) also the thorough ones.
QUICK_OR_THOROUGH = [
    pytest.param(300, id="quick"),
    pytest.param(3000, id="thorough", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("examples", QUICK_OR_THOROUGH)
def test_envelopes_agree_with_jsonschema(examples: int) -> None:
    seen: collections.Counter[bool] = collections.Counter()

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(envelopes())
    def agree(value: object) -> None:
        expected = VALIDATOR.is_valid(value)
        assert is_valid(value) is expected
        seen[expected] += 1

    agree()
    # Both outcomes were exercised, many times.
    assert min(seen[True], seen[False]) >= examples // 10, seen


@pytest.mark.parametrize("examples", QUICK_OR_THOROUGH)
def test_any_value_agrees_with_jsonschema(examples: int) -> None:
    @settings(max_examples=examples, deadline=None)
    @given(VALUES)
    def agree(value: object) -> None:
        assert is_valid(value) is VALIDATOR.is_valid(value)

    agree()


VALID: dict[str, Any] = {
    "@context": "message",
    "body": {"a": [1, 2]},
    "created": {"$data": 1_700_000_000_000},
    "sender": {"host": "h", "pid": 1, "time": 1.5, "version": "2.0.0"},
    "token": "0" * 32,
    "errors": [],
}


def _with(**changes: object) -> dict[str, Any]:
    value = dict(VALID)
    for key, change in changes.items():
        key = {"context": "@context"}.get(key, key)
        if change is _DROP:
            del value[key]
        else:
            value[key] = change
    return value


_DROP = object()

EDGE_CASES: list[tuple[str, object, bool]] = [
    ("valid", VALID, True),
    ("minimal", {k: VALID[k] for k in ("@context", "body", "created", "sender", "token")}, True),
    ("dict-subclass", Dict(VALID), True),
    ("str-subclass-context", _with(context=Str("message")), True),
    ("body-null", _with(body=None), True),
    ("body-anything", _with(body=[{"x": (1, b"")}, object()]), True),
    ("created-seconds-int", _with(created=1_700_000_000), True),
    ("created-seconds-float", _with(created=1.0), True),
    ("created-true", _with(created=True), False),
    ("created-false", _with(created=False), False),
    ("created-decimal", _with(created=Decimal("1.5")), True),
    ("created-nan", _with(created=float("nan")), True),
    ("created-string", _with(created="yesterday"), False),
    ("created-data-float-integral", _with(created={"$data": 1.0}), True),
    ("created-data-float", _with(created={"$data": 1.5}), False),
    ("created-data-true", _with(created={"$data": True}), False),
    ("created-data-intenum", _with(created={"$data": Color.RED}), True),
    ("created-data-extra-key", _with(created={"$data": 1, "x": 1}), False),
    ("created-data-missing", _with(created={}), False),
    ("created-list", _with(created=[1]), False),
    ("extra-key", _with(extra=1), False),
    ("extra-int-key", Dict([*VALID.items(), (1, 1)]), False),
    ("missing-body", _with(body=_DROP), False),
    ("missing-token", _with(token=_DROP), False),
    ("missing-created", _with(created=_DROP), False),
    ("sender-without-host", _with(sender={"pid": 1}), False),
    ("sender-host-not-string", _with(sender={"host": 1}), False),
    ("sender-extra-keys-allowed", _with(sender={"host": "h", "anything": [None]}), True),
    ("sender-pid-float-integral", _with(sender={"host": "h", "pid": 2.0}), True),
    ("sender-pid-bool", _with(sender={"host": "h", "pid": True}), False),
    ("sender-time-bool", _with(sender={"host": "h", "time": False}), False),
    ("sender-list", _with(sender=["h"]), False),
    ("errors-non-string", _with(errors=["ok", 1]), False),
    ("errors-tuple", _with(errors=("a",)), False),
    ("errors-list-subclass", _with(errors=List(["a"])), True),
    ("subscribe-null", _with(subscribe=None), False),
    ("context-other-string", _with(context="other"), True),  # the schema only says string
    ("context-bytes", _with(context=b"message"), False),
    ("not-an-object", [VALID], False),
    ("null", None, False),
]


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in EDGE_CASES], ids=[c[0] for c in EDGE_CASES])
def test_edge_cases(value: object, expected: bool) -> None:
    assert VALIDATOR.is_valid(value) is expected  # the case says what jsonschema says
    assert is_valid(value) is expected


# -- the compiler on every keyword ------------------------------------------------------------------


def build(schema: object) -> tuple[str, Callable[[object], bool]]:
    """The generated module's source for ``schema`` (formatted as committed) and its is_valid."""
    text = (
        environment()
        .get_template("envelope_check.py.jinja")
        .render(message_header="# test", check=compile_schema(schema))
    )
    source = ruff_format(text, "src/beanstalkm/_generated/envelope_check.py")
    namespace: dict[str, Any] = {}
    exec(compile(source, "<envelope_check>", "exec"), namespace)
    function: Callable[[object], bool] = namespace["is_valid"]
    return source, function


def draft7(**schema: object) -> dict[str, object]:
    return {"$schema": "http://json-schema.org/draft-07/schema#", **schema}


EVERY_KEYWORD = draft7(
    **{"$id": "x", "title": "t", "description": "d", "$comment": "c", "default": {"a": 1}, "examples": [1]},
    type=["object", "array", "null"],
    required=["kind"],
    properties={
        "kind": {"enum": ["a", 1, True, None, [1, 2], {"x": 1.0}, 2.5]},
        "version": {"const": 2},
        "list": {"const": [1, True, {"a": None}]},
        "flag": {"type": "boolean"},
        "n": {"type": ["integer", "string"]},
        "choice": {
            "anyOf": [
                {"type": "string"},
                {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
                {"type": "array", "items": {"type": "number"}},
            ]
        },
        "exactly": {"oneOf": [{"type": "integer"}, {"type": "number"}, {"const": "z"}]},
        "never": False,
        "anything": True,
        "empty": {},
        "nested": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"oneOf": [{"type": "null"}, {"enum": [[], {}]}]}},
        },
    },
    additionalProperties={"type": ["string", "number"]},
    items={"type": "object", "properties": {"a": {"const": [1, True]}}, "additionalProperties": False},
)

SMALL_SCHEMAS: dict[str, dict[str, object]] = {
    "empty": draft7(),
    "integer": draft7(type="integer"),
    "number": draft7(type="number"),
    "null": draft7(type="null"),
    "string-or-null": draft7(type=["string", "null"]),
    "boolean": draft7(type="boolean"),
    "boolean-or-string": draft7(type=["boolean", "string"]),
    "empty-enum": draft7(enum=[]),
    "enum-not-bools": draft7(enum=[1, [0], {"a": 0}, "message"]),
    "const-true": draft7(const=True),
    "const-null": draft7(const=None),
    "const-object": draft7(const={"a": [1.0, False]}),
    "oneOf-true-or-string": draft7(oneOf=[True, {"type": "string"}]),
    "oneOf-true-true": draft7(oneOf=[True, True]),
    "oneOf-false-string": draft7(oneOf=[False, {"type": "string"}]),
    "oneOf-overlapping": draft7(oneOf=[{"type": "integer"}, {"type": "number"}, {"type": "boolean"}]),
    "anyOf-false-false": draft7(anyOf=[False, False]),
    "anyOf-true": draft7(anyOf=[{"type": "string"}, True]),
    "nested-anyOf-oneOf": draft7(anyOf=[{"oneOf": [{"type": "object", "required": ["a"]}, {"required": ["b"]}]}]),
    "items-false": draft7(items=False),
    "items-empty": draft7(items={}),
    "property-false": draft7(properties={"x": False}),
    "required-property-false": draft7(required=["x"], properties={"x": False}),
    "additional-false-only": draft7(additionalProperties=False),
    "additional-schema-only": draft7(additionalProperties={"type": "integer"}),
    "object-keywords-on-string-type": draft7(type="string", required=["a"], items=False),
    "object-or-null-required": draft7(type=["object", "null"], required=["a"]),
}

KEYS = ["kind", "version", "list", "flag", "n", "choice", "exactly", "never", "anything", "empty", "nested"]
KEYS += ["id", "a", "b", "x", "other"]
ENUMISH = st.sampled_from(["a", "z", 1, 2, 2.0, 2.5, True, False, None, [1, 2], [1, True], [1.0, True], {"x": 1}])
SCHEMA_VALUES = st.recursive(
    SCALARS | ENUMISH,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(KEYS) | st.integers(0, 1), children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=4).map(Dict),
    ),
    max_leaves=10,
)


@st.composite
def every_keyword_values(draw: st.DrawFn) -> object:
    """Values shaped like EVERY_KEYWORD wants (objects, arrays of objects, null), often a little wrong."""
    shape = draw(st.sampled_from(["object", "object", "array", "null", "anything"]))
    if shape == "null":
        return None
    if shape == "anything":
        return draw(SCHEMA_VALUES)
    if shape == "array":
        pair = st.sampled_from([[1, True], [1.0, True], [True, True], (1, True), [1]])
        item = st.fixed_dictionaries({}, optional={"a": pair, "b": SCALARS}) | SCALARS
        return draw(st.lists(item, max_size=3).map(lambda items: items if len(items) != 2 else List(items)))
    # Right values (a few wrong ones too); _mutated adds more mistakes.
    value: dict[Any, Any] = {"kind": draw(ENUMISH)}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "version": st.sampled_from([2, 2.0, Decimal(2), Int(2), True]),
        "list": st.sampled_from([[1, True, {"a": None}], [1.0, True, {"a": None}], [1, 1, {"a": None}]]),
        "flag": st.booleans(),
        "n": INTEGERS | STRINGS,
        "choice": STRINGS | st.fixed_dictionaries({"id": INTEGERS}) | st.lists(NUMBERS, max_size=2),
        "exactly": st.sampled_from([1.5, "z", Fraction(1, 3), Float(0.5), 1, 1.0]),
        "anything": SCALARS,
        "empty": SCALARS,
        "nested": st.dictionaries(
            st.sampled_from(["p", "q"]), st.lists(st.sampled_from([None, [], {}, (), 0]), max_size=2), max_size=2
        ),
        "other": STRINGS | NUMBERS,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            value[key] = draw(strategy)
    return draw(_mutated(value, KEYS))


# Every value here, against every schema, deterministically (hypothesis adds the rest).
TRICKY: list[object] = [
    *NUMBERISH,
    *ODD,
    None,
    "z",
    [],
    {},
    List(),
    Dict(),
    [1, 2],
    [1, True],
    [1.0, True],
    [True, True],
    (1, True),
    [None, [], {}],
    {"x": 1},
    {"x": 1.0},
    {"a": 1},
    {"a": [1, True]},
    {"b": 1},
    {"id": 1},
    {0: 1},
    [{"a": [1, True]}],
    [{"a": [1, 1]}],
    [{"b": 1}],
    {"kind": "a"},
    {"kind": True},
    {"kind": 1.0},
    {"kind": "a", "exactly": 1},
    {"kind": "a", "exactly": 1.5},
    {"kind": "a", "version": 2.0},
    {"kind": "a", "choice": {"id": 1.0}},
    {"kind": "a", "nested": {"p": [None, {}]}},
    {"kind": "a", "other": True},
    {"kind": "a", "flag": 1},
    [False],
    [0],
    {"a": False},
    {"a": 0},
    Dict({"kind": None, "other": "s"}),
]


@pytest.mark.parametrize("name", ["every-keyword", *SMALL_SCHEMAS])
def test_compiled_schema_agrees_on_tricky_values(name: str) -> None:
    schema = EVERY_KEYWORD if name == "every-keyword" else SMALL_SCHEMAS[name]
    _, check = build(schema)
    validator = jsonschema.Draft7Validator(schema)
    disagree = [value for value in TRICKY if check(value) is not validator.is_valid(value)]
    assert disagree == []


@pytest.mark.parametrize("name", ["every-keyword", *SMALL_SCHEMAS])
def test_compiled_schema_agrees_with_jsonschema(name: str) -> None:
    schema = EVERY_KEYWORD if name == "every-keyword" else SMALL_SCHEMAS[name]
    _, check = build(schema)
    validator = jsonschema.Draft7Validator(schema)
    seen: collections.Counter[bool] = collections.Counter()
    values = every_keyword_values() if name == "every-keyword" else SCALARS | SCHEMA_VALUES

    @settings(max_examples=500 if name == "every-keyword" else 100, deadline=None, database=None)
    @given(values)
    def agree(value: object) -> None:
        expected = validator.is_valid(value)
        assert check(value) is expected
        seen[expected] += 1

    agree()
    if name == "every-keyword":
        assert min(seen[True], seen[False]) >= 50, seen


def test_generated_code_for_every_keyword_is_lint_clean(tmp_path: Path) -> None:
    source, _ = build(EVERY_KEYWORD)
    assert "from numbers import Number\n\nfrom beanstalkm._json_equal import json_equal\n" in source
    assert "json_equal(v" in source and "def _check1(" in source
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-fix", "--stdin-filename", "src/beanstalkm/_generated/x.py", "-"],
        input=source,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_generated_code_for_every_keyword_passes_mypy_strict(tmp_path: Path) -> None:
    source, _ = build(EVERY_KEYWORD)
    (tmp_path / "every_keyword.py").write_text(source, encoding="utf-8")
    # beanstalkm (the generated code imports its json_equal) from this tree, not an installed copy
    (tmp_path / "mypy.ini").write_text(f"[mypy]\nstrict = True\nmypy_path = {ROOT / 'src'}\n", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            "mypy.ini",
            "--cache-dir",
            str(tmp_path / "cache"),
            "every_keyword.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for forbidden in ("cast(", "type: ignore", "Any"):
        assert forbidden not in source


def test_generated_envelope_check_uses_no_escape_hatches() -> None:
    source = (ROOT / "src" / "beanstalkm" / "_generated" / "envelope_check.py").read_text(encoding="utf-8")
    for forbidden in ("cast(", "type: ignore", "import jsonschema"):
        assert forbidden not in source


# -- what the compiler refuses ----------------------------------------------------------------------


def _with_keyword(path: list[str | int], keyword: str, value: object) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(json.dumps(MESSAGE_SCHEMA))
    node: Any = schema
    for key in path:
        node = node[key]
    node[keyword] = value
    return schema


REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "pattern",
        _with_keyword(["properties", "token"], "pattern", "^[0-9a-f]{32}$"),
        "$.properties.token.pattern",
        "'pattern'",
    ),
    (
        "minimum",
        _with_keyword(["properties", "sender", "properties", "pid"], "minimum", 1),
        "$.properties.sender.properties.pid.minimum",
        "'minimum'",
    ),
    ("format", _with_keyword(["properties", "channel"], "format", "uri"), "$.properties.channel.format", "'format'"),
    (
        "ref",
        _with_keyword(["properties", "created", "oneOf", 1], "$ref", "#/definitions/x"),
        "$.properties.created.oneOf[1].$ref",
        "'$ref'",
    ),
    ("definitions", _with_keyword([], "definitions", {}), "$.definitions", "'definitions'"),
    (
        "patternProperties",
        _with_keyword(["properties", "sender"], "patternProperties", {}),
        "$.properties.sender.patternProperties",
        "'patternProperties'",
    ),
    (
        "tuple-items",
        _with_keyword(["properties", "errors"], "items", [{"type": "string"}]),
        "$.properties.errors.items",
        "array of schemas",
    ),
    (
        "unknown-type",
        _with_keyword(["properties", "token"], "type", "text"),
        "$.properties.token.type",
        "unknown type 'text'",
    ),
    (
        "other-dialect",
        _with_keyword([], "$schema", "https://json-schema.org/draft/2020-12/schema"),
        "$.$schema",
        "draft-07",
    ),
    ("no-dialect", {k: v for k, v in MESSAGE_SCHEMA.items() if k != "$schema"}, "$.$schema", "draft-07"),
    ("not-a-schema", _with_keyword(["properties"], "body", 1), "$.properties.body", "object or a boolean"),
]


@pytest.mark.parametrize(("schema", "path", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_the_compiler_refuses_what_it_cannot_reproduce(schema: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(SchemaError) as info:
        compile_schema(schema)
    assert info.value.path == path
    assert message in info.value.message
    assert str(info.value).startswith(f"{path}: ")


def test_the_supported_keywords_are_what_the_real_schema_needs() -> None:
    assert MESSAGE_SCHEMA["$schema"] in DRAFT7
    compile_schema(MESSAGE_SCHEMA)  # does not raise


def test_the_generator_fails_on_an_unsupported_keyword(tmp_path: Path) -> None:
    bad = tmp_path / "message.json"
    bad.write_text(json.dumps(REFUSED[0][1]), encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "codegen", "--message-schema", str(bad), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"{bad}: unsupported message schema: $.properties.token.pattern: "), proc.stderr
    assert "unsupported keyword 'pattern'" in proc.stderr
    assert not out.exists(), "nothing is written from an unsupported schema"


# -- jsonschema is imported only to explain a rejected envelope --------------------------------------

VALID_RAW = json.dumps(VALID)
NO_HOST_RAW = json.dumps(_with(sender={"pid": 1}))
CREATED_TRUE_RAW = json.dumps(_with(created=True))


def run_script(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), VALID_RAW, NO_HOST_RAW, CREATED_TRUE_RAW],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_valid_envelope_does_not_import_jsonschema() -> None:
    proc = run_script(
        """
        import sys
        from beanstalkm._core import envelope as _envelope

        valid, no_host, created_true = (arg.encode() for arg in sys.argv[1:])
        calls = []
        generated = _envelope.is_valid

        def counting(value):
            calls.append(value)
            return generated(value)

        _envelope.is_valid = counting
        assert _envelope.VALIDATION.available()  # installed: validation is on by default
        for _ in range(50):
            decoded = _envelope.decode(valid, None)
            assert decoded.problem is None and decoded.envelope is not None
        assert len(calls) == 50
        assert "jsonschema" not in sys.modules
        assert _envelope.decode(no_host, False).problem is None  # validate=False never checks
        assert len(calls) == 50

        problem = _envelope.decode(no_host, None).problem
        assert len(calls) == 51
        assert "jsonschema" in sys.modules
        validator = _envelope.VALIDATION._validator
        assert validator is not None
        problem2 = _envelope.decode(created_true, True).problem
        assert _envelope.VALIDATION._validator is validator  # built once
        print(problem)
        print(problem2)
        """
    )
    assert proc.returncode == 0, proc.stderr
    problem, problem2 = proc.stdout.splitlines()
    assert problem == "$.sender: 'host' is a required property"
    assert problem2.startswith("$.created: True is not valid under any of the given schemas")


def test_without_jsonschema() -> None:
    proc = run_script(
        """
        import sys
        sys.modules["jsonschema"] = None  # not installed: find_spec is None, import raises ImportError
        from beanstalkm._core import envelope as _envelope

        valid, no_host, created_true = (arg.encode() for arg in sys.argv[1:])
        assert not _envelope.VALIDATION.available()
        assert _envelope.decode(valid, True).problem is None
        assert _envelope.decode(no_host, None).problem is None  # not checked by default
        assert _envelope.decode(no_host, None).body == {"a": [1, 2]}
        assert _envelope.decode(no_host, False).problem is None
        print(_envelope.decode(no_host, True).problem)  # forced: the generated check still decides
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == _envelope.VALIDATION.GENERIC
