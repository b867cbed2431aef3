"""The frozen, typed model the templates read. Every decision is made here, in
tested Python; the templates only print attributes."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jsonschema

from codegen.naming import class_name, python_name

# Digits of the largest value each argument type allows, to bound command lines.
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def pybytes(text: str) -> str:
    """A Python bytes literal for ASCII ``text``."""
    if not text.isascii():
        raise ValueError(f"command lines are ASCII: {text!r}")
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")
    return f'b"{body}"'


RESERVED_COMMAND_NAMES = frozenset(
    {
        # helpers the generated commands module imports or defines
        "annotations",
        "check_arity",
        "check_body",
        "check_uint",
        "fail",
        "new_reader",
        "parse_list",
        "quick_bare",
        "quick_int",
        "quick_job",
        "reply_body",
        "reply_int",
        "reply_job",
        "reply_str",
        "reply_text",
        "with_body",
        # members of the classes that carry one method per command
        "execute",
        "results",
    }
)
"""Lower-case names a command may not take: the generated modules and classes use them already."""


class SpecError(Exception):
    """spec/api.json is invalid; the message names the JSON path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class ArgType:
    name: str
    kind: str  # uint | tube | body
    min: int
    max: int
    description: str

    @property
    def python_type(self) -> str:
        return {"uint": "int", "tube": "str", "body": "bytes | str"}[self.kind]

    @property
    def line_width(self) -> int:
        """Most bytes a value of this type takes on the command line."""
        return {"uint": len(str(self.max)), "tube": 0, "body": 0}[self.kind]


@dataclass(frozen=True)
class Arg:
    name: str
    type: ArgType
    description: str
    default_constant: str | None

    @property
    def python_type(self) -> str:
        return self.type.python_type

    @property
    def signature(self) -> str:
        if self.default_constant is None:
            return f"{self.name}: {self.python_type}"
        return f"{self.name}: {self.python_type} = {self.default_constant}"

    @property
    def check(self) -> str:
        """The statement that validates the argument (and binds its checked value)."""
        kind = self.type.kind
        n, low, high = self.name, self.type.min, self.type.max
        if kind == "uint":  # a valid int costs no call
            checked = f'{n} = check_uint("{n}", {n}, {low}, {high})'
            return f"if type({n}) is not int or not {low} <= {n} <= {high}:\n        {checked}"
        if kind == "tube":
            return f'{n} = TUBE_RULE.check("{n}", {n})'
        return f'data = {n} if type({n}) is bytes else check_body("{n}", {n})'

    @property
    def format_value(self) -> str:
        """The expression %-formatted into the command line."""
        return f'{self.name}.encode("ascii")' if self.type.kind == "tube" else self.name

    @property
    def format_code(self) -> str:
        return "%b" if self.type.kind == "tube" else "%d"


@dataclass(frozen=True)
class ReplyArg:
    name: str
    description: str


@dataclass(frozen=True)
class Failure:
    status: str
    description: str
    returns_none: bool
    error_class: str
    general: bool


@dataclass(frozen=True)
class ErrorClass:
    status: str
    name: str
    description: str
    int_args: tuple[tuple[str, int], ...]  # (name, position) of reply arguments a failure carries, as int | None


@dataclass(frozen=True)
class StatsField:
    key: str
    attr: str
    kind: str  # int | decimal | bool | str | enum
    ctype: str
    values: tuple[str, ...]
    description: str
    owner: str

    @property
    def python_type(self) -> str:
        if self.kind == "enum":
            return "Literal[" + ", ".join(json.dumps(v) for v in self.values) + "]"
        return {"int": "int", "decimal": "Decimal", "bool": "bool", "str": "str"}[self.kind]

    @property
    def enum_table(self) -> str:
        return f"_{self.owner.upper()}_{self.attr.upper()}"

    @property
    def convert(self) -> str:
        if self.kind == "enum":
            return f'to_enum(raw, "{self.key}", {self.enum_table})'
        return f'to_{self.kind}(raw, "{self.key}")'

    @property
    def flat_kind(self) -> str:
        """The field's kind for ``flat_form``: the kind's name, or an enum's table of values."""
        return self.enum_table if self.kind == "enum" else json.dumps(self.kind)

    def fast_convert(self, values: str, index: int) -> str:
        """The expression converting ``values[index]`` (the server's text, in the flat form already
        checked against the field's kind) to the field's value."""
        text = f"{values}[{index}]"
        return {
            "int": f"int({text})",
            "decimal": f"Decimal({text})",
            "bool": f'{text} == "true"',
            "str": f"unquote({text})",
            "enum": f"{self.enum_table}[{text}]",
        }[self.kind]


