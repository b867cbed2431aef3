"""What every command shares: the run's context (servers, clients, output mode), job references,
argument types, failures with their exit codes, and output helpers."""

from __future__ import annotations

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "JOB_ID",
    "KICK_ALL",
    "SHOW_ALL",
    "TUBE",
    "Ctx",
    "Failure",
    "JobRef",
    "PlainTable",
    "Unreachable",
    "emit",
    "json_text",
    "pass_ctx",
    "progress",
]

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal

import click
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text

from beanstalkm import Client, InvalidArgument, SocketError
from beanstalkm._generated import commands as _c
from beanstalkm.cli._servers import Server, connect

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
KICK_ALL = 2**32 - 1


class Failure(click.ClickException):
    """The command failed (exit 1); the message is the one line printed."""

    exit_code = EXIT_FAILED


class Unreachable(Failure):
    """No server the command needs could be reached (exit 3)."""

    exit_code = EXIT_UNREACHABLE


class TubeType(click.ParamType[str, object]):
    name = "TUBE"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        try:  # the spec's rule, as every command checks a tube name
            return _c.TUBE_RULE.check("tube", text)
        except InvalidArgument:
            self.fail(
                f"bad tube name {text!r}: 1 to 200 of A-Z a-z 0-9 - + / ; . $ _ ( ), not starting with '-'",
                param,
                ctx,
            )


@dataclass(frozen=True, slots=True)
class JobRef:
    """A job id as written on the command line: ``N``, ``I:N`` (I-th ``-s`` server, from 1) or ``URL#N``."""

    id: int
    server_index: int | None = None
    server_url: str | None = None
    text: str = ""


class JobIdType(click.ParamType[JobRef, object]):
    name = "ID"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> JobRef:
        if isinstance(value, JobRef):
            return value
        text = str(value)
        server_index: int | None = None
        server_url: str | None = None
        number = text
        if "#" in text:
            server_url, _, number = text.rpartition("#")
        elif ":" in text:
            index, _, number = text.partition(":")
            if not index.isdigit() or int(index) < 1:
                self.fail(f"bad job id {text!r}: the server index before ':' counts -s servers from 1", param, ctx)
            server_index = int(index)
        if not number.isdigit() or int(number) < 1 or int(number) >= 2**64:
            self.fail(f"bad job id {text!r}: job ids are whole numbers from 1 to 2**64-1", param, ctx)
        return JobRef(int(number), server_index, server_url, text)


TUBE = TubeType()
JOB_ID = JobIdType()
SHOW_ALL = click.option(
    "--all", "show_all", is_flag=True, help="list the worker's failure-record tubes (TUBE.failed.ID) as tubes too"
)


def stats_dict(stats: Mapping[str, object]) -> dict[str, object]:
    """A stats mapping as a JSON-ready dict, in the server's key order: ``Decimal`` (rusage) as a float."""
    return {key: float(value) if isinstance(value, Decimal) else value for key, value in stats.items()}


