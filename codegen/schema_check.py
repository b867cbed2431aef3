"""Compile the JSON Schema subset spec/message.json uses into a Python validity check.

The result is what ``jsonschema.Draft7Validator(schema).is_valid(value)`` returns,
for any Python value, as straight-line nested checks. Only the keywords whose
semantics are reproduced here are accepted; any other keyword makes compilation
fail with a :class:`SchemaError` naming its JSON path, so the fast check can
never silently disagree with jsonschema. Every decision is made here; the
template (``templates/envelope_check.py.jinja``) only prints the result.

jsonschema's semantics, reproduced exactly (``jsonschema/_types.py``,
``_keywords.py``, ``_legacy_keywords.py``, ``_utils.py``):

- types use ``isinstance``, so subclasses count: ``object`` is a ``dict``,
  ``array`` a ``list``, ``string`` a ``str``, ``boolean`` a ``bool``, ``null``
  is ``None``; ``integer`` is an ``int`` that is not a ``bool``, or a ``float``
  whose ``is_integer()`` is true; ``number`` is a ``numbers.Number`` that is
  not a ``bool``;
- ``required``, ``properties`` and ``additionalProperties`` apply only to
  objects, ``items`` only to arrays; ``additionalProperties`` applies to the
  keys not in ``properties``; members are tested with ``in`` and read with
  ``[]``, as jsonschema does;
- ``enum`` and ``const`` compare with jsonschema's ``equal`` (``True`` is not
  ``1``, recursively); ``anyOf`` means at least one branch is valid, ``oneOf``
  exactly one;
- ``true`` and ``{}`` accept anything, ``false`` nothing.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

ANNOTATIONS = frozenset({"$id", "$schema", "title", "description", "$comment", "default", "examples"})
"""Keywords that do not affect validity: ignored."""

KEYWORDS = frozenset(
    {"type", "required", "properties", "additionalProperties", "items", "oneOf", "anyOf", "enum", "const"}
)
"""The assertion keywords the compiler reproduces."""

DRAFT7 = frozenset({"http://json-schema.org/draft-07/schema#", "http://json-schema.org/draft-07/schema"})
"""The ``$schema`` values the root must have: jsonschema then validates with Draft7Validator."""

_CLASSES = {"object": "dict", "array": "list", "string": "str", "boolean": "bool"}
"""The types that are exactly ``isinstance`` of a class."""

_TYPE_CHECKS = {
    "null": "{v} is None",
    "integer": "(isinstance({v}, int) and not isinstance({v}, bool)) or (isinstance({v}, float) and {v}.is_integer())",
    # int and float first: the common cases skip the slower ABC check (both are Numbers anyway).
    "number": "not isinstance({v}, bool) and isinstance({v}, (int, float, Number))",
}

_PLAIN_KEY = re.compile(r"[A-Za-z_$@][\w$@-]*")
_SIMPLE = re.compile(r"[\w.]+(\(([\w., ]|\([\w., ]*\))*\))?")  # a name, or a call with plain arguments


class SchemaError(Exception):
    """The schema uses something the compiler does not reproduce; the message names the JSON path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


# -- the generated code, as data -------------------------------------------------------------


def _paren(expression: str) -> str:
    return expression if _SIMPLE.fullmatch(expression) else f"({expression})"


@dataclass(frozen=True)
class Test:
    """A boolean expression in both polarities (so negations read naturally and lint clean)."""

    true: str
    false: str

    @staticmethod
    def of(expression: str) -> Test:
        return Test(expression, f"not {_paren(expression)}")

    @staticmethod
    def all_of(tests: list[Test]) -> Test:
        if len(tests) == 1:
            return tests[0]
        return Test(" and ".join(_paren(t.true) for t in tests), " or ".join(_paren(t.false) for t in tests))


FALSE = Test("False", "True")
"""The test that never holds (the ``false`` schema)."""


@dataclass(frozen=True)
class Fail:
    """``if <not test>: return False``."""

    test: Test


@dataclass(frozen=True)
class Guard:
    """``if <test>: <body>``."""

    test: Test
    body: tuple[Statement, ...]


@dataclass(frozen=True)
class Bind:
    """``<name> = <value>``."""

    name: str
    value: str


@dataclass(frozen=True)
class Loop:
    """``for <target> in <iterable>: <body>``."""

    target: str
    iterable: str
    body: tuple[Statement, ...]


Statement = Fail | Guard | Bind | Loop