@dataclass(frozen=True)
class StatsType:
    name: str
    description: str
    fields: tuple[StatsField, ...]

    @property
    def enum_fields(self) -> tuple[StatsField, ...]:
        return tuple(f for f in self.fields if f.kind == "enum")

    @property
    def values_alias(self) -> str:
        """The name of the generated tuple type of every field's value, in order."""
        return f"_{self.name.upper()}_VALUES"

    @property
    def builder(self) -> str:
        """The name of the generated builder of an instance from those values (``slots_builder``)."""
        return f"_{self.name.upper()}_BUILD"


@dataclass(frozen=True)
class Command:
    wire: str
    name: str
    description: str
    args: tuple[Arg, ...]
    line_format: str  # bytes %-format of the whole request
    line_values: tuple[str, ...]
    uses_tube: bool
    effect: str | None
    effect_tube: str | None
    wait: str  # Python expression for Request.wait
    no_reply: bool
    success_status: str | None
    success_args: tuple[ReplyArg, ...]
    returns: str  # none | int | str | job | list | stats | yaml
    stats: str | None
    failures: tuple[Failure, ...]  # own failures, then the general errors
    raw_of: str | None  # for a *_yaml variant: the command it mirrors

    @property
    def data_expr(self) -> str:
        """The expression that builds the request bytes."""
        if not self.line_values:
            return pybytes(self.line_format.replace("%%", "%"))
        values = ", ".join(self.line_values)
        return f"{pybytes(self.line_format)} % ({values}{',' if len(self.line_values) == 1 else ''})"

    @property
    def has_body(self) -> bool:
        return any(a.type.kind == "body" for a in self.args)

    @property
    def head_expr(self) -> str:
        """For a command with a body: the expression that builds its command line alone (the body goes apart)."""
        fmt, values = self.line_format.removesuffix("%b\r\n"), [v for v in self.line_values if v != "data"]
        return f"{pybytes(fmt)} % ({', '.join(values)}{',' if len(values) == 1 else ''})"

    @property
    def request_options(self) -> str:
        """The arguments of ``Request(...)`` after ``decode``, positional (a keyword costs a call more
        time): ``body``, ``uses_tube``, ``effect``, ``tube``, ``wait``, ``expects_reply``, ``quick``,
        up to the last that is not its default."""
        return self.options("None")

    @property
    def apart_options(self) -> str:
        """``request_options`` of the request whose body (``data``) is kept apart from its line."""
        return self.options("data")

    def options(self, body: str) -> str:
        opts = [
            body,
            "True" if self.uses_tube else "False",
            "None" if self.effect is None else f"Effect.{self.effect.upper()}",
            "None" if self.effect_tube is None else self.effect_tube,
            self.wait,
            "False" if self.no_reply else "True",
            self.quick_name or "None",
        ]
        defaults = ["None", "False", "None", "None", "0.0", "True", "None"]
        while opts and opts[-1] == defaults[len(opts) - 1]:
            opts.pop()
        return "".join(", " + o for o in opts)

    @property
    def direct(self) -> bool:
        """Whether the command changes no connection state, never waits and always gets a reply: a
        queue method hands its bytes straight to the connection (``_direct``, with ``direct_name``)."""
        return self.effect is None and self.wait == "0.0" and not self.no_reply

    @property
    def format_name(self) -> str:
        """The module constant of its bytes' %-format (for a direct command with arguments)."""
        return f"{self.name.upper()}_FORMAT"

    @property
    def format_literal(self) -> str:
        """Its bytes' %-format, as a literal (``data_expr`` applies it to the arguments)."""
        return pybytes(self.line_format)

    @property
    def direct_name(self) -> str:
        """The module constant of its ``Command`` (what every call of it shares)."""
        return f"{self.name.upper()}_COMMAND"

    @property
    def quick_expr(self) -> str | None:
        """Its quick decoder (``beanstalkm._core.requests.Quick``), made by one of the core's
        ``beanstalkm._core.decoders.quick_*``, for a command that changes no connection state (a
        reserve included) whose usual success reply is a bare status, a status and an integer, or a
        job. None for any other command."""
        if self.effect not in (None, "reserve") or self.no_reply or self.success_status is None:
            return None
        status, arity = self.success_status, len(self.success_args)
        if self.returns == "none" and arity == 0:
            return f'quick_bare("{status}")'
        if self.returns == "int" and arity == 1:
            return f'quick_int("{status}", REPLY_LINE_MAX)'
        if self.returns == "job" and arity == 2:
            return f'quick_job("{status}", REPLY_LINE_MAX)'
        return None

    @property
    def quick_name(self) -> str | None:
        """The name of its quick decoder (``beanstalkm._core.requests.Quick``), if it has one."""
        return None if self.quick_expr is None else f"_quick_{self.name}"

    @property
    def decode_name(self) -> str:
        return f"_decode_{self.name}"

    @property
    def own_raised(self) -> tuple[Failure, ...]:
        """The command's own failure statuses that raise (the general ones are shared)."""
        return tuple(f for f in self.failures if not f.returns_none and not f.general)

    @property
    def failures_name(self) -> str:
        """The table of statuses this command raises on: its own plus the general errors."""
        return f"_{self.name.upper()}_FAILURES" if self.own_raised else "GENERAL_FAILURES"

    @property
    def signature(self) -> str:
        return ", ".join(a.signature for a in self.args)

    @property
    def call_args(self) -> str:
        return ", ".join(a.name for a in self.args)

    @property
    def none_statuses(self) -> tuple[str, ...]:
        return tuple(f.status for f in self.failures if f.returns_none)

    @property
    def raised(self) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if not f.returns_none)

    @property
    def decoded_type(self) -> str:
        """What the pure decoder returns."""
        base = {
            "none": "None",
            "int": "int",
            "str": "str",
            "job": "Job",
            "list": "list[str]",
            "yaml": "str",
            "stats": self.stats or "",
        }[self.returns]
        if self.none_statuses and base != "None":
            return f"{base} | None"
        return base

    def result_type(self, message_class: str) -> str:
        """What a connection's method returns (jobs become messages)."""
        if self.returns != "job":
            return self.decoded_type
        return f"{message_class} | None" if self.none_statuses else message_class

    @property
    def wrap(self) -> str:
        """Which method of the core's ``QueueDriver`` protocol turns the decoded job into the result."""
        if self.returns != "job":
            return ""
        if self.effect == "reserve":
            return QUEUE_DRIVER["reserved"]
        return QUEUE_DRIVER["message_or_none"] if self.none_statuses else QUEUE_DRIVER["message"]

    @property
    def decode_body(self) -> str:
        """The expression returned on success."""
        return {
            "none": "None",
            "int": "reply_int(reply, 0)",
            "str": "reply_str(reply, 0)",
            "job": "reply_job(reply)",
            "list": "parse_list(reply_body(reply))",
            "yaml": "reply_text(reply)",
            "stats": f"{self.stats}.from_yaml(reply_body(reply))",
        }[self.returns]

    @property
    def quick(self) -> tuple[str, str]:
        """The usual success reply's test and value, decoded inline (no call); anything else goes to
        ``check_arity`` and ``decode_body``, which decide (the same value, or the error)."""
        arity = f"len(reply.args) == {len(self.success_args)}"
        framed = f"{arity} and reply.trailer is None and reply.body is not None"
        return {
            "none": (arity, "None"),
            "int": (f"{arity} and reply.args[0].isdigit()", "int(reply.args[0])"),
            "str": (arity, "reply.args[0]"),
            "job": (f"{framed} and reply.args[0].isdigit()", "tuple.__new__(Job, (int(reply.args[0]), reply.body))"),
            "list": (framed, "parse_list(reply.body)"),
            "yaml": (framed, 'reply.body.decode("utf-8", "surrogateescape")'),
            "stats": (framed, f"{self.stats}.from_yaml(reply.body)"),
        }[self.returns]

    @property
    def returns_doc(self) -> str:
        return {
            "none": "None.",
            "int": self.success_args[0].description if self.success_args else "An integer.",
            "str": self.success_args[0].description if self.success_args else "Text.",
            "job": "The job as a message.",
            "list": "The names, as the server lists them.",
            "yaml": "The server's YAML text, unparsed.",
            "stats": f"The typed statistics ({self.stats}).",
        }[self.returns]


