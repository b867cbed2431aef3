"""The frozen, typed model the templates read. Every decision is made here, in
tested Python; the templates only print attributes."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
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
        "reply_body",
        "reply_int",
        "reply_job",
        "reply_str",
        "reply_text",
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
    default_value: int | None
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
        if kind == "uint":
            return f'{self.name} = check_uint("{self.name}", {self.name}, {self.type.min}, {self.type.max})'
        if kind == "tube":
            return f'{self.name} = TUBE_RULE.check("{self.name}", {self.name})'
        return f'data = check_body("{self.name}", {self.name})'

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
    type: str
    description: str


@dataclass(frozen=True)
class Failure:
    status: str
    description: str
    args: tuple[ReplyArg, ...]
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


@dataclass(frozen=True)
class StatsType:
    name: str
    description: str
    fields: tuple[StatsField, ...]

    @property
    def enum_fields(self) -> tuple[StatsField, ...]:
        return tuple(f for f in self.fields if f.kind == "enum")


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
    success_description: str
    success_args: tuple[ReplyArg, ...]
    returns: str  # none | int | str | job | list | stats | yaml
    stats: str | None
    failures: tuple[Failure, ...]  # own failures, then the general errors
    raw_of: str | None  # for a *_yaml variant: the command it mirrors
    max_line: int

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
        """Keyword arguments for ``Request(...)`` beyond the defaults."""
        opts: list[str] = []
        if self.uses_tube:
            opts.append("uses_tube=True")
        if self.effect is not None:
            opts.append(f'effect="{self.effect}"')
        if self.effect_tube is not None:
            opts.append(f"tube={self.effect_tube}")
        if self.wait != "0.0":
            opts.append(f"wait={self.wait}")
        if self.no_reply:
            opts.append("expects_reply=False")
        return "".join(", " + o for o in opts)

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
        """How a driver turns the decoded value into the method's result."""
        if self.returns != "job":
            return ""
        if self.effect == "reserve":
            return "_reserved_message"
        return "_message_or_none" if self.none_statuses else "_message"

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


@dataclass(frozen=True)
class Spec:
    path: str
    sha256: str
    protocol_name: str
    protocol_version: str
    protocol_description: str
    command_line_max: int
    reply_line_max: int
    body_max: int
    tube_name_max: int
    tube_name_chars: str
    types: tuple[ArgType, ...]
    errors: tuple[ErrorClass, ...]
    general_errors: tuple[str, ...]
    commands: tuple[Command, ...]  # protocol commands then raw YAML variants
    stats: tuple[StatsType, ...]
    body_statuses: tuple[str, ...]
    defaults: tuple[tuple[str, int], ...]

    @property
    def general_failures(self) -> tuple[tuple[str, str], ...]:
        """(status, class name) of the general errors, raised by every command."""
        by_status = {e.status: e.name for e in self.errors}
        return tuple((status, by_status[status]) for status in self.general_errors)

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
    _validate(data, json.loads(schema_path.read_text()))
    return build(data, str(spec_path.as_posix()), hashlib.sha256(raw).hexdigest())


def _reply_args(items: list[dict[str, Any]]) -> tuple[ReplyArg, ...]:
    return tuple(ReplyArg(a["name"], a.get("type", "int"), a["description"]) for a in items)