def _guard(test: Test, body: list[Statement]) -> list[Statement]:
    """``if test: body``, collapsed where ruff (SIM102) wants nested ifs merged."""
    if not body:
        return []
    if len(body) == 1:
        inner = body[0]
        if isinstance(inner, Fail):  # if g: (if not t: return False)  ->  if g and not t: return False
            return [
                Fail(
                    Test(
                        f"{_paren(test.false)} or {_paren(inner.test.true)}",
                        f"{_paren(test.true)} and {_paren(inner.test.false)}",
                    )
                )
            ]
        if isinstance(inner, Guard):
            return [Guard(Test.all_of([test, inner.test]), inner.body)]
    return [Guard(test, tuple(body))]


def _lines(statements: tuple[Statement, ...] | list[Statement]) -> list[str]:
    lines: list[str] = []
    for s in statements:
        if s == Fail(FALSE):
            lines.append("return False")
        elif isinstance(s, Fail):
            lines += [f"if {s.test.false}:", "    return False"]
        elif isinstance(s, Guard):
            lines += [f"if {s.test.true}:", *("    " + line for line in _lines(s.body))]
        elif isinstance(s, Bind):
            lines.append(f"{s.name} = {s.value}")
        else:
            lines += [f"for {s.target} in {s.iterable}:", *("    " + line for line in _lines(s.body))]
    return lines


def _function_body(statements: list[Statement]) -> tuple[str, ...]:
    """The statements then ``return True``, the last check folded into the return (ruff SIM103/SIM110)."""
    if statements:
        last = statements[-1]
        if isinstance(last, Loop) and len(last.body) == 1 and isinstance(last.body[0], Fail):
            each = last.body[0].test.true
            last = Fail(Test.of(f"all({each} for {last.target} in {last.iterable})"))
        if isinstance(last, Fail):
            return (*_lines(statements[:-1]), f"return {last.test.true}")
    return (*_lines(statements), "return True")


# -- the compiler ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Helper:
    """A generated ``def <name>(v: object) -> bool`` for a ``oneOf``/``anyOf`` branch."""

    name: str
    lines: tuple[str, ...]  # the body, relative indentation


@dataclass(frozen=True)
class Constant:
    """A module-level constant of the generated code."""

    name: str
    annotation: str
    value: str  # Python source


@dataclass(frozen=True)
class CompiledCheck:
    """Everything ``templates/envelope_check.py.jinja`` prints."""

    imports: tuple[str, ...]  # full import lines, in isort order ("" between sections)
    constants: tuple[Constant, ...]
    helpers: tuple[Helper, ...]
    parameter: str  # the name of is_valid's parameter
    body: tuple[str, ...]  # is_valid's body, relative indentation