QUEUE_DRIVER = {
    "execute": "_execute",
    "direct": "_direct",
    "message": "_message",
    "message_or_none": "_message_or_none",
    "reserved": "_reserved_message",
}
"""The members of ``beanstalkm._core.base.QueueDriver`` (and ``AsyncQueueDriver``), the protocol a generated
queue calls on its connection; a test checks that the protocol declares each of them."""


@dataclass(frozen=True)
class Effect:
    """One word of the effect vocabulary: its wire value and the ``Effect`` member's name."""

    value: str
    member: str


@dataclass(frozen=True)
class Spec:
    path: str
    sha256: str
    protocol_name: str
    protocol_version: str
    command_line_max: int
    reply_line_max: int
    body_max: int
    tube_name_max: int
    tube_name_chars: str
    errors: tuple[ErrorClass, ...]
    general_errors: tuple[str, ...]
    commands: tuple[Command, ...]  # protocol commands then raw YAML variants
    stats: tuple[StatsType, ...]
    body_statuses: tuple[str, ...]
    defaults: tuple[tuple[str, int], ...]
    effects: tuple[Effect, ...]  # the vocabulary of $.commands[].effect, from the schema's enum

    @property
    def general_failures(self) -> tuple[tuple[str, str], ...]:
        """(status, class name) of the general errors, raised by every command."""
        by_status = {e.status: e.name for e in self.errors}
        return tuple((status, by_status[status]) for status in self.general_errors)

    @property
    def uses_effects(self) -> bool:
        """Whether any command has an effect (the encoders then name ``Effect``)."""
        return any(c.effect is not None for c in self.commands)

    @property
    def yaml_statuses(self) -> tuple[str, ...]:
        """The body statuses whose body is YAML (stats, a list of names), not a job."""
        return tuple(
            sorted({c.success_status for c in self.commands if c.success_status and c.returns in {"list", "stats"}})
        )

    @property
    def protocol_commands(self) -> tuple[Command, ...]:
        return tuple(c for c in self.commands if c.raw_of is None)