def build(data: dict[str, Any], path: str, sha256: str) -> Spec:
    """Build the model from validated spec data; semantic errors name their JSON path."""
    limits = data["limits"]
    types: dict[str, ArgType] = {}
    for name, t in data["types"].items():
        if t["kind"] == "uint" and t["min"] > t["max"]:
            raise SpecError(f"$.types.{name}", f"min {t['min']} is above max {t['max']}")
        types[name] = ArgType(name, t["kind"], t.get("min", 0), t.get("max", 0), t["description"])

    statuses: dict[str, dict[str, str]] = data["statuses"]
    general = tuple(data["general_errors"])
    for i, status in enumerate(general):
        if status not in statuses:
            raise SpecError(f"$.general_errors[{i}]", f"status {status!r} is not defined in $.statuses")
    class_names: dict[str, str] = {}
    for status, info in statuses.items():
        if info["class"] in class_names:
            raise SpecError(
                f"$.statuses.{status}.class", f"class {info['class']!r} is also used by {class_names[info['class']]}"
            )
        class_names[info["class"]] = status

    stats_names = set(data["stats"])
    commands: list[Command] = []
    raws: list[Command] = []
    seen_names: dict[str, int] = {}
    seen_wires: dict[str, int] = {}
    error_args: dict[str, dict[str, int]] = {s: {} for s in statuses}
    defaults: dict[str, int] = {}
    body_statuses: set[str] = set()

    for ci, c in enumerate(data["commands"]):
        cpath = f"$.commands[{ci}]"
        if c["name"] in seen_names:
            raise SpecError(f"{cpath}.name", f"{c['name']!r} is also the name of $.commands[{seen_names[c['name']]}]")
        if c["wire"] in seen_wires:
            raise SpecError(
                f"{cpath}.wire", f"{c['wire']!r} is also the wire name of $.commands[{seen_wires[c['wire']]}]"
            )
        seen_names[c["name"]] = ci
        seen_wires[c["wire"]] = ci
        if python_name(c["name"]) != c["name"]:
            raise SpecError(f"{cpath}.name", f"{c['name']!r} is a Python keyword or reserved name")
        if c["name"] in RESERVED_COMMAND_NAMES or c["name"].removesuffix("_yaml") in RESERVED_COMMAND_NAMES:
            raise SpecError(f"{cpath}.name", f"{c['name']!r} would clash with a name the generated code uses")

        args: list[Arg] = []
        arg_names: set[str] = set()
        for ai, a in enumerate(c["args"]):
            apath = f"{cpath}.args[{ai}]"
            if a["type"] not in types:
                raise SpecError(f"{apath}.type", f"unknown type {a['type']!r}; known: {sorted(types)}")
            if a["name"] in arg_names:
                raise SpecError(f"{apath}.name", f"duplicate argument {a['name']!r}")
            if a["name"] in {"data", "self", "reply"}:
                raise SpecError(f"{apath}.name", f"{a['name']!r} is reserved in generated code")
            arg_names.add(a["name"])
            t = types[a["type"]]
            default = a.get("default")
            if default is None and args and args[-1].default_constant is not None:
                raise SpecError(apath, "an argument without a default follows one with a default")
            if default is not None:
                if t.kind != "uint" or not t.min <= default["value"] <= t.max:
                    raise SpecError(f"{apath}.default.value", f"{default['value']} is not a valid {a['type']}")
                known = defaults.setdefault(default["constant"], default["value"])
                if known != default["value"]:
                    raise SpecError(f"{apath}.default", f"{default['constant']} is {known} elsewhere")
            args.append(
                Arg(
                    a["name"],
                    t,
                    a["description"],
                    None if default is None else default["value"],
                    None if default is None else default["constant"],
                )
            )
        body_args = [a for a in args if a.type.kind == "body"]
        if len(body_args) > 1:
            raise SpecError(f"{cpath}.args", "a command sends at most one body")

        # The command line: placeholders must name non-body arguments, each used once.
        line = c["line"]
        if not line.startswith(c["wire"]):
            raise SpecError(f"{cpath}.line", f"{line!r} does not start with the wire name {c['wire']!r}")
        placeholders = _PLACEHOLDER.findall(line)
        line_args = [a for a in args if a.type.kind != "body"]
        if sorted(placeholders) != sorted(a.name for a in line_args):
            raise SpecError(
                f"{cpath}.line",
                f"placeholders {placeholders} do not match the arguments {[a.name for a in line_args]}",
            )
        by_name = {a.name: a for a in args}
        fmt = line.replace("%", "%%")
        for p in placeholders:
            fmt = fmt.replace("{" + p + "}", by_name[p].format_code, 1)
        values = [by_name[p].format_value for p in placeholders]
        max_line = len(_PLACEHOLDER.sub("", line)) + 2
        for p in placeholders:
            t = by_name[p].type
            max_line += limits["tube_name_max"] if t.kind == "tube" else t.line_width
        if body_args:
            fmt += " %d\r\n%b\r\n"
            values += ["len(data)", "data"]
            max_line += 1 + len(str(limits["body_max"]))
        else:
            fmt += "\r\n"
        if max_line > limits["command_line_max"]:
            raise SpecError(
                f"{cpath}.line", f"can reach {max_line} bytes, over command_line_max {limits['command_line_max']}"
            )

        effect = c.get("effect")
        tube_args = [a.name for a in args if a.type.kind == "tube"]
        if effect == "reserve" and (c.get("success") or {}).get("returns") != "job":
            raise SpecError(f"{cpath}.effect", "effect 'reserve' needs a success that returns a job")
        if effect == "reserve" and any(f.get("returns_none") for f in c.get("failures", [])):
            raise SpecError(f"{cpath}.effect", "a reserving command cannot return None")
        if effect in {"use", "watch", "ignore"} and len(tube_args) != 1:
            raise SpecError(f"{cpath}.effect", f"effect {effect!r} needs exactly one tube argument")
        blocks = c.get("blocks")
        if blocks is None:
            wait = "0.0"
        elif blocks == "forever":
            wait = "None"
        elif blocks in by_name and by_name[blocks].type.kind == "uint":
            wait = f"float({blocks})"
        else:
            raise SpecError(f"{cpath}.blocks", f"{blocks!r} is neither 'forever' nor an integer argument")

        no_reply = bool(c.get("no_reply", False))
        failures: list[Failure] = []
        success = c.get("success")
        if success is not None:
            returns = success["returns"]
            if returns == "stats" and success["stats"] not in stats_names:
                raise SpecError(f"{cpath}.success.stats", f"unknown stats type {success['stats']!r}")
            if returns in {"int", "str"} and not success["args"]:
                raise SpecError(f"{cpath}.success.args", f"returns {returns!r} needs a reply argument")
            if returns in {"job", "list", "stats"}:
                body_statuses.add(success["status"])
            own_statuses: set[str] = set()
            for fi, f in enumerate(c["failures"]):
                fpath = f"{cpath}.failures[{fi}]"
                if f["status"] not in statuses:
                    raise SpecError(f"{fpath}.status", f"status {f['status']!r} is not defined in $.statuses")
                if f["status"] in general:
                    raise SpecError(f"{fpath}.status", f"{f['status']!r} is a general error; it is merged in already")
                if f["status"] == success["status"]:
                    raise SpecError(f"{fpath}.status", f"{f['status']!r} is also this command's success")
                if f["status"] in own_statuses:
                    raise SpecError(f"{fpath}.status", f"duplicate failure {f['status']!r}")
                own_statuses.add(f["status"])
                fargs = _reply_args(f.get("args", []))
                for position, a in enumerate(fargs):
                    known_position = error_args[f["status"]].setdefault(a.name, position)
                    if known_position != position:
                        raise SpecError(
                            f"{fpath}.args[{position}]", f"{a.name!r} is argument {known_position + 1} elsewhere"
                        )
                failures.append(
                    Failure(
                        f["status"],
                        f["description"],
                        fargs,
                        bool(f.get("returns_none", False)),
                        statuses[f["status"]]["class"],
                        False,
                    )
                )
            for status in general:
                failures.append(
                    Failure(status, statuses[status]["description"], (), False, statuses[status]["class"], True)
                )
            success_status: str | None = success["status"]
            success_description = success["description"]
            success_args = _reply_args(success["args"])
            stats = success.get("stats")
        else:
            returns, success_status, success_description, success_args, stats = "none", None, "", (), None

        cmd = Command(
            wire=c["wire"],
            name=c["name"],
            description=c["description"],
            args=tuple(args),
            line_format=fmt,
            line_values=tuple(values),
            uses_tube=bool(c.get("uses_tube", False)),
            effect=effect,
            effect_tube=tube_args[0] if effect in {"use", "watch", "ignore"} else None,
            wait=wait,
            no_reply=no_reply,
            success_status=success_status,
            success_description=success_description,
            success_args=success_args,
            returns=returns,
            stats=stats,
            failures=tuple(failures),
            raw_of=None,
            max_line=max_line,
        )
        commands.append(cmd)
        if returns in {"list", "stats"}:
            raws.append(
                replace(
                    cmd,
                    name=cmd.name + "_yaml",
                    description=f"{cmd.description} Raw mode: the server's YAML text, unparsed.",
                    returns="yaml",
                    stats=None,
                    raw_of=cmd.name,
                )
            )

    for raw in raws:
        if raw.name in seen_names:
            raise SpecError(
                f"$.commands[{seen_names[raw.name]}].name",
                f"{raw.name!r} clashes with the raw YAML variant of {raw.raw_of!r}",
            )

    stats_types: list[StatsType] = []
    for sname, st in data["stats"].items():
        fields: list[StatsField] = []
        seen_keys: set[str] = set()
        for fi, f in enumerate(st["fields"]):
            fpath = f"$.stats.{sname}.fields[{fi}]"
            if f["key"] in seen_keys:
                raise SpecError(f"{fpath}.key", f"duplicate field {f['key']!r}")
            seen_keys.add(f["key"])
            if f["type"] != "enum" and "values" in f:
                raise SpecError(f"{fpath}.values", "only enum fields take values")
            fields.append(
                StatsField(
                    f["key"],
                    python_name(f["key"]),
                    f["type"],
                    f.get("ctype", f["type"]),
                    tuple(f.get("values", ())),
                    f["description"],
                    sname,
                )
            )
        stats_types.append(StatsType(sname, st["description"], tuple(fields)))

    errors = tuple(
        ErrorClass(status, info["class"], info["description"], tuple(sorted(error_args[status].items())))
        for status, info in statuses.items()
    )
    for e in errors:
        if class_name(e.status) != e.name and not e.name[0].isupper():
            raise SpecError(f"$.statuses.{e.status}.class", "class names are CapWords")

    return Spec(
        path=path,
        sha256=sha256,
        protocol_name=data["protocol"]["name"],
        protocol_version=data["protocol"]["version"],
        protocol_description=data["protocol"]["description"],
        command_line_max=limits["command_line_max"],
        reply_line_max=limits["reply_line_max"],
        body_max=limits["body_max"],
        tube_name_max=limits["tube_name_max"],
        tube_name_chars=limits["tube_name_chars"],
        types=tuple(types.values()),
        errors=errors,
        general_errors=general,
        commands=tuple(commands) + tuple(raws),
        stats=tuple(stats_types),
        body_statuses=tuple(sorted(body_statuses)),
        defaults=tuple(sorted(defaults.items())),
    )