def json_text(document: object) -> str:
    """A JSON document as the CLI writes every one: compact, UTF-8 as it is."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def emit(document: object) -> None:
    """Write one JSON document (or one NDJSON line) to stdout."""
    sys.stdout.write(json_text(document) + "\n")


@dataclass
class Ctx:
    """One run of the CLI: the servers named, their clients (connected on first use), the output mode."""

    servers: list[Server]
    json_output: bool = False
    timeout: float | None = 10.0
    debug: bool = False
    clients: dict[int, Client] = field(default_factory=dict)
    down: dict[int, str] = field(default_factory=dict)
    partial: bool = False
    named: bool = False  # whether -s named the servers (else they are the default)

    @property
    def several(self) -> bool:
        return len(self.servers) > 1

    def client(self, server: Server) -> Client:
        """The connected client of ``server``; ``Unreachable`` (exit 3) if it cannot be reached."""
        client = self.clients.get(server.index)
        if client is not None:
            return client
        if server.index in self.down:
            raise Unreachable(f"server {server.url} unreachable: {self.down[server.index]}")
        try:
            client = connect(server, self.timeout)
        except SocketError as exc:
            self.down[server.index] = str(exc)
            raise Unreachable(f"server {server.url} unreachable: {exc}") from exc
        self.clients[server.index] = client
        return client

    def reachable(self) -> Iterator[tuple[Server, Client]]:
        """Each server that answers, with its client; a line on stderr for each that does not.

        Raises ``Unreachable`` once all have been tried if none answered; if only some did, the
        run ends with exit 1 (a partial result) after the command's output.
        """
        up = 0
        for server in self.servers:
            try:
                client = self.client(server)
            except Unreachable as exc:
                self.partial = True
                click.echo(f"beanstalkm: {exc}", err=True)
                continue
            up += 1
            yield server, client
        if up == 0:
            raise Unreachable("no server reachable: " + ", ".join(s.url for s in self.servers))

    def server_of(self, ref: JobRef) -> Server:
        """The server a job reference points at."""
        if ref.server_url is not None:
            for server in self.servers:
                if server.url == ref.server_url:
                    return server
            raise click.UsageError(f"job {ref.text!r}: server {ref.server_url!r} is not one of the -s servers")
        if ref.server_index is not None:
            if ref.server_index > len(self.servers):
                raise click.UsageError(f"job {ref.text!r}: there are only {len(self.servers)} servers")
            return self.servers[ref.server_index - 1]
        if self.several:
            raise click.UsageError(
                f"job id {ref.text!r} is ambiguous with {len(self.servers)} servers: write I:{ref.id} "
                f"(I = 1..{len(self.servers)}, in -s order) or URL#{ref.id}"
            )
        return self.servers[0]

    def ref(self, server: Server, job_id: int) -> str:
        """How the CLI writes a job reference: ``N`` with one server, ``I:N`` with several."""
        return f"{server.index}:{job_id}" if self.several else str(job_id)

    def report(self, document: object, text: str) -> None:
        """A command's outcome: the JSON document with ``--json``, else the line of text."""
        if self.json_output:
            emit(document)
        else:
            click.echo(text)

    def close(self) -> None:
        for client in self.clients.values():
            with suppress(Exception):  # closing after the command's outcome is decided
                client.close()
        self.clients.clear()

    def console(self) -> Console:
        """Tables and text for people: wide enough when piped, so columns are not squeezed."""
        return Console(width=None if sys.stdout.isatty() else 200, soft_wrap=False)


pass_ctx = click.make_pass_decorator(Ctx)
"""Hand a command the run's ``Ctx`` as its first argument."""


class PlainTable:
    """Rows of plain cells, printed as rich's ``Table(box=None, pad_edge=False, header_style="bold")``
    prints them (``tests/cli/test_bulk.py`` compares) but one ``Text`` a line, not a renderable a cell
    (docs/cli.md, "tubes"); lines too wide for the terminal are cropped, not wrapped."""

    def __init__(self, columns: Sequence[tuple[str, bool]]) -> None:
        self._columns = list(columns)  # (title, right-justified)
        self._rows: list[list[tuple[str, str | None]]] = [[(title, "bold") for title, _ in columns]]

    def add_row(self, *cells: str | tuple[str, str | None]) -> None:
        """One row: each cell its text, or (text, style)."""
        self._rows.append([(cell, None) if isinstance(cell, str) else cell for cell in cells])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = [max(cell_len(row[k][0]) for row in self._rows) for k in range(len(self._columns))]
        for row in self._rows:
            line = Text(no_wrap=True, overflow="crop")
            for k, ((text, style), width, (_, right)) in enumerate(zip(row, widths, self._columns, strict=True)):
                pad = " " * (width - cell_len(text))
                if k:
                    line.append("  ")
                if right:
                    line.append(pad)
                line.append(text, style)
                if not right:
                    line.append(pad)
            yield line


@dataclass(frozen=True, slots=True)
class _Bar:
    progress: Progress
    task: TaskID

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def total(self, n: int) -> None:
        self.progress.update(self.task, total=n)


@contextmanager
def progress(ctx: Ctx, description: str, total: int | None) -> Iterator[_Bar]:
    """A progress bar on stderr while a bulk command runs (only on a terminal, never with --json)."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=ctx.json_output or not sys.stderr.isatty(),
    )
    with bar:
        yield _Bar(bar, bar.add_task(description, total=total))