def _validate(data: object, schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        first = errors[0]
        raise SpecError(first.json_path, first.message + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))


def load(spec_path: Path, schema_path: Path) -> Spec:
    """Read, validate and model spec/api.json."""
    raw = spec_path.read_bytes()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SpecError("$", f"not valid JSON: {exc}") from None
    schema = json.loads(schema_path.read_text())
    _validate(data, schema)
    return build(data, str(spec_path.as_posix()), hashlib.sha256(raw).hexdigest(), _effects(schema))


def _effects(schema: dict[str, Any]) -> tuple[Effect, ...]:
    """The effect vocabulary the schema allows, in its order, with its description."""
    effect = schema["$defs"]["command"]["properties"]["effect"]
    return tuple(Effect(value, value.upper()) for value in effect["enum"])


def _reply_args(items: list[dict[str, Any]]) -> tuple[ReplyArg, ...]:
    return tuple(ReplyArg(a["name"], a["description"]) for a in items)


@dataclass
class _Registry:
    """What the builders share and gather while they walk the spec, in spec order."""

    limits: dict[str, Any]
    types: dict[str, ArgType]
    statuses: dict[str, dict[str, str]]
    general: tuple[str, ...]
    stats_names: frozenset[str]
    command_names: dict[str, int] = field(default_factory=dict)  # name -> index in $.commands
    wire_names: dict[str, int] = field(default_factory=dict)
    defaults: dict[str, int] = field(default_factory=dict)  # constant -> value
    error_args: dict[str, dict[str, int]] = field(default_factory=dict)  # status -> argument -> position
    body_statuses: set[str] = field(default_factory=set)