def child(path: str, key: str | int) -> str:
    """The JSON path of ``key`` under ``path``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def python_literal(value: object, path: str) -> str:
    """Python source for a JSON value (as ``json.loads`` returns it)."""
    if value is None or isinstance(value, bool | int | str):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SchemaError(path, f"{value!r} is not a JSON number")
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(item, child(path, i)) for i, item in enumerate(value)) + "]"
    if isinstance(value, dict):
        items: list[str] = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise SchemaError(path, f"object key {key!r} is not a string")
            items.append(f"{key!r}: {python_literal(item, child(path, key))}")
        return "{" + ", ".join(items) + "}"
    raise SchemaError(path, f"{value!r} is not a JSON value")


@dataclass
class _Parts:
    """A schema compiled for one variable: tests that must all hold, then statements."""

    tests: list[Test]
    statements: list[Statement]

    @property
    def never(self) -> bool:
        """Nothing is valid (so the variable need not even be read)."""
        return FALSE in self.tests

    def all(self) -> list[Statement]:
        if self.never:
            return [Fail(FALSE)]
        return [*(Fail(t) for t in self.tests), *self.statements]

    def expression(self) -> str | None:
        """The whole check as one expression, if it needs no statements."""
        if self.never:
            return "False"
        if self.statements:
            return None
        return Test.all_of(self.tests).true if self.tests else "True"


class _Compiler:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self.constants: list[Constant] = []
        self.helpers: list[Helper] = []
        self.needs_equal = False
        self.needs_number = False

    def _name(self, prefix: str) -> str:
        self._counts[prefix] = count = self._counts.get(prefix, 0) + 1
        return f"{prefix}{count}"

    def _save(self) -> tuple[dict[str, int], int, int, bool, bool]:
        return dict(self._counts), len(self.constants), len(self.helpers), self.needs_equal, self.needs_number

    def _restore(self, saved: tuple[dict[str, int], int, int, bool, bool]) -> None:
        """Forget what was compiled since ``saved`` (names, constants, helpers, imports)."""
        self._counts = saved[0]
        del self.constants[saved[1] :], self.helpers[saved[2] :]
        self.needs_equal, self.needs_number = saved[3], saved[4]

    def _constant(self, prefix: str, annotation: str, value: str) -> str:
        name = self._name(prefix)
        self.constants.append(Constant(name, annotation, value))
        return name

    def statements(self, schema: object, var: str, path: str) -> list[Statement]:
        return self.compile(schema, var, path).all()

    def compile(self, schema: object, var: str, path: str) -> _Parts:
        if schema is True:
            return _Parts([], [])
        if schema is False:
            return _Parts([FALSE], [])
        if not isinstance(schema, dict):
            raise SchemaError(path, f"a schema is an object or a boolean, not {schema!r}")
        for keyword in schema:
            if keyword not in KEYWORDS and keyword not in ANNOTATIONS:
                raise SchemaError(
                    child(path, str(keyword)),
                    f"unsupported keyword {keyword!r}: the generated envelope check reproduces only "
                    f"{', '.join(sorted(KEYWORDS))} (and ignores {', '.join(sorted(ANNOTATIONS))})",
                )
        if "$schema" in schema and schema["$schema"] not in DRAFT7:
            raise SchemaError(child(path, "$schema"), f"unsupported dialect {schema['$schema']!r}: only draft-07")

        parts = _Parts([], [])
        types = self._types(schema, path)
        if types is not None:
            parts.tests.append(self._type_test(types, var))
        if "enum" in schema:
            epath = child(path, "enum")
            if not isinstance(schema["enum"], list):
                raise SchemaError(epath, "enum must be an array")
            values = "".join(python_literal(v, child(epath, i)) + ", " for i, v in enumerate(schema["enum"]))
            name = self._constant("_ENUM", "tuple[object, ...]", f"({values})")
            self.needs_equal = True
            parts.tests.append(Test.of(f"any(json_equal(each, {var}) for each in {name})"))
        if "const" in schema:
            name = self._constant("_CONST", "object", python_literal(schema["const"], child(path, "const")))
            self.needs_equal = True
            parts.tests.append(Test.of(f"json_equal({var}, {name})"))

        # Keywords that apply to one type only: unguarded when the type is known, dropped (once checked) when
        # the type excludes it.
        for kind, python_type, compile_keywords in (("object", "dict", self._object), ("array", "list", self._array)):
            saved = self._save()
            statements = compile_keywords(schema, var, path)
            if types == (kind,):
                parts.statements += statements
            elif types is None or kind in types:
                parts.statements += _guard(Test.of(f"isinstance({var}, {python_type})"), statements)
            else:
                self._restore(saved)

        for keyword in ("anyOf", "oneOf"):
            if keyword not in schema:
                continue
            branches = schema[keyword]
            kpath = child(path, keyword)
            if not isinstance(branches, list) or not branches:
                raise SchemaError(kpath, f"{keyword} must be a non-empty array of schemas")
            checks = [self._branch(branch, var, child(kpath, i)) for i, branch in enumerate(branches)]
            test = self._combine(keyword, checks)
            if test is not None:
                parts.tests.append(test)
        return parts

    @staticmethod
    def _combine(keyword: str, checks: list[str]) -> Test | None:
        """The test for anyOf/oneOf branch expressions (None: always holds); constant branches are folded."""
        always = checks.count("True")
        rest = [_paren(c) for c in checks if c not in {"True", "False"}]
        if keyword == "anyOf":
            if always:
                return None
            return Test.of(" or ".join(rest)) if rest else FALSE
        # oneOf: exactly one valid. jsonschema evaluates every branch, and so does this.
        wanted = 1 - always
        if wanted < 0 or (not rest and wanted):
            return FALSE
        if not rest:
            return None
        if len(rest) == 1:
            return Test.of(rest[0]) if wanted else Test(f"not {rest[0]}", rest[0])
        count = " + ".join(rest)
        return Test(f"{count} == {wanted}", f"{count} != {wanted}")

    def _types(self, schema: dict[str, object], path: str) -> tuple[str, ...] | None:
        if "type" not in schema:
            return None
        value = schema["type"]
        tpath = child(path, "type")
        names = value if isinstance(value, list) else [value]
        if not names:
            raise SchemaError(tpath, "type must name at least one type")
        checked: list[str] = []
        for i, name in enumerate(names):
            if not isinstance(name, str) or (name not in _CLASSES and name not in _TYPE_CHECKS):
                where = child(tpath, i) if isinstance(value, list) else tpath
                known = ", ".join(sorted([*_CLASSES, *_TYPE_CHECKS]))
                raise SchemaError(where, f"unknown type {name!r}; known: {known}")
            if name not in checked:
                checked.append(name)
        return tuple(checked)

    def _type_test(self, types: tuple[str, ...], var: str) -> Test:
        if "number" in types:
            self.needs_number = True
        if types == ("null",):
            return Test(f"{var} is None", f"{var} is not None")
        # One isinstance for the plain classes (ruff SIM101), then the rest.
        classes = [_CLASSES[t] for t in types if t in _CLASSES]
        checks = [_TYPE_CHECKS[t].format(v=var) for t in types if t not in _CLASSES]
        if len(classes) == 1:
            checks.insert(0, f"isinstance({var}, {classes[0]})")
        elif classes:
            checks.insert(0, f"isinstance({var}, ({', '.join(classes)}))")
        return Test.of(" or ".join(_paren(c) for c in checks))

    def _object(self, schema: dict[str, object], var: str, path: str) -> list[Statement]:
        """required, properties, additionalProperties, for a ``var`` known to be a dict."""
        statements: list[Statement] = []
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise SchemaError(child(path, "required"), "required must be an array of strings")
        for key in dict.fromkeys(required):
            statements.append(Fail(Test(f"{key!r} in {var}", f"{key!r} not in {var}")))

        properties = schema.get("properties", {})
        ppath = child(path, "properties")
        if not isinstance(properties, dict):
            raise SchemaError(ppath, "properties must be an object")
        for key, subschema in properties.items():
            if not isinstance(key, str):
                raise SchemaError(ppath, f"property name {key!r} is not a string")
            item = self._name("v")
            parts = self.compile(subschema, item, child(ppath, key))
            sub = parts.all()
            if parts.never:
                statements.append(Fail(Test(f"{key!r} not in {var}", f"{key!r} in {var}")))
            elif sub and key in required:  # known present: read it without testing again
                statements += [Bind(item, f"{var}[{key!r}]"), *sub]
            elif sub:
                statements += _guard(Test.of(f"{key!r} in {var}"), [Bind(item, f"{var}[{key!r}]"), *sub])

        if "additionalProperties" in schema:
            item = self._name("v")
            extra = self.compile(schema["additionalProperties"], item, child(path, "additionalProperties"))
            if extra.all():
                names = "".join(f"{k!r}, " for k in properties)
                known = self._constant("_KNOWN", "frozenset[str]", f"frozenset(({names}))")
                if extra.never:  # no key beyond properties
                    statements.append(Fail(Test.of(f"{known}.issuperset({var})")))
                else:
                    key = self._name("k")
                    body = _guard(
                        Test(f"{key} not in {known}", f"{key} in {known}"), [Bind(item, f"{var}[{key}]"), *extra.all()]
                    )
                    statements.append(Loop(key, var, tuple(body)))
        return statements

    def _array(self, schema: dict[str, object], var: str, path: str) -> list[Statement]:
        """items (a single schema), for a ``var`` known to be a list."""
        if "items" not in schema:
            return []
        ipath = child(path, "items")
        if isinstance(schema["items"], list):
            raise SchemaError(ipath, "items as an array of schemas (tuple validation) is not supported")
        item = self._name("v")
        parts = self.compile(schema["items"], item, ipath)
        if parts.never:  # no items at all (tested by iterating, as jsonschema does)
            return [Fail(Test.of(f"all(False for _ in {var})"))]
        sub = parts.all()
        return [Loop(item, var, tuple(sub))] if sub else []

    def _branch(self, schema: object, var: str, path: str) -> str:
        """An expression for a ``oneOf``/``anyOf`` branch: inline when it can be, else a helper call."""
        saved = self._save()
        expression = self.compile(schema, var, path).expression()
        if expression is not None:
            return expression
        # Needs statements: compile again, for a helper's parameter, forgetting the first pass.
        self._restore(saved)
        name = self._name("_check")
        body = _function_body(self.statements(schema, "v", path))
        self.helpers.append(Helper(name, body))
        return f"{name}({var})"


def compile_schema(schema: object, parameter: str = "value") -> CompiledCheck:
    """Compile ``schema`` (draft-07, the supported subset) into the parts of ``is_valid(value: object) -> bool``."""
    if not isinstance(schema, dict) or schema.get("$schema") not in DRAFT7:
        raise SchemaError("$.$schema", "the root must declare draft-07, the dialect jsonschema then validates with")
    compiler = _Compiler()
    body = _function_body(compiler.statements(schema, parameter, "$"))
    standard = ["from numbers import Number"] if compiler.needs_number else []
    # jsonschema's equal (enum, const) is hand-written run-time code, not generated
    ours = ["from beanstalkm._json_equal import json_equal"] if compiler.needs_equal else []
    return CompiledCheck(
        imports=(*standard, *([""] if standard and ours else []), *ours),
        constants=tuple(compiler.constants),
        helpers=tuple(compiler.helpers),
        parameter=parameter,
        body=body,
    )