def build(data: dict[str, Any], path: str, sha256: str, effects: tuple[Effect, ...] = ()) -> Spec:
    """Build the model from validated spec data; semantic errors name their JSON path."""
    statuses: dict[str, dict[str, str]] = data["statuses"]
    registry = _Registry(
        limits=data["limits"],
        types=_arg_types(data["types"]),
        statuses=statuses,
        general=_general_errors(data["general_errors"], statuses),
        stats_names=frozenset(data["stats"]),
        error_args={status: {} for status in statuses},
    )
    _check_class_names_unique(statuses)
    commands = tuple(_command(c, ci, registry) for ci, c in enumerate(data["commands"]))
    raws = _raw_variants(commands, registry.command_names)
    stats_types = tuple(_stats_type(name, st, f"$.stats.{name}") for name, st in data["stats"].items())
    errors = _error_classes(statuses, registry.error_args)
    return _spec(data, path, sha256, registry, errors, commands + raws, stats_types, effects)


def _spec(
    data: dict[str, Any],
    path: str,
    sha256: str,
    registry: _Registry,
    errors: tuple[ErrorClass, ...],
    commands: tuple[Command, ...],
    stats_types: tuple[StatsType, ...],
    effects: tuple[Effect, ...],
) -> Spec:
    limits = registry.limits
    return Spec(
        path=path,
        sha256=sha256,
        protocol_name=data["protocol"]["name"],
        protocol_version=data["protocol"]["version"],
        command_line_max=limits["command_line_max"],
        reply_line_max=limits["reply_line_max"],
        body_max=limits["body_max"],
        tube_name_max=limits["tube_name_max"],
        tube_name_chars=limits["tube_name_chars"],
        errors=errors,
        general_errors=registry.general,
        commands=commands,
        stats=stats_types,
        body_statuses=tuple(sorted(registry.body_statuses)),
        defaults=tuple(sorted(registry.defaults.items())),
        effects=effects,
    )


# -- $.types, $.statuses, $.general_errors -----------------------------------------------------------


def _arg_types(items: dict[str, dict[str, Any]]) -> dict[str, ArgType]:
    return {name: _arg_type(name, t, f"$.types.{name}") for name, t in items.items()}


def _arg_type(name: str, t: dict[str, Any], tpath: str) -> ArgType:
    if t["kind"] == "uint" and t["min"] > t["max"]:
        raise SpecError(tpath, f"min {t['min']} is above max {t['max']}")
    return ArgType(name, t["kind"], t.get("min", 0), t.get("max", 0), t["description"])


def _general_errors(items: list[str], statuses: dict[str, dict[str, str]]) -> tuple[str, ...]:
    for i, status in enumerate(items):
        if status not in statuses:
            raise SpecError(f"$.general_errors[{i}]", f"status {status!r} is not defined in $.statuses")
    return tuple(items)


def _check_class_names_unique(statuses: dict[str, dict[str, str]]) -> None:
    class_names: dict[str, str] = {}
    for status, info in statuses.items():
        if info["class"] in class_names:
            raise SpecError(
                f"$.statuses.{status}.class", f"class {info['class']!r} is also used by {class_names[info['class']]}"
            )
        class_names[info["class"]] = status


def _error_classes(
    statuses: dict[str, dict[str, str]], error_args: dict[str, dict[str, int]]
) -> tuple[ErrorClass, ...]:
    errors = tuple(
        ErrorClass(status, info["class"], info["description"], tuple(sorted(error_args[status].items())))
        for status, info in statuses.items()
    )
    for e in errors:
        if class_name(e.status) != e.name and not e.name[0].isupper():
            raise SpecError(f"$.statuses.{e.status}.class", "class names are CapWords")
    return errors


# -- $.commands[i] ------------------------------------------------------------------------------------


def _command(c: dict[str, Any], index: int, registry: _Registry) -> Command:
    cpath = f"$.commands[{index}]"
    _check_command_names(c, index, registry)
    args = _args(c["args"], cpath, registry)
    line_format, line_values = _line(c, args, f"{cpath}.line", registry.limits)
    effect, effect_tube = _effect(c, args, f"{cpath}.effect")
    wait = _wait(c.get("blocks"), args, f"{cpath}.blocks")
    returns, success_status, success_args, stats, failures = _outcome(c, c.get("success"), cpath, registry)
    return Command(
        wire=c["wire"],
        name=c["name"],
        description=c["description"],
        args=args,
        line_format=line_format,
        line_values=line_values,
        uses_tube=bool(c.get("uses_tube", False)),
        effect=effect,
        effect_tube=effect_tube,
        wait=wait,
        no_reply=bool(c.get("no_reply", False)),
        success_status=success_status,
        success_args=success_args,
        returns=returns,
        stats=stats,
        failures=failures,
        raw_of=None,
    )


def _check_command_names(c: dict[str, Any], index: int, registry: _Registry) -> None:
    """A command's name and wire name are unique, and its name is free in the generated code."""
    cpath, name, wire = f"$.commands[{index}]", c["name"], c["wire"]
    if name in registry.command_names:
        raise SpecError(f"{cpath}.name", f"{name!r} is also the name of $.commands[{registry.command_names[name]}]")
    if wire in registry.wire_names:
        raise SpecError(f"{cpath}.wire", f"{wire!r} is also the wire name of $.commands[{registry.wire_names[wire]}]")
    registry.command_names[name] = index
    registry.wire_names[wire] = index
    if python_name(name) != name:
        raise SpecError(f"{cpath}.name", f"{name!r} is a Python keyword or reserved name")
    if name in RESERVED_COMMAND_NAMES or name.removesuffix("_yaml") in RESERVED_COMMAND_NAMES:
        raise SpecError(f"{cpath}.name", f"{name!r} would clash with a name the generated code uses")


def _args(items: list[dict[str, Any]], cpath: str, registry: _Registry) -> tuple[Arg, ...]:
    args: list[Arg] = []
    for ai, a in enumerate(items):
        args.append(_arg(a, args, f"{cpath}.args[{ai}]", registry))
    if sum(1 for a in args if a.type.kind == "body") > 1:
        raise SpecError(f"{cpath}.args", "a command sends at most one body")
    return tuple(args)


def _arg(a: dict[str, Any], before: list[Arg], apath: str, registry: _Registry) -> Arg:
    """One argument; ``before`` are the command's arguments already built."""
    types = registry.types
    if a["type"] not in types:
        raise SpecError(f"{apath}.type", f"unknown type {a['type']!r}; known: {sorted(types)}")
    if any(b.name == a["name"] for b in before):
        raise SpecError(f"{apath}.name", f"duplicate argument {a['name']!r}")
    if a["name"] in {"data", "self", "reply"}:
        raise SpecError(f"{apath}.name", f"{a['name']!r} is reserved in generated code")
    default = a.get("default")
    if default is None and before and before[-1].default_constant is not None:
        raise SpecError(apath, "an argument without a default follows one with a default")
    t = types[a["type"]]
    if default is not None:
        _check_default(default, t, a["type"], apath, registry.defaults)
    return Arg(a["name"], t, a["description"], None if default is None else default["constant"])


def _check_default(default: dict[str, Any], t: ArgType, type_name: str, apath: str, defaults: dict[str, int]) -> None:
    """A default is a valid value of its type, and its constant means the same value everywhere."""
    if t.kind != "uint" or not t.min <= default["value"] <= t.max:
        raise SpecError(f"{apath}.default.value", f"{default['value']} is not a valid {type_name}")
    known = defaults.setdefault(default["constant"], default["value"])
    if known != default["value"]:
        raise SpecError(f"{apath}.default", f"{default['constant']} is {known} elsewhere")


def _line(c: dict[str, Any], args: tuple[Arg, ...], lpath: str, limits: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The %-format of the whole request and the expressions formatted into it."""
    line = c["line"]
    if not line.startswith(c["wire"]):
        raise SpecError(lpath, f"{line!r} does not start with the wire name {c['wire']!r}")
    placeholders = _placeholders(line, args, lpath)
    by_name = {a.name: a for a in args}
    fmt = line.replace("%", "%%")
    for p in placeholders:
        fmt = fmt.replace("{" + p + "}", by_name[p].format_code, 1)
    values = [by_name[p].format_value for p in placeholders]
    has_body = any(a.type.kind == "body" for a in args)
    _check_line_width(line, [by_name[p].type for p in placeholders], has_body, lpath, limits)
    if has_body:
        return fmt + " %d\r\n%b\r\n", (*values, "len(data)", "data")
    return fmt + "\r\n", tuple(values)


def _placeholders(line: str, args: tuple[Arg, ...], lpath: str) -> list[str]:
    """The line's placeholders: they name the non-body arguments, each once."""
    placeholders: list[str] = _PLACEHOLDER.findall(line)
    line_args = [a.name for a in args if a.type.kind != "body"]
    if sorted(placeholders) != sorted(line_args):
        raise SpecError(lpath, f"placeholders {placeholders} do not match the arguments {line_args}")
    return placeholders


def _check_line_width(line: str, types: list[ArgType], has_body: bool, lpath: str, limits: dict[str, Any]) -> None:
    """The longest command line the arguments can make fits the server's command_line_max."""
    max_line = len(_PLACEHOLDER.sub("", line)) + 2
    for t in types:
        max_line += limits["tube_name_max"] if t.kind == "tube" else t.line_width
    if has_body:
        max_line += 1 + len(str(limits["body_max"]))
    if max_line > limits["command_line_max"]:
        raise SpecError(lpath, f"can reach {max_line} bytes, over command_line_max {limits['command_line_max']}")


def _effect(c: dict[str, Any], args: tuple[Arg, ...], epath: str) -> tuple[str | None, str | None]:
    """The command's effect on the connection, and the tube argument a use/watch/ignore names."""
    effect = c.get("effect")
    tube_args = [a.name for a in args if a.type.kind == "tube"]
    if effect == "reserve" and (c.get("success") or {}).get("returns") != "job":
        raise SpecError(epath, "effect 'reserve' needs a success that returns a job")
    if effect == "reserve" and any(f.get("returns_none") for f in c.get("failures", [])):
        raise SpecError(epath, "a reserving command cannot return None")
    if effect in {"use", "watch", "ignore"}:
        if len(tube_args) != 1:
            raise SpecError(epath, f"effect {effect!r} needs exactly one tube argument")
        return effect, tube_args[0]
    return effect, None


def _wait(blocks: str | None, args: tuple[Arg, ...], bpath: str) -> str:
    """The Python expression for ``Request.wait``: how long the server may hold the reply."""
    if blocks is None:
        return "0.0"
    if blocks == "forever":
        return "None"
    if any(a.name == blocks and a.type.kind == "uint" for a in args):
        return f"float({blocks})"
    raise SpecError(bpath, f"{blocks!r} is neither 'forever' nor an integer argument")


def _outcome(
    c: dict[str, Any], success: dict[str, Any] | None, cpath: str, registry: _Registry
) -> tuple[str, str | None, tuple[ReplyArg, ...], str | None, tuple[Failure, ...]]:
    """What the command returns, its success status and reply arguments, its stats type, and its failures."""
    if success is None:
        return "none", None, (), None, ()
    returns = _success_returns(success, f"{cpath}.success", registry)
    failures = _failures(c["failures"], success["status"], cpath, registry)
    return returns, success["status"], _reply_args(success["args"]), success.get("stats"), failures


def _success_returns(success: dict[str, Any], spath: str, registry: _Registry) -> str:
    returns: str = success["returns"]
    if returns == "stats" and success["stats"] not in registry.stats_names:
        raise SpecError(f"{spath}.stats", f"unknown stats type {success['stats']!r}")
    if returns in {"int", "str"} and not success["args"]:
        raise SpecError(f"{spath}.args", f"returns {returns!r} needs a reply argument")
    if returns in {"job", "list", "stats"}:
        registry.body_statuses.add(success["status"])
    return returns


def _failures(items: list[dict[str, Any]], success_status: str, cpath: str, registry: _Registry) -> tuple[Failure, ...]:
    """The command's own failures, then the general errors."""
    own: list[Failure] = []
    for fi, f in enumerate(items):
        own.append(_failure(f, own, success_status, f"{cpath}.failures[{fi}]", registry))
    general = (
        Failure(status, registry.statuses[status]["description"], False, registry.statuses[status]["class"], True)
        for status in registry.general
    )
    return (*own, *general)


def _failure(f: dict[str, Any], before: list[Failure], success_status: str, fpath: str, registry: _Registry) -> Failure:
    """One of a command's own failures; ``before`` are the ones already built."""
    status = f["status"]
    if status not in registry.statuses:
        raise SpecError(f"{fpath}.status", f"status {status!r} is not defined in $.statuses")
    if status in registry.general:
        raise SpecError(f"{fpath}.status", f"{status!r} is a general error; it is merged in already")
    if status == success_status:
        raise SpecError(f"{fpath}.status", f"{status!r} is also this command's success")
    if any(b.status == status for b in before):
        raise SpecError(f"{fpath}.status", f"duplicate failure {status!r}")
    _record_error_args(f.get("args", []), fpath, registry.error_args[status])
    return Failure(
        status, f["description"], bool(f.get("returns_none", False)), registry.statuses[status]["class"], False
    )


def _record_error_args(items: list[dict[str, Any]], fpath: str, positions: dict[str, int]) -> None:
    """A status's reply arguments sit at the same position in every command that gets it."""
    for position, a in enumerate(items):
        known_position = positions.setdefault(a["name"], position)
        if known_position != position:
            raise SpecError(f"{fpath}.args[{position}]", f"{a['name']!r} is argument {known_position + 1} elsewhere")


def _raw_variants(commands: tuple[Command, ...], command_names: dict[str, int]) -> tuple[Command, ...]:
    """A ``*_yaml`` variant of each command that returns YAML, unparsed; its name must be free."""
    raws = tuple(_raw_variant(c) for c in commands if c.returns in {"list", "stats"})
    for raw in raws:
        if raw.name in command_names:
            raise SpecError(
                f"$.commands[{command_names[raw.name]}].name",
                f"{raw.name!r} clashes with the raw YAML variant of {raw.raw_of!r}",
            )
    return raws


def _raw_variant(cmd: Command) -> Command:
    return replace(
        cmd,
        name=cmd.name + "_yaml",
        description=f"{cmd.description} Raw mode: the server's YAML text, unparsed.",
        returns="yaml",
        stats=None,
        raw_of=cmd.name,
    )


# -- $.stats ------------------------------------------------------------------------------------------


def _stats_type(name: str, st: dict[str, Any], spath: str) -> StatsType:
    fields: list[StatsField] = []
    for fi, f in enumerate(st["fields"]):
        fields.append(_stats_field(f, name, fields, f"{spath}.fields[{fi}]"))
    return StatsType(name, st["description"], tuple(fields))


def _stats_field(f: dict[str, Any], owner: str, before: list[StatsField], fpath: str) -> StatsField:
    """One field of a stats type; ``before`` are the type's fields already built."""
    if any(b.key == f["key"] for b in before):
        raise SpecError(f"{fpath}.key", f"duplicate field {f['key']!r}")
    if f["type"] != "enum" and "values" in f:
        raise SpecError(f"{fpath}.values", "only enum fields take values")
    return StatsField(
        f["key"],
        python_name(f["key"]),
        f["type"],
        f.get("ctype", f["type"]),
        tuple(f.get("values", ())),
        f["description"],
        owner,
    )
